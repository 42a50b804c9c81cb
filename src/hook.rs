//! `vgpu-admin hook <name> -vmuuid U -reason R [-vmdomid D]`: the entry point xenopsd's wrapper
//! calls (xenopsd runs the files of /etc/xapi.d/vm-pre-start/ before every VM start). It runs `hooks/<name>.rhai` (the admin's copy,
//! else the bundled one) under a hard wall-clock limit and turns the outcome into the exit
//! status xenopsd understands: 0 fine, 1 "log stdout and continue", 2 abort the start.
//!
//! Everything it says goes to stdout (xenopsd discards stderr), one line. It never creates the
//! database, and never blocks a start because of its own failure unless the policy is `enforce`.

use crate::engine::{Host, HostConfig};
use crate::exit::HookExit;
use crate::model::{HookPolicy, VmUuid};
use crate::output;
use rhai::Dynamic;
use std::time::Duration;

/// The hook's arguments, as xenopsd passes them (single-dash, any order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookArgs {
    /// `-vmuuid`.
    pub vm_uuid: Option<String>,
    /// `-reason`.
    pub reason: Option<String>,
    /// `-vmdomid` (absent for vm-pre-start).
    pub dom_id: Option<String>,
}

/// Reads `-vmuuid U -reason R -vmdomid D` in any order; unknown `-flag value` pairs are ignored
/// (a newer xenopsd may add some).
pub fn parse_args(args: &[String]) -> Result<HookArgs, String> {
    let mut out = HookArgs::default();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let value = args
            .get(i + 1)
            .cloned()
            .ok_or_else(|| format!("{flag} has no value"))?;
        match flag {
            "-vmuuid" => out.vm_uuid = Some(value),
            "-reason" => out.reason = Some(value),
            "-vmdomid" => out.dom_id = Some(value),
            other if other.starts_with('-') => {}
            other => return Err(format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    Ok(out)
}

/// Says one line on stdout and returns `status`.
fn say(status: HookExit, message: &str) -> HookExit {
    output::stdout_line(&format!("vgpu-admin: {message}"));
    status
}

/// Runs hook `name` and returns the exit status for xenopsd.
pub fn run(config: HostConfig, name: &str, args: &[String]) -> HookExit {
    let hook_args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => return say(HookExit::Logged, &format!("hook {name}: {e}")),
    };
    // No database: nothing is registered, nothing to check.
    if !config.db_path.exists() {
        return HookExit::Go;
    }
    let uuid_arg = hook_args.vm_uuid.clone();
    // The database is opened once, by the host, and read for the policy first.
    let xe_timeout = config.xe_timeout;
    let host = Host::new(config);
    host.context().set_command_name(&format!("hook {name}"));
    let (policy, limit) = match read_settings(&host) {
        Ok(settings) => settings,
        Err(e) => {
            return say(
                HookExit::Logged,
                &format!("hook {name}: cannot read the database: {e}"),
            )
        }
    };
    let fail = policy.failure_status();
    // The hook says everything on stdout, and ends with the policy's status, even there.
    crate::memory::set_hard_limit(crate::memory::HARD_LIMIT_BYTES, 1, fail.code());
    // Whatever goes wrong, xenopsd gets 0, 1 or 2: even a panic ends with the policy's status
    // and one line (the hook's stderr is discarded).
    let hook_name = name.to_string();
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "internal error".to_string());
        println!("vgpu-admin: hook {hook_name} failed: internal error: {what}");
        std::process::exit(i32::from(fail.code()));
    }));
    let Some(raw_uuid) = uuid_arg else {
        return say(fail, &format!("hook {name}: no -vmuuid given"));
    };
    let uuid = match VmUuid::parse(&raw_uuid) {
        Ok(u) => u,
        Err(e) => return say(fail, &format!("hook {name}: {e}")),
    };
    // The hard limit: whatever the script or xe does, the VM start is not held up longer.
    start_watchdog(limit, fail, name);
    host.context().set_xe_timeout(
        xe_timeout.min(
            limit
                .saturating_sub(Duration::from_millis(500))
                .max(Duration::from_millis(500)),
        ),
    );
    // A change to this VM in progress (vgpu-admin restarting it, say) owns it: leave it be.
    // Otherwise finish a change of this VM that was interrupted, before checking it.
    let ctx = host.context();
    match ctx.try_lock_vm(uuid.as_str()) {
        Ok(true) => {}
        Ok(false) => return HookExit::Go,
        Err(e) => return say(fail, &format!("hook {name}: {}", e.message)),
    }
    let recovered = match ctx.recover_vm(uuid.as_str(), true) {
        Ok(done) => done,
        Err(e) => return say(fail, &format!("hook {name}: {}", e.message)),
    };
    if let Some(done) = &recovered {
        output::stdout_line(&format!("vgpu-admin: recovered {done}"));
    }
    let script = match host.catalog().find(&format!("hooks/{name}.rhai")) {
        Ok(Some(script)) => script,
        Ok(None) => return HookExit::Go, // no script for this hook: nothing to do
        Err(e) => return say(fail, &format!("hook {name}: {e}")),
    };
    let constants = vec![
        ("VM_UUID", Dynamic::from(uuid.to_string())),
        (
            "REASON",
            Dynamic::from(hook_args.reason.clone().unwrap_or_default()),
        ),
        (
            "DOM_ID",
            hook_args
                .dom_id
                .clone()
                .map_or(Dynamic::UNIT, Dynamic::from),
        ),
        ("POLICY", Dynamic::from(policy.as_str().to_string())),
    ];
    let status = match host.run_with_constants(&script, constants) {
        Ok(value) if value.is_unit() => HookExit::Go,
        Ok(value) => match value.as_int() {
            // xenopsd reads 0 (fine), 1 (log and go on), anything else (abort): only these
            // three, whatever the script returns.
            Ok(0) => HookExit::Go,
            Ok(1) => HookExit::Logged,
            Ok(2) => HookExit::Abort,
            _ => say(
                fail,
                &format!("hook {name}: the script returned {value}, not 0, 1 or 2"),
            ),
        },
        Err(failure) => say(fail, &format!("hook {name} failed: {}", failure.message)),
    };
    host.finish();
    // A recovery is worth a line in xenopsd's log.
    if recovered.is_some() && status == HookExit::Go {
        HookExit::Logged
    } else {
        status
    }
}

