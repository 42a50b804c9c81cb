//! The XCP-ng boundary: runs the `xe` binary as a child process (an argv array, never a shell),
//! with a timeout, and parses its output into typed VMs. The only place that knows `xe` syntax.

mod records;

pub use records::{parse_map, parse_minimal, parse_records};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

/// The platform key the site's qemu-wrapper reads.
pub const DEVICE_MODEL_ARGS: &str = "device-model-args";

/// The fields asked for when listing every VM: everything vgpu-admin needs, in one call.
const LIST_FIELDS: &[&str] = &[
    "uuid",
    "name-label",
    "power-state",
    "resident-on",
    "other-config",
    "platform",
];

/// The fields asked for when reading one VM (its args are read on their own).
const ONE_FIELDS: &[&str] = &[
    "uuid",
    "name-label",
    "power-state",
    "resident-on",
    "other-config",
];

/// The fields of [`Xe::vm_at_a_glance`].
const GLANCE_FIELDS: &[&str] = &["uuid", "name-label", "other-config", "platform"];

/// What `resident-on` says for a VM that runs nowhere (halted, suspended).
const NOT_RESIDENT: &str = "<not in database>";

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
    /// Its name-label, exactly as xe has it (it may hold any character: show it with
    /// [`crate::model::printable`]).
    pub name: String,
    /// `halted`, `running`, `paused` or `suspended` (anything else is passed on as it is).
    pub power_state: String,
    /// `platform:device-model-args`, if set.
    pub device_model_args: Option<String>,
    /// True when `device_model_args` was read on its own with `vm-param-get` (exact); false when
    /// it was taken from a listing's platform map, whose `; ` separators are not escaped.
    pub args_exact: bool,
    /// The uuid of the host of the pool it runs on; `None` when it runs nowhere.
    pub resident_on: Option<String>,
    /// Its `other-config` keys under `vgpu-admin:` (see [`crate::pool_record`]): what the pool
    /// database records of its vGPU configuration.
    pub pool_record: BTreeMap<String, String>,
}

/// The `vgpu-admin:` keys of an `other-config` map as a listing prints it; a key that appears
/// twice (a value of another key imitating ours) marks the record [`crate::pool_record::DUPLICATE`].
fn pool_record_of(map_text: Option<&str>) -> BTreeMap<String, String> {
    let mut record = BTreeMap::new();
    for (key, value) in records::parse_map_entries(map_text.unwrap_or_default()) {
        if key.starts_with(crate::pool_record::PREFIX) && record.insert(key, value).is_some() {
            record.insert(crate::pool_record::DUPLICATE.to_string(), String::new());
        }
    }
    record
}

/// One host of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHost {
    /// Its uuid.
    pub uuid: String,
    /// Its name-label (set by the pool's administrators).
    pub name: String,
}

/// A `resident-on` value as a host uuid (`None` for `<not in database>` or nothing).
fn resident(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v != NOT_RESIDENT)
}

impl HostVm {
    /// `platform:device-model-args`, if set.
    pub fn device_model_args(&self) -> Option<&str> {
        self.device_model_args.as_deref()
    }

    fn from_record(record: &records::Record) -> HostVm {
        let get = |k: &str| record.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        HostVm {
            uuid: get("uuid").unwrap_or_default(),
            name: get("name-label").unwrap_or_default(),
            power_state: get("power-state").unwrap_or_default(),
            device_model_args: get("platform")
                .and_then(|p| parse_map(&p).remove(DEVICE_MODEL_ARGS)),
            args_exact: false,
            resident_on: resident(get("resident-on")),
            pool_record: pool_record_of(get("other-config").as_deref()),
        }
    }
}

