//! The XCP-ng boundary: runs the `xe` binary as a child process (an argv array, never a shell),
//! with a timeout, and parses its output into typed VMs. The only place that knows `xe` syntax.

mod records;

pub use records::{parse_map, parse_minimal, parse_records};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The platform key the site's qemu-wrapper reads.
pub const DEVICE_MODEL_ARGS: &str = "device-model-args";

/// The fields asked for when listing VMs: everything vgpu-admin needs, in one call.
const VM_PARAMS: &str = "params=uuid,name-label,power-state,platform";

/// The default time an `xe` call may take (a clean shutdown can be slow).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What can go wrong talking to `xe`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum XeError {
    /// The `xe` program is not there.
    #[error(
        "the xe command was not found ({program}); is this an XCP-ng host? (set --xe or VGPU_XE)"
    )]
    NotFound {
        /// The program that was looked for.
        program: String,
    },
    /// `xe` could not be started for another reason.
    #[error("cannot run {program}: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// `xe` exited with an error; `message` is its first line.
    #[error("xe {command} failed: {message}")]
    Failed {
        /// The xe command (`vm-start`).
        command: String,
        /// xe's first line of error output.
        message: String,
        /// All of xe's error output.
        detail: String,
    },
    /// `xe` did not finish in time and was killed.
    #[error("xe {command} did not finish within {secs} s and was stopped")]
    Timeout {
        /// The xe command.
        command: String,
        /// The limit.
        secs: u64,
    },
    /// A value holds a newline, which `xe` cannot pass.
    #[error("refusing to pass a value with a newline to xe: {0}")]
    Newline(String),
    /// `xe` printed something we do not understand.
    #[error("unexpected output from xe {command}: {what}")]
    Output {
        /// The xe command.
        command: String,
        /// What was wrong.
        what: String,
    },
}

impl XeError {
    /// True when the failure is "no such VM" (unknown uuid, no match).
    pub fn is_no_such_vm(&self) -> bool {
        matches!(self, XeError::Failed { message, .. }
            if message.starts_with("The uuid you supplied was invalid")
                || message.starts_with("Error: No matching VMs found"))
    }

    /// True when a clean shutdown was refused (no PV drivers, or the guest ignored it), so that a
    /// forced one is the way out.
    pub fn is_clean_shutdown_refused(&self) -> bool {
        matches!(self, XeError::Failed { message, .. }
            if message.starts_with("You attempted an operation on a VM which lacks the feature")
                || message.starts_with("VM didn't acknowledge the need to shutdown"))
    }
}

/// A VM as `xe` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVm {
    /// Its uuid.
    pub uuid: String,
    /// Its name-label.
    pub name: String,
    /// `halted`, `running`, `paused` or `suspended`.
    pub power_state: String,
    /// Its platform map.
    pub platform: BTreeMap<String, String>,
}

impl HostVm {
    /// `platform:device-model-args`, if set.
    pub fn device_model_args(&self) -> Option<&str> {
        self.platform.get(DEVICE_MODEL_ARGS).map(String::as_str)
    }

    /// True when the VM is running.
    pub fn is_running(&self) -> bool {
        self.power_state == "running"
    }

    fn from_record(record: &records::Record) -> Option<HostVm> {
        let get = |k: &str| record.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some(HostVm {
            uuid: get("uuid")?,
            name: get("name-label").unwrap_or_default(),
            power_state: get("power-state").unwrap_or_default(),
            platform: get("platform").map(|p| parse_map(&p)).unwrap_or_default(),
        })
    }
}

/// Runs `xe`.
#[derive(Debug, Clone)]
pub struct Xe {
    program: OsString,
    timeout: Duration,
}

impl Xe {
    /// An `xe` client running `program` (a path, or a name looked up on PATH).
    pub fn new(program: impl Into<OsString>, timeout: Duration) -> Self {
        Xe {
            program: program.into(),
            timeout,
        }
    }

