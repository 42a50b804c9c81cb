//! Issue 10: a VM's name-label may hold newlines, and `xe vm-list` prints it raw, so a VM (X)
//! can be named so that the listing shows a forged record for another VM (Y), a repeated field
//! of its own record, or a VM that does not exist. Every command that reads listings or writes
//! runs here against such hosts (the fake xe prints names raw, like xe): nothing derived from
//! forged text is written, the listing's warning is shown, the real VMs are listed right, names
//! are printed escaped and JSON still parses.

use crate::common::{uuid, vm, Env, Outcome, HOST1};
use serde_json::{json, Value};

/// X, the VM whose owner chose its name.
const X_ARGS: &str = "-usb";
/// Y, the registered VM the forged records are about.
const Y_ARGS: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=7";
/// What the forged records claim.
const EVIL: &str =
    "-device vgpu-stub,pool_id=B,priority=high,vm_id=666 -chardev socket,path=/tmp/evil";
/// Words that only the forged text holds.
const FORGED_WORDS: [&str; 4] = ["666", "evil", "chardev", "socket"];
/// The warning of a listing that did not check out.
const WARNING: &str = "warning: the xe VM listing did not check out (";
/// The end of a record: its last line's newline, then two blank lines.
const END: &str = "\n\n\n";

fn x() -> String {
    uuid(1)
}

fn y() -> String {
    uuid(2)
}

fn ghost() -> String {
    uuid(0x666)
}

/// A field line of `vm-list params=uuid,name-label,power-state,resident-on,other-config,platform`, padded as xe pads it.
fn field(key: &str, value: &str) -> String {
    format!("{key:>22}: {value}")
}

fn uuid_field(u: &str) -> String {
    format!("{:<22}: {u}", "uuid ( RO)")
}

