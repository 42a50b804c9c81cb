//! The host's QEMU, asked which vGPU driver it has (`qemu-system-i386 -device help`), so that
//! `install` and `doctor` can tell the site's driver instead of guessing it.

use crate::model::Driver;
use std::path::Path;
use std::time::Duration;

/// Where XCP-ng keeps the QEMU that runs HVM guests.
pub const DEFAULT_QEMU: &str = "/usr/lib64/xen/bin/qemu-system-i386";

/// How long QEMU may take to list its devices.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the drivers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QemuError {
    /// The path is relative: it would depend on the directory and PATH of whoever runs us.
    #[error("the QEMU path must be absolute, not '{0}'")]
    NotAbsolute(String),
    /// QEMU could not be run, or failed.
    #[error("cannot ask {path} for its devices: {reason}")]
    Failed {
        /// The QEMU binary.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// The vGPU drivers the QEMU binary at `path` lists in `-device help`.
pub fn vgpu_drivers(path: &Path) -> Result<Vec<Driver>, QemuError> {
    let shown = path.display().to_string();
    if !path.is_absolute() {
        return Err(QemuError::NotAbsolute(shown));
    }
    let failed = |reason: String| QemuError::Failed {
        path: shown.clone(),
        reason,
    };
    let output = crate::process::run(path.as_os_str(), &["-device", "help"], TIMEOUT).map_err(
        |e| match e {
            crate::process::ProcessError::NotFound { .. } => failed("it is not there".into()),
            other => failed(other.to_string()),
        },
    )?;
    if !output.status.success() {
        let first = output
            .stderr
            .lines()
            .next()
            .unwrap_or("no message")
            .to_string();
        return Err(failed(format!(
            "it exited with {} ({first})",
            output.status
        )));
    }
    Ok(parse_device_help(&output.stdout))
}

/// The vGPU drivers named in `-device help` output (`name "vgpu-cuda", bus PCI, ...` lines).
pub fn parse_device_help(text: &str) -> Vec<Driver> {
    let named: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("name \""))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    Driver::ALL
        .into_iter()
        .filter(|d| named.contains(&d.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_driver_names_from_device_help() {
        let help = "Misc devices:\nname \"pci-testdev\", bus PCI\nname \"vgpu-cuda\", bus PCI, desc \"vGPU\"\n";
        assert_eq!(parse_device_help(help), [Driver::Cuda]);
        assert!(parse_device_help("name \"vgpu-cudax\", bus PCI").is_empty());
        assert!(matches!(
            vgpu_drivers(Path::new("qemu")),
            Err(QemuError::NotAbsolute(_))
        ));
    }
}
