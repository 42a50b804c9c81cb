//! Issue 10: every command that takes `--vm-uuid` also takes `--vm-name`, the VM's exact
//! name-label, found with one `xe vm-list name-label=N ... --minimal` call: no VM of that name is
//! exit 3, several are exit 2 (naming their uuids), and `--vm-uuid` with `--vm-name` is exit 2.
//! By name, a command does exactly what it does by uuid, after the lookup. Names with commas,
//! quotes, spaces and shell metacharacters are plain values: nothing is ever executed.

use crate::common::{uuid, vm, Env, Outcome, HOST1};

/// W: registered (7, A, high), halted.
const NAME: &str = "web, \"prod\" $(touch MARKER)";
const W_ARGS: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=7";
/// Two registered VMs with the same name.
const TWIN: &str = "twin; `touch MARKER` 'db' & echo";
/// M: unregistered, with a hand-made device (legacy digit priority).
const MANUAL: &str = "manual = 'hand, made' | $HOME > MARKER";
const M_ARGS: &str = "-usb -device vgpu-stub,pool_id=B,priority=2,vm_id=12";
/// N: unregistered, no device.
const NEW: &str = "new vm; rm -rf MARKER && touch MARKER";
/// R: registered (10, B, low), running.
const RUNNING: &str = "run: \"ning\" (vm) *";
const R_ARGS: &str = "-device vgpu-stub,pool_id=B,priority=low,vm_id=10 -usb";

fn w() -> String {
    uuid(1)
}
fn t1() -> String {
    uuid(2)
}
fn t2() -> String {
    uuid(3)
}
fn m() -> String {
    uuid(4)
}
fn n() -> String {
    uuid(5)
}
fn r() -> String {
    uuid(6)
}

