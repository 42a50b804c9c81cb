//! A fake `xe` for tests: speaks the real CLI syntax, output layout, error texts and exit codes
//! (record layout with padded `key ( RO)` fields, unescaped maps, `--minimal` with `\,`
//! escapes, XenAPI's error texts), over VMs kept in a JSON state file.
//!
//! Environment:
//! - `FAKE_XE_STATE`: the state file (required). `{"vms": [...], "hosts": [...], "faults": [...]}`;
//!   each VM: `{"uuid", "name_label", "power_state", "platform": [[key, value], ...],
//!     "other_config": [[key, value], ...], "resident_on": host uuid, "affinity": host uuid,
//!     "is_control_domain": false, "pv_drivers": true, "ignores_shutdown": false,
//!     "boots": [device-model-args or null, ...]}`; each host: `{"uuid", "name_label",
//!   "full": false}` (a full host refuses to start VMs; without "hosts" the pool is one host,
//!   `xcp-test`, and a running VM without "resident_on" runs there); each fault:
//!   `{"command": "vm-param-set", "uuid": "..." (optional), "stderr": "Error: ...", "once": true}`;
//!   a fault may also slow the call down or make it answer late, as a real host does:
//!   `"delay_ms": N` sleeps before the call acts, `"after_ms": N` after it acted (a timeout then
//!   finds the change made); without `"stderr"` the call itself succeeds. A `vm-param-set` fault
//!   with `"after_keys": N` applies the first N keys of the call and then fails, as xe does
//!   (one call is not atomic).
//! - `vm-start` without `on=` places the VM as the pool master does: its affinity host, else the
//!   next host after the one it last ran on (so a test sees it move); `on=` (uuid or name-label)
//!   starts it there or fails.
//! - `FAKE_XE_LOG`: a file that gets one JSON array (the argv) per call.
//! - `FAKE_XE_DELAY_MS`: sleep this long in every call (for benchmarks and slow-host tests).
//! - `FAKE_XE_BUSY`: a file that exists while a call is waiting (its delay), removed 100 ms
//!   before the call goes on, so that a test can act exactly while vgpu-admin waits for xe.
//!
//! Every call holds an exclusive lock on the state file while it acts, so concurrent callers
//! are serialised; the delays are spent without it.

use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

/// What a call prints and its exit status.
struct Reply {
    stdout: String,
    stderr: String,
    code: u8,
}

fn ok(stdout: impl Into<String>) -> Reply {
    Reply {
        stdout: stdout.into(),
        stderr: String::new(),
        code: 0,
    }
}

fn err(stderr: impl Into<String>) -> Reply {
    Reply {
        stdout: String::new(),
        stderr: stderr.into(),
        code: 1,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(log) = std::env::var("FAKE_XE_LOG") {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
            // One write per line: calls running at the same time append whole lines.
            let _ = f.write_all(format!("{}\n", json!(args)).as_bytes());
        }
    }
    let Ok(path) = std::env::var("FAKE_XE_STATE") else {
        eprintln!("fake xe: FAKE_XE_STATE is not set");
        return ExitCode::from(2);
    };
    let delay = std::env::var("FAKE_XE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fault_delay(&path, &args);
    if delay > 0 {
        let busy = std::env::var_os("FAKE_XE_BUSY");
        if let Some(b) = &busy {
            let _ = std::fs::write(b, b"");
        }
        sleep_ms(delay);
        if let Some(b) = &busy {
            let _ = std::fs::remove_file(b);
            sleep_ms(100);
        }
    }
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake xe: cannot open {path}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = file.lock() {
        eprintln!("fake xe: cannot lock {path}: {e}");
        return ExitCode::from(2);
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut state: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"vms": []}));
    let (reply, after_ms) = dispatch(&mut state, &args);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.set_len(0);
    let _ = file.write_all(
        serde_json::to_string_pretty(&state)
            .unwrap_or_default()
            .as_bytes(),
    );
    let _ = file.unlock();
    // The change is made; the answer comes late.
    sleep_ms(after_ms);
    print!("{}", reply.stdout);
    eprint!("{}", reply.stderr);
    ExitCode::from(reply.code)
}

