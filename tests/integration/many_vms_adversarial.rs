//! Issue 16, changing many VMs at once, tried the way a careful reviewer of a root-run tool
//! would: VM names an unprivileged VM owner controls (forged listing records, glob and shell
//! characters, control and bidi characters), VMs in a selection that cannot be changed,
//! configuration files of the wrong types, shapes and paths, two runs at once, xe failing for
//! one VM in a wave, a signal mid-run, and `plan` after a run was killed.

use crate::common::{uuid, vm, Env, Outcome};
use crate::many_vms::{calls_for, twenty_users};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A VM's args with the stub device.
fn stub(pool: &str, priority: &str, vm_id: u32) -> String {
    format!("-device vgpu-stub,pool_id={pool},priority={priority},vm_id={vm_id}")
}

/// The xe calls that change something, each an argv.
fn changing_calls(env: &Env) -> Vec<Vec<String>> {
    env.calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c[0].as_str(),
                "vm-param-set" | "vm-param-remove" | "vm-start" | "vm-shutdown"
            )
        })
        .collect()
}

/// Three registered VMs in pool B (vm_ids 1-3, named u1-u3), VM `running` running, the others
/// halted.
fn three_vms(running: u32) -> Env {
    let env = Env::new();
    for n in 1..=3u32 {
        let power = if n == running { "running" } else { "halted" };
        env.registered(
            vm(
                &uuid(n),
                &format!("u{n}"),
                power,
                Some(&stub("B", "medium", n)),
            ),
            i64::from(n),
            "B",
            1,
        );
    }
    env
}

