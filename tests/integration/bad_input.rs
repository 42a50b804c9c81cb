//! Bad input: every rejection exits 2 with one clear line on stderr naming the value, and leaves
//! the database bytes unchanged.

use crate::common::{uuid, Env};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn fixture() -> Env {
    let env = Env::new();
    env.seed(&[(1, &uuid(1), Some("web01"), "A", 2)]);
    env
}

/// Runs `args` in the temp directory and checks: exit 2, one line naming `needle`, nothing
/// changed, no marker file created by a shell.
#[track_caller]
fn refused(env: &Env, args: &[OsString], needle: &str) {
    let before = env.db_bytes();
    let mut cmd = env.command(args);
    cmd.current_dir(env.dir.path());
    let out = crate::common::Outcome::of(cmd, None);
    out.code(2).one_error_line().stderr_has(needle);
    assert!(out.stdout().is_empty(), "stdout: {}", out.stdout());
    assert_eq!(env.db_bytes(), before, "database changed by {args:?}");
    assert!(
        !env.dir.path().join("MARKER").exists(),
        "a shell ran {args:?}"
    );
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn bad_pools_are_refused() {
    let env = fixture();
    for bad in ["C", "Apple", ""] {
        let needle = format!("invalid pool '{bad}': expected A or B");
        refused(&env, &os(&["list-vms", &format!("--pool={bad}")]), &needle);
        refused(&env, &os(&["show-pool", "--pool-id", bad]), &needle);
    }
}

#[test]
fn bad_priorities_are_refused_and_case_is_ignored() {
    let env = fixture();
    for bad in ["urgent", "3", "-1", "hi"] {
        refused(
            &env,
            &os(&["list-vms", &format!("--priority={bad}")]),
            &format!("invalid priority '{bad}': expected low, medium or high"),
        );
    }
    env.run(&["list-vms", "--priority=HIGH"])
        .code(0)
        .stdout_has("web01");
}

#[test]
fn bad_uuids_are_refused_without_running_anything() {
    let env = fixture();
    for bad in [
        "not-a-uuid",
        "",
        "7d5a8c3e-92f1-4b6a-b0c2-000000000001;",
        "$(touch MARKER)",
        "7d5a8c3e-92f1-4b6a-b0c2-00000000000$(touch MARKER)",
        "; touch MARKER",
        "`touch MARKER`",
    ] {
        refused(
            &env,
            &os(&["show-vm", &format!("--vm-uuid={bad}")]),
            &format!("invalid VM uuid '{bad}'"),
        );
    }
}

#[test]
fn overlong_and_control_character_values_are_refused_on_one_line() {
    let env = fixture();
    let long = "x".repeat(10_000);
    refused(
        &env,
        &os(&["show-vm", &format!("--vm-uuid={long}")]),
        "(10000 characters)",
    );
    refused(
        &env,
        &os(&["list-vms", "--pool", "A\nB"]),
        "invalid pool 'A\\nB'",
    );
    refused(
        &env,
        &os(&["show-vm", "--vm-uuid", "a\tb\u{1b}[31m"]),
        "invalid VM uuid 'a\\tb\\u{1b}[31m'",
    );
}

#[test]
fn non_utf8_arguments_are_refused() {
    let env = fixture();
    let bad = OsString::from_vec(b"--pool=\xff\xfe".to_vec());
    refused(&env, &[OsString::from("list-vms"), bad], "invalid UTF-8");
}

#[test]
fn unknown_and_missing_options_are_refused() {
    let env = fixture();
    refused(
        &env,
        &os(&["list-vms", "--foo"]),
        "unexpected argument '--foo'",
    );
    refused(
        &env,
        &os(&["list-vms", "--pool"]),
        "a value is required for '--pool <A|B>'",
    );
    refused(
        &env,
        &os(&["show-vm"]),
        "the following required arguments were not provided: <--vm-uuid <uuid>|--vm-name <name>>",
    );
    refused(&env, &os(&["show-pool"]), "--pool-id <A|B>");
    refused(
        &env,
        &os(&["show-vm", &format!("--vm-uuid={}", uuid(1)), "--bogus=1"]),
        "'--bogus'",
    );
    refused(
        &env,
        &os(&["frobnicate"]),
        "unrecognized subcommand 'frobnicate'",
    );
    refused(
        &env,
        &os(&["list-vms", "extra"]),
        "unexpected argument 'extra'",
    );
}

#[test]
fn bare_invocation_off_a_terminal_prints_usage_and_exits_2() {
    let env = fixture();
    let out = env.run::<&str>(&[]);
    out.code(2).stderr_has("Usage: vgpu-admin");
}

#[test]
fn bad_values_through_the_script_api_are_refused_with_exit_2() {
    let env = fixture();
    let cases = [
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: "abc" })"#,
            "invalid vm-id 'abc'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: "12abc" })"#,
            "invalid vm-id '12abc'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: -5 })"#,
            "invalid vm-id '-5'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: 0 })"#,
            "invalid vm-id '0'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: 2147483648 })"#,
            "invalid vm-id '2147483648'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", pool: "C" })"#,
            "invalid pool 'C'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", priority: "urgent" })"#,
            "invalid priority 'urgent'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", name: "a\nb" })"#,
            "invalid VM name 'a\\nb'",
        ),
        (
            r#"vms::register(#{ uuid: "$(touch MARKER)" })"#,
            "invalid VM uuid '$(touch MARKER)'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", colour: "red" })"#,
            "VM map: unknown field 'colour', expected one of 'uuid', 'vm_uuid', 'name'",
        ),
        (
            r#"vms::register(#{ uuid: "UUID", vm_id: 1 })"#,
            "vm-id 1 is already taken by VM",
        ),
        (
            r#"vms::register(#{ uuid: "UUID1" })"#,
            "is already registered",
        ),
        (r#"vms::list(#{ pool: "Apple" })"#, "invalid pool 'Apple'"),
        (r#"pools::get("C")"#, "invalid pool 'C'"),
    ];
    for (i, (code, needle)) in cases.iter().enumerate() {
        let code = code.replace("UUID1", &uuid(1)).replace("UUID", &uuid(50));
        let file = env.file(&format!("bad{i}.rhai"), &code);
        refused(
            &env,
            &[OsString::from("run"), file.into_os_string()],
            needle,
        );
    }
    assert_eq!(env.vm_count(), 1);
}
