//! The reliability suite: concurrent writers, readers during writers, crash safety, a locked
//! database, and bad input on every option of every command. Bounded in time.

use crate::common::{uuid, Env, Outcome};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Child, Stdio};
use vgpu_admin::scripts::{Catalog, ValueKind};

/// A script registering `count` VMs (uuids from `base`), one transaction each.
fn registering_script(env: &Env, name: &str, base: u32, count: u32) -> std::path::PathBuf {
    env.file(
        name,
        &format!(
            "for i in 0..{count} {{\n\
             \x20   let n = {base} + i;\n\
             \x20   let hex = n.to_hex();\n\
             \x20   while hex.len() < 12 {{ hex = \"0\" + hex; }}\n\
             \x20   vms::register(#{{ uuid: `7d5a8c3e-92f1-4b6a-b0c2-${{hex}}`, name: `vm-${{n}}` }});\n\
             }}\n"
        ),
    )
}

fn spawn_run(env: &Env, script: &std::path::Path) -> Child {
    let mut cmd = env.command(["run", script.to_str().unwrap()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn eight_processes_registering_250_vms_each_get_2000_unique_ids() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let children: Vec<Child> = (0..8u32)
        .map(|p| {
            let script = registering_script(&env, &format!("w{p}.rhai"), 1 + p * 1000, 250);
            spawn_run(&env, &script)
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    let (rows, ids, max): (i64, i64, i64) = env
        .sql()
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT vm_id), MAX(vm_id) FROM vms",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, ids, max), (2000, 2000, 2000));
}

#[test]
fn readers_during_writers_never_fail_or_see_partial_rows() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let writers: Vec<Child> = (0..3u32)
        .map(|p| {
            spawn_run(
                &env,
                &registering_script(&env, &format!("r{p}.rhai"), 1 + p * 1000, 150),
            )
        })
        .collect();
    let mut reads = 0;
    let mut last = 0;
    loop {
        let out = Outcome::of(env.command(["--json", "list-vms"]), None);
        out.code(0);
        let rows = out.json();
        let rows = rows.as_array().unwrap();
        for row in rows {
            assert!(row["vm_uuid"].as_str().unwrap().len() == 36, "{row}");
            assert!(row["vm_name"].as_str().unwrap().starts_with("vm-"), "{row}");
            assert!(row["vm_id"].as_i64().unwrap() >= 1);
            assert!(row["invalid"].is_null());
        }
        assert!(rows.len() >= last, "rows never disappear");
        last = rows.len();
        reads += 1;
        if last == 450 {
            break;
        }
        assert!(reads < 10_000, "writers did not finish");
    }
    for w in writers {
        assert_eq!(w.wait_with_output().unwrap().status.code(), Some(0));
    }
}

#[test]
fn a_killed_bulk_registration_leaves_all_or_nothing() {
    let env = Env::new();
    env.seed(&[(1, &uuid(0xfffff), Some("before"), "A", 1)]);
    let script = env.file(
        "bulk.rhai",
        "vms::transaction(|| {\n\
         \x20   for i in 1..2000000 {\n\
         \x20       let hex = i.to_hex();\n\
         \x20       while hex.len() < 12 { hex = \"0\" + hex; }\n\
         \x20       vms::register(#{ uuid: `00000000-0000-4000-8000-${hex}` });\n\
         \x20   }\n\
         });\n",
    );
    let mut child = spawn_run(&env, &script);
    // Let it write a good part of the batch into the WAL, then kill it hard.
    let wal = std::path::PathBuf::from(format!("{}-wal", env.db.display()));
    let start = std::time::Instant::now();
    while std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) < 2_000_000 {
        assert!(start.elapsed().as_secs() < 60, "the batch never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let conn = env.sql();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM vms", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "none of the killed batch, the earlier row kept");
    env.run(&["list-vms"]).code(0).stdout_has("Name: before");
}

#[test]
fn a_database_locked_beyond_the_busy_timeout_is_a_clear_error() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let holder = env.sql();
    holder
        .execute_batch(
            "BEGIN IMMEDIATE; UPDATE pools SET description = 'held' WHERE pool_id = 'A';",
        )
        .unwrap();
    let out = env.run(&["set-hook-policy", "--policy=enforce"]);
    out.code(1)
        .one_error_line()
        .stderr_has("is locked by another process (waited 10 s); try again");
    // Readers are not blocked by a writer (WAL).
    env.run(&["list-pools"]).code(0).stdout_lacks("held");
    holder.execute_batch("ROLLBACK").unwrap();
    env.run(&["set-hook-policy", "--policy=enforce"]).code(0);
}

/// Values each kind of option must refuse (flags have none).
fn bad_values(kind: &ValueKind) -> Vec<OsString> {
    let text = |s: &str| OsString::from(s);
    let long = "7".repeat(10_000);
    let mut common = vec![
        text(&long),
        text("a\nb"),
        text("x\u{7}y"),
        OsString::from_vec(b"\xff\xfe".to_vec()),
    ];
    // (the 10,000-character value is also a number too large for a vm-id)
    let specific: Vec<OsString> = match kind {
        ValueKind::Pool => vec![text("C"), text("Apple"), text(""), text("$(touch MARKER)")],
        ValueKind::Priority => vec![text("urgent"), text("3"), text(""), text("; touch MARKER")],
        ValueKind::Uuid => vec![
            text("not-a-uuid"),
            text(""),
            text("`touch MARKER`"),
            text("7d5a8c3e-92f1-4b6a-b0c2-00000000000;"),
        ],
        ValueKind::VmId => vec![
            text("abc"),
            text("12abc"),
            text("-5"),
            text("0"),
            text("2147483648"),
            text(""),
        ],
        ValueKind::Name => vec![text(""), text(&"n".repeat(256))],
        ValueKind::VmIds => vec![
            text("7-1"),
            text("1-"),
            text("1,,2"),
            text("0-3"),
            text("1-2147483648"),
            text("a-b"),
            text(""),
        ],
        ValueKind::Glob => vec![text(""), text("[unclosed"), text(&"*".repeat(256))],
        ValueKind::File => vec![text(""), text("/no/such/dir/x.toml")],
        ValueKind::Host => vec![text(""), text(&"h".repeat(256))],
        ValueKind::Time => vec![
            text("yesterday"),
            text("2026-13-01"),
            text("2026-11-24 25:00"),
            text(""),
        ],
        ValueKind::Weight => vec![text("0"), text("101"), text("-5"), text("ten"), text("")],
        ValueKind::Limit => vec![
            text("-1"),
            text("4294967296"),
            text("1.5"),
            text("many"),
            text(""),
        ],
        ValueKind::Text => vec![],
        ValueKind::Path => vec![text("relative/qemu"), text(""), text("$(touch MARKER)")],
        ValueKind::Int { min, max } => vec![
            text(&(min - 1).to_string()),
            text(&(max + 1).to_string()),
            text("1.5"),
            text("ten"),
            text(""),
        ],
        ValueKind::Choice(_) => vec![text("nope"), text(""), text("$(touch MARKER)")],
    };
    common.extend(specific);
    common
}

/// A valid value for an option the command requires.
fn good_value(kind: &ValueKind) -> String {
    match kind {
        ValueKind::Pool => "A".into(),
        ValueKind::Priority => "high".into(),
        ValueKind::Uuid => uuid(1),
        ValueKind::VmId => "7".into(),
        ValueKind::Name => "web".into(),
        ValueKind::VmIds => "1-7".into(),
        ValueKind::Glob => "web-*".into(),
        ValueKind::File => "/dev/null".into(),
        ValueKind::Host => "this".into(),
        ValueKind::Time => "2026-11-24".into(),
        ValueKind::Weight => "80".into(),
        ValueKind::Limit => "50".into(),
        ValueKind::Text => "5".into(),
        ValueKind::Path => "/bin/true".into(),
        ValueKind::Int { min, .. } => min.to_string(),
        ValueKind::Choice(words) => words[0].clone(),
    }
}

#[test]
fn every_option_of_every_command_refuses_bad_values() {
    let env = Env::new();
    env.seed(&[(7, &uuid(1), Some("web"), "A", 2)]);
    let before = env.db_bytes();
    let mut tried = 0;
    for command in Catalog::new(None).commands().0 {
        for option in command.spec.options.iter().filter(|o| o.kind.is_some()) {
            let kind = option.kind.as_ref().unwrap();
            for bad in bad_values(kind) {
                let mut args: Vec<OsString> = vec![command.name.clone().into()];
                for other in command
                    .spec
                    .options
                    .iter()
                    .filter(|o| o.required && o.name != option.name)
                {
                    args.push(
                        format!(
                            "--{}={}",
                            other.name,
                            good_value(other.kind.as_ref().unwrap())
                        )
                        .into(),
                    );
                }
                let mut arg = OsString::from(format!("--{}=", option.name));
                arg.push(&bad);
                args.push(arg);
                let mut cmd = env.command(&args);
                cmd.current_dir(env.dir.path());
                let out = Outcome::of(cmd, None);
                assert_eq!(
                    out.status(),
                    2,
                    "{} --{} {:?}: {}",
                    command.name,
                    option.name,
                    bad,
                    out.stderr()
                );
                assert_eq!(
                    out.stderr().lines().count(),
                    1,
                    "{} --{}: {}",
                    command.name,
                    option.name,
                    out.stderr()
                );
                assert!(out.stderr().starts_with("error: "), "{}", out.stderr());
                assert!(out.stderr().len() < 400, "one short line: {}", out.stderr());
                tried += 1;
            }
        }
    }
    assert!(tried > 100, "only {tried} cases");
    assert_eq!(env.db_bytes(), before);
    assert!(!env.dir.path().join("MARKER").exists());
    eprintln!("bad-input matrix: {tried} cases");
}
