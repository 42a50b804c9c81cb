//! Issue 11, the hook stands alone: `vgpu-admin hook vm-pre-start` never loads the command
//! scripts, so a broken admin command cannot stop or change a VM start; other commands go on
//! with a warning; a command declaring a global option is refused, not a panic; whatever the
//! admin's hook script does, the hook exits 0, 1 or 2 with one line on stdout.

use crate::common::{uuid, vm, Env, Outcome};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

const GOOD: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=7";

/// A registered VM, halted on the fake host with its args in sync.
fn registered() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "halted", Some(GOOD)), 7, "A", 2);
    env.clear_calls();
    (env, u)
}

/// Runs the hook as xenopsd does.
fn hook(env: &Env, u: &str) -> Outcome {
    env.run(&["hook", "vm-pre-start", "-vmuuid", u, "-reason", "none"])
}

fn policy(env: &Env, policy: &str) {
    env.run(&["set-hook-policy", &format!("--policy={policy}")])
        .code(0);
}

/// The built-in commands, every one of which `commands` must list.
const BUILTINS: &[&str] = &[
    "run",
    "hook",
    "install",
    "uninstall",
    "shell",
    "completions",
    "man",
    "api",
    "commands",
];

/// The bundled command scripts.
fn bundled_commands() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/commands"))
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".rhai")
                    .map(str::to_string)
            })
            .collect();
    names.sort();
    names
}

/// A broken admin command script `commands/x.rhai`, one way or another; returns the error
/// that names what is wrong.
fn break_command(env: &Env, how: &str) -> String {
    let path = env.scripts.join("commands/x.rhai");
    let shown = path.display().to_string();
    match how {
        "bad header" => {
            env.script(
                "commands/x.rhai",
                "//! Broken.\n//! @option --count <number>  How many\nprint(1);\n",
            );
            format!("command script {shown} has a bad header, line 2")
        }
        "unknown tag" => {
            env.script("commands/x.rhai", "//! Broken.\n//! @bogus\nprint(1);\n");
            format!("command script {shown} has a bad header, line 2")
        }
        "global option" => {
            env.script(
                "commands/x.rhai",
                "//! Broken.\n//! @option --script-timeout <text>  Mine\nprint(1);\n",
            );
            "--script-timeout is a global option".to_string()
        }
        "group-writable" => {
            env.script("commands/x.rhai", "//! Fine.\nprint(1);\n");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
            format!("refusing to load {shown}: it is writable by group or others")
        }
        "other owner" => {
            env.script("commands/x.rhai", "//! Fine.\nprint(1);\n");
            std::os::unix::fs::chown(&path, Some(12345), None).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().uid(), 12345);
            format!("refusing to load {shown}: it is owned by uid 12345")
        }
        "not utf-8" => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"//! Broken \xff\xfe.\nprint(1);\n").unwrap();
            format!("cannot read script {shown}")
        }
        "syntax error" => {
            env.script("commands/x.rhai", "//! Broken.\nlet x = ;\n");
            format!("syntax error in {shown}")
        }
        other => panic!("no way to break a script called {other}"),
    }
}

const BROKEN: &[&str] = &[
    "bad header",
    "unknown tag",
    "global option",
    "group-writable",
    "other owner",
    "not utf-8",
    "syntax error",
];

