//! What a VM's boot makes of its device-model-args, as a stand-in for the site's qemu-wrapper and
//! QEMU: the value is split with Python's `shlex.split` (the real python3 runs it, as
//! qemu-wrapper does), every `-device` option is parsed as QEMU parses options (comma-separated,
//! `,,` for a literal comma, a bare first part or `driver=` naming the driver, the last of
//! repeated keys winning), and the vGPU device applies its own checks. Written independently of
//! the product's parser, so that a test compares the product with this, not with itself.
#![allow(dead_code)]

use std::process::Command;

/// The vGPU device QEMU would build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuDevice {
    /// `vgpu-stub` or `vgpu-cuda`.
    pub driver: String,
    /// Every property as given, in order (the driver part excluded).
    pub props: Vec<(String, String)>,
    /// The pool the device gets (A when missing).
    pub pool: String,
    /// The priority it gets (medium when missing).
    pub priority: String,
    /// The vm_id it gets (0 when missing).
    pub vm_id: u32,
}

/// The vGPU driver names.
pub const DRIVERS: [&str; 2] = ["vgpu-stub", "vgpu-cuda"];

/// `shlex.split(value)` as Python computes it, or Python's error.
pub fn shlex_split(value: &str) -> Result<Vec<String>, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, shlex, sys\n\
             try:\n    print(json.dumps(['ok', shlex.split(sys.argv[1])]))\n\
             except ValueError as e:\n    print(json.dumps(['error', str(e)]))",
            value,
        ])
        .output()
        .expect("python3 runs");
    let reply: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("python3 printed JSON");
    match reply[0].as_str() {
        Some("ok") => Ok(reply[1]
            .as_array()
            .expect("words")
            .iter()
            .map(|w| w.as_str().expect("word").to_string())
            .collect()),
        _ => Err(format!("qemu-wrapper: ValueError: {}", reply[1])),
    }
}

/// QEMU's option parsing: the parts of `-device ARG`, as (key, value), `,,` unescaped.
fn qemu_opts(arg: &str) -> Vec<(String, String)> {
    let mut parts = vec![String::new()];
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' && chars.peek() == Some(&',') {
            chars.next();
            parts.last_mut().unwrap().push(',');
        } else if c == ',' {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None if i == 0 => ("driver".to_string(), p),
            None => (p, "on".to_string()),
        })
        .collect()
}

/// An unsigned 32-bit integer as QEMU's integer parser reads it (base 0: decimal, 0x hex,
/// leading-0 octal).
fn qemu_u32(text: &str) -> Option<u32> {
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        (hex, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

/// The vGPU devices QEMU would build from `value` (`None`: the key is not set), or why the VM
/// would not start.
pub fn boot(value: Option<&str>) -> Result<Vec<VgpuDevice>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let argv = shlex_split(value)?;
    let mut devices = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        if (argv[i] == "-device" || argv[i] == "--device") && i + 1 < argv.len() {
            let opts = qemu_opts(&argv[i + 1]);
            let last = |key: &str| {
                opts.iter()
                    .rev()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let driver = last("driver").unwrap_or_default();
            if DRIVERS.contains(&driver.as_str()) {
                let pool = last("pool_id")
                    .filter(|p| !p.is_empty())
                    .unwrap_or("A".into());
                if pool != "A" && pool != "B" {
                    return Err(format!("{driver}: pool_id must be A or B, not '{pool}'"));
                }
                let priority = last("priority")
                    .filter(|p| !p.is_empty())
                    .unwrap_or("medium".into());
                if !["low", "medium", "high"].contains(&priority.as_str()) {
                    return Err(format!(
                        "{driver}: priority must be low, medium or high, not '{priority}'"
                    ));
                }
                let vm_id = match last("vm_id") {
                    None => 0,
                    Some(v) => qemu_u32(&v)
                        .ok_or_else(|| format!("{driver}: vm_id '{v}' is not a uint32"))?,
                };
                devices.push(VgpuDevice {
                    driver,
                    props: opts
                        .iter()
                        .filter(|(k, _)| k != "driver")
                        .cloned()
                        .collect(),
                    pool,
                    priority,
                    vm_id,
                });
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(devices)
}

/// The one vGPU device a boot gets, or why there is not exactly one valid device.
pub fn one_device(value: Option<&str>) -> Result<VgpuDevice, String> {
    let mut devices = boot(value)?;
    match devices.len() {
        1 => Ok(devices.remove(0)),
        n => Err(format!("{n} vGPU devices")),
    }
}

/// The argv words that are not a vGPU device (the words of other owners), as the VM gets them.
pub fn other_words(value: Option<&str>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let argv = shlex_split(value).expect("splits");
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let is_device = (argv[i] == "-device" || argv[i] == "--device")
            && argv.get(i + 1).is_some_and(|next| {
                let opts = qemu_opts(next);
                let driver = opts
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "driver")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                DRIVERS.contains(&driver)
            });
        if is_device {
            i += 2;
        } else {
            out.push(argv[i].clone());
            i += 1;
        }
    }
    out
}