/// A whole record, without its end.
fn fields(u: &str, name: &str, power: &str, platform: &str) -> String {
    let resident = if power == "running" {
        crate::common::HOST1
    } else {
        "<not in database>"
    };
    [
        uuid_field(u),
        field("name-label ( RW)", name),
        field("power-state ( RO)", power),
        field("resident-on ( RO)", resident),
        field("other-config (MRW)", ""),
        field("platform (MRW)", platform),
    ]
    .join("\n")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Forgery {
    /// X's record ends early, a whole record for Y with evil args follows, then X's record
    /// starts again (so its real power state and platform close it).
    Record,
    /// X's own record holds a second `power-state` line claiming `halted` (X runs).
    PowerState,
    /// A record for a VM that does not exist, carrying evil args (X is listed after Y).
    Ghost,
}

/// X's name for each forgery.
fn forged_name(f: Forgery) -> String {
    let evil_platform = format!("device-model-args: {EVIL}; timeoffset: 0");
    let restart_x = format!(
        "{}\n{}",
        uuid_field(&x()),
        field("name-label ( RW)", "x-web")
    );
    match f {
        Forgery::Record => format!(
            "x-web\n{}\n{}\n{}\n{}{END}{}{END}{restart_x}",
            field("power-state ( RO)", "halted"),
            field("resident-on ( RO)", "<not in database>"),
            field("other-config (MRW)", ""),
            field("platform (MRW)", "timeoffset: 0"),
            fields(&y(), "y-db", "running", &evil_platform),
        ),
        Forgery::PowerState => format!("x-web\n{}", field("power-state ( RO)", "halted")),
        Forgery::Ghost => format!(
            "x-web\n{}\n{}\n{}\n{}{END}{}{END}{restart_x}",
            field("power-state ( RO)", "running"),
            field("resident-on ( RO)", crate::common::HOST1),
            field("other-config (MRW)", ""),
            field("platform (MRW)", "device-model-args: -usb; timeoffset: 0"),
            fields(&ghost(), "ghost", "halted", &evil_platform),
        ),
    }
}

/// A name as the product prints it: control characters escaped.
fn escaped(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A name as the product stores it: escaped, cut to 255 characters.
fn stored(name: &str) -> String {
    escaped(name).chars().take(255).collect()
}

/// X running with `name`, Y halted and registered (pool A, high, vm_id 7); for `x_last` X is
/// listed after Y.
fn host_with(name: &str, x_last: bool) -> Env {
    let env = Env::new();
    let (x, y) = (x(), y());
    if !x_last {
        env.host_vm(vm(&x, name, "running", Some(X_ARGS)));
    }
    env.registered(vm(&y, "y-db", "halted", Some(Y_ARGS)), 7, "A", 2);
    if x_last {
        env.host_vm(vm(&x, name, "running", Some(X_ARGS)));
    }
    env.clear_calls();
    env
}

fn host(f: Forgery) -> Env {
    host_with(&forged_name(f), f == Forgery::Ghost)
}

/// What the fake xe prints for the listing the product asks for (no call logged).
fn raw_listing(env: &Env) -> String {
    let out = std::process::Command::new(crate::common::fake_xe())
        .args([
            "vm-list",
            "is-control-domain=false",
            "params=uuid,name-label,power-state,resident-on,other-config,platform",
        ])
        .env("FAKE_XE_STATE", &env.xe_state)
        .output()
        .expect("fake xe");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The listing really is forged the way the test means (else the test would prove nothing).
fn forged_as_meant(env: &Env, f: Forgery) {
    let text = raw_listing(env);
    let count = |needle: &str| text.matches(needle).count();
    match f {
        Forgery::Record => {
            assert_eq!(count(&uuid_field(&y())), 2, "{text}");
            assert_eq!(count(&uuid_field(&x())), 2, "{text}");
            assert!(text.contains(EVIL), "{text}");
        }
        Forgery::PowerState => {
            let x_record = text.split(END).find(|r| r.contains(&x())).expect("X");
            assert_eq!(x_record.matches("power-state ( RO): ").count(), 2, "{text}");
            assert!(x_record.contains("power-state ( RO): halted"), "{text}");
        }
        Forgery::Ghost => {
            assert_eq!(count(&uuid_field(&ghost())), 1, "{text}");
            assert!(text.contains(EVIL), "{text}");
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
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

fn get_args(u: &str) -> Vec<String> {
    strings(&[
        "vm-param-get",
        &format!("uuid={u}"),
        "param-name=platform",
        "param-key=device-model-args",
    ])
}

/// The changing xe calls made since the last look, after checking that each targets X or Y
/// and carries nothing of the forged text; forgets the calls.
fn writes(env: &Env) -> Vec<Vec<String>> {
    let changing: Vec<Vec<String>> = env
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c[0].as_str(),
                "vm-param-set" | "vm-param-remove" | "vm-start" | "vm-shutdown"
            )
        })
        .collect();
    for call in &changing {
        let target = call[1].strip_prefix("uuid=").unwrap_or_default();
        assert!(
            target == x() || target == y(),
            "a change of a VM that is not there: {call:?}"
        );
        // (A signature is random hex: it may hold "666" by chance.)
        let text = call
            .iter()
            .filter(|a| !a.starts_with("other-config:vgpu-admin:sig="))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        for word in FORGED_WORDS {
            assert!(!text.contains(word), "forged text written: {call:?}");
        }
    }
    env.clear_calls();
    changing
}

/// Checks what every run must keep: a documented exit status, no line of a name printed on a
/// line of its own (each newline escaped), no raw control character.
#[track_caller]
fn clean(out: &Outcome) -> &Outcome {
    assert!(
        (0..=5).contains(&out.status()),
        "undocumented exit status: {out:?}"
    );
    for text in [&out.stdout(), &out.stderr()] {
        for line in text.lines() {
            let t = line.trim_start();
            for key in [
                "uuid ( RO)",
                "name-label ( RW)",
                "power-state ( RO)",
                "platform (MRW)",
            ] {
                assert!(
                    !t.starts_with(key),
                    "a line of a name printed raw: {line:?}\n{text}"
                );
            }
        }
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a raw control character printed:\n{text:?}"
        );
    }
    out
}

fn run(env: &Env, args: &[&str]) -> Outcome {
    let out = env.run(args);
    clean(&out);
    out
}

fn run_with_input(env: &Env, args: &[&str], input: &str) -> Outcome {
    let out = env.run_with_input(args, input);
    clean(&out);
    out
}

/// Asserts that stderr holds the listing's warning, and nothing but warnings and notes.
#[track_caller]
fn warned(out: &Outcome) {
    out.stderr_has(WARNING);
    for line in out.stderr().lines() {
        assert!(
            line.starts_with("warning: ") || line.starts_with("note: "),
            "unexpected stderr line {line:?}"
        );
    }
}

/// The name-label of a VM of the fake host.
fn host_name(env: &Env, u: &str) -> Option<String> {
    env.host()["vms"]
        .as_array()?
        .iter()
        .find(|v| v["uuid"] == u)
        .and_then(|v| v["name_label"].as_str().map(str::to_string))
}

/// Asserts that the output, apart from X's name itself (shown escaped, or as stored), shows
/// nothing of the forged text: no VM that does not exist, no forged args.
#[track_caller]
fn nothing_forged(env: &Env, out: &Outcome) {
    let mut rest = out.stdout().to_string();
    if let Some(name) = host_name(env, &x()) {
        rest = rest.replace(&escaped(&name), "<X's name>");
    }
    if let Some((_, _, _, Some(name))) = env.row(&x()) {
        rest = rest.replace(&name, "<X's name>");
    }
    for word in FORGED_WORDS.iter().copied().chain([ghost().as_str()]) {
        assert!(!rest.contains(word), "forged {word:?} shown:\n{rest}");
    }
}

/// The line of `stdout` that starts with `prefix`.
#[track_caller]
fn line_starting<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = stdout.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "lines starting with {prefix:?}:\n{stdout}");
    found[0]
}