#[test]
fn issue_11_a_broken_command_script_never_reaches_the_hook() {
    for how in BROKEN {
        for policy_name in ["warn", "enforce"] {
            let (env, u) = registered();
            if policy_name == "enforce" {
                policy(&env, "enforce");
                env.clear_calls();
            }
            break_command(&env, how);
            let out = hook(&env, &u);
            assert_eq!(
                (out.status(), out.stdout(), out.stderr()),
                (0, "", ""),
                "{how}, {policy_name}: the hook of an in-sync VM"
            );
            assert_eq!(
                env.call_names(),
                vec!["vm-param-get"],
                "{how}, {policy_name}"
            );
            // And a drifted VM is still corrected by it.
            let drifted = "-device vgpu-stub,pool_id=B,priority=low,vm_id=7";
            env.host_vm_set(
                &u,
                "platform",
                serde_json::json!([["device-model-args", drifted]]),
            );
            let out = hook(&env, &u);
            out.code(if policy_name == "warn" { 1 } else { 2 });
            assert_eq!(out.stdout().lines().count(), 1, "{how}: {}", out.stdout());
            assert!(
                !out.stderr().contains("left out"),
                "{how}: {}",
                out.stderr()
            );
            assert_eq!(
                env.args(&u).as_deref(),
                Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7")
            );
        }
    }
}

#[test]
fn issue_11_other_commands_go_on_with_a_warning_and_the_broken_one_fails() {
    for how in BROKEN {
        let (env, u) = registered();
        let error = break_command(&env, how);
        // The broken command itself: exit 1 and its error.
        let out = env.run(&["x"]);
        out.code(1);
        let first = out.stderr().lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(&error),
            "{how}: {}",
            out.stderr()
        );
        assert!(
            !out.stderr().contains("panicked"),
            "{how}: {}",
            out.stderr()
        );
        if *how != "syntax error" {
            out.one_error_line();
        }
        // The others work, saying what was left out (a syntax error is found only when the
        // command runs: its header is fine).
        let out = env.run(&["list-vms"]);
        out.code(0).stdout_has("  Name: win10");
        if *how != "syntax error" {
            assert!(
                out.stderr()
                    .starts_with("warning: command 'x' is left out: ")
                    && out.stderr().contains(&error)
                    && out.stderr().lines().count() == 1,
                "{how}: {}",
                out.stderr()
            );
        }
        // (A script whose header is fine, with a syntax error further down, is only found
        // out when it runs: then there is no warning.)
        let left_out = |out: &Outcome| {
            let stderr = out.stderr();
            assert!(
                stderr.is_empty() || stderr.starts_with("warning: command 'x' is left out: "),
                "{how}: {stderr}"
            );
        };
        let out = env.run(&["show-vm", &format!("--vm-uuid={u}")]);
        out.code(0).stdout_has("  Priority: high (2)");
        left_out(&out);
        let out = env.run(&["set-priority", &format!("--vm-uuid={u}"), "--priority=low"]);
        out.code(0);
        left_out(&out);
        assert_eq!(env.row(&u).unwrap().2, 0, "{how}");
        // The built-ins that never load command scripts say nothing about it.
        let script = env.file("mine.rhai", "print(vms::count());\n");
        env.run(&["run", script.to_str().unwrap()])
            .code(0)
            .stdout_is("1\n")
            .quiet();
        env.run(&["api"]).code(0).stdout_has("vms::").quiet();
        let root = env.dir.path().join("root");
        let root_arg = format!("--root={}", root.display());
        env.run(&["install", &root_arg]).code(0).quiet();
        env.run(&["uninstall", &root_arg]).code(0).quiet();
    }
}

