//! Issue 11, the admin shell survives: Ctrl-C at a confirmation prompt cancels that command
//! and the session goes on; a runaway line ends that line, not the session; the history is
//! written after every line (a `kill -9` loses nothing typed); with piped input a confirmation
//! reads its answer from the next line.

use crate::common::{uuid, vm, Env};
use rexpect::session::PtySession;

const OLD_ARGS: &str = "-device vgpu-stub,pool_id=A,priority=high,vm_id=7";

/// A registered VM running on the fake host with its args in sync.
fn running_vm() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", Some(OLD_ARGS)), 7, "A", 2);
    env.clear_calls();
    (env, u)
}

/// Nothing changed: the row, the args and the power state as before, no changing xe call.
#[track_caller]
fn untouched(env: &Env, u: &str) {
    assert_eq!(env.row(u), Some((7, "A".into(), 2, Some("win10".into()))));
    assert_eq!(env.args(u).as_deref(), Some(OLD_ARGS));
    assert_eq!(env.power(u), "running");
    assert!(env.boots(u).is_empty(), "the VM was restarted");
    let calls = env.call_names();
    assert!(
        calls.iter().all(|c| c == "vm-list" || c == "vm-param-get"),
        "{calls:?}"
    );
}

fn history_file(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("state/vgpu-admin/history")
}

/// `vgpu-admin shell` in a pseudo-terminal; returns the session and the shell's pid.
fn pty(env: &Env) -> (PtySession, libc::pid_t) {
    pty_with(env, &[])
}

/// `vgpu-admin <global> shell` in a pseudo-terminal; returns the session and the shell's pid.
fn pty_with(env: &Env, global: &[&str]) -> (PtySession, libc::pid_t) {
    // sh says its pid, then becomes vgpu-admin (same pid).
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "echo \"pid=$$.\"; exec \"$0\" \"$@\" shell"])
        .arg(assert_cmd::cargo::cargo_bin("vgpu-admin"))
        .args(global);
    let template = env.command(["shell"]);
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.env("XDG_STATE_HOME", env.dir.path().join("state"))
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(15_000))
        .strip_ansi_escape_codes(false);
    let mut p = rexpect::session::spawn_with_options(cmd, options).expect("spawn in a pty");
    let (_, said) = p.exp_regex("pid=[0-9]+\\.").unwrap();
    let pid = said
        .trim_start_matches("pid=")
        .trim_end_matches('.')
        .parse()
        .unwrap();
    p.exp_string("vgpu> ").unwrap();
    (p, pid)
}

/// Waits for the confirmation prompt; a command that waits for its VM's lock instead (held by
/// an earlier command of the same session) fails the test at once, saying so.
#[track_caller]
fn expect_confirmation(p: &mut PtySession, command: &str) {
    use rexpect::reader::ReadUntil;
    let (_, found) = p
        .exp_any(vec![
            ReadUntil::String("Do you want to apply these settings? (yes/no): ".into()),
            ReadUntil::String("Waiting for another vgpu-admin".into()),
        ])
        .unwrap();
    assert!(
        found.starts_with("Do you want"),
        "{command}: the shell waits for the VM's lock, which an earlier command of this same \
         session still holds: \"{found}\""
    );
}

#[test]
fn issue_11_ctrl_c_at_a_confirmation_prompt_cancels_that_command_and_the_shell_goes_on() {
    let (env, u) = running_vm();
    // A lock wait gives up after 3 s (not 10 min) should the session hold the VM's lock.
    let (mut p, _) = pty_with(&env, &["--xe-timeout=3"]);
    p.send_line(&format!("set-pool --vm-uuid={u} --pool=B"))
        .unwrap();
    expect_confirmation(&mut p, "set-pool");
    p.send_control('c').unwrap();
    p.exp_string("Operation cancelled").unwrap();
    p.exp_string("vgpu> ").unwrap();
    untouched(&env, &u);
    // The session goes on: another command works...
    p.send_line(&format!("show-vm --vm-uuid={u}")).unwrap();
    p.exp_string("  Pool: A").unwrap();
    p.exp_string("vgpu> ").unwrap();
    // ...and so does another change to that VM: cancelled again, then answered yes.
    p.send_line(&format!("remove-vm --vm-uuid={u}")).unwrap();
    expect_confirmation(&mut p, "remove-vm after a cancelled set-pool");
    p.send_control('c').unwrap();
    p.exp_string("Operation cancelled").unwrap();
    p.exp_string("vgpu> ").unwrap();
    untouched(&env, &u);
    p.send_line(&format!("set-priority --vm-uuid={u} --priority=low"))
        .unwrap();
    expect_confirmation(&mut p, "set-priority after two cancelled changes");
    p.send_line("yes").unwrap();
    p.exp_string("VM configuration updated successfully.")
        .unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(env.row(&u), Some((7, "A".into(), 0, Some("win10".into()))));
    assert_eq!(env.power(&u), "running");
}

