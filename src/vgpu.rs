//! `platform:device-model-args` editing: render the vGPU stub device, find it in an existing
//! value, merge it in or strip it out while keeping every other word in order.
//!
//! The stub device is the pair of words `-device vgpu-stub,pool_id=A,priority=high,vm_id=7`.
//! Priority is written as a word; a legacy digit (`priority=1`) is read too.

use crate::model::{Pool, Priority, VmConfig, VmId};

/// The QEMU device name of the stub.
pub const STUB: &str = "vgpu-stub";

/// Renders the stub device for `config`.
pub fn device_args(config: &VmConfig) -> String {
    format!(
        "-device {STUB},pool_id={},priority={},vm_id={}",
        config.pool, config.priority, config.vm_id
    )
}

/// The stub device found in a value, with its properties as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FoundStub {
    /// `pool_id=` as written.
    pub pool_id: Option<String>,
    /// `priority=` as written (word or digit).
    pub priority: Option<String>,
    /// `vm_id=` as written.
    pub vm_id: Option<String>,
}

impl FoundStub {
    /// The configuration it describes, or why it is not a valid one.
    pub fn config(&self) -> Result<VmConfig, String> {
        let pool = Pool::parse(self.pool_id.as_deref().ok_or("pool_id is missing")?)
            .map_err(|e| e.to_string())?;
        let priority = Priority::parse(self.priority.as_deref().ok_or("priority is missing")?)
            .map_err(|e| e.to_string())?;
        let vm_id = VmId::parse(self.vm_id.as_deref().ok_or("vm_id is missing")?)
            .map_err(|e| e.to_string())?;
        Ok(VmConfig {
            pool,
            priority,
            vm_id,
        })
    }
}

/// Splits a value into words and marks the stub device pairs (`-device` + `vgpu-stub,...`).
fn words(value: &str) -> (Vec<&str>, Vec<usize>) {
    let words: Vec<&str> = value.split_whitespace().collect();
    let mut stubs = Vec::new();
    let mut i = 0;
    while i + 1 < words.len() {
        let device = words[i + 1];
        if words[i] == "-device" && (device == STUB || device.starts_with("vgpu-stub,")) {
            stubs.push(i);
            i += 2;
        } else {
            i += 1;
        }
    }
    (words, stubs)
}

/// Finds the (first) stub device in `value`.
pub fn parse(value: &str) -> Option<FoundStub> {
    let (words, stubs) = words(value);
    let first = *stubs.first()?;
    let mut found = FoundStub::default();
    for prop in words[first + 1].split(',').skip(1) {
        let (k, v) = prop.split_once('=').unwrap_or((prop, ""));
        let slot = match k {
            "pool_id" => &mut found.pool_id,
            "priority" => &mut found.priority,
            "vm_id" => &mut found.vm_id,
            _ => continue,
        };
        *slot = Some(v.to_string());
    }
    Some(found)
}

/// `value` with the stub device for `config` in place of any stub device it had (at the first
/// one's position, or at the end), every other word kept in order. Whitespace is normalised to
/// single spaces.
pub fn merge(value: &str, config: &VmConfig) -> String {
    let (words, stubs) = words(value);
    let rendered = device_args(config);
    let mut out: Vec<&str> = Vec::with_capacity(words.len() + 2);
    let mut placed = false;
    let mut i = 0;
    while i < words.len() {
        if stubs.contains(&i) {
            if !placed {
                out.push(&rendered);
                placed = true;
            }
            i += 2;
        } else {
            out.push(words[i]);
            i += 1;
        }
    }
    if !placed {
        out.push(&rendered);
    }
    out.join(" ")
}

/// `value` without any stub device; `None` when nothing else remains (remove the key).
pub fn strip(value: &str) -> Option<String> {
    let (words, stubs) = words(value);
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if stubs.contains(&i) {
            i += 2;
        } else {
            out.push(words[i]);
            i += 1;
        }
    }
    (!out.is_empty()).then(|| out.join(" "))
}

/// True when `value` carries exactly the stub device for `config` (legacy digit priorities
/// count as different: they are rewritten as words).
pub fn is_in_sync(value: Option<&str>, config: &VmConfig) -> bool {
    let Some(value) = value else { return false };
    let (words, stubs) = words(value);
    stubs.len() == 1 && words[stubs[0] + 1] == &device_args(config)["-device ".len()..]
}