#[test]
fn issue_11_a_command_declaring_a_global_option_is_refused_not_a_panic() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    for (tag, name) in [
        ("@option", "--script-timeout <text>"),
        ("@option", "--db <path>"),
        ("@option", "--scripts <path>"),
        ("@option", "--xe <path>"),
        ("@option", "--xe-timeout <text>"),
        ("@flag", "--json"),
        ("@flag", "--yes"),
        ("@flag", "--dry-run"),
        ("@flag", "--help"),
        ("@flag", "--version"),
        ("@option", "--json <text>"),
        ("@option", "--help <text>"),
    ] {
        let option = name.split(' ').next().unwrap();
        env.script(
            "commands/x.rhai",
            &format!("//! Mine.\n//! {tag} {name}  Mine\nprint(\"ran\");\n"),
        );
        let path = env.scripts.join("commands/x.rhai");
        for args in [vec!["x"], vec!["x", "--help"], vec!["--json", "x"]] {
            let out = env.run(&args);
            assert!(
                out.status() != 101 && !out.stderr().contains("panicked"),
                "{name}, {args:?}: exit {}\n{}",
                out.status(),
                out.stderr()
            );
            out.code(1).one_error_line().stderr_has(&format!(
                "error: command script {} has a bad header, line 2: {option} is a global option",
                path.display()
            ));
            assert!(!out.stdout().contains("ran"), "{name}");
        }
        for args in [
            vec!["list-pools"],
            vec!["commands"],
            vec!["completions", "bash"],
            vec!["man"],
        ] {
            let out = env.run(&args);
            out.code(0);
            assert!(
                out.stderr()
                    .starts_with("warning: command 'x' is left out: ")
                    && out
                        .stderr()
                        .contains(&format!("{option} is a global option"))
                    && out.stderr().lines().count() == 1,
                "{name}, {args:?}: {}",
                out.stderr()
            );
        }
    }
}

#[test]
fn issue_11_commands_lists_every_built_in_and_every_script_command() {
    let env = Env::new();
    env.script(
        "commands/site-report.rhai",
        "//! The site's own report.\nprint(1);\n",
    );
    env.script(
        "commands/list-vms.rhai",
        "//! The site's list.\nprint(2);\n",
    );
    break_command(&env, "bad header");
    let mut expected: Vec<String> = bundled_commands();
    expected.push("site-report".into());
    expected.extend(BUILTINS.iter().map(|b| b.to_string()));
    expected.sort();
    expected.dedup();

    let out = env.run(&["commands"]);
    out.code(0).stderr_has("warning: command 'x' is left out: ");
    let mut listed: Vec<String> = out
        .stdout()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    listed.sort();
    assert_eq!(listed, expected, "{}", out.stdout());
    assert!(out.stdout().starts_with("COMMAND"), "{}", out.stdout());
    for builtin in BUILTINS {
        let line = out
            .stdout()
            .lines()
            .find(|l| l.split_whitespace().next() == Some(builtin))
            .unwrap();
        assert!(line.contains("built-in"), "{line}");
    }
    let list_vms = out
        .stdout()
        .lines()
        .find(|l| l.starts_with("list-vms "))
        .unwrap();
    assert!(list_vms.contains("(overrides bundled)"), "{list_vms}");

    let json = env
        .run(&["--json", "commands"])
        .code(0)
        .stderr_has("warning: command 'x' is left out: ")
        .json();
    let mut names: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, expected);
    for c in json.as_array().unwrap() {
        let builtin = BUILTINS.contains(&c["name"].as_str().unwrap());
        assert_eq!(c["source"] == "built-in", builtin, "{c}");
    }
}

/// Sets the hook policy (and time limit).
fn hook_settings(env: &Env, policy_name: &str, limit: Option<u32>) {
    let mut args = vec![
        "set-hook-policy".to_string(),
        format!("--policy={policy_name}"),
    ];
    if let Some(secs) = limit {
        args.push(format!("--time-limit={secs}"));
    }
    env.run(&args).code(0);
}

/// The admin's hook script misbehaving: the hook still exits with the policy's status (1 under
/// warn, 2 under enforce) and says one line.
fn misbehaving_hook(name: &str, script: &str, limit: Option<u32>, says: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (policy_name, expected) in [("warn", 1), ("enforce", 2)] {
        let (env, u) = registered();
        hook_settings(&env, policy_name, limit);
        env.script("hooks/vm-pre-start.rhai", script);
        let start = Instant::now();
        let out = hook(&env, &u);
        let took = start.elapsed();
        let lines: Vec<&str> = out.stdout().lines().collect();
        if out.status() != expected {
            found.push(format!(
                "{name}, {policy_name}: exit {} (expected {expected}); stdout {:?}; stderr {:?}",
                out.status(),
                out.stdout(),
                out.stderr().lines().take(3).collect::<Vec<_>>()
            ));
        }
        if lines.len() != 1
            || !lines[0].starts_with("vgpu-admin: hook vm-pre-start")
            || !lines[0].contains(says)
        {
            found.push(format!(
                "{name}, {policy_name}: stdout is not one line saying {says:?}: {:?}",
                out.stdout()
            ));
        }
        let bound = Duration::from_secs(u64::from(limit.unwrap_or(10)) + 2);
        if took > bound {
            found.push(format!("{name}, {policy_name}: took {took:?}"));
        }
        // The VM's args are left as they were.
        if env.args(&u).as_deref() != Some(GOOD) {
            found.push(format!("{name}, {policy_name}: args changed"));
        }
    }
    found
}