fn count_rows(env: &Env, table: &str) -> i64 {
    env.sql()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

/// Polls `ready` until it holds (20 s at most).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `cmd` in the background, in its own process group (as a shell runs a job), output
/// piped.
fn background(mut cmd: Command) -> Child {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn vgpu-admin")
}

/// Waits for a background run and returns its outcome (status -1 when killed by a signal).
fn finish(child: Child) -> Outcome {
    let out = child.wait_with_output().expect("wait");
    Outcome::from_parts(
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `signal` to the run's process group (Ctrl-C, a dropped SSH session, systemd's stop).
fn signal_group(child: &Child, signal: i32) {
    // SAFETY: kill with the process group id of our own child and a valid signal.
    let rc = unsafe { libc::kill(-(child.id() as i32), signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// No raw control character (but the newlines between lines) and no Unicode bidi control in
/// `text`.
#[track_caller]
fn printable_only(text: &str) {
    for c in text.chars() {
        assert!(
            !(c.is_control() && c != '\n'),
            "raw control character {c:?} printed:\n{text:?}"
        );
        assert!(
            !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'),
            "raw bidi control {c:?} printed:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Names the VM owner controls.

/// A field line of the listing, padded as xe pads it.
fn field(key: &str, value: &str) -> String {
    format!("{key:>22}: {value}")
}

fn uuid_field(u: &str) -> String {
    format!("{:<22}: {u}", "uuid ( RO)")
}

/// What the forged record claims for Y.
const EVIL: &str =
    "-device vgpu-stub,pool_id=A,priority=high,vm_id=666 -chardev socket,path=/tmp/evil";

/// X's name: its record ends early and a whole record follows claiming that Y is halted (it
/// runs), named `y-db`, with evil args; then X's record starts again.
fn forging_name(x: &str, y: &str) -> String {
    let end = "\n\n\n";
    format!(
        "x-web\n{}\n{}\n{}\n{}{end}{}\n{}\n{}\n{}\n{}\n{}{end}{}\n{}",
        field("power-state ( RO)", "halted"),
        field("resident-on ( RO)", "<not in database>"),
        field("other-config (MRW)", ""),
        field("platform (MRW)", "timeoffset: 0"),
        uuid_field(y),
        field("name-label ( RW)", "y-db"),
        field("power-state ( RO)", "halted"),
        field("resident-on ( RO)", "<not in database>"),
        field("other-config (MRW)", ""),
        field(
            "platform (MRW)",
            &format!("device-model-args: {EVIL}; timeoffset: 0")
        ),
        uuid_field(x),
        field("name-label ( RW)", "x-web"),
    )
}

#[test]
fn issue_16_a_name_forging_listing_records_selects_and_changes_only_the_real_vms() {
    let env = Env::new();
    let (x, y, z) = (uuid(1), uuid(2), uuid(3));
    env.registered(
        vm(
            &x,
            &forging_name(&x, &y),
            "running",
            Some(&stub("B", "medium", 1)),
        ),
        1,
        "B",
        1,
    );
    env.registered(
        vm(&y, "y-db", "running", Some(&stub("B", "medium", 2))),
        2,
        "B",
        1,
    );
    env.registered(
        vm(&z, "x-web", "halted", Some(&stub("B", "medium", 3))),
        3,
        "B",
        1,
    );
    env.clear_calls();

    // --name matches the whole real name-label: X's name only starts with "x-web", and the
    // forged record's "y-db" is not a VM.
    let out = env.run(&[
        "--dry-run",
        "set-priority",
        "--name=x-web",
        "--priority=low",
    ]);
    out.code(0)
        .stderr_has("warning: the xe VM listing did not check out (")
        .stdout_has(&format!("x-web ({z})  halted"))
        .stdout_has("1 VM to change, 0 of them restarted; 0 already as asked.\n")
        .stdout_lacks(&x);
    let out = env.run(&["--dry-run", "set-priority", "--name=y-db", "--priority=low"]);
    out.code(0)
        .stderr_has("warning: the xe VM listing did not check out (")
        .stdout_has(&format!("y-db ({y})  running"))
        .stdout_has("1 VM to change, 1 of them restarted; 0 already as asked.\n")
        .stdout_lacks(&x);

    // Everything: Y is seen running (it is) and restarted, X's name stays on its row, escaped.
    let out = env.run(&["--yes", "set-priority", "--all", "--priority=high"]);
    out.code(0);
    for line in out.stderr().lines() {
        assert!(line.starts_with("warning: "), "stderr: {line:?}");
    }
    printable_only(out.stdout());
    for line in out.stdout().lines() {
        let t = line.trim_start();
        for key in [
            "uuid ( RO)",
            "name-label ( RW)",
            "power-state ( RO)",
            "platform (MRW)",
        ] {
            assert!(
                !t.starts_with(key),
                "a line of a name printed raw: {line:?}"
            );
        }
    }
    out.stdout_has(&format!("y-db ({y})"))
        .stdout_has("3 VMs to change, 2 of them restarted; 0 already as asked.\n");
    let y_row = out
        .stdout()
        .lines()
        .find(|l| l.starts_with(&format!("y-db ({y})")) && l.contains("B, high, 2"))
        .expect("Y's plan row");
    assert!(
        y_row.contains(" running ") && y_row.ends_with("yes"),
        "{y_row}"
    );
    assert_eq!(env.args(&y), Some(stub("B", "high", 2)));
    assert_eq!(env.boots(&y), vec![Some(stub("B", "high", 2))]);
    assert_eq!(env.args(&x), Some(stub("B", "high", 1)));
    assert_eq!(env.power(&x), "running");
    assert_eq!(env.args(&z), Some(stub("B", "high", 3)));
    for call in changing_calls(&env) {
        let target = call[1].strip_prefix("uuid=").unwrap_or_default();
        assert!([&x, &y, &z].contains(&&target.to_string()), "{call:?}");
        let text = call
            .iter()
            .filter(|a| !a.starts_with("other-config:vgpu-admin:sig="))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        for word in ["666", "evil", "chardev"] {
            assert!(!text.contains(word), "forged text written: {call:?}");
        }
    }
}

#[test]
fn issue_16_name_patterns_select_exactly_and_each_vm_is_one_escaped_line() {
    let env = Env::new();
    let names = [
        "web-*",
        "web-[1]",
        "web-1",
        "web-10",
        "db \"main\" $(x) `id`",
        "tab\tname",
        "esc\x1b[31mred\r",
        "new\nline",
    ];
    for (i, n) in names.iter().enumerate() {
        let id = i as u32 + 1;
        env.registered(
            vm(&uuid(id), n, "halted", Some(&stub("B", "medium", id))),
            i64::from(id),
            "B",
            1,
        );
    }
    // Which VMs (by vm_id) each pattern selects.
    let cases: [(&str, &[u32]); 9] = [
        ("web-[*]", &[1]),
        ("web-?", &[1, 3]),
        ("web-[[]1]", &[2]),
        ("web-*", &[1, 2, 3, 4]),
        ("*$(x) `id`", &[5]),
        ("tab?name", &[6]),
        ("new?line", &[8]),
        ("esc*", &[7]),
        ("*", &[1, 2, 3, 4, 5, 6, 7, 8]),
    ];
    for (pattern, ids) in cases {
        let out = env.run(&[
            "--dry-run",
            "set-priority",
            &format!("--name={pattern}"),
            "--priority=high",
        ]);
        out.code(0);
        printable_only(out.stdout());
        for id in 1..=8u32 {
            assert_eq!(
                out.stdout().contains(&uuid(id)),
                ids.contains(&id),
                "--name={pattern}, vm_id {id}:\n{}",
                out.stdout()
            );
        }
        // A heading, a row per VM, the summary and the dry run's line.
        assert_eq!(
            out.stdout().lines().count(),
            ids.len() + 3,
            "--name={pattern}:\n{}",
            out.stdout()
        );
    }
    // Case-sensitive, whole name, quotes are not shell quoting.
    for pattern in ["WEB-1", "web-1 ", "'web-1'", "web"] {
        env.run(&[
            "--dry-run",
            "set-priority",
            &format!("--name={pattern}"),
            "--priority=high",
        ])
        .code(3)
        .one_error_line()
        .stderr_has("error: no registered VM matches the selection --name=");
    }
    // A control character in the pattern is refused, not matched.
    env.run(&[
        "--dry-run",
        "set-priority",
        "--name=tab\tname",
        "--priority=high",
    ])
    .code(2)
    .one_error_line()
    .stderr_has("it holds a control character");
    assert!(changing_calls(&env).is_empty());
}

#[test]
fn issue_16_a_bidi_override_in_a_name_is_escaped_in_the_plan() {
    let env = Env::new();
    // On a bidi-aware terminal the row reads "...exe.pdf" and the columns after it reversed.
    let name = "invoice\u{202e}fdp.exe";
    env.registered(
        vm(&uuid(1), name, "running", Some(&stub("B", "medium", 1))),
        1,
        "B",
        1,
    );
    let out = env.run(&["--dry-run", "set-pool", "--all", "--pool=A"]);
    out.code(0).stdout_has(&uuid(1));
    printable_only(out.stdout());
}

// ---------------------------------------------------------------------------------------------
// VMs that cannot be changed, inside a selection.

#[test]
fn issue_16_a_paused_suspended_unsplittable_or_gone_vm_refuses_the_whole_selection() {
    let env = Env::new();
    let u: Vec<String> = (1..=6).map(uuid).collect();
    env.registered(
        vm(&u[0], "a", "paused", Some(&stub("B", "medium", 1))),
        1,
        "B",
        1,
    );
    env.registered(
        vm(
            &u[1],
            "b",
            "running",
            Some("-device vgpu-stub,pool_id=B,vm_id=2 -smbios \"type=1"),
        ),
        2,
        "B",
        1,
    );
    // Registered, gone from the pool.
    env.seed(&[(3, &u[2], Some("c"), "B", 1)]);
    env.registered(
        vm(&u[3], "d", "running", Some(&stub("B", "medium", 4))),
        4,
        "B",
        1,
    );
    env.registered(
        vm(&u[4], "e", "suspended", Some(&stub("B", "medium", 5))),
        5,
        "B",
        1,
    );
    env.registered(
        vm(&u[5], "f", "halted", Some(&stub("B", "medium", 6))),
        6,
        "B",
        1,
    );
    let before = env.db_bytes();
    env.clear_calls();

    let out = env.run(&["--yes", "set-pool", "--all", "--pool=A"]);
    out.code(1)
        .stdout_is("")
        .stderr_has(&format!("error: VM a ({}) is paused: ", u[0]))
        .stderr_has(&format!(
            "error: VM b ({}): the VM's device-model-args cannot be split",
            u[1]
        ))
        .stderr_has(&format!("error: VM {} is not in the pool", u[2]))
        .stderr_has(&format!("error: VM e ({}) is suspended: ", u[4]))
        .stderr_has(
            "error: 4 of the selected VMs cannot be changed (above); nothing was changed\n",
        );
    assert_eq!(out.stderr().lines().count(), 5, "{}", out.stderr());
    // The same under --json: nothing on stdout.
    env.run(&["--yes", "--json", "set-pool", "--all", "--pool=A"])
        .code(1)
        .stdout_is("")
        .stderr_has("4 of the selected VMs cannot be changed");
    // --no-restart lets the paused and suspended ones through, not the others.
    env.run(&["--yes", "set-pool", "--all", "--pool=A", "--no-restart"])
        .code(1)
        .stderr_has(
            "error: 2 of the selected VMs cannot be changed (above); nothing was changed\n",
        );
    // remove-vm: a registration gone from the pool can go; the rest still refuse the run.
    env.run(&["--yes", "remove-vm", "--all"])
        .code(1)
        .stderr_has(
            "error: 3 of the selected VMs cannot be changed (above); nothing was changed\n",
        );
    assert_eq!(env.db_bytes(), before, "database unchanged");
    assert!(
        changing_calls(&env).is_empty(),
        "{:?}",
        changing_calls(&env)
    );
    assert_eq!(env.power(&u[3]), "running");

    // The VMs that can be changed, alone: done.
    env.run(&["--yes", "set-pool", "--vm-id=4,6", "--pool=A"])
        .code(0);
    assert_eq!(env.args(&u[3]), Some(stub("A", "medium", 4)));
    assert_eq!(env.power(&u[3]), "running");
    assert_eq!(env.args(&u[5]), Some(stub("A", "medium", 6)));
}

// ---------------------------------------------------------------------------------------------
// Configuration files.

#[test]
fn issue_16_files_of_wrong_types_shapes_and_paths_are_refused_whole_touching_nothing() {
    let (env, uuids) = twenty_users();
    let entry = |u: &str, vm_id: &str, priority: &str| {
        format!("[[vm]]\nuuid = \"{u}\"\npool = \"A\"\npriority = {priority}\nvm_id = {vm_id}\n\n")
    };
    let before = env.db_bytes();
    env.clear_calls();
    let dir = env.dir.path().to_path_buf();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // (file, text, the error lines expected, with the file's absolute path in front)
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "float.toml",
            entry(&uuids[0], "7.5", "\"low\""),
            vec![":5: invalid vm_id 7.5: expected a whole number, without quotes".into()],
        ),
        (
            "bool.toml",
            entry(&uuids[0], "1", "true"),
            vec![":4: invalid priority true: expected a whole number, without quotes".into()],
        ),
        (
            "huge.toml",
            entry(&uuids[0], "99999999999999999999999", "\"low\""),
            vec![":5: ".into()],
        ),
        (
            "negative.toml",
            entry(&uuids[0], "-1", "\"low\""),
            vec![":5: invalid vm-id '-1'".into()],
        ),
        (
            "case.toml",
            format!(
                "{}{}",
                entry(&uuids[0], "1", "0"),
                entry(&uuids[0].to_uppercase(), "2", "0")
            ),
            vec![format!(
                ":8: VM {} is in the file twice (also line 1)",
                uuids[0]
            )],
        ),
        (
            "swap.toml",
            format!(
                "{}{}",
                entry(&uuids[0], "2", "1"),
                entry(&uuids[1], "1", "1")
            ),
            vec![
                format!(
                    ":1: VM user-01 ({}): vm-id 2 is already taken by VM {}",
                    uuids[0], uuids[1]
                ),
                format!(
                    ":7: VM user-02 ({}): vm-id 1 is already taken by VM {}",
                    uuids[1], uuids[0]
                ),
            ],
        ),
        (
            "table.toml",
            format!("[vm]\nuuid = \"{}\"\n", uuids[0]),
            vec![":1: invalid type: map, expected a sequence".into()],
        ),
        (
            "typo.toml",
            format!("[[vms]]\nuuid = \"{}\"\n", uuids[0]),
            vec![":1: unknown field `vms`".into()],
        ),
    ];
    for (name, text, errors) in &cases {
        let file = env.file(name, text);
        let file = file.to_str().unwrap();
        let out = env.run(&["--yes", "apply", "--prune", file]);
        out.code(2).stdout_is("");
        for e in errors {
            out.stderr_has(&format!("error: {file}{e}"));
        }
        out.stderr_has(&format!("error: {file}: "))
            .stderr_has("the file was refused whole, nothing was changed\n");
        assert_eq!(
            out.stderr().lines().count(),
            errors.len() + 1,
            "{name}: {}",
            out.stderr()
        );
    }

    // Not a text file, a directory, a missing file: one error line each.
    std::fs::write(dir.join("binary.toml"), b"[[vm]]\nuuid = \"\xff\xfe\"\n").unwrap();
    env.run(&["--yes", "apply", &path("binary.toml")])
        .code(2)
        .one_error_line()
        .stderr_has("is not UTF-8 text: not a configuration file");
    env.run(&["--yes", "apply", dir.to_str().unwrap()])
        .code(2)
        .one_error_line()
        .stderr_has("cannot read ");
    // A relative path: messages name the file by its absolute path.
    let mut cmd = env.command(["--yes", "apply", "float.toml"]);
    cmd.current_dir(&dir);
    Outcome::of(cmd, None).code(2).stderr_has(&format!(
        "error: {}:5: invalid vm_id 7.5: expected a whole number, without quotes",
        path("float.toml")
    ));
    let mut cmd = env.command(["--yes", "apply", "nothere.toml"]);
    cmd.current_dir(&dir);
    Outcome::of(cmd, None)
        .code(2)
        .one_error_line()
        .stderr_has(&format!("cannot read {}", path("nothere.toml")));

    assert_eq!(env.db_bytes(), before, "database unchanged");
    assert!(
        changing_calls(&env).is_empty(),
        "{:?}",
        changing_calls(&env)
    );

    // An empty file: nothing to do; with --prune every registration would go, shown in full
    // and asked for (a "no" changes nothing).
    let empty = env.file("empty.toml", "# nothing here\n");
    let empty = empty.to_str().unwrap();
    env.run(&["--yes", "apply", empty])
        .code(0)
        .stdout_has("No changes needed: the 0 VMs selected already are as asked.");
    let out = env.run_with_input(&["apply", "--prune", empty], "no\n");
    out.code(4)
        .stdout_has("20 VMs to change, 10 of them restarted; 0 already as asked.\n")
        .stderr_has("Operation cancelled.");
    assert_eq!(out.stdout().matches("(removed)").count(), 20);
    assert_eq!(env.vm_count(), 20);
    assert!(
        changing_calls(&env).is_empty(),
        "{:?}",
        changing_calls(&env)
    );
}

#[test]
fn issue_16_plan_changes_nothing_even_with_an_interrupted_run_recorded() {
    let env = three_vms(2);
    let y = uuid(2);
    // The run is killed while xe stops VM 2 (the stop itself goes through: xe is not ours).
    env.fault_raw(
        serde_json::json!({"command": "vm-shutdown", "uuid": y, "once": true, "delay_ms": 600}),
    );
    let mut child = env
        .command(["--yes", "set-pool", "--vm-id=1-3", "--pool=A"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("xe vm-shutdown", || calls_for(&env, "vm-shutdown", &y) == 1);
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill with the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    child.wait().unwrap();
    wait_until("VM 2 to halt", || env.power(&y) == "halted");
    assert_eq!(count_rows(&env, "change_journal"), 1);

    // plan "shows what applying a file would change, and changes nothing".
    let file = env.file(
        "f.toml",
        &format!("[[vm]]\nuuid = \"{y}\"\npool = \"A\"\npriority = \"medium\"\nvm_id = 2\n"),
    );
    let file = file.to_str().unwrap();
    env.clear_calls();
    let before = env.db_bytes();
    let out = env.run(&["plan", file]);
    // It says the change is unfinished, and leaves it so.
    out.code(0)
        .stderr_has(&format!("warning: an interrupted set-pool of VM {y} "))
        .stderr_has("is unfinished: 'vgpu-admin recover' (or the next change to that VM) completes or undoes it");
    assert!(
        changing_calls(&env).is_empty(),
        "plan wrote: {:?}",
        changing_calls(&env)
    );
    assert_eq!(env.power(&y), "halted");
    assert_eq!(env.args(&y), Some(stub("B", "medium", 2)));
    assert_eq!(env.db_bytes(), before, "database unchanged");
    assert_eq!(count_rows(&env, "change_journal"), 1);

    // apply (or the same command again) is what finishes it: VM 2 started once, as asked.
    env.run(&["--yes", "apply", file]).code(0);
    assert_eq!(env.power(&y), "running");
    assert_eq!(env.boots(&y), vec![Some(stub("A", "medium", 2))]);
    assert_eq!(count_rows(&env, "change_journal"), 0);
}

#[test]
fn issue_16_plan_of_a_one_vm_file_says_1_vm() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(
        vm(&u, "one", "halted", Some(&stub("B", "medium", 1))),
        1,
        "B",
        1,
    );
    let file = env.file(
        "one.toml",
        &format!("[[vm]]\nuuid = \"{u}\"\npool = \"B\"\npriority = \"medium\"\nvm_id = 1\n"),
    );
    env.run(&["plan", file.to_str().unwrap()])
        .code(0)
        .stdout_is(&format!(
            "No changes: the 1 VM of {} is registered and configured as it says.\n",
            file.display()
        ));
}

// ---------------------------------------------------------------------------------------------
// Faults, signals, runs at once.

#[test]
fn issue_16_a_failed_write_or_refused_stop_leaves_that_vm_whole_and_json_stays_one_document() {
    let (env, uuids) = twenty_users();
    // user-04 (running): its args cannot be written; user-06 (running): xe refuses the stop;
    // user-08 (running): the guest ignores a clean shutdown (forced off, then fine).
    env.fault(
        "vm-param-set",
        Some(&uuids[3]),
        "Error: the pool master is busy",
        false,
    );
    env.fault(
        "vm-shutdown",
        Some(&uuids[5]),
        "The VM is locked by another operation",
        false,
    );
    env.host_vm_set(&uuids[7], "ignores_shutdown", serde_json::json!(true));
    env.clear_calls();
    let out = env.run_with_input(
        &[
            "--json",
            "set-pool",
            "--vm-id=1-10",
            "--pool=A",
            "--parallel=64",
        ],
        "yes\n",
    );
    out.code(1)
        .stderr_has("Do you want to apply these changes to 10 VMs? (yes/no): ")
        .stderr_has(&format!(
            "user-04 ({})  FAILED           write the device-model-args\n",
            uuids[3]
        ))
        .stderr_has(&format!(
            "user-06 ({})  FAILED           stop the VM\n",
            uuids[5]
        ));
    // stdout is the JSON document alone.
    let doc = out.json();
    let outcomes = doc["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 10);
    for o in outcomes {
        let (outcome, step) = if o["uuid"] == uuids[3].as_str() {
            ("failed", serde_json::json!("write the device-model-args"))
        } else if o["uuid"] == uuids[5].as_str() {
            ("failed", serde_json::json!("stop the VM"))
        } else {
            ("done", serde_json::Value::Null)
        };
        assert_eq!(
            (o["outcome"].as_str(), &o["step"]),
            (Some(outcome), &step),
            "{o}"
        );
    }
    // The failed VMs: row and args both old, running again (user-04 started with its old args).
    for (i, booted) in [(3usize, 1usize), (5, 0)] {
        let n = i as u32 + 1;
        assert_eq!(env.row(&uuids[i]).unwrap().1, "B", "user {n}");
        assert_eq!(
            env.args(&uuids[i]),
            Some(stub("B", "medium", n)),
            "user {n}"
        );
        assert_eq!(env.power(&uuids[i]), "running", "user {n}");
        assert_eq!(env.boots(&uuids[i]).len(), booted, "user {n}");
    }
    assert_eq!(env.boots(&uuids[3]), vec![Some(stub("B", "medium", 4))]);
    // The others: new, running ones running with the new args.
    for i in [0usize, 1, 2, 4, 6, 7, 8, 9] {
        let n = i as u32 + 1;
        assert_eq!(env.row(&uuids[i]).unwrap().1, "A", "user {n}");
        assert_eq!(
            env.args(&uuids[i]),
            Some(stub("A", "medium", n)),
            "user {n}"
        );
        if n.is_multiple_of(2) {
            assert_eq!(env.power(&uuids[i]), "running", "user {n}");
            assert_eq!(env.boots(&uuids[i]), vec![Some(stub("A", "medium", n))]);
        }
    }
    assert_eq!(count_rows(&env, "change_journal"), 0);

    // The faults gone, the same command again, one VM at a time: only the two failed ones.
    let mut state = env.host();
    state["faults"] = serde_json::json!([]);
    std::fs::write(&env.xe_state, state.to_string()).unwrap();
    env.run(&[
        "--yes",
        "set-pool",
        "--vm-id=1-10",
        "--pool=A",
        "--parallel=1",
    ])
    .code(0)
    .stdout_has("2 VMs to change, 2 of them restarted; 8 already as asked.\n");
    for (i, u) in uuids.iter().enumerate().take(10) {
        let n = i as u32 + 1;
        assert_eq!(env.args(u), Some(stub("A", "medium", n)), "user {n}");
    }
    assert_eq!(env.power(&uuids[5]), "running");
    assert_eq!(env.boots(&uuids[5]), vec![Some(stub("A", "medium", 6))]);
}

#[test]
fn issue_16_sigterm_mid_run_finishes_the_wave_and_the_same_command_completes_it() {
    let (env, uuids) = twenty_users();
    for command in ["vm-shutdown", "vm-start"] {
        env.fault_raw(serde_json::json!({"command": command, "delay_ms": 300}));
    }
    env.clear_calls();
    let args = [
        "--yes",
        "set-priority",
        "--all",
        "--priority=high",
        "--parallel=3",
    ];
    let child = background(env.command(args));
    // The second wave has begun stopping its VMs.
    wait_until("the second wave", || {
        env.call_names()
            .iter()
            .filter(|c| *c == "vm-shutdown")
            .count()
            >= 4
    });
    signal_group(&child, libc::SIGTERM);
    let out = finish(child);
    out.code(143);
    let last = out.stderr().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("error: interrupted by SIGTERM: ")
            && last.ends_with("run the same command again to finish"),
        "{}",
        out.stderr()
    );
    let not_started = out.stdout().matches("  not started").count();
    assert!(not_started > 0, "{}", out.stdout());
    // No VM left halted that ran, nothing left in the journal; each VM stopped at most once.
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let power = if n % 2 == 0 { "running" } else { "halted" };
        assert_eq!(env.power(u), power, "user {n}");
        assert!(calls_for(&env, "vm-shutdown", u) <= 1, "user {n}");
    }
    assert_eq!(count_rows(&env, "change_journal"), 0);

    // The same command again: only the VMs not started, each restarted once in all.
    let out = env.run(&args);
    out.code(0).stdout_has(&format!(
        "{not_started} VMs to change, {not_started} of them restarted; {} already as asked.\n",
        20 - not_started
    ));
    for (i, u) in uuids.iter().enumerate() {
        let n = i as u32 + 1;
        assert_eq!(env.row(u).unwrap().2, 2, "user {n}");
        assert_eq!(env.args(u), Some(stub("B", "high", n)), "user {n}");
        if n.is_multiple_of(2) {
            assert_eq!(env.power(u), "running", "user {n}");
            assert_eq!(env.boots(u), vec![Some(stub("B", "high", n))], "user {n}");
        }
    }
}

#[test]
fn issue_16_a_run_interrupted_in_its_last_wave_still_tells_the_mediator() {
    let (env, uuids) = twenty_users();
    env.fault_raw(serde_json::json!({"command": "vm-start", "delay_ms": 500}));
    let args = ["--yes", "set-priority", "--vm-id=1-4", "--priority=high"];
    let child = background(env.command(args));
    // One wave (users 2 and 4): both being started again.
    wait_until("both starts", || {
        env.call_names().iter().filter(|c| *c == "vm-start").count() == 2
    });
    signal_group(&child, libc::SIGTERM);
    let out = finish(child);
    out.code(143)
        .stderr_has("error: interrupted by SIGTERM: 4 of 4 VMs changed");
    for (i, u) in uuids.iter().enumerate().take(4) {
        assert_eq!(env.args(u), Some(stub("B", "high", i as u32 + 1)));
    }
    // The same command again has nothing left to do.
    env.run(&args)
        .code(0)
        .stdout_has("No changes needed: the 4 VMs selected already are as asked.");
    // Four VMs changed their priority: the GPU mediator must have been asked to reload.
    let reloads = env
        .mediator_requests()
        .iter()
        .filter(|r| r[1] == 0x12)
        .count();
    assert!(reloads >= 1, "the GPU mediator was never told");
}

#[test]
fn issue_16_a_single_change_in_flight_is_waited_for_and_the_selection_sees_its_result() {
    let env = three_vms(1);
    let x = uuid(1);
    // set-pool of VM 1 alone: its start takes a while; the selection begins meanwhile, while
    // VM 1 is halted by the other run.
    env.fault_raw(
        serde_json::json!({"command": "vm-start", "uuid": x, "once": true, "delay_ms": 1000}),
    );
    let busy = env.dir.path().join("busy");
    let mut single = env.command(["--yes", "set-pool", "--vm-uuid", &x, "--pool=A"]);
    single.env("FAKE_XE_BUSY", &busy);
    let single = background(single);
    wait_until("the single change to wait for its start", || busy.exists());
    assert_eq!(env.power(&x), "halted");
    let out = env.run(&["--yes", "set-priority", "--vm-id=1-3", "--priority=high"]);
    out.code(0)
        .stdout_has(&format!(
            "Waiting for another vgpu-admin that is changing VM {x}..."
        ))
        .stdout_has_words(&format!("u1 ({x}) running A, medium, 1 A, high, 1 yes"));
    finish(single).code(0);
    // Both changes stand, and VM 1 runs with them (restarted by each run once).
    assert_eq!(env.row(&x).unwrap().1, "A");
    assert_eq!(env.row(&x).unwrap().2, 2);
    assert_eq!(env.args(&x), Some(stub("A", "high", 1)));
    assert_eq!(env.power(&x), "running");
    assert_eq!(
        env.boots(&x).last().cloned().flatten(),
        Some(stub("A", "high", 1))
    );
    assert_eq!(calls_for(&env, "vm-shutdown", &x), 2);
    assert_eq!(count_rows(&env, "restart_pending"), 0);
}

#[test]
fn issue_16_two_overlapping_selections_at_once_both_apply_in_full() {
    let (env, uuids) = twenty_users();
    for command in ["vm-shutdown", "vm-start"] {
        env.fault_raw(serde_json::json!({"command": command, "delay_ms": 150}));
    }
    let first = background(env.command(["--yes", "set-pool", "--vm-id=1-12", "--pool=A"]));
    std::thread::sleep(Duration::from_millis(50));
    let second = background(env.command([
        "--yes",
        "--json",
        "set-priority",
        "--vm-id=7-20",
        "--priority=high",
        "--parallel=8",
    ]));
    finish(first).code(0);
    let out = finish(second);
    out.code(0);
    let _ = out.stderr();
    // The second run's dialogue (a wait, the plan, the table) is on stderr: stdout is JSON.
    let doc = out.json();
    assert_eq!(doc["outcomes"].as_array().map(Vec::len), Some(14));
    for (i, u) in uuids.iter().enumerate() {
        let n = i as u32 + 1;
        let pool = if n <= 12 { "A" } else { "B" };
        let priority = if n >= 7 { "high" } else { "medium" };
        assert_eq!(env.args(u), Some(stub(pool, priority, n)), "user {n}");
        let row = env.row(u).unwrap();
        assert_eq!(
            (row.1.as_str(), row.2),
            (pool, if n >= 7 { 2 } else { 1 }),
            "user {n}"
        );
        if n.is_multiple_of(2) {
            assert_eq!(env.power(u), "running", "user {n}");
            // Running with what the database says; restarted by each run that changed it.
            let boots = env.boots(u);
            assert_eq!(
                boots.last().cloned().flatten(),
                Some(stub(pool, priority, n)),
                "user {n}"
            );
            let runs = usize::from(n <= 12) + usize::from(n >= 7);
            assert_eq!(boots.len(), runs, "user {n}: {boots:?}");
        }
    }
    assert_eq!(count_rows(&env, "restart_pending"), 0);
    assert_eq!(count_rows(&env, "change_journal"), 0);
}
