//! `platform:device-model-args` and the vGPU device in it: find the device, edit it in place,
//! take it out, and tell whether the device QEMU will build has the database's values.
//!
//! The value is split into words exactly as the site's qemu-wrapper splits it (Python's
//! `shlex.split`, see [`shell_words`]); a `-device` word whose driver is `vgpu-stub` or
//! `vgpu-cuda` (bare or as `driver=NAME`) is the vGPU device. Only its `pool_id`, `priority` and
//! `vm_id` belong to vgpu-admin: an edit rewrites those three in place and keeps the driver name,
//! every other property and every other word byte for byte. A value that does not split is
//! never rewritten.

pub mod device;
pub mod shell_words;

use crate::model::{Driver, Pool, Priority, VmConfig, VmId};
use device::{DeviceSpec, OWN_KEYS};
use shell_words::{SplitError, Word};
use std::ops::Range;

/// Why a value cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The value does not split into words, so qemu-wrapper cannot read it either.
    #[error(
        "the VM's device-model-args cannot be split into words ({0}), as qemu-wrapper splits \
         them; they were not changed: correct them by hand (xe vm-param-set)"
    )]
    Unsplittable(SplitError),
}

/// The vGPU device word for `config`, naming `driver`:
/// `-device vgpu-stub,pool_id=A,priority=high,vm_id=7`.
pub fn device_args(config: &VmConfig, driver: Driver) -> String {
    format!(
        "-device {driver},pool_id={},priority={},vm_id={}",
        config.pool, config.priority, config.vm_id
    )
}

/// A value split into words, with its vGPU devices found.
struct Parsed<'a> {
    text: &'a str,
    words: Vec<Word>,
    /// Index of each vGPU device's `-device` word (its argument is the next word).
    devices: Vec<usize>,
}

impl<'a> Parsed<'a> {
    fn new(text: &'a str) -> Result<Self, ArgsError> {
        let words = shell_words::split(text).map_err(ArgsError::Unsplittable)?;
        let mut devices = Vec::new();
        let mut i = 0;
        while i + 1 < words.len() {
            if matches!(words[i].value.as_str(), "-device" | "--device") {
                if DeviceSpec::parse(&words[i + 1].value)
                    .vgpu_driver()
                    .is_some()
                {
                    devices.push(i);
                }
                i += 2; // the argument of -device is never an option itself
            } else {
                i += 1;
            }
        }
        Ok(Parsed {
            text,
            words,
            devices,
        })
    }

    fn spec(&self, device: usize) -> DeviceSpec {
        DeviceSpec::parse(&self.words[device + 1].value)
    }

    /// The bytes a device pair takes, with the separators before it (or, for the first word,
    /// after it), so that removing them leaves the rest spaced as it was.
    fn pair_range(&self, device: usize) -> Range<usize> {
        let start = self.words[device].span.start;
        let end = self.words[device + 1].span.end;
        if device > 0 {
            self.words[device - 1].span.end..end
        } else {
            match self.words.get(device + 2) {
                Some(next) => start..next.span.start,
                None => 0..self.text.len(),
            }
        }
    }
}

/// Replaces byte ranges (sorted, not overlapping) of `text`.
fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, with) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&with);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `value` (`None`: not set) with the vGPU device set to `config`. An existing device is edited
/// in place, its driver and other properties kept; further vGPU devices are removed; without
/// one, a device naming `driver` (the site's) is appended. Every other byte is kept.
pub fn merge(value: Option<&str>, config: &VmConfig, driver: Driver) -> Result<String, ArgsError> {
    let value = value.unwrap_or("");
    let parsed = Parsed::new(value)?;
    let Some((&first, others)) = parsed.devices.split_first() else {
        let kept = value.trim_end_matches(shell_words::is_separator);
        let device = device_args(config, driver);
        return Ok(if kept.is_empty() {
            device
        } else {
            format!("{kept} {device}")
        });
    };
    let mut spec = parsed.spec(first);
    spec.set(OWN_KEYS[0], config.pool.as_str());
    spec.set(OWN_KEYS[1], config.priority.as_str());
    spec.set(OWN_KEYS[2], &config.vm_id.to_string());
    let word = &parsed.words[first + 1];
    let written = &value[word.span.clone()];
    let new = spec.render();
    // A word written plainly stays plain; one written with quotes is quoted again.
    let new = if written == word.value {
        new
    } else {
        shell_words::quote(&new).into_owned()
    };
    let mut edits = vec![(word.span.clone(), new)];
    edits.extend(
        others
            .iter()
            .map(|&d| (parsed.pair_range(d), String::new())),
    );
    Ok(splice(value, edits))
}