#[test]
fn issue_11_the_hook_exits_only_0_1_or_2_whatever_its_script_does() {
    let many = {
        let mut s = String::from("let v = []; v.pad(900000, 0);\n");
        for i in 0..40 {
            s.push_str(&format!("let v{i} = v; v{i}.push(1);\n"));
        }
        s
    };
    let cases: Vec<(&str, String, Option<u32>, &str)> = vec![
        ("return 7", "7\n".into(), None, "returned 7, not 0, 1 or 2"),
        ("return -1", "return -1;\n".into(), None, "returned -1"),
        ("return 256", "return 256;\n".into(), None, "returned 256"),
        (
            "return a string",
            "return \"x\";\n".into(),
            None,
            "returned x",
        ),
        (
            "return a float",
            "return 1.0;\n".into(),
            None,
            "returned 1.0",
        ),
        (
            "return true",
            "return true;\n".into(),
            None,
            "returned true",
        ),
        (
            "return an array",
            "return [0];\n".into(),
            None,
            "returned [0]",
        ),
        ("throw", "throw \"site bug\";\n".into(), None, "site bug"),
        ("exit(9)", "exit(9);\n".into(), None, "9"),
        ("syntax error", "let x = ;\n".into(), None, "syntax error"),
        ("eval", "eval(\"0\");\n".into(), None, "eval"),
        (
            "unknown function",
            "no_such_thing();\n".into(),
            None,
            "no_such_thing",
        ),
        (
            "deep recursion",
            "fn f(n) { f(n + 1) }\nf(0);\n".into(),
            None,
            "nested deeper than 64 calls",
        ),
        (
            "string doubling",
            "let s = \"x\";\nloop { s += s; }\n".into(),
            None,
            "script stopped",
        ),
        (
            "memory",
            many,
            None,
            "script stopped: it took more than 160 MiB",
        ),
        (
            "loop forever (time limit 2 s)",
            // Each operation is slow (an 8 MB copy): neither the operation count nor the script's
            // own time limit comes first; the hook's wall clock does.
            "let s = \"\";\ns.pad(8000000, \"x\");\nloop { s.to_upper(); }\n".into(),
            Some(2),
            "stopped after its time limit of 2 s",
        ),
        (
            "closure chain",
            "let f = || 0;\nloop { let g = f; f = || g.call() + 1; }\n".into(),
            None,
            "script stopped",
        ),
    ];
    let mut found = Vec::new();
    for (name, script, limit, says) in &cases {
        found.extend(misbehaving_hook(name, script, *limit, says));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn issue_11_a_hook_looping_forever_ends_within_its_default_limit() {
    // The default hook limit is 10 s; the script's own time limit ends the loop first.
    let found = misbehaving_hook(
        "loop forever (default limit)",
        "let n = 0;\nloop { n += 1; }\n",
        None,
        "script stopped",
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn issue_11_a_hook_script_returning_0_1_or_2_is_obeyed() {
    for (value, expected) in [("0", 0), ("1", 1), ("2", 2), ("()", 0)] {
        let (env, u) = registered();
        env.script("hooks/vm-pre-start.rhai", &format!("{value}\n"));
        let out = hook(&env, &u);
        out.code(expected);
        assert_eq!(out.stdout(), "", "{value}");
    }
}