/// The host: W, the twins, M, N, R and a VM nobody asks for.
fn host() -> Env {
    let env = Env::new();
    env.registered(vm(&w(), NAME, "halted", Some(W_ARGS)), 7, "A", 2);
    env.registered(
        vm(
            &t1(),
            TWIN,
            "halted",
            Some("-device vgpu-stub,pool_id=A,priority=medium,vm_id=8"),
        ),
        8,
        "A",
        1,
    );
    env.registered(
        vm(
            &t2(),
            TWIN,
            "running",
            Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=9"),
        ),
        9,
        "B",
        0,
    );
    env.host_vm(vm(&m(), MANUAL, "halted", Some(M_ARGS)));
    env.host_vm(vm(&n(), NEW, "halted", Some("-usb")));
    env.registered(vm(&r(), RUNNING, "running", Some(R_ARGS)), 10, "B", 0);
    env.host_vm(vm(&uuid(7), "bystander", "running", Some("-usb")));
    env.clear_calls();
    env
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The one call that finds a VM by name.
fn lookup(name: &str) -> Vec<String> {
    strings(&[
        "vm-list",
        &format!("name-label={name}"),
        "is-control-domain=false",
        "params=uuid",
        "--minimal",
    ])
}

/// Runs the binary in the test's directory (so a `touch MARKER` that ran would show).
fn run(env: &Env, args: &[String], input: Option<&str>) -> Outcome {
    let mut cmd = env.command(args);
    cmd.current_dir(env.dir.path());
    let out = Outcome::of(cmd, input);
    assert!(
        !env.dir.path().join("MARKER").exists(),
        "something was executed: {out:?}"
    );
    out
}

/// Every row of `vms`, without timestamps.
fn rows(env: &Env) -> Vec<(String, i64, Option<String>, String, i64, bool)> {
    let conn = env.sql();
    let mut stmt = conn
        .prepare(
            "SELECT vm_uuid, vm_id, vm_name, pool_id, priority, \
             EXISTS (SELECT 1 FROM restart_pending p WHERE p.vm_uuid = vms.vm_uuid) \
             FROM vms ORDER BY vm_uuid",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, i64>(5)? != 0,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// Output with the timestamps of rows written during the run blanked.
fn untimed(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("Created: ")
                || t.starts_with("Updated: ")
                || t.starts_with("\"created_at\": ")
                || t.starts_with("\"updated_at\": ")
            {
                "<time>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// True for the xe calls that change something.
fn changing(call: &[String]) -> bool {
    matches!(
        call[0].as_str(),
        "vm-param-set" | "vm-param-remove" | "vm-start" | "vm-shutdown"
    )
}

/// Runs `args` with `--vm-uuid=<target>` on one fresh host and with `--vm-name=<name>` on
/// another: the same status, output, rows, host state; by name exactly one more xe call, the
/// lookup (the first call, except for adopt, which lists the host first). Returns the host run
/// by name and its outcome.
fn by_name_as_by_uuid(
    args: &[&str],
    target: &str,
    name: &str,
    input: Option<&str>,
) -> (Env, Outcome) {
    let by_uuid = host();
    let by_name = host();
    let with = |extra: String| {
        let mut v = strings(args);
        let command = v.iter().position(|a| !a.starts_with("--")).unwrap();
        v.insert(command + 1, extra);
        v
    };
    // Both hosts sign pool records with the same key (as the hosts of one pool do).
    let key = by_uuid.db.with_file_name("pool.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::create_dir_all(by_name.db.parent().unwrap()).unwrap();
    std::fs::copy(&key, by_name.db.with_file_name("pool.key")).unwrap();
    let a = run(&by_uuid, &with(format!("--vm-uuid={target}")), input);
    let b = run(&by_name, &with(format!("--vm-name={name}")), input);
    assert_eq!(a.status(), b.status(), "by uuid: {a:?}\nby name: {b:?}");
    assert_eq!(untimed(a.stdout()), untimed(b.stdout()), "stdout");
    assert_eq!(a.stderr(), b.stderr(), "stderr");
    assert_eq!(rows(&by_uuid), rows(&by_name), "database rows");
    assert_eq!(by_uuid.host(), by_name.host(), "the VMs on the host");
    let mut calls = by_name.calls();
    let at = if args.contains(&"adopt") { 2 } else { 0 };
    assert_eq!(calls[at], lookup(name), "the lookup: {calls:?}");
    calls.remove(at);
    assert_eq!(
        by_uuid.calls(),
        calls,
        "by name: the lookup, then as by uuid"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.iter().any(|a| a.starts_with("name-label="))),
        "one lookup only"
    );
    (by_name, b)
}

/// Runs a command that must refuse before anything changes: status `code`, one error line
/// holding `message`, the database and the host untouched, no changing xe call.
fn refused(env: &Env, args: &[String], code: i32, message: &str) -> Outcome {
    let db = env.db_bytes();
    let state = env.host();
    env.clear_calls();
    let out = run(env, args, Some("yes\n"));
    out.code(code).one_error_line().stderr_has(message);
    assert_eq!(out.stdout(), "", "nothing said on stdout");
    assert_eq!(env.db_bytes(), db, "database changed");
    assert_eq!(env.host(), state, "host changed");
    let calls = env.calls();
    assert!(
        !calls.iter().any(|c| changing(c)),
        "a changing call: {calls:?}"
    );
    out
}

/// The no-match, ambiguous and both-given cases of a command (`rest`: its other options).
fn refusals(command: &str, rest: &[&str]) {
    let env = host();
    let args = |given: &[String]| {
        let mut v = vec![command.to_string()];
        v.extend(given.iter().cloned());
        v.extend(strings(rest));
        v
    };
    let lists_host_first = command == "adopt";

    // No VM of that name (names are exact: case, spaces and all).
    for missing in [
        "nobody $(touch MARKER)",
        "WEB, \"PROD\" $(TOUCH MARKER)",
        "web, \"prod\" $(touch MARKER) ",
        "web",
        "Control domain on host: xcp-test",
    ] {
        refused(
            &env,
            &args(&[format!("--vm-name={missing}")]),
            3,
            &format!("error: no VM named '{missing}' (see 'xe vm-list')"),
        );
        let mut expected = Vec::new();
        if lists_host_first {
            expected.extend(listing());
        }
        expected.push(lookup(missing));
        assert_eq!(env.calls(), expected, "{command}: only the lookup");
    }

    // Two VMs of that name.
    let out = refused(
        &env,
        &args(&[format!("--vm-name={TWIN}")]),
        2,
        &format!(
            "error: 2 VMs are named '{TWIN}' ({}, {}); choose one with --vm-uuid",
            t1(),
            t2()
        ),
    );
    assert!(out.stderr().contains(&t1()) && out.stderr().contains(&t2()));
    assert_eq!(env.calls().last(), Some(&lookup(TWIN)));

    // Both: refused before any xe call (register-vm stores the name instead).
    if command != "register-vm" {
        // (The header's `@one-of --vm-uuid --vm-name`: the command line refuses it.)
        let message =
            "error: the argument '--vm-uuid <uuid>' cannot be used with '--vm-name <name>'";
        refused(
            &env,
            &args(&[format!("--vm-uuid={}", w()), format!("--vm-name={NAME}")]),
            2,
            message,
        );
        assert_eq!(env.calls(), Vec::<Vec<String>>::new());
    }
}

fn listing() -> Vec<Vec<String>> {
    vec![
        strings(&[
            "vm-list",
            "is-control-domain=false",
            "params=uuid",
            "--minimal",
        ]),
        strings(&[
            "vm-list",
            "is-control-domain=false",
            "params=uuid,name-label,power-state,resident-on,other-config,platform",
        ]),
    ]
}

/// The args write of a change to VM `u`: with its signed pool record while it is registered.
fn set(env: &Env, u: &str, args: &str) -> Vec<String> {
    if env.row(u).is_some() {
        return env.set_call(u, args);
    }
    strings(&[
        "vm-param-set",
        &format!("uuid={u}"),
        &format!("platform:device-model-args={args}"),
    ])
}

#[test]
fn issue_10_vm_name_show_vm() {
    let (env, out) = by_name_as_by_uuid(&["show-vm"], &w(), NAME, None);
    out.code(0).quiet().stdout_is(&format!(
        "VM Configuration:\n  UUID: {}\n  Name: {NAME}\n  VM ID: 7\n  Pool: A\n  Priority: high (2)\n  Scheduler Weight: 50\n  Rate Limit: unlimited\n  Max Queue Depth: unlimited\n  Quarantine: no (error count: 0)\n  Created: 2026-01-02 03:04:05\n  Updated: 2026-01-02 03:04:05\n",
        w()
    ));
    assert_eq!(env.calls(), vec![lookup(NAME)], "the lookup is all");
    let (_, out) = by_name_as_by_uuid(&["--json", "show-vm"], &w(), NAME, None);
    let doc = out.code(0).json();
    assert_eq!(doc["vm_uuid"], w());
    assert_eq!(doc["vm_name"], NAME);
    refusals("show-vm", &[]);
}

#[test]
fn issue_10_vm_name_set_pool() {
    let (env, out) = by_name_as_by_uuid(&["set-pool", "--pool=B"], &w(), NAME, None);
    out.code(0)
        .quiet()
        .stdout_has(&format!("VM: {NAME} ({})\nPower state: halted\n", w()))
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(env.row(&w()), Some((7, "B".into(), 2, Some(NAME.into()))));
    let args = "-usb -device vgpu-stub,pool_id=B,priority=high,vm_id=7";
    assert_eq!(env.args(&w()).as_deref(), Some(args));
    assert_eq!(
        env.calls()
            .into_iter()
            .filter(|c| changing(c))
            .collect::<Vec<_>>(),
        vec![set(&env, &w(), args)]
    );
    refusals("set-pool", &["--pool=B"]);
}

#[test]
fn issue_10_vm_name_set_pool_of_a_running_vm_asks_and_restarts_it() {
    // "no": cancelled, as by uuid.
    let (env, out) = by_name_as_by_uuid(&["set-pool", "--pool=A"], &r(), RUNNING, Some("no\n"));
    out.code(4)
        .stdout_has(&format!("VM: {RUNNING} ({})\nPower state: running\n", r()))
        .stderr_has("error: Operation cancelled.");
    assert_eq!(env.args(&r()).as_deref(), Some(R_ARGS));
    // "yes": stopped, changed, started again with the new args.
    let (env, out) = by_name_as_by_uuid(&["set-pool", "--pool=A"], &r(), RUNNING, Some("yes\n"));
    out.code(0)
        .stdout_has("VM configuration updated successfully.");
    let args = "-device vgpu-stub,pool_id=A,priority=low,vm_id=10 -usb";
    assert_eq!(
        env.row(&r()),
        Some((10, "A".into(), 0, Some(RUNNING.into())))
    );
    assert_eq!(env.power(&r()), "running");
    assert_eq!(env.boots(&r()), vec![Some(args.to_string())]);
    let r = r();
    assert_eq!(
        env.calls()
            .into_iter()
            .filter(|c| changing(c))
            .collect::<Vec<_>>(),
        vec![
            strings(&["vm-shutdown", &format!("uuid={r}")]),
            set(&env, &r, args),
            strings(&["vm-start", &format!("uuid={r}"), &format!("on={HOST1}")]),
        ]
    );
}

#[test]
fn issue_10_vm_name_set_priority() {
    let (env, out) = by_name_as_by_uuid(&["set-priority", "--priority=low"], &w(), NAME, None);
    out.code(0)
        .quiet()
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(env.row(&w()), Some((7, "A".into(), 0, Some(NAME.into()))));
    assert_eq!(
        env.args(&w()).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=A,priority=low,vm_id=7")
    );
    refusals("set-priority", &["--priority=low"]);
}

#[test]
fn issue_10_vm_name_set_vm_id() {
    let (env, out) = by_name_as_by_uuid(&["set-vm-id", "--vm-id=42"], &w(), NAME, None);
    out.code(0)
        .quiet()
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(env.row(&w()), Some((42, "A".into(), 2, Some(NAME.into()))));
    assert_eq!(
        env.args(&w()).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=42")
    );
    // A vm_id another VM has stays refused by name too.
    let env = host();
    refused(
        &env,
        &strings(&["set-vm-id", &format!("--vm-name={NAME}"), "--vm-id=8"]),
        2,
        "vm-id 8 is already taken",
    );
    refusals("set-vm-id", &["--vm-id=42"]);
}

#[test]
fn issue_10_vm_name_update_vm() {
    let (env, out) = by_name_as_by_uuid(
        &["update-vm", "--pool=B", "--priority=medium", "--vm-id=43"],
        &w(),
        NAME,
        None,
    );
    out.code(0)
        .quiet()
        .stdout_has("New configuration:\n  Pool: B\n  Priority: medium (1)\n  VM ID: 43\n");
    assert_eq!(env.row(&w()), Some((43, "B".into(), 1, Some(NAME.into()))));
    assert_eq!(
        env.args(&w()).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=B,priority=medium,vm_id=43")
    );
    let (_, out) = by_name_as_by_uuid(&["--json", "update-vm", "--pool=B"], &w(), NAME, None);
    let doc = out.code(0).json();
    assert_eq!(doc["pool_id"], "B");
    assert_eq!(doc["vm_name"], NAME);
    refusals("update-vm", &["--pool=B"]);
}

#[test]
fn issue_10_vm_name_remove_vm() {
    let (env, out) = by_name_as_by_uuid(&["remove-vm"], &w(), NAME, None);
    out.code(0)
        .quiet()
        .stdout_has("vGPU device removed; VM removed from the database.");
    assert_eq!(env.row(&w()), None);
    assert_eq!(env.args(&w()).as_deref(), Some("-usb"));
    assert_eq!(env.vm_count(), 3);
    refusals("remove-vm", &[]);
}

#[test]
fn issue_10_vm_name_adopt() {
    let (env, out) = by_name_as_by_uuid(&["adopt"], &m(), MANUAL, None);
    out.code(0).quiet().stdout_is(&format!(
        "adopted: {MANUAL} ({}): pool B, priority high, vm_id 12\n1 adopted, 0 skipped\n",
        m()
    ));
    assert_eq!(
        env.row(&m()),
        Some((12, "B".into(), 2, Some(MANUAL.into())))
    );
    // The legacy digit priority is spelt as a word; everything else kept.
    assert_eq!(
        env.args(&m()).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=B,priority=high,vm_id=12")
    );
    // A VM of that name without a device: nothing to adopt (exit 3), nothing changed.
    let env = host();
    refused(
        &env,
        &strings(&["adopt", &format!("--vm-name={NEW}")]),
        3,
        "has no vGPU device in its device-model-args",
    );
    refusals("adopt", &[]);
}

#[test]
fn issue_10_vm_name_register_vm() {
    let (env, out) = by_name_as_by_uuid(
        &["register-vm", "--pool=B", "--priority=low", "--vm-id=20"],
        &n(),
        NEW,
        None,
    );
    out.code(0).quiet().stdout_has(&format!(
        "VM registered successfully:\nVM Configuration:\n  UUID: {}\n  Name: {NEW}\n  VM ID: 20\n  Pool: B\n  Priority: low (0)\n",
        n()
    ));
    assert_eq!(env.row(&n()), Some((20, "B".into(), 0, Some(NEW.into()))));
    assert_eq!(
        env.args(&n()).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=B,priority=low,vm_id=20")
    );
    // Already registered, found by name: refused after the lookup.
    let env = host();
    refused(
        &env,
        &strings(&["register-vm", &format!("--vm-name={NAME}")]),
        2,
        "is already registered",
    );
    assert_eq!(env.calls()[0], lookup(NAME));
    refusals("register-vm", &[]);
}

#[test]
fn issue_10_vm_name_register_vm_with_a_uuid_stores_the_name_without_a_lookup() {
    let env = host();
    let name = "stored, \"as given\" $(touch MARKER)";
    run(
        &env,
        &strings(&[
            "register-vm",
            &format!("--vm-uuid={}", n()),
            &format!("--vm-name={name}"),
        ]),
        None,
    )
    .code(0)
    .quiet();
    assert_eq!(env.row(&n()).unwrap().3.as_deref(), Some(name));
    assert!(!env
        .calls()
        .iter()
        .any(|c| c.iter().any(|a| a.starts_with("name-label="))));
}

#[test]
fn issue_10_vm_name_lookup_is_one_minimal_vm_list_call() {
    let commands: [&[&str]; 7] = [
        &["show-vm"],
        &["set-pool", "--pool=B"],
        &["set-priority", "--priority=low"],
        &["set-vm-id", "--vm-id=50"],
        &["update-vm", "--priority=medium"],
        &["remove-vm"],
        &["register-vm"],
    ];
    for command in commands {
        let env = host();
        let (target, name) = if command[0] == "register-vm" {
            (n(), NEW)
        } else {
            (w(), NAME)
        };
        let mut args = strings(command);
        args.insert(1, format!("--vm-name={name}"));
        run(&env, &args, None).code(0);
        let calls = env.calls();
        assert_eq!(
            calls[0],
            strings(&[
                "vm-list",
                &format!("name-label={name}"),
                "is-control-domain=false",
                "params=uuid",
                "--minimal"
            ]),
            "{command:?}"
        );
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.iter().any(|a| a.starts_with("name-label=")))
                .count(),
            1,
            "{command:?}: {calls:?}"
        );
        // After the lookup, the VM is named by its uuid only.
        for arg in calls[1..].iter().flatten() {
            if arg.starts_with("uuid=") {
                assert_eq!(arg, &format!("uuid={target}"), "{command:?}: {calls:?}");
            }
        }
    }
    // adopt lists the host first (the ids the VMs' devices carry), then looks the name up.
    let env = host();
    run(
        &env,
        &strings(&["adopt", &format!("--vm-name={MANUAL}")]),
        None,
    )
    .code(0);
    let mut expected = listing();
    expected.push(lookup(MANUAL));
    assert_eq!(env.calls()[..3], expected[..]);
}

#[test]
fn issue_10_vm_name_refuses_names_no_vm_can_be_found_by() {
    // Documented: a VM name is 1 to 255 characters without control characters; a newline
    // cannot reach xe at all. Refused before any xe call.
    let env = host();
    for bad in ["", "a\nb", "tab\there"] {
        for command in ["show-vm", "set-pool", "remove-vm", "register-vm", "adopt"] {
            let mut args = strings(&[command, &format!("--vm-name={bad}")]);
            if command == "set-pool" {
                args.push("--pool=B".into());
            }
            refused(&env, &args, 2, "invalid VM name");
            assert!(
                env.calls().is_empty(),
                "{command} {bad:?}: {:?}",
                env.calls()
            );
        }
    }
}
