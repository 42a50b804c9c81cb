//! The admin shell: a real terminal session in a pseudo-terminal (Tab completion, commands,
//! variables and functions across lines, multi-line input, Ctrl-C, Ctrl-D), piped input,
//! history, safe loading of admin scripts, and the generated completion scripts and man page.

use crate::common::{uuid, vm, Env};
use std::os::unix::fs::PermissionsExt;

fn pty(env: &Env, args: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = env.command(args);
    cmd.env("XDG_STATE_HOME", env.dir.path().join("state"))
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(15_000))
        .strip_ansi_escape_codes(false);
    rexpect::session::spawn_with_options(cmd, options).expect("spawn in a pty")
}

/// Types `text` (send, then flush: rexpect buffers what it sends).
fn typ(p: &mut rexpect::session::PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

#[test]
fn a_terminal_session_completes_runs_remembers_and_continues_lines() {
    let env = Env::new();
    env.seed(&[(7, &uuid(1), Some("win10"), "A", 2)]);
    let mut p = pty(&env, &["shell"]);
    p.exp_string("vgpu> ").unwrap();

    // Tab completes a command name...
    typ(&mut p, "list-v");
    typ(&mut p, "\t");
    p.exp_string("list-vms ").unwrap();
    // ...and an option, and its value.
    typ(&mut p, "--po");
    typ(&mut p, "\t");
    p.exp_string("--pool=").unwrap();
    typ(&mut p, "a\t");
    p.exp_string("--pool=A ").unwrap();
    typ(&mut p, "\r");
    p.exp_string("  Name: win10").unwrap();
    p.exp_string("vgpu> ").unwrap();

    // A VM uuid from the database.
    typ(
        &mut p,
        "show-vm --vm-uuid 7d5a8c3e-92f1-4b6a-b0c2-00000000000",
    );
    typ(&mut p, "\t");
    p.exp_string(&uuid(1)).unwrap();
    typ(&mut p, "\r");
    p.exp_string("  Priority: high (2)").unwrap();
    p.exp_string("vgpu> ").unwrap();

    // Variables stay for the next line.
    p.send_line("let n = vms::count();").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("n + 41").unwrap();
    p.exp_string("42").unwrap();

    // A function over several lines: `...> ` until the brace closes.
    p.send_line("fn triple(x) {").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_line("  x * 3").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_line("}").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("triple(n)").unwrap();
    p.exp_string("3").unwrap();
    p.exp_string("vgpu> ").unwrap();

    // An error shows the line and a caret, and the session goes on.
    p.send_line("nope + 1").unwrap();
    p.exp_string("Variable not found: nope").unwrap();
    p.exp_string("^").unwrap();
    p.exp_string("vgpu> ").unwrap();

    // Ctrl-C drops the line, not the shell.
    typ(&mut p, "this is abandoned");
    p.send_control('c').unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("1 + 1").unwrap();
    p.exp_string("2").unwrap();
    p.exp_string("vgpu> ").unwrap();

    // Ctrl-D leaves.
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(env.dir.path().join("state/vgpu-admin/history")).unwrap();
    assert!(history.contains("let n = vms::count();"), "{history}");
    assert!(!history.contains("this is abandoned"));
}

#[test]
fn a_bare_vgpu_admin_on_a_terminal_opens_the_shell_with_help_and_exit() {
    let env = Env::new();
    let mut p = pty(&env, &[]);
    p.exp_string("vgpu> ").unwrap();
    p.send_line("help").unwrap();
    p.exp_string("register-vm").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("help set-pool").unwrap();
    p.exp_string("--vm-uuid <uuid>").unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn piped_input_runs_each_line_and_stops_at_the_first_failure() {
    let env = Env::new();
    env.seed(&[(7, &uuid(1), Some("win10"), "A", 2)]);
    let input = format!(
        "# a command list\nlist-vms --pool=A\nlet total = vms::count();\nprint(`total ${{total}}`);\nshow-vm --vm-uuid={}\nprint(\"not reached\");\n",
        uuid(9)
    );
    let out = env.run_with_input(&["shell"], &input);
    out.code(3)
        .stdout_has("  Name: win10")
        .stdout_has("total 1\n")
        .stdout_lacks("not reached")
        .stdout_lacks("vgpu>")
        .stderr_has("is not registered");

    let out = env.run_with_input(&["shell", "--keep-going"], &input);
    out.code(3)
        .stderr_has("is not registered")
        .stdout_has("not reached");

    // Multi-line Rhai and a confirmation answered by the next line, as if typed.
    let u = uuid(2);
    env.registered(vm(&u, "db", "running", None), 8, "A", 1);
    let script = format!("fn pool_of(id) {{\n  vms::get(id).pool_id\n}}\nset-pool --vm-uuid={u} --pool=B\nyes\nprint(pool_of(\"{u}\"));\n");
    env.run_with_input(&["shell"], &script)
        .code(0)
        .stdout_has("Do you want to apply these settings? (yes/no): yes")
        .stdout_has("VM configuration updated successfully.\nB\n");
}

#[test]
fn a_group_writable_command_script_is_refused_until_fixed() {
    let env = Env::new();
    let path = env.script("commands/hello.rhai", "//! Say hello.\nprint(\"hello\");\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    env.run(&["hello"])
        .code(1)
        .one_error_line()
        .stderr_has(&format!(
            "refusing to load {}: it is writable by group or others (fix: chmod go-w {})",
            path.display(),
            path.display()
        ));
    env.run(&["list-pools"]).code(1).stderr_has("chmod go-w");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.run(&["hello"]).code(0).stdout_is("hello\n");

    let dir = env.scripts.join("stdlib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("format.rhai"), "fn vm_block() { \"x\" }\n").unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    env.run(&["list-vms"])
        .code(1)
        .stderr_has(&format!("refusing to load {}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let script = env.file("mine.rhai", "print(1);");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o666)).unwrap();
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .stderr_has("chmod go-w");
}

#[test]
fn completion_scripts_and_the_man_page_include_admin_commands() {
    let env = Env::new();
    env.script(
        "commands/site-report.rhai",
        "//! The site's own report.\n//! @option --format <short|long> How long\nprint(1);\n",
    );
    let bash = env.run(&["completions", "bash"]);
    bash.code(0)
        .stdout_has("site-report")
        .stdout_has("--format")
        // The values of closed kinds, not file names.
        .stdout_has("compgen -W \"A B\"")
        .stdout_has("compgen -W \"low medium high\"")
        .stdout_has("compgen -W \"short long\"");
    // Defaults and groups from the script headers are in the help.
    env.run(&["register-vm", "--help"])
        .code(0)
        .stdout_has("[default: A]")
        .stdout_has("[default: medium]")
        .stdout_has("<--vm-uuid <uuid>|--vm-name <name>>");
    env.run(&["completions", "zsh"])
        .code(0)
        .stdout_has("site-report");
    env.run(&["completions", "fish"])
        .code(0)
        .stdout_has("site-report");
    env.run(&["man"])
        .code(0)
        .stdout_has(".TH vgpu-admin")
        .stdout_has("site\\-report");
    env.run(&["completions", "tcsh"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid value 'tcsh'");
}

#[test]
fn a_terminal_shows_a_spinner_while_a_vm_stops_and_an_unwritable_history_is_a_warning() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", None), 7, "A", 2);
    // The history's folder is a file: saving fails, the shell only warns.
    std::fs::write(env.dir.path().join("state"), "not a directory").unwrap();
    let mut cmd = env.command(["shell"]);
    cmd.env("XDG_STATE_HOME", env.dir.path().join("state"))
        .env("TERM", "xterm")
        .env("FAKE_XE_DELAY_MS", "400");
    let options = rexpect::reader::Options::new().timeout_ms(Some(20_000));
    let mut p = rexpect::session::spawn_with_options(cmd, options).unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line(&format!("set-pool --vm-uuid={u} --pool=B --yes"))
        .unwrap();
    // The history is saved after every line: the warning comes with the first one.
    p.exp_string("warning: cannot save the shell history")
        .unwrap();
    p.exp_string(&format!("Stopping VM win10 ({u})... 0."))
        .unwrap();
    p.exp_string("VM configuration updated successfully.")
        .unwrap();
    p.exp_string("vgpu> ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(env.power(&u), "running");
    assert_eq!(env.row(&u).unwrap().1, "B");
}

#[test]
fn shell_typed_in_the_shell_says_so_and_a_variable_named_shell_still_works() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    env.run_with_input(
        &["shell", "--keep-going"],
        "shell\nlet shell = 3;\nprint(shell + 1);\n",
    )
    .code(2)
    .stderr_is("error: already in the shell\n")
    .stdout_has("4\n");
}