#[test]
fn issue_11_two_changes_to_one_vm_in_one_shell_session_both_apply() {
    let (env, u) = running_vm();
    // A lock wait gives up after 3 s (not 10 min) should the session hold the VM's lock.
    let input = format!(
        "set-pool --vm-uuid={u} --pool=B --yes\nset-priority --vm-uuid={u} --priority=low --yes\nprint(\"done\");\n"
    );
    let out = env.run_with_input(&["--xe-timeout=3", "shell"], &input);
    assert!(
        !out.stdout().contains("Waiting for another vgpu-admin"),
        "the second change waited for the VM's lock the first one of the same session kept:\n{}{}",
        out.stdout(),
        out.stderr()
    );
    out.code(0).stdout_has("done\n");
    assert_eq!(env.row(&u), Some((7, "B".into(), 0, Some("win10".into()))));
    assert_eq!(env.power(&u), "running");
}

#[test]
fn issue_11_a_runaway_line_ends_that_line_not_the_shell() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let (mut p, _) = pty(&env);
    for (line, says) in [
        (
            "loop { }",
            Some("script stopped: it ran more than 20000000 operations"),
        ),
        ("fn f(n) { f(n + 1) }", None),
        ("f(0)", Some("functions nested deeper than 64 calls")),
        ("let s = \"x\"; loop { s += s; }", Some("script stopped")),
        ("eval(\"1\")", Some("eval")),
    ] {
        p.send_line(line).unwrap();
        if let Some(says) = says {
            p.exp_string(says).unwrap();
        }
        p.exp_string("vgpu> ").unwrap();
    }
    // Ctrl-C stops a long computation, and the session goes on.
    p.send_line("print(\"spinning\"); let a = []; loop { a.push(1); }")
        .unwrap();
    p.exp_string("spinning\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send_control('c').unwrap();
    p.exp_string("interrupted by SIGINT").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("40 + 2").unwrap();
    p.exp_string("42").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn issue_11_a_closure_chain_line_does_not_kill_the_shell() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let (mut p, _) = pty(&env);
    p.send_line("let f = || 0; loop { let g = f; f = || g.call() + 1; }")
        .unwrap();
    p.exp_string("script stopped").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("40 + 2").unwrap();
    p.exp_string("42").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn issue_11_the_history_is_written_after_every_line_even_if_the_shell_is_killed() {
    let (env, u) = running_vm();
    let (mut p, pid) = pty(&env);
    p.send_line("let marker = 4242;").unwrap();
    p.exp_string("vgpu> ").unwrap();
    // A line whose command is still waiting for an answer is in the history already.
    let waiting = format!("set-pool --vm-uuid={u} --pool=B");
    p.send_line(&waiting).unwrap();
    p.exp_string("Do you want to apply these settings? (yes/no): ")
        .unwrap();
    // SAFETY: kill has no memory-safety preconditions; pid is the shell this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(history_file(&env)).expect("history file");
    assert!(history.contains("let marker = 4242;"), "{history}");
    assert!(history.contains(&waiting), "{history}");
    untouched(&env, &u);

    // A new session reads it back: the previous line is one arrow-up away.
    let (mut p, _) = pty(&env);
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string(&waiting).unwrap();
    p.send_control('c').unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
    untouched(&env, &u);
}

#[test]
fn issue_11_piped_input_answers_a_confirmation_from_the_next_line() {
    let (env, u) = running_vm();
    let input =
        format!("print(\"before\");\nset-pool --vm-uuid={u} --pool=B\nno\nprint(\"after\");\n");
    let out = env.run_with_input(&["shell"], &input);
    out.code(4)
        .stdout_has("before\n")
        .stdout_has("Do you want to apply these settings? (yes/no): no")
        .stdout_lacks("after")
        .stderr_has("Operation cancelled.");
    untouched(&env, &u);

    // --keep-going: the next lines run, and the run ends with the first failure's status.
    let input =
        format!("set-pool --vm-uuid={u} --pool=B\nno\nprint(\"after\");\nshow-vm --vm-uuid={u}\n");
    let out = env.run_with_input(&["shell", "--keep-going"], &input);
    out.code(4)
        .stdout_has("after\n")
        .stdout_has("  Pool: A")
        .stderr_has("Operation cancelled.");
    untouched(&env, &u);

    // The answer line is taken by the confirmation, not run as a command: "yes" applies.
    let input = format!("set-pool --vm-uuid={u} --pool=B\nyes\nprint(\"after\");\n");
    env.run_with_input(&["shell"], &input)
        .code(0)
        .stdout_has("VM configuration updated successfully.")
        .stdout_has("after\n");
    assert_eq!(env.row(&u).unwrap().1, "B");
    assert_eq!(env.power(&u), "running");
}