/// Splits `key=value` at the first `=`; `--name` means `name=true`.
fn parse_args(args: &[String]) -> (Vec<(String, String)>, bool) {
    let mut params = Vec::new();
    let mut minimal = false;
    for a in args {
        if a == "--minimal" {
            minimal = true;
        } else if let Some(flag) = a.strip_prefix("--") {
            params.push((flag.to_string(), "true".to_string()));
        } else if let Some((k, v)) = a.split_once('=') {
            params.push((k.to_string(), v.to_string()));
        } else {
            params.push((a.clone(), String::new()));
        }
    }
    (params, minimal)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn sleep_ms(ms: u64) {
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The `delay_ms` of the first fault matching this call (read without taking the lock).
fn fault_delay(path: &str, args: &[String]) -> u64 {
    let Some(command) = args.first() else {
        return 0;
    };
    let uuid = parse_args(&args[1..]).0;
    let uuid = param(&uuid, "uuid").map(str::to_string);
    let state: Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    state["faults"]
        .as_array()
        .and_then(|faults| faults.iter().find(|f| matches(f, command, uuid.as_deref())))
        .and_then(|f| f["delay_ms"].as_u64())
        .unwrap_or(0)
}

fn matches(fault: &Value, command: &str, uuid: Option<&str>) -> bool {
    fault["command"] == command
        && (fault.get("uuid").is_none_or(Value::is_null) || fault["uuid"].as_str() == uuid)
}

/// The reply to a call, and how long to wait before giving it.
fn dispatch(state: &mut Value, args: &[String]) -> (Reply, u64) {
    let Some(command) = args.first() else {
        return (err("Usage: xe <command> [args]\n"), 0);
    };
    let (params, minimal) = parse_args(&args[1..]);
    let fault = take_fault(state, command, param(&params, "uuid"));
    if let (Some(keys), Some(text)) = (
        fault.as_ref().and_then(|f| f["after_keys"].as_u64()),
        fault.as_ref().and_then(|f| f["stderr"].as_str()),
    ) {
        // Sets the first keys, then fails: what xe does when a later key is refused.
        let _ = vm_param_set(state, &params, Some(keys as usize));
        return (err(format!("{text}\n")), 0);
    }
    let after_ms = fault
        .as_ref()
        .and_then(|f| f["after_ms"].as_u64())
        .unwrap_or(0);
    if let Some(text) = fault.as_ref().and_then(|f| f["stderr"].as_str()) {
        if after_ms == 0 {
            return (err(format!("{text}\n")), 0);
        }
        // Acts, then fails late: the change is made although xe says it failed.
        let _ = act(state, command, &params, minimal);
        return (err(format!("{text}\n")), after_ms);
    }
    (act(state, command, &params, minimal), after_ms)
}

fn act(state: &mut Value, command: &str, params: &[(String, String)], minimal: bool) -> Reply {
    match command {
        "vm-list" => vm_list(state, params, minimal),
        "vm-param-get" => vm_param_get(state, params),
        "vm-param-set" => vm_param_set(state, params, None),
        "host-list" => host_list(state, params, minimal),
        "vm-param-remove" => vm_param_remove(state, params),
        "vm-start" => vm_start(state, params),
        "vm-shutdown" => vm_shutdown(state, params),
        other => err(format!(
            "Unknown command: {other}\nFor usage run: 'xe help'\n"
        )),
    }
}

/// The first fault matching this call (removed when it is for `once`).
fn take_fault(state: &mut Value, command: &str, uuid: Option<&str>) -> Option<Value> {
    let faults = state.get_mut("faults")?.as_array_mut()?;
    let index = faults.iter().position(|f| matches(f, command, uuid))?;
    let fault = faults[index].clone();
    if fault["once"].as_bool().unwrap_or(false) {
        faults.remove(index);
    }
    Some(fault)
}

fn vms(state: &mut Value) -> &mut Vec<Value> {
    if !state["vms"].is_array() {
        state["vms"] = json!([]);
    }
    state["vms"].as_array_mut().expect("vms array")
}

/// The pool's hosts (one, `xcp-test`, when the state names none).
fn hosts(state: &Value) -> Vec<Value> {
    match state["hosts"].as_array() {
        Some(hosts) if !hosts.is_empty() => hosts.clone(),
        _ => vec![json!({"uuid": DEFAULT_HOST, "name_label": "xcp-test"})],
    }
}

/// The uuid of the pool's first host (where a running VM the state places nowhere runs).
fn first_host(state: &Value) -> String {
    hosts(state)[0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The host of a pool without "hosts".
const DEFAULT_HOST: &str = "c0ffee00-0000-4000-8000-000000000001";

/// The host a VM runs on: what the state says, else the pool's first host for a running or
/// paused VM; `None` for one that runs nowhere.
fn resident_on(vm: &Value, first_host: &str) -> Option<String> {
    if !matches!(vm["power_state"].as_str(), Some("running" | "paused")) {
        return None;
    }
    Some(vm["resident_on"].as_str().unwrap_or(first_host).to_string())
}

/// The record's fields in record order: (name, access marker, value).
fn fields(vm: &Value, first_host: &str) -> Vec<(&'static str, &'static str, String)> {
    let s = |k: &str| vm[k].as_str().unwrap_or_default().to_string();
    vec![
        ("uuid", " RO", s("uuid")),
        ("name-label", " RW", s("name_label")),
        ("name-description", " RW", s("name_description")),
        ("is-a-template", " RW", "false".to_string()),
        (
            "is-control-domain",
            " RO",
            vm["is_control_domain"]
                .as_bool()
                .unwrap_or(false)
                .to_string(),
        ),
        ("power-state", " RO", s("power_state")),
        (
            "resident-on",
            " RO",
            resident_on(vm, first_host).unwrap_or_else(|| "<not in database>".to_string()),
        ),
        ("other-config", "MRW", map_text(&vm["other_config"])),
        ("platform", "MRW", map_text(&vm["platform"])),
    ]
}

fn map_text(map: &Value) -> String {
    map.as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p[0].as_str().unwrap_or(""),
                        p[1].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The state's name of a map field (`platform`, `other-config` → `other_config`).
fn map_field(name: &str) -> Option<&'static str> {
    match name {
        "platform" => Some("platform"),
        "other-config" => Some("other_config"),
        _ => None,
    }
}

fn map_get(vm: &Value, key: &str) -> Option<String> {
    map_get_in(vm, "platform", key)
}

fn map_get_in(vm: &Value, map: &str, key: &str) -> Option<String> {
    vm[map]
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str().map(str::to_string))
}

fn matches_filter(vm: &Value, first_host: &str, key: &str, value: &str) -> Result<bool, String> {
    if let Some((map, map_key)) = key.split_once(':') {
        if let Some(field) = map_field(map) {
            return Ok(map_get_in(vm, field, map_key).as_deref() == Some(value));
        }
    }
    match fields(vm, first_host)
        .iter()
        .find(|(name, _, _)| *name == key)
    {
        Some((_, _, v)) => Ok(v == value),
        None => Err(format!("Error: Unknown field '{key}'\n")),
    }
}

fn vm_list(state: &mut Value, params: &[(String, String)], minimal: bool) -> Reply {
    let wanted: Vec<String> = match param(params, "params") {
        None => vec!["uuid".into(), "name-label".into(), "power-state".into()],
        Some("all") => fields(&json!({}), "")
            .iter()
            .map(|f| f.0.to_string())
            .collect(),
        Some(list) => list.split(',').map(str::to_string).collect(),
    };
    let first_host = first_host(state);
    let mut out = String::new();
    let mut firsts = Vec::new();
    for vm in vms(state).iter() {
        let mut keep = true;
        for (k, v) in params.iter().filter(|(k, _)| k != "params") {
            match matches_filter(vm, &first_host, k, v) {
                Ok(m) => keep &= m,
                Err(e) => return err(e),
            }
        }
        if !keep {
            continue;
        }
        let record: Vec<_> = fields(vm, &first_host)
            .into_iter()
            .filter(|f| wanted.iter().any(|w| w == f.0))
            .collect();
        if record.is_empty() {
            continue;
        }
        if minimal {
            firsts.push(record[0].2.replace('\\', "\\\\").replace(',', "\\,"));
            continue;
        }
        let keys: Vec<String> = record
            .iter()
            .map(|(n, m, _)| format!("{n} ({m})"))
            .collect();
        let width = 4 + keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
        for (i, ((_, _, value), key)) in record.iter().zip(&keys).enumerate() {
            if i == 0 {
                out.push_str(&format!("{key:<width$}: {value}\n"));
            } else {
                out.push_str(&format!("{key:>width$}: {value}\n"));
            }
        }
        out.push_str("\n\n");
    }
    if minimal {
        return ok(format!("{}\n", firsts.join(",")));
    }
    ok(out)
}

fn invalid_uuid(uuid: &str) -> Reply {
    err(format!(
        "The uuid you supplied was invalid.\ntype: VM\nuuid: {uuid}\n"
    ))
}

fn find<'a>(state: &'a mut Value, uuid: &str) -> Option<&'a mut Value> {
    vms(state).iter_mut().find(|vm| vm["uuid"] == uuid)
}

fn vm_param_get(state: &mut Value, params: &[(String, String)]) -> Reply {
    let Some(uuid) = param(params, "uuid") else {
        return err("Required parameter not found: uuid\n");
    };
    let Some(name) = param(params, "param-name") else {
        return err("Required parameter not found: param-name\n");
    };
    let first_host = first_host(state);
    let Some(vm) = find(state, uuid) else {
        return invalid_uuid(uuid);
    };
    match (map_field(name), param(params, "param-key")) {
        (Some(map), Some(key)) => match map_get_in(vm, map, key) {
            Some(v) => ok(format!("{v}\n")),
            None => err(format!("Error: Key {key} not found in map\n")),
        },
        (_, _) => match fields(vm, &first_host).into_iter().find(|f| f.0 == name) {
            Some((_, _, v)) => ok(format!("{v}\n")),
            None => err(format!("Error: Unknown field '{name}'\n")),
        },
    }
}

/// Sets each `k=v` in turn (at most `limit` of them: a fault stops it half-way, as a refused
/// later key leaves the earlier ones set).
fn vm_param_set(state: &mut Value, params: &[(String, String)], limit: Option<usize>) -> Reply {
    let Some(uuid) = param(params, "uuid") else {
        return err("Required parameter not found: uuid\n");
    };
    let Some(vm) = find(state, uuid) else {
        return invalid_uuid(uuid);
    };
    let keys = params.iter().filter(|(k, _)| k != "uuid");
    for (k, v) in keys.take(limit.unwrap_or(usize::MAX)) {
        let in_map = k
            .split_once(':')
            .and_then(|(map, key)| Some((map_field(map)?, key)));
        if let Some((field, key)) = in_map {
            if !vm[field].is_array() {
                vm[field] = json!([]);
            }
            let map = vm[field].as_array_mut().expect("map");
            map.retain(|p| p[0] != key);
            map.insert(0, json!([key, v])); // a key just set comes first
        } else if k == "name-label" {
            vm["name_label"] = json!(v);
        } else {
            return err(format!("Error: Unknown field '{k}'\n"));
        }
    }
    ok("")
}

fn vm_param_remove(state: &mut Value, params: &[(String, String)]) -> Reply {
    let Some(uuid) = param(params, "uuid") else {
        return err("Required parameter not found: uuid\n");
    };
    let key = param(params, "param-key").unwrap_or_default().to_string();
    let name = param(params, "param-name").unwrap_or_default();
    let Some(field) = map_field(name) else {
        return err(format!("Error: Unknown field '{name}'\n"));
    };
    let Some(vm) = find(state, uuid) else {
        return invalid_uuid(uuid);
    };
    let Some(map) = vm[field].as_array_mut() else {
        return err(format!("Error: Key {key} is not in map\n"));
    };
    let before = map.len();
    map.retain(|p| p[0] != key.as_str());
    if map.len() == before {
        return err(format!("Error: Key {key} is not in map\n"));
    }
    ok("")
}

fn power_state_error(vm: &Value, expected: &str) -> Reply {
    err(format!(
        "You attempted an operation on a VM that was not in an appropriate power state at the time; \
         for example, you attempted to start a VM that was already running. The parameters returned \
         are the VM's handle, and the expected and actual VM state at the time of the call.\n\
         vm: {} ({})\nexpected: {expected}\nactual: {}\n",
        vm["uuid"].as_str().unwrap_or_default(),
        vm["name_label"].as_str().unwrap_or_default(),
        vm["power_state"].as_str().unwrap_or_default()
    ))
}

fn selected<'a>(state: &'a mut Value, params: &[(String, String)]) -> Result<&'a mut Value, Reply> {
    let uuid = param(params, "uuid").unwrap_or_default().to_string();
    find(state, &uuid).ok_or_else(|| err("Error: No matching VMs found\n"))
}