/// How a VM's args compare with the database: `in sync`, or `differs: ...` saying what differs.
pub fn describe_sync(value: Option<&str>, want: &VmConfig) -> String {
    if is_in_sync(value, want) {
        return "in sync".to_string();
    }
    let Some(value) = value else {
        return "differs: no device-model-args".to_string();
    };
    let (_, stubs) = words(value);
    let Some(found) = parse(value) else {
        return "differs: no vgpu-stub device in device-model-args".to_string();
    };
    if stubs.len() > 1 {
        return format!("differs: {} vgpu-stub devices", stubs.len());
    }
    let mut diffs = Vec::new();
    let mut compare = |name: &str, have: &Option<String>, want: String| match have {
        Some(h) if *h == want => {}
        Some(h) => diffs.push(format!("{name}={h} (database: {want})")),
        None => diffs.push(format!("{name} missing (database: {want})")),
    };
    compare("pool_id", &found.pool_id, want.pool.to_string());
    compare("priority", &found.priority, want.priority.to_string());
    compare("vm_id", &found.vm_id, want.vm_id.to_string());
    if diffs.is_empty() {
        diffs.push("extra properties on the vgpu-stub device".to_string());
    }
    format!("differs: {}", diffs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pool: Pool, priority: Priority, id: i64) -> VmConfig {
        VmConfig {
            pool,
            priority,
            vm_id: VmId::new(id).unwrap(),
        }
    }

    #[test]
    fn renders_the_stub_device() {
        assert_eq!(
            device_args(&config(Pool::A, Priority::High, 7)),
            "-device vgpu-stub,pool_id=A,priority=high,vm_id=7"
        );
    }

    #[test]
    fn parses_words_and_legacy_digits() {
        let found =
            parse("-machine q35  -device vgpu-stub,pool_id=B,priority=1,vm_id=12 -m 4G").unwrap();
        assert_eq!(found.pool_id.as_deref(), Some("B"));
        assert_eq!(found.priority.as_deref(), Some("1"));
        assert_eq!(
            found.config().unwrap(),
            config(Pool::B, Priority::Medium, 12)
        );
        assert!(parse("-device e1000,netdev=n0").is_none());
        let bad = parse("-device vgpu-stub,pool_id=C,priority=high,vm_id=1").unwrap();
        assert!(bad.config().unwrap_err().contains("invalid pool 'C'"));
    }

    #[test]
    fn merge_keeps_other_devices_in_order_and_replaces_the_stub_in_place() {
        let c = config(Pool::A, Priority::Low, 3);
        assert_eq!(
            merge("", &c),
            "-device vgpu-stub,pool_id=A,priority=low,vm_id=3"
        );
        assert_eq!(
            merge("-device e1000,netdev=n0   -usb", &c),
            "-device e1000,netdev=n0 -usb -device vgpu-stub,pool_id=A,priority=low,vm_id=3"
        );
        assert_eq!(
            merge(
                " -device e1000  -device vgpu-stub,pool_id=B,priority=1,vm_id=9 -usb -device vgpu-stub,pool_id=B ",
                &c
            ),
            "-device e1000 -device vgpu-stub,pool_id=A,priority=low,vm_id=3 -usb"
        );
    }

    #[test]
    fn strip_removes_only_the_stub_and_reports_emptiness() {
        assert_eq!(
            strip("-device e1000 -device vgpu-stub,pool_id=A,priority=high,vm_id=7  -usb"),
            Some("-device e1000 -usb".to_string())
        );
        assert_eq!(
            strip(" -device vgpu-stub,pool_id=A,priority=high,vm_id=7 "),
            None
        );
        assert_eq!(strip("-usb"), Some("-usb".to_string()));
    }

    #[test]
    fn describes_differences() {
        let c = config(Pool::A, Priority::High, 7);
        assert_eq!(
            describe_sync(
                Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7"),
                &c
            ),
            "in sync"
        );
        assert_eq!(
            describe_sync(Some("-device vgpu-stub,pool_id=B,priority=2,vm_id=7"), &c),
            "differs: pool_id=B (database: A), priority=2 (database: high)"
        );
        assert_eq!(describe_sync(None, &c), "differs: no device-model-args");
        assert_eq!(
            describe_sync(Some("-usb"), &c),
            "differs: no vgpu-stub device in device-model-args"
        );
    }

    #[test]
    fn sync_check_wants_exactly_the_rendered_stub() {
        let c = config(Pool::A, Priority::High, 7);
        assert!(is_in_sync(
            Some("-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=7"),
            &c
        ));
        assert!(!is_in_sync(
            Some("-device vgpu-stub,pool_id=A,priority=2,vm_id=7"),
            &c
        ));
        assert!(!is_in_sync(
            Some("-device vgpu-stub,pool_id=B,priority=high,vm_id=7"),
            &c
        ));
        assert!(!is_in_sync(None, &c));
    }
}