    /// The argv (after the program) that `run` would pass; used by `--dry-run` to print calls.
    pub fn display_call(args: &[String]) -> String {
        let mut out = String::from("xe");
        for a in args {
            out.push(' ');
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || "'\"\\$`;&|<>()*?![]{}#~".contains(c))
            {
                out.push('\'');
                out.push_str(&a.replace('\'', "'\\''"));
                out.push('\'');
            } else {
                out.push_str(a);
            }
        }
        out
    }

    /// Runs `xe ARGS...` and returns its stdout.
    pub fn run(&self, args: &[String]) -> Result<String, XeError> {
        if let Some(bad) = args.iter().find(|a| a.contains('\n') || a.contains('\r')) {
            return Err(XeError::Newline(crate::model::shown(bad)));
        }
        let command = args.first().cloned().unwrap_or_default();
        let program = self.program.to_string_lossy().into_owned();
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => XeError::NotFound {
                    program: program.clone(),
                },
                _ => XeError::Spawn {
                    program: program.clone(),
                    reason: e.to_string(),
                },
            })?;
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(XeError::Timeout {
                        command,
                        secs: self.timeout.as_secs(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    return Err(XeError::Spawn {
                        program,
                        reason: e.to_string(),
                    })
                }
            }
        };
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        if status.success() {
            return Ok(out);
        }
        let detail = if err.trim().is_empty() { out } else { err };
        let message = detail
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)")
            .trim()
            .to_string();
        Err(XeError::Failed {
            command,
            message,
            detail: detail.trim_end().to_string(),
        })
    }

    fn list(&self, filters: &[String]) -> Result<Vec<HostVm>, XeError> {
        let mut args = vec!["vm-list".to_string()];
        args.extend(filters.iter().cloned());
        args.push("is-control-domain=false".into());
        args.push(VM_PARAMS.into());
        let out = self.run(&args)?;
        parse_records(&out)
            .iter()
            .map(|r| {
                HostVm::from_record(r).ok_or_else(|| XeError::Output {
                    command: "vm-list".into(),
                    what: "a record without uuid".into(),
                })
            })
            .collect()
    }

    /// Every VM on the host except the control domain, with name, power state and platform
    /// map: one call.
    pub fn vms(&self) -> Result<Vec<HostVm>, XeError> {
        self.list(&[])
    }

    /// One VM by uuid (one call), or `None` when the host has no such VM.
    pub fn vm(&self, uuid: &str) -> Result<Option<HostVm>, XeError> {
        Ok(self.list(&[format!("uuid={uuid}")])?.into_iter().next())
    }

    /// The VMs whose name-label is exactly `name` (one call).
    pub fn vms_named(&self, name: &str) -> Result<Vec<HostVm>, XeError> {
        self.list(&[format!("name-label={name}")])
    }

    /// `platform:device-model-args` of one VM (one call), `None` when the key is not set.
    pub fn device_model_args(&self, uuid: &str) -> Result<Option<String>, XeError> {
        let args = [
            "vm-param-get".to_string(),
            format!("uuid={uuid}"),
            "param-name=platform".into(),
            format!("param-key={DEVICE_MODEL_ARGS}"),
        ];
        match self.run(&args) {
            Ok(out) => Ok(Some(out.trim_end_matches('\n').to_string())),
            Err(XeError::Failed { message, .. })
                if message.starts_with("Error: Key") && message.contains("not found in map") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The argv that sets `platform:device-model-args`.
    pub fn set_device_model_args_call(uuid: &str, value: &str) -> Vec<String> {
        vec![
            "vm-param-set".into(),
            format!("uuid={uuid}"),
            format!("platform:{DEVICE_MODEL_ARGS}={value}"),
        ]
    }

    /// The argv that removes `platform:device-model-args`.
    pub fn remove_device_model_args_call(uuid: &str) -> Vec<String> {
        vec![
            "vm-param-remove".into(),
            format!("uuid={uuid}"),
            "param-name=platform".into(),
            format!("param-key={DEVICE_MODEL_ARGS}"),
        ]
    }

    /// The argv that starts a VM.
    pub fn start_call(uuid: &str) -> Vec<String> {
        vec!["vm-start".into(), format!("uuid={uuid}")]
    }

    /// The argv that shuts a VM down (cleanly, or forced).
    pub fn shutdown_call(uuid: &str, force: bool) -> Vec<String> {
        let mut args = vec!["vm-shutdown".into(), format!("uuid={uuid}")];
        if force {
            args.push("force=true".into());
        }
        args
    }

    /// Runs a changing call and expects no output.
    pub fn call(&self, args: &[String]) -> Result<(), XeError> {
        self.run(args).map(|_| ())
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