fn vm_start(state: &mut Value, params: &[(String, String)]) -> Reply {
    let hosts = hosts(state);
    let vm = match selected(state, params) {
        Ok(vm) => vm,
        Err(reply) => return reply,
    };
    if vm["power_state"] != "halted" {
        return power_state_error(vm, "halted");
    }
    let host = match param(params, "on") {
        // On the host asked for, or not at all.
        Some(on) => match hosts
            .iter()
            .find(|h| h["uuid"] == on || h["name_label"] == on)
        {
            Some(h) => h.clone(),
            None => {
                return err(format!(
                    "The uuid you supplied was invalid.\ntype: host\nuuid: {on}\n"
                ))
            }
        },
        // The master's choice: the affinity host, else the one after where it last ran.
        None => {
            let affinity = hosts.iter().find(|h| h["uuid"] == vm["affinity"]);
            let last = hosts.iter().position(|h| h["uuid"] == vm["last_host"]);
            match (affinity, last) {
                (Some(h), _) => h.clone(),
                (None, Some(i)) => hosts[(i + 1) % hosts.len()].clone(),
                (None, None) => hosts[0].clone(),
            }
        }
    };
    if host["full"].as_bool().unwrap_or(false) {
        return err(
            "The host does not have enough free memory to start the VM.\nneeded: 4294967296\navailable: 1073741824\n",
        );
    }
    let args = map_get(vm, "device-model-args");
    vm["power_state"] = json!("running");
    vm["resident_on"] = host["uuid"].clone();
    vm["last_host"] = host["uuid"].clone();
    if !vm["boots"].is_array() {
        vm["boots"] = json!([]);
    }
    vm["boots"].as_array_mut().expect("boots").push(json!(args));
    ok("")
}