/// The host's VMs, and how they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Every VM except the control domains.
    pub vms: Vec<HostVm>,
    /// Why the one-call listing was not trusted, when the VMs had to be read one by one.
    pub read_one_by_one: Option<String>,
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
        use crate::process::ProcessError;
        if let Some(bad) = args.iter().find(|a| a.contains('\n') || a.contains('\r')) {
            return Err(XeError::Newline(crate::model::shown(bad)));
        }
        let command = args.first().cloned().unwrap_or_default();
        let output =
            crate::process::run(&self.program, args, self.timeout).map_err(|e| match e {
                ProcessError::NotFound { program } => XeError::NotFound { program },
                ProcessError::Spawn { program, reason } => XeError::Spawn { program, reason },
                ProcessError::Timeout { secs, .. } => XeError::Timeout {
                    command: command.clone(),
                    secs,
                },
            })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let detail = if output.stderr.trim().is_empty() {
            output.stdout
        } else {
            output.stderr
        };
        // xe's first line, on one line of ours: control characters escaped.
        let message = crate::model::printable(
            detail
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no message)")
                .trim(),
        )
        .into_owned();
        Err(XeError::Failed {
            command,
            message,
            detail: detail.trim_end().to_string(),
        })
    }

    /// `vm-list` of the VMs matching `filters` (never a control domain), printing `fields`.
    fn vm_list(
        &self,
        filters: &[String],
        fields: &[&str],
        minimal: bool,
    ) -> Result<String, XeError> {
        let mut args = vec!["vm-list".to_string()];
        args.extend(filters.iter().cloned());
        args.push("is-control-domain=false".into());
        args.push(format!("params={}", fields.join(",")));
        if minimal {
            args.push("--minimal".into());
        }
        self.run(&args)
    }

    /// The uuids of the VMs matching `filters`, from `--minimal` output (escaped, unambiguous).
    fn uuids(&self, filters: &[String]) -> Result<Vec<String>, XeError> {
        Ok(parse_minimal(&self.vm_list(filters, &["uuid"], true)?))
    }

    /// Every VM of the pool except the control domains, with name, power state and
    /// device-model-args: one listing, checked against a second, unambiguous list of uuids.
    ///
    /// A name-label can hold a newline and so imitate fields or whole records of other VMs in a
    /// listing. The listing is used only when it holds exactly one well-formed record per uuid;
    /// otherwise every VM is read on its own with `vm-param-get` (three calls each).
    pub fn vms(&self) -> Result<Listing, XeError> {
        let uuids = self.uuids(&[])?;
        let records = parse_records(&self.vm_list(&[], LIST_FIELDS, false)?);
        if let Err(why) = records::check_records(&records, &uuids, LIST_FIELDS) {
            let mut vms = Vec::with_capacity(uuids.len());
            for uuid in &uuids {
                // A VM that went away in between is simply not listed.
                if let Some(vm) = self.vm_by_fields(uuid)? {
                    vms.push(vm);
                }
            }
            return Ok(Listing {
                vms,
                read_one_by_one: Some(why),
            });
        }
        Ok(Listing {
            vms: records.iter().map(HostVm::from_record).collect(),
            read_one_by_one: None,
        })
    }

    /// One VM by uuid, or `None` when the pool has no such VM: its name and power state from
    /// one checked `vm-list` call, and its device-model-args read exactly with `vm-param-get`.
    pub fn vm(&self, uuid: &str) -> Result<Option<HostVm>, XeError> {
        let records = parse_records(&self.vm_list(&[format!("uuid={uuid}")], ONE_FIELDS, false)?);
        if records.is_empty() {
            return Ok(None);
        }
        let mut vm = match records::check_records(&records, &[uuid.to_string()], ONE_FIELDS) {
            Ok(()) => HostVm::from_record(&records[0]),
            Err(_) => match self.vm_by_fields(uuid)? {
                Some(vm) => vm,
                None => return Ok(None),
            },
        };
        vm.device_model_args = self.device_model_args(uuid)?;
        vm.args_exact = true;
        Ok(Some(vm))
    }

    /// One VM's name, pool record and device-model-args in one checked `vm-list` call (the
    /// startup hook's read of a VM this host has no row for), or `None` when the pool has no
    /// such VM. The args come from the listing's platform map (`args_exact` false); a listing
    /// that does not check out is read field by field instead.
    pub fn vm_at_a_glance(&self, uuid: &str) -> Result<Option<HostVm>, XeError> {
        let records =
            parse_records(&self.vm_list(&[format!("uuid={uuid}")], GLANCE_FIELDS, false)?);
        if records.is_empty() {
            return Ok(None);
        }
        match records::check_records(&records, &[uuid.to_string()], GLANCE_FIELDS) {
            Ok(()) => Ok(Some(HostVm::from_record(&records[0]))),
            Err(_) => self.vm_by_fields(uuid),
        }
    }

    /// One VM read field by field with `vm-param-get` (exact values), or `None` when it is gone.
    fn vm_by_fields(&self, uuid: &str) -> Result<Option<HostVm>, XeError> {
        let field = |name: &str| match self.param(uuid, name, None) {
            Err(e) if e.is_no_such_vm() => Ok(None),
            other => other,
        };
        let (Some(name), Some(power_state)) = (field("name-label")?, field("power-state")?) else {
            return Ok(None);
        };
        Ok(Some(HostVm {
            uuid: uuid.to_string(),
            name,
            power_state,
            device_model_args: self.device_model_args(uuid)?,
            args_exact: true,
            resident_on: resident(field("resident-on")?),
            pool_record: pool_record_of(field("other-config")?.as_deref()),
        }))
    }

    /// The uuids of the VMs whose name-label is exactly `name` (one call).
    pub fn uuids_named(&self, name: &str) -> Result<Vec<String>, XeError> {
        self.uuids(&[format!("name-label={name}")])
    }

    /// `xe vm-param-get`: one field (or one key of a map field), exactly as stored.
    fn param(&self, uuid: &str, name: &str, key: Option<&str>) -> Result<Option<String>, XeError> {
        let mut args = vec![
            "vm-param-get".to_string(),
            format!("uuid={uuid}"),
            format!("param-name={name}"),
        ];
        if let Some(key) = key {
            args.push(format!("param-key={key}"));
        }
        let out = self.run(&args)?;
        // xe ends the value with one newline; anything before it belongs to the value.
        Ok(Some(out.strip_suffix('\n').unwrap_or(&out).to_string()))
    }

    /// One VM's power state, read on its own (one call).
    pub fn power_state(&self, uuid: &str) -> Result<String, XeError> {
        Ok(self.param(uuid, "power-state", None)?.unwrap_or_default())
    }

    /// `platform:device-model-args` of one VM (one call), `None` when the key is not set.
    pub fn device_model_args(&self, uuid: &str) -> Result<Option<String>, XeError> {
        match self.param(uuid, "platform", Some(DEVICE_MODEL_ARGS)) {
            Err(XeError::Failed { message, .. })
                if message.starts_with("Error: Key") && message.contains("not found in map") =>
            {
                Ok(None)
            }
            other => other,
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

    /// The argv that sets `platform:device-model-args` and the VM's pool record (`record`:
    /// other-config entries in writing order) in one call: the record's first entry (its
    /// signature), then the args, then the rest (see [`crate::pool_record`]).
    pub fn set_vm_config_call(uuid: &str, value: &str, record: &[(String, String)]) -> Vec<String> {
        let mut args = vec!["vm-param-set".to_string(), format!("uuid={uuid}")];
        let mut entries = record.iter().map(|(k, v)| format!("other-config:{k}={v}"));
        args.extend(entries.next());
        args.push(format!("platform:{DEVICE_MODEL_ARGS}={value}"));
        args.extend(entries);
        args
    }

    /// The argv that removes one key of the VM's `other-config`.
    pub fn remove_other_config_call(uuid: &str, key: &str) -> Vec<String> {
        vec![
            "vm-param-remove".into(),
            format!("uuid={uuid}"),
            "param-name=other-config".into(),
            format!("param-key={key}"),
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

    /// The argv that starts a VM: on host `on` (a host uuid), or where the pool master
    /// places it when `None`.
    pub fn start_call(uuid: &str, on: Option<&str>) -> Vec<String> {
        let mut args = vec!["vm-start".into(), format!("uuid={uuid}")];
        if let Some(host) = on {
            args.push(format!("on={host}"));
        }
        args
    }

    /// The pool's hosts, uuid and name-label (one call).
    pub fn hosts(&self) -> Result<Vec<PoolHost>, XeError> {
        let out = self.run(&[
            "host-list".to_string(),
            "params=uuid,name-label".to_string(),
        ])?;
        Ok(parse_records(&out)
            .iter()
            .filter_map(|record| {
                let get = |k: &str| record.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                Some(PoolHost {
                    uuid: get("uuid")?,
                    name: get("name-label").unwrap_or_default(),
                })
            })
            .collect())
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