/// The policy and time limit from the database (defaults when unset).
fn read_settings(host: &Host) -> Result<(HookPolicy, Duration), String> {
    let store = host.context().store().map_err(|e| e.message)?;
    let policy = store
        .setting("hook_policy")
        .map_err(|e| e.to_string())?
        .and_then(|p| HookPolicy::parse(&p).ok())
        .unwrap_or(HookPolicy::Warn);
    let secs = store
        .setting("hook_time_limit")
        .map_err(|e| e.to_string())?
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| (1..=crate::model::MAX_HOOK_TIME_LIMIT).contains(s))
        .unwrap_or(10);
    Ok((policy, Duration::from_secs(secs)))
}

/// Ends the process after `limit` with one line and the policy's failure status.
fn start_watchdog(limit: Duration, status: HookExit, name: &str) {
    let name = name.to_string();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let line = format!(
            "vgpu-admin: hook {name} stopped after its time limit of {} s{}\n",
            limit.as_secs(),
            if status == HookExit::Abort {
                "; this start is stopped (policy enforce)"
            } else {
                "; the VM start goes on"
            }
        );
        // The main thread may hold the stdout lock: write through a second handle instead.
        match std::fs::OpenOptions::new().append(true).open("/dev/stdout") {
            Ok(mut out) => {
                let _ = std::io::Write::write_all(&mut out, line.as_bytes());
            }
            Err(_) => output::stderr_line(line.trim_end()),
        }
        std::process::exit(i32::from(status.code()));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_xenopsd_form_in_any_order() {
        let a = parse_args(&strings(&[
            "-reason", "none", "-vmuuid", "U", "-vmdomid", "3",
        ]))
        .unwrap();
        assert_eq!(a.vm_uuid.as_deref(), Some("U"));
        assert_eq!(a.reason.as_deref(), Some("none"));
        assert_eq!(a.dom_id.as_deref(), Some("3"));
        let b = parse_args(&strings(&["-vmuuid", "U", "-future", "x"])).unwrap();
        assert_eq!(b.reason, None);
        assert!(parse_args(&strings(&["-vmuuid"])).is_err());
        assert!(parse_args(&strings(&["stray", "x"])).is_err());
    }
}