fn vm_shutdown(state: &mut Value, params: &[(String, String)]) -> Reply {
    let force = param(params, "force") == Some("true");
    let first = first_host(state);
    let vm = match selected(state, params) {
        Ok(vm) => vm,
        Err(reply) => return reply,
    };
    let state_now = vm["power_state"].as_str().unwrap_or_default().to_string();
    if force {
        if !["paused", "suspended", "running"].contains(&state_now.as_str()) {
            return power_state_error(vm, "paused, suspended, running");
        }
    } else {
        if state_now != "running" {
            return power_state_error(vm, "running");
        }
        if !vm["pv_drivers"].as_bool().unwrap_or(true) {
            return err(format!(
                "You attempted an operation on a VM which lacks the feature.\nvm: {} ({})\n",
                vm["uuid"].as_str().unwrap_or_default(),
                vm["name_label"].as_str().unwrap_or_default()
            ));
        }
        if vm["ignores_shutdown"].as_bool().unwrap_or(false) {
            return err("VM didn't acknowledge the need to shutdown.\n");
        }
    }
    if let Some(host) = resident_on(vm, &first) {
        vm["last_host"] = json!(host);
    }
    vm["power_state"] = json!("halted");
    if let Some(map) = vm.as_object_mut() {
        map.remove("resident_on");
    }
    ok("")
}

/// `host-list`: the pool's hosts, as records (`params=uuid,name-label`) or `--minimal` uuids.
fn host_list(state: &mut Value, params: &[(String, String)], minimal: bool) -> Reply {
    let wanted: Vec<&str> = match param(params, "params") {
        None | Some("all") => vec!["uuid", "name-label"],
        Some(list) => list.split(',').collect(),
    };
    let hosts = hosts(state);
    if minimal {
        let uuids: Vec<String> = hosts
            .iter()
            .map(|h| h["uuid"].as_str().unwrap_or_default().replace(',', "\\,"))
            .collect();
        return ok(format!("{}\n", uuids.join(",")));
    }
    let mut out = String::new();
    for host in &hosts {
        let record: Vec<(String, String)> =
            [("uuid", " RO", "uuid"), ("name-label", " RW", "name_label")]
                .iter()
                .filter(|(n, _, _)| wanted.contains(n))
                .map(|(n, m, k)| {
                    (
                        format!("{n} ({m})"),
                        host[*k].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
        let width = 4 + record
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (i, (key, value)) in record.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{key:<width$}: {value}\n"));
            } else {
                out.push_str(&format!("{key:>width$}: {value}\n"));
            }
        }
        out.push_str("\n\n");
    }
    ok(out)
}