/// `value` without any vGPU device; `None` when no other word is left (remove the key then).
pub fn strip(value: &str) -> Result<Option<String>, ArgsError> {
    let parsed = Parsed::new(value)?;
    if parsed.words.len() == 2 * parsed.devices.len() {
        return Ok(None);
    }
    let edits = parsed
        .devices
        .iter()
        .map(|&d| (parsed.pair_range(d), String::new()))
        .collect();
    Ok(Some(splice(value, edits)))
}

/// The first vGPU device of a value, with its own properties as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDevice {
    /// Its driver name.
    pub driver: Driver,
    /// `pool_id`, as QEMU reads it (the last one given).
    pub pool_id: Option<String>,
    /// `priority`, as QEMU reads it.
    pub priority: Option<String>,
    /// `vm_id`, as QEMU reads it.
    pub vm_id: Option<String>,
    /// How many vGPU devices the value has.
    pub count: usize,
}

impl FoundDevice {
    /// The configuration to register for it (a VM configured by hand): a missing pool is A and
    /// a missing priority medium, as for QEMU; the digit priorities an earlier startup script
    /// wrote are read as their level. Or why it does not describe one.
    pub fn config(&self) -> Result<VmConfig, String> {
        if self.count > 1 {
            return Err(format!("{} vGPU devices", self.count));
        }
        let or = |v: &Option<String>, default: &'static str| match v.as_deref() {
            None | Some("") => default.to_string(),
            Some(v) => v.to_string(),
        };
        let pool_text = or(&self.pool_id, "A");
        let pool = Pool::parse(&pool_text)
            .ok()
            .filter(|p| p.as_str() == pool_text)
            .ok_or_else(|| format!("pool_id={pool_text} (QEMU accepts only A or B)"))?;
        let priority = Priority::parse(&or(&self.priority, "medium")).map_err(|e| e.to_string())?;
        let vm_id = match self.vm_id.as_deref() {
            None => return Err("vm_id is missing".into()),
            Some(text) => VmId::parse(text).map_err(|e| e.to_string())?,
        };
        Ok(VmConfig {
            pool,
            priority,
            vm_id,
        })
    }
}

/// Finds the (first) vGPU device in `value`.
pub fn parse(value: &str) -> Result<Option<FoundDevice>, ArgsError> {
    let parsed = Parsed::new(value)?;
    Ok(parsed.devices.first().map(|&d| {
        let spec = parsed.spec(d);
        FoundDevice {
            driver: spec.vgpu_driver().unwrap_or(Driver::DEFAULT),
            pool_id: spec.get("pool_id"),
            priority: spec.get("priority"),
            vm_id: spec.get("vm_id"),
            count: parsed.devices.len(),
        }
    }))
}

/// The vm_id the vGPU device in `value` gives the VM, when it has exactly one device whose
/// vm_id QEMU reads as a number (for telling which ids the host's VMs use).
pub fn carried_vm_id(value: &str) -> Option<u32> {
    let parsed = Parsed::new(value).ok()?;
    match parsed.devices.as_slice() {
        [d] => plain_u32(&parsed.spec(*d).get("vm_id")?).ok(),
        _ => None,
    }
}

/// Reads a vm_id written in plain decimal; otherwise says whether QEMU would refuse it.
fn plain_u32(text: &str) -> Result<u32, VmIdProblem> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let hex = text.len() > 2
        && (text.starts_with("0x") || text.starts_with("0X"))
        && text[2..].bytes().all(|b| b.is_ascii_hexdigit());
    match text.parse::<u32>() {
        Ok(n) if digits && (text == "0" || !text.starts_with('0')) => Ok(n),
        Ok(_) => Err(VmIdProblem::NotPlain),
        Err(_) if hex => Err(VmIdProblem::NotPlain),
        Err(_) => Err(VmIdProblem::Refused),
    }
}

enum VmIdProblem {
    /// Leading zeros or hexadecimal: QEMU reads it, but not as the plain decimal we compare.
    NotPlain,
    /// Not an unsigned 32-bit integer: QEMU refuses the device.
    Refused,
}

/// How a VM's device-model-args compare with its database entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Exactly one vGPU device, which QEMU accepts, with the database's pool, priority and
    /// vm_id.
    InSync,
    /// Anything else, and why.
    Differs(String),
}