/// Every reading command, human and JSON: the real VMs with their real power states and args,
/// the warning, names escaped. `x_registered`: X has been registered (pool A or B, vm_id 9).
fn reads(env: &Env, name: &str, x_registered: bool) {
    let (x, y) = (x(), y());
    let shown = escaped(name);
    let y_args = env.args(&y).expect("Y's args");
    let x_args = env.args(&x).expect("X's args");
    let y_row = env.row(&y).expect("Y registered");

    // scan-vms
    let out = run(env, &["scan-vms"]);
    out.code(0);
    warned(&out);
    let y_line = line_starting(out.stdout(), &format!("UUID: {y} | Name: y-db | "));
    assert!(y_line.ends_with(" | halted | in sync"), "{y_line}");
    let x_line = line_starting(out.stdout(), &format!("UUID: {x} | Name: {shown} | "));
    if x_registered {
        assert!(
            x_line.contains(" | running on xcp-test | in sync"),
            "{x_line}"
        );
    } else {
        assert!(
            x_line.ends_with(" | running on xcp-test | Not registered"),
            "{x_line}"
        );
    }
    out.stdout_has(&format!("      device-model-args: {y_args}\n"))
        .stdout_has(&format!("      device-model-args: {x_args}\n"))
        .stdout_has("=== Unregistered VMs: ")
        .stdout_lacks("manual vGPU device config")
        .stdout_lacks("missing from host");
    assert_eq!(
        out.stdout().matches("UUID: ").count(),
        2,
        "{}",
        out.stdout()
    );
    nothing_forged(env, &out);

    let out = run(env, &["--json", "scan-vms"]);
    out.code(0);
    warned(&out);
    let doc = out.json();
    assert_eq!(doc["missing"], json!([]));
    let entries: Vec<&Value> = ["A", "B"]
        .iter()
        .flat_map(|p| doc["pools"][p].as_array().unwrap())
        .chain(doc["unregistered"].as_array().unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{doc}");
    let entry = |u: &str| {
        *entries
            .iter()
            .find(|e| e["vm_uuid"] == u || e["uuid"] == u)
            .unwrap_or_else(|| panic!("{u} not listed: {doc}"))
    };
    assert_eq!(entry(&y)["power_state"], "halted");
    assert_eq!(entry(&y)["device_model_args"], y_args.as_str());
    assert_eq!(entry(&y)["sync_state"], "in sync");
    assert_eq!(entry(&y)["name"], "y-db");
    assert_eq!(entry(&x)["power_state"], "running");
    assert_eq!(entry(&x)["device_model_args"], x_args.as_str());
    assert_eq!(entry(&x)["name"], shown.as_str());
    if !x_registered {
        assert_eq!(entry(&x)["name_label"], name, "the exact name, in JSON");
        assert_eq!(entry(&x)["status"], "Not registered");
    }

    // status
    let out = run(env, &["status"]);
    out.code(0);
    warned(&out);
    let y_line = line_starting(out.stdout(), "    - y-db (");
    assert_eq!(
        y_line,
        format!(
            "    - y-db (ID: {}, Priority: {}): halted, in sync",
            y_row.0,
            ["low", "medium", "high"][y_row.2 as usize]
        )
    );
    if x_registered {
        let x_stored = env.row(&x).unwrap().3.unwrap();
        let x_line = line_starting(out.stdout(), &format!("    - {x_stored} (ID: 9, "));
        assert!(
            x_line.contains("): running on xcp-test, in sync"),
            "{x_line}"
        );
        out.stdout_has("=== Unregistered VMs: 0 ===");
    } else {
        out.stdout_has("=== Unregistered VMs: 1 ===")
            .stdout_has(&format!("  - {shown} ({x}): running on xcp-test\n"));
    }
    nothing_forged(env, &out);

    let out = run(env, &["--json", "status"]);
    out.code(0);
    warned(&out);
    let doc = out.json();
    assert_eq!(doc["host"]["vms"], 2, "{doc}");
    assert_eq!(doc["host"]["states"][&y]["power_state"], "halted");
    assert_eq!(doc["host"]["states"][&y]["sync_state"], "in sync");
    assert!(doc["host"]["states"].get(ghost()).is_none(), "{doc}");
    let unregistered = doc["host"]["unregistered"].as_array().unwrap();
    if x_registered {
        assert!(unregistered.is_empty(), "{doc}");
        assert_eq!(doc["host"]["states"][&x]["power_state"], "running");
    } else {
        assert_eq!(unregistered.len(), 1, "{doc}");
        assert_eq!(unregistered[0]["uuid"], x.as_str());
        assert_eq!(unregistered[0]["name_label"], name);
        assert_eq!(unregistered[0]["power_state"], "running");
        assert_eq!(unregistered[0]["device_model_args"], x_args.as_str());
    }

    // check
    let out = run(env, &["check"]);
    out.code(0);
    warned(&out);
    out.stdout_has(&format!("in sync:  y-db ({y})\n"))
        .stdout_has(" 0 differ, 0 missing, 0 invalid, 0 manual, 0 unsplittable, 0 vm_id clashes, 0 pool records disagree\n");
    nothing_forged(env, &out);
    if x_registered {
        out.stdout_has(&format!("in sync:  {shown} ({x})\n"))
            .stdout_has("2 in sync, 0 fixed");
    } else {
        out.stdout_has("1 in sync, 0 fixed");
    }
    let out = run(env, &["--json", "check"]);
    out.code(0);
    warned(&out);
    let doc = out.json();
    for kind in [
        "differs", "missing", "invalid", "manual", "fixed", "clashes",
    ] {
        assert_eq!(doc[kind], json!([]), "{kind}: {doc}");
    }
    let in_sync = doc["in_sync"].as_array().unwrap();
    assert_eq!(in_sync.len(), if x_registered { 2 } else { 1 }, "{doc}");
    for e in in_sync {
        let u = e["vm_uuid"].as_str().unwrap();
        assert_eq!(e["device_model_args"], env.args(u).unwrap().as_str());
    }
    assert!(writes(env).is_empty(), "reading commands change nothing");
}

/// Every command that reads listings or writes, against a host where X's name forges `f`.
fn battery(f: Forgery) {
    let env = host(f);
    let name = forged_name(f);
    let (x, y) = (x(), y());
    forged_as_meant(&env, f);
    reads(&env, &name, false);

    // check --fix: Y's args drifted by hand; the fix comes from Y's own args and the database.
    env.host_vm_set(
        &y,
        "platform",
        json!([
            [
                "device-model-args",
                "-usb -device vgpu-stub,pool_id=A,priority=low,vm_id=7"
            ],
            ["timeoffset", "0"]
        ]),
    );
    let out = run(&env, &["check"]);
    out.code(5).stdout_has(&format!("differs:  y-db ({y}): "));
    warned(&out);
    nothing_forged(&env, &out);
    let out = run(&env, &["check", "--fix"]);
    out.code(0).stdout_has(&format!(
        "fixed:    y-db ({y}): priority=low (database: high); corrected"
    ));
    warned(&out);
    nothing_forged(&env, &out);
    assert_eq!(env.args(&y).as_deref(), Some(Y_ARGS));
    assert_eq!(writes(&env), vec![set(&env, &y, Y_ARGS)]);

    // adopt --all: nothing carries a device without a registration (the forged record does).
    let out = run(&env, &["adopt", "--all"]);
    out.code(0).stdout_is("0 adopted, 0 skipped\n");
    warned(&out);
    assert!(writes(&env).is_empty());
    assert_eq!(env.row(&ghost()), None);

    // register-vm X: it runs (whatever its name claims), so the restart is offered; "no".
    let out = run_with_input(&env, &["register-vm", "--vm-uuid", &x, "--vm-id=9"], "no\n");
    out.code(0)
        .stdout_has(&format!("  UUID: {x}\n  Name: {}\n", stored(&name)))
        .stdout_has("The VM is running: its vGPU settings take effect at its next start.")
        .stdout_has("Do you want to apply these settings? (yes/no): ")
        .stdout_has("Not restarted");
    warned(&out);
    let x_a = "-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=9";
    assert_eq!(env.args(&x).as_deref(), Some(x_a));
    assert_eq!(writes(&env), vec![set(&env, &x, x_a)]);
    assert_eq!(env.power(&x), "running");
    assert_eq!(env.row(&x), Some((9, "A".into(), 1, Some(stored(&name)))));
    assert_eq!(env.args(&y).as_deref(), Some(Y_ARGS));
    reads(&env, &name, true);

    // set-pool and update-vm on Y (halted): no question, exactly the database's values.
    let out = run(&env, &["set-pool", "--vm-uuid", &y, "--pool=B"]);
    out.code(0)
        .quiet()
        .stdout_has(&format!("VM: y-db ({y})\nPower state: halted\n"))
        .stdout_has("VM configuration updated successfully.");
    let y_b = "-usb -device vgpu-stub,pool_id=B,priority=high,vm_id=7";
    assert_eq!(writes(&env), vec![set(&env, &y, y_b)]);
    let out = run(
        &env,
        &["update-vm", "--vm-uuid", &y, "--priority=low", "--vm-id=8"],
    );
    out.code(0)
        .stdout_has("Power state: halted\n")
        .stdout_has("VM configuration updated successfully.");
    warned(&out); // the new vm_id is checked against the host's VMs: a listing
    let y_low = "-usb -device vgpu-stub,pool_id=B,priority=low,vm_id=8";
    assert_eq!(writes(&env), vec![set(&env, &y, y_low)]);
    assert_eq!(env.row(&y), Some((8, "B".into(), 0, Some("y-db".into()))));

    // X runs: a change asks first; "no" changes nothing...
    let out = run_with_input(
        &env,
        &["update-vm", "--vm-uuid", &x, "--priority=high"],
        "no\n",
    );
    out.code(4)
        .stdout_has("Power state: running\n")
        .stdout_has("This change requires stopping and restarting the VM.")
        .stderr_has("error: Operation cancelled.");
    assert!(writes(&env).is_empty());
    assert_eq!(env.row(&x), Some((9, "A".into(), 1, Some(stored(&name)))));
    // ...and "yes" stops it, writes, and starts it again with the new args.
    let out = run_with_input(&env, &["set-pool", "--vm-uuid", &x, "--pool=B"], "yes\n");
    out.code(0)
        .quiet()
        .stdout_has("Power state: running\n")
        .stdout_has("VM configuration updated successfully.");
    let x_b = "-usb -device vgpu-stub,pool_id=B,priority=medium,vm_id=9";
    assert_eq!(
        writes(&env),
        vec![
            strings(&["vm-shutdown", &format!("uuid={x}")]),
            set(&env, &x, x_b),
            strings(&["vm-start", &format!("uuid={x}"), &format!("on={HOST1}")]),
        ]
    );
    assert_eq!(env.power(&x), "running");
    assert_eq!(env.boots(&x), vec![Some(x_b.to_string())]);

    // The hook reads Y's args on their own: in sync, one call, nothing said.
    let hook = ["hook", "vm-pre-start", "-vmuuid", &y, "-reason", "none"];
    run(&env, &hook).code(0).quiet().stdout_is("");
    assert_eq!(env.calls(), vec![get_args(&y)]);
    env.clear_calls();
    // Drifted by hand: corrected to exactly the database's values (policy warn: exit 1).
    env.host_vm_set(
        &y,
        "platform",
        json!([["device-model-args", Y_ARGS], ["timeoffset", "0"]]),
    );
    let out = run(&env, &hook);
    out.code(1).quiet().stdout_has(&format!(
        "vgpu-admin: corrected the vGPU config of VM {y} ("
    ));
    assert_eq!(out.stdout().lines().count(), 1, "{}", out.stdout());
    assert_eq!(env.args(&y).as_deref(), Some(y_low));
    assert_eq!(writes(&env), vec![set(&env, &y, y_low)]);
    env.run(&hook).code(0);
    env.clear_calls();

    // remove-vm Y (halted): the device is taken out of Y's own args.
    let out = run(&env, &["remove-vm", "--vm-uuid", &y]);
    out.code(0)
        .quiet()
        .stdout_has("vGPU device removed; VM removed from the database.");
    // The args lose the device and the VM's pool record goes, its signature first.
    let mut stripped = vec![set(&env, &y, "-usb")];
    for key in ["sig", "pool", "priority", "vm-id"] {
        stripped.push(strings(&[
            "vm-param-remove",
            &format!("uuid={y}"),
            "param-name=other-config",
            &format!("param-key=vgpu-admin:{key}"),
        ]));
    }
    assert_eq!(writes(&env), stripped);
    assert_eq!(env.row(&y), None);

    // Y is unregistered and carries no device: the forged record's device is not adopted.
    let out = run(&env, &["adopt", "--all"]);
    out.code(0).stdout_is("0 adopted, 0 skipped\n");
    warned(&out);
    assert!(writes(&env).is_empty());
    assert_eq!(env.row(&y), None);

    // register-vm Y: from Y's own args.
    let out = run(
        &env,
        &[
            "register-vm",
            "--vm-uuid",
            &y,
            "--pool=A",
            "--priority=high",
            "--vm-id=7",
        ],
    );
    out.code(0).stdout_has("VM registered successfully:");
    warned(&out);
    assert_eq!(writes(&env), vec![set(&env, &y, Y_ARGS)]);
    assert_eq!(env.row(&y), Some((7, "A".into(), 2, Some("y-db".into()))));
    assert_eq!(env.power(&y), "halted");
    assert!(env.boots(&y).is_empty());
    reads(&env, &name, true);
}

#[test]
fn issue_10_a_forged_record_for_another_vm_is_never_believed() {
    battery(Forgery::Record);
}

#[test]
fn issue_10_a_repeated_power_state_in_a_vms_own_record_is_never_believed() {
    battery(Forgery::PowerState);
}

#[test]
fn issue_10_a_forged_record_for_a_vm_that_does_not_exist_is_never_believed() {
    battery(Forgery::Ghost);
}

#[test]
fn issue_10_an_unregistered_vm_is_adopted_from_its_own_args_not_the_forged_ones() {
    for by_uuid in [false, true] {
        let env = host(Forgery::Record);
        let (x, y) = (x(), y());
        env.sql().execute("DELETE FROM vms", []).unwrap();
        env.clear_calls();

        let out = run(&env, &["scan-vms"]);
        out.code(0);
        warned(&out);
        let y_line = line_starting(out.stdout(), &format!("UUID: {y} | "));
        assert_eq!(
            y_line,
            format!("UUID: {y} | Name: y-db | halted | manual vGPU device config")
        );
        out.stdout_has(&format!("      device-model-args: {Y_ARGS}\n"));
        let out = run(&env, &["check"]);
        out.code(0).stdout_has(&format!(
            "manual:   y-db ({y}): unregistered, carries '{Y_ARGS}' (see 'vgpu-admin adopt')"
        ));
        warned(&out);
        let out = run(&env, &["--json", "check"]);
        out.code(0);
        let doc = out.json();
        assert_eq!(
            doc["manual"],
            json!([{ "uuid": y, "name": "y-db", "device_model_args": Y_ARGS }])
        );

        let out = if by_uuid {
            run(&env, &["adopt", "--vm-uuid", &y])
        } else {
            run(&env, &["adopt", "--all"])
        };
        out.code(0).stdout_is(&format!(
            "adopted: y-db ({y}): pool A, priority high, vm_id 7\n1 adopted, 0 skipped\n"
        ));
        warned(&out);
        assert_eq!(env.row(&y), Some((7, "A".into(), 2, Some("y-db".into()))));
        assert_eq!(env.row(&x), None);
        assert_eq!(env.args(&y).as_deref(), Some(Y_ARGS));
        // The args were right already: written again only with Y's new pool record.
        assert_eq!(writes(&env), vec![set(&env, &y, Y_ARGS)]);
    }
}

#[test]
fn issue_10_forged_records_hold_no_vm_id_and_clash_with_nothing() {
    // Two VMs that do not exist: one carrying Y's vm_id 7, one carrying vm_id 31.
    let (x, y) = (x(), y());
    let ghost2 = uuid(0x667);
    let name = format!(
        "x-web\n{}\n{}{END}{}{END}{}{END}{}\n{}",
        field("power-state ( RO)", "running"),
        field("platform (MRW)", ""),
        fields(
            &ghost(),
            "g1",
            "running",
            "device-model-args: -device vgpu-stub,pool_id=A,priority=high,vm_id=7 -chardev socket,path=/tmp/evil"
        ),
        fields(
            &ghost2,
            "g2",
            "running",
            "device-model-args: -device vgpu-stub,pool_id=B,priority=low,vm_id=31"
        ),
        uuid_field(&x),
        field("name-label ( RW)", "x-web"),
    );
    let env = host_with(&name, true);
    assert!(raw_listing(&env).contains("vm_id=31"));

    let out = run(&env, &["check"]);
    out.code(0).stdout_has(
        "1 in sync, 0 fixed, 0 differ, 0 missing, 0 invalid, 0 manual, 0 unsplittable, 0 vm_id clashes, 0 pool records disagree",
    );
    warned(&out);
    let out = run(&env, &["--json", "check"]);
    out.code(0);
    assert_eq!(out.json()["clashes"], json!([]));

    // vm_id 31 is carried by no real VM: Y can take it.
    let out = run(&env, &["set-vm-id", "--vm-uuid", &y, "--vm-id=31"]);
    out.code(0)
        .stdout_has("VM configuration updated successfully.");
    warned(&out);
    let y31 = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=31";
    assert_eq!(writes(&env), vec![set(&env, &y, y31)]);
    // vm_id 7 is free again: X can take it (for its next start: it runs).
    let out = run(
        &env,
        &["register-vm", "--vm-uuid", &x, "--vm-id=7", "--no-restart"],
    );
    out.code(0);
    warned(&out);
    let x7 = "-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=7";
    assert_eq!(writes(&env), vec![set(&env, &x, x7)]);
    assert_eq!(env.row(&x).unwrap().0, 7);
    assert_eq!(env.row(&ghost()), None);
    assert_eq!(env.row(&ghost2), None);
}

#[test]
fn issue_10_a_name_with_map_separators_confuses_nothing() {
    let env = Env::new();
    let (x, y, z) = (x(), y(), uuid(3));
    let name = "web; device-model-args: -device vgpu-stub,vm_id=1";
    let other = "k: v; timeoffset: 5; power-state ( RO): halted; platform (MRW): device-model-args: -device vgpu-stub,pool_id=B,priority=low,vm_id=1";
    env.host_vm(vm(&x, name, "halted", Some(X_ARGS)));
    env.host_vm(vm(&z, other, "running", None));
    env.registered(
        vm(
            &y,
            "y-db",
            "halted",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1"),
        ),
        1,
        "A",
        2,
    );
    env.clear_calls();

    // No line break: the listing checks out (no warning), and the names stay names.
    let out = run(&env, &["scan-vms"]);
    out.code(0)
        .quiet()
        .stdout_has(&format!(
            "UUID: {x} | Name: {name} | halted | Not registered\n      device-model-args: -usb\n"
        ))
        .stdout_has(&format!(
            "UUID: {z} | Name: {other} | running on xcp-test | Not registered\n      device-model-args: (none)\n"
        ))
        .stdout_lacks("manual vGPU device config");
    let doc = run(&env, &["--json", "scan-vms"]).code(0).json();
    let unregistered = doc["unregistered"].as_array().unwrap();
    assert_eq!(unregistered.len(), 2);
    for e in unregistered {
        let expected = if e["uuid"] == x { name } else { other };
        assert_eq!(e["name_label"], expected);
        assert_eq!(e["name"], expected);
    }
    run(&env, &["check"]).code(0).quiet().stdout_has(
        "1 in sync, 0 fixed, 0 differ, 0 missing, 0 invalid, 0 manual, 0 unsplittable, 0 vm_id clashes, 0 pool records disagree",
    );
    run(&env, &["status"])
        .code(0)
        .quiet()
        .stdout_has(&format!("  - {name} ({x}): halted\n"))
        .stdout_has(&format!("  - {other} ({z}): running on xcp-test\n"));
    run(&env, &["adopt", "--all"])
        .code(0)
        .quiet()
        .stdout_is("0 adopted, 0 skipped\n");
    assert!(writes(&env).is_empty());

    // Registered by that name: the name is stored as it is, the args are the VM's own.
    run(
        &env,
        &["register-vm", &format!("--vm-name={name}"), "--vm-id=2"],
    )
    .code(0)
    .quiet()
    .stdout_has(&format!("  Name: {name}\n  VM ID: 2\n"));
    let x2 = "-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=2";
    assert_eq!(writes(&env), vec![set(&env, &x, x2)]);
    assert_eq!(env.row(&x), Some((2, "A".into(), 1, Some(name.into()))));
    run(&env, &["scan-vms"]).code(0).quiet().stdout_has(&format!(
        "UUID: {x} | Name: {name} | Pool: A | Priority: medium (1) | VM ID: 2 | halted | in sync\n      device-model-args: {x2}\n"
    ));
    run(&env, &["check"])
        .code(0)
        .quiet()
        .stdout_has(&format!("in sync:  {name} ({x})\n"))
        .stdout_has(
            "2 in sync, 0 fixed, 0 differ, 0 missing, 0 invalid, 0 manual, 0 unsplittable, 0 vm_id clashes, 0 pool records disagree",
        );
    run(
        &env,
        &["set-pool", &format!("--vm-name={name}"), "--pool=B"],
    )
    .code(0)
    .quiet();
    assert_eq!(
        writes(&env),
        vec![set(
            &env,
            &x,
            "-usb -device vgpu-stub,pool_id=B,priority=medium,vm_id=2"
        )]
    );
    assert_eq!(
        env.args(&y).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1")
    );
}

#[test]
fn issue_10_an_ansi_escape_in_a_name_is_printed_escaped() {
    let name = "\u{1b}[31mred\u{1b}[0m alert\u{7}";
    let shown = "\\u{1b}[31mred\\u{1b}[0m alert\\u{7}";
    assert_eq!(escaped(name), shown);
    let env = host_with(name, false);
    let (x, y) = (x(), y());

    // No line break: the listing checks out, no warning; `clean` checks no raw ESC is printed.
    run(&env, &["scan-vms"])
        .code(0)
        .quiet()
        .stdout_has(&format!(
            "UUID: {x} | Name: {shown} | running on xcp-test | Not registered\n"
        ));
    run(&env, &["status"])
        .code(0)
        .quiet()
        .stdout_has(&format!("  - {shown} ({x}): running on xcp-test\n"));
    for cmd in ["scan-vms", "status", "check"] {
        let out = run(&env, &["--json", cmd]);
        out.code(0).quiet();
        out.json();
    }
    let doc = run(&env, &["--json", "scan-vms"]).json();
    assert_eq!(doc["unregistered"][0]["name_label"], name);
    assert_eq!(doc["unregistered"][0]["name"], shown);

    // Registered: the stored name is escaped, and so is every message naming the VM.
    let out = run_with_input(&env, &["register-vm", "--vm-uuid", &x, "--vm-id=9"], "no\n");
    out.code(0)
        .stdout_has(&format!("  Name: {shown}\n"))
        .stderr_has(&format!("stored as '{shown}'"));
    assert_eq!(env.row(&x).unwrap().3.as_deref(), Some(shown));
    run(&env, &["check"])
        .code(0)
        .quiet()
        .stdout_has(&format!("in sync:  {shown} ({x})\n"));
    run(&env, &["status"]).code(0).quiet().stdout_has(&format!(
        "    - {shown} (ID: 9, Priority: medium): running on xcp-test, in sync"
    ));
    run(&env, &["show-vm", "--vm-uuid", &x])
        .code(0)
        .stdout_has(&format!("  Name: {shown}\n"));
    run_with_input(&env, &["set-pool", "--vm-uuid", &x, "--pool=B"], "no\n")
        .code(4)
        .stdout_has(&format!("VM: {shown} ({x})\n"));
    // Given on the command line, it is refused (control character), and shown escaped.
    env.clear_calls();
    run(&env, &["show-vm", &format!("--vm-name={name}")])
        .code(2)
        .one_error_line()
        .stderr_has("\\u{1b}[31mred");
    assert!(env.calls().is_empty());
    assert_eq!(env.args(&y).as_deref(), Some(Y_ARGS));
}

#[test]
fn issue_10_a_carriage_return_ending_a_name_is_kept_and_shown_escaped() {
    // xe prints the name raw: "name-label ( RW): web01\r\n". The \r belongs to the name: a VM
    // named "web01\r" must not pass for the VM "web01", in output or in what is stored.
    let env = Env::new();
    let (x, y) = (x(), y());
    env.registered(vm(&y, "web01", "running", Some(Y_ARGS)), 7, "A", 2);
    env.host_vm(vm(&x, "web01\r", "running", Some(X_ARGS)));
    env.clear_calls();

    let doc = run(&env, &["--json", "scan-vms"]).code(0).json();
    assert_eq!(doc["unregistered"][0]["uuid"], x.as_str());
    assert_eq!(doc["unregistered"][0]["name_label"], "web01\r", "exact");
    assert_eq!(doc["unregistered"][0]["name"], "web01\\r", "escaped");
    run(&env, &["scan-vms"]).code(0).stdout_has(&format!(
        "UUID: {x} | Name: web01\\r | running on xcp-test | Not registered\n"
    ));
    run(&env, &["status"])
        .code(0)
        .stdout_has(&format!("  - web01\\r ({x}): running on xcp-test\n"));
    let out = run(&env, &["register-vm", "--vm-uuid", &x, "--no-restart"]);
    out.code(0)
        .stdout_has("  Name: web01\\r\n")
        .stderr_has("stored as 'web01\\r'");
    assert_eq!(env.row(&x).unwrap().3.as_deref(), Some("web01\\r"));
    run(&env, &["check"])
        .code(0)
        .stdout_has(&format!("in sync:  web01 ({y})\n"))
        .stdout_has(&format!("in sync:  web01\\r ({x})\n"));
}

#[test]
fn issue_10_a_forged_name_stored_by_the_earlier_tool_is_printed_escaped() {
    // The earlier tool stored name-labels as xe gave them: a database it wrote can hold X's
    // name raw (vgpu-admin reads such rows and reports them invalid). Printed, the name must
    // still be escaped, like a name from xe. G is registered the same way and gone from the host.
    let f = Forgery::Record;
    let name = forged_name(f);
    let env = Env::new();
    let (x, y, g) = (x(), y(), uuid(9));
    env.registered(vm(&x, &name, "running", Some(X_ARGS)), 9, "A", 1);
    env.registered(vm(&y, "y-db", "halted", Some(Y_ARGS)), 7, "A", 2);
    let gone = "gone\n    - y-db (ID: 7, Priority: high): running on xcp-test, in sync\u{1b}[2K"
        .to_string();
    env.seed(&[(10, &g, Some(&gone), "A", 0)]);
    env.clear_calls();
    forged_as_meant(&env, f);

    let mut failures = Vec::new();
    let commands: [&[&str]; 7] = [
        &["status"],
        &["scan-vms"],
        &["check"],
        &["list-vms"],
        &["show-vm", "--vm-uuid", &x],
        &["show-vm", "--vm-uuid", &g],
        &["show-pool", "--pool-id=A"],
    ];
    for args in commands {
        let out = env.run(args);
        let mut problems = Vec::new();
        if ![0, 5].contains(&out.status()) {
            problems.push(format!("exit status {}", out.status()));
        }
        for raw in [&name, &gone] {
            let second_line: String = raw
                .lines()
                .nth(1)
                .unwrap()
                .chars()
                .take_while(|c| !c.is_control())
                .collect();
            if out.stdout().lines().any(|l| l.starts_with(&second_line)) {
                problems.push(format!("a raw line of a name: {second_line:?}"));
            }
        }
        if out.stdout().chars().any(|c| c.is_control() && c != '\n') {
            problems.push("a raw control character".to_string());
        }
        // On stderr only the listing's warning (the forged listing is read VM by VM).
        if let Some(line) = out.stderr().lines().find(|l| !l.starts_with(WARNING)) {
            problems.push(format!("stderr: {line}"));
        }
        let shows_x = args[0] != "show-vm" || args[2] == x;
        let shows_g = args[0] != "show-vm" || args[2] == g;
        let x_shown = escaped(&name).chars().take(40).collect::<String>();
        if shows_x && !out.stdout().contains(&x_shown) {
            problems.push("X's name not shown escaped".to_string());
        }
        if shows_g && args[0] != "check" && !out.stdout().contains("gone\\n    - y-db (ID: 7") {
            problems.push("G's name not shown escaped".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{args:?}: {}\n--- stdout\n{}",
                problems.join("; "),
                out.stdout()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(writes(&env).is_empty());
}