impl Sync {
    /// `in sync`, or `differs: <why>`.
    pub fn describe(&self) -> String {
        match self {
            Sync::InSync => "in sync".into(),
            Sync::Differs(why) => format!("differs: {why}"),
        }
    }
}

/// Compares `value` (`None`: not set) with `want`: in sync when the device QEMU will build from
/// it has the database's values. (Which of the two driver names it uses is not compared: the
/// tool keeps the name a device was written with.)
pub fn sync(value: Option<&str>, want: &VmConfig) -> Sync {
    let Some(value) = value else {
        return Sync::Differs("no device-model-args".into());
    };
    let parsed = match Parsed::new(value) {
        Ok(p) => p,
        Err(ArgsError::Unsplittable(e)) => {
            return Sync::Differs(format!(
                "device-model-args cannot be split into words ({e}): qemu-wrapper would fail and the VM would not start"
            ))
        }
    };
    let first = match parsed.devices.as_slice() {
        [] => return Sync::Differs("no vGPU device in device-model-args".into()),
        [one] => *one,
        many => {
            return Sync::Differs(format!(
                "{} vGPU devices in device-model-args: QEMU would give the guest {} devices with conflicting settings",
                many.len(),
                many.len()
            ))
        }
    };
    let spec = parsed.spec(first);
    let mut refused = Vec::new();
    let mut differs = Vec::new();
    let get = |key: &str| spec.get(key);
    match get("pool_id").as_deref() {
        None | Some("") if want.pool == Pool::A => {}
        None | Some("") => differs.push(format!("pool_id missing, so A (database: {})", want.pool)),
        Some(p @ ("A" | "B")) if p == want.pool.as_str() => {}
        Some(p @ ("A" | "B")) => differs.push(format!("pool_id={p} (database: {})", want.pool)),
        Some(p) => refused.push(format!("pool_id={p} (only A or B)")),
    }
    match get("priority").as_deref() {
        None | Some("") if want.priority == Priority::Medium => {}
        None | Some("") => differs.push(format!(
            "priority missing, so medium (database: {})",
            want.priority
        )),
        Some(p @ ("low" | "medium" | "high")) if p == want.priority.as_str() => {}
        Some(p @ ("low" | "medium" | "high")) => {
            differs.push(format!("priority={p} (database: {})", want.priority))
        }
        Some(p) => refused.push(format!("priority={p} (only low, medium or high)")),
    }
    match get("vm_id") {
        None => differs.push(format!("vm_id missing, so 0 (database: {})", want.vm_id)),
        Some(v) => match plain_u32(&v) {
            Ok(n) if i64::from(n) == want.vm_id.get() => {}
            Ok(_) => differs.push(format!("vm_id={v} (database: {})", want.vm_id)),
            Err(VmIdProblem::NotPlain) => differs.push(format!(
                "vm_id={v} is not written in plain decimal (database: {})",
                want.vm_id
            )),
            Err(VmIdProblem::Refused) => {
                refused.push(format!("vm_id={v} (only an unsigned 32-bit integer)"))
            }
        },
    }
    let mut why = Vec::new();
    if !refused.is_empty() {
        why.push(format!(
            "QEMU would refuse the device: {}",
            refused.join(", ")
        ));
    }
    why.extend(differs);
    if why.is_empty() {
        Sync::InSync
    } else {
        Sync::Differs(why.join("; "))
    }
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

    fn high7() -> VmConfig {
        config(Pool::A, Priority::High, 7)
    }

    #[test]
    fn renders_the_device_for_a_driver() {
        assert_eq!(
            device_args(&high7(), Driver::Cuda),
            "-device vgpu-cuda,pool_id=A,priority=high,vm_id=7"
        );
    }

    #[test]
    fn merge_edits_the_device_in_place_and_keeps_every_other_byte() {
        let c = config(Pool::B, Priority::Low, 3);
        assert_eq!(
            merge(None, &c, Driver::Stub).unwrap(),
            "-device vgpu-stub,pool_id=B,priority=low,vm_id=3"
        );
        assert_eq!(
            merge(Some("-device e1000,netdev=n0   -usb  "), &c, Driver::Cuda).unwrap(),
            "-device e1000,netdev=n0   -usb -device vgpu-cuda,pool_id=B,priority=low,vm_id=3"
        );
        assert_eq!(
            merge(
                Some(r#"-smbios "type=1,product=My  VM"  -device vgpu-cuda,addr=5,pool_id=A,priority=1,vm_id=9,prefer_bar1_htod=on -usb"#),
                &c,
                Driver::Cuda
            )
            .unwrap(),
            r#"-smbios "type=1,product=My  VM"  -device vgpu-cuda,addr=5,pool_id=B,priority=low,vm_id=3,prefer_bar1_htod=on -usb"#
        );
        assert_eq!(
            merge(
                Some("-usb  -device driver=vgpu-stub,id=a,,b -device vgpu-cuda,vm_id=1 -m 4G"),
                &c,
                Driver::Cuda
            )
            .unwrap(),
            "-usb  -device driver=vgpu-stub,id=a,,b,pool_id=B,priority=low,vm_id=3 -m 4G"
        );
        assert_eq!(
            merge(
                Some(r#"-device "vgpu-stub,id=x y,vm_id=1""#),
                &c,
                Driver::Cuda
            )
            .unwrap(),
            "-device 'vgpu-stub,id=x y,vm_id=3,pool_id=B,priority=low'"
        );
        assert!(matches!(
            merge(Some("-device 'vgpu-stub"), &c, Driver::Stub),
            Err(ArgsError::Unsplittable(_))
        ));
    }

    #[test]
    fn strip_takes_out_every_vgpu_device_only() {
        assert_eq!(
            strip("-device e1000 -device vgpu-cuda,vm_id=7  -usb -device vgpu-stub").unwrap(),
            Some("-device e1000  -usb".to_string())
        );
        assert_eq!(
            strip("-device vgpu-stub,vm_id=7 -usb").unwrap(),
            Some("-usb".to_string())
        );
        assert_eq!(strip(" -device vgpu-stub,vm_id=7 ").unwrap(), None);
        assert_eq!(strip("-usb").unwrap(), Some("-usb".to_string()));
        assert!(strip("'").is_err());
    }

    #[test]
    fn sync_is_what_qemu_builds() {
        let want = high7();
        let state = |v: &str| sync(Some(v), &want).describe();
        assert_eq!(
            state("-device vgpu-cuda,addr=5,pool_id=A,priority=high,vm_id=7"),
            "in sync"
        );
        assert_eq!(
            state("-device vgpu-stub,priority=high,vm_id=7"),
            "in sync",
            "pool A is the default"
        );
        assert_eq!(
            state("-device vgpu-stub,pool_id=a,priority=2,vm_id=7"),
            "differs: QEMU would refuse the device: pool_id=a (only A or B), priority=2 (only low, medium or high)"
        );
        assert_eq!(
            state("-device vgpu-stub,pool_id=B,priority=high,vm_id=4294967296"),
            "differs: QEMU would refuse the device: vm_id=4294967296 (only an unsigned 32-bit integer); pool_id=B (database: A)"
        );
        assert_eq!(
            state("-device vgpu-stub,priority=high,vm_id=07"),
            "differs: vm_id=07 is not written in plain decimal (database: 7)"
        );
        assert_eq!(
            state("-device vgpu-stub,vm_id=7 -device vgpu-cuda,vm_id=7"),
            "differs: 2 vGPU devices in device-model-args: QEMU would give the guest 2 devices with conflicting settings"
        );
        assert_eq!(
            state("-usb"),
            "differs: no vGPU device in device-model-args"
        );
        assert!(state("-device 'vgpu-stub").contains("cannot be split"));
        assert_eq!(
            sync(None, &want).describe(),
            "differs: no device-model-args"
        );
    }

    #[test]
    fn parse_reads_hand_written_devices() {
        let found = parse("-m 4G -device driver=vgpu-cuda,pool_id=B,priority=1,vm_id=12")
            .unwrap()
            .unwrap();
        assert_eq!(found.driver, Driver::Cuda);
        assert_eq!(
            found.config().unwrap(),
            config(Pool::B, Priority::Medium, 12)
        );
        assert!(parse("-device e1000").unwrap().is_none());
        let bad = parse("-device vgpu-stub,pool_id=C,vm_id=1")
            .unwrap()
            .unwrap();
        assert!(bad.config().unwrap_err().contains("pool_id=C"));
        assert_eq!(carried_vm_id("-device vgpu-cuda,vm_id=40"), Some(40));
        assert_eq!(carried_vm_id("-device vgpu-cuda,vm_id=x"), None);
    }
}
