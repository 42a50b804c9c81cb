//! What a package ships, checked where it is used: the staged install names the final paths,
//! completion works in a real bash (options after a command, their values, VMs from the
//! database without xe), a man page per command, and every command's help has its own options
//! first and an example.

use crate::common::{uuid, vm, Env};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir` (symlinks as themselves), relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn issue_13_a_staged_install_names_the_final_paths_never_the_staging_directory() {
    let env = Env::new();
    let stage = env.dir.path().join("stage");
    let stage_text = stage.to_str().unwrap().to_string();
    env.run(&["install", "--root", &stage_text, "--files-only"])
        .code(0)
        .stdout_has("created ");
    let files = files_under(&stage);
    for expected in [
        "usr/local/bin/vgpu-admin",
        "etc/vgpu/vgpu-admin",
        "etc/xapi.d/vm-pre-start/50-vgpu-admin",
        "etc/vgpu/vgpu-vm-startup.sh",
        "usr/share/man/man1/vgpu-admin.1",
        "usr/share/man/man1/vgpu-admin-set-pool.1",
        "usr/share/man/man1/vgpu-admin-install.1",
        "usr/share/bash-completion/completions/vgpu-admin",
        "usr/share/zsh/site-functions/_vgpu-admin",
        "usr/share/fish/vendor_completions.d/vgpu-admin.fish",
    ] {
        assert!(
            files.contains(&PathBuf::from(expected)),
            "{expected} not staged: {files:?}"
        );
    }
    // No database, and nothing written names the staging directory.
    assert!(!stage.join("etc/vgpu/vgpu_config.db").exists());
    for file in &files {
        let path = stage.join(file);
        if std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            let target = std::fs::read_link(&path).unwrap();
            assert!(!target.to_string_lossy().contains(&stage_text));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&stage_text),
            "{} names the staging directory",
            file.display()
        );
    }
    let wrapper =
        std::fs::read_to_string(stage.join("etc/xapi.d/vm-pre-start/50-vgpu-admin")).unwrap();
    assert_eq!(
        wrapper.lines().last().unwrap(),
        "exec '/usr/local/bin/vgpu-admin' --db '/etc/vgpu/vgpu_config.db' --scripts '/etc/vgpu/scripts' hook vm-pre-start \"$@\""
    );
    let startup = std::fs::read_to_string(stage.join("etc/vgpu/vgpu-vm-startup.sh")).unwrap();
    assert!(startup.contains("exec '/usr/local/bin/vgpu-admin' --db '/etc/vgpu/vgpu_config.db'"));
    assert_eq!(
        std::fs::read_link(stage.join("etc/vgpu/vgpu-admin")).unwrap(),
        PathBuf::from("../../usr/local/bin/vgpu-admin")
    );

    // Uninstalling the staged tree removes every file install put there.
    env.run(&["uninstall", "--root", &stage_text])
        .code(0)
        .stdout_has("removed ");
    assert_eq!(files_under(&stage), Vec::<PathBuf>::new());
}

#[test]
fn man_pages_one_per_command_and_the_main_page_lists_them() {
    let env = Env::new();
    let dir = env.dir.path().join("man");
    env.run(&["man", "--dir", dir.to_str().unwrap()]).code(0);
    let commands = env.run(&["--json", "commands"]).json();
    let names: Vec<String> = commands
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() > 25, "{names:?}");
    let main = std::fs::read_to_string(dir.join("vgpu-admin.1")).unwrap();
    for name in &names {
        let page = dir.join(format!("vgpu-admin-{name}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("no page {}", page.display()));
        assert!(text.contains(&format!(".TH vgpu-admin-{name} 1")), "{name}");
        assert!(
            main.contains(&format!("vgpu\\-admin\\-{}(1)", name.replace('-', "\\-"))),
            "the main page does not list {name}"
        );
    }
    assert!(
        !dir.join("vgpu-admin-complete.1").exists(),
        "hidden commands have no page"
    );
    // One page on stdout, with the command's options and examples.
    let page = env.run(&["man", "set-pool"]);
    page.code(0)
        .stdout_has(".TH vgpu-admin-set-pool 1")
        .stdout_has("\\-\\-pool")
        .stdout_has("Examples:");
    env.run(&["man", "no-such-command"])
        .code(2)
        .one_error_line()
        .stderr_has("no man page for 'no-such-command'");
}

#[test]
fn every_commands_help_puts_its_own_options_first_and_shows_an_example() {
    let env = Env::new();
    let commands = env.run(&["--json", "commands"]).json();
    for command in commands.as_array().unwrap() {
        let name = command["name"].as_str().unwrap();
        let help = env.run(&[name, "--help"]);
        help.code(0);
        let text = help.stdout();
        let examples = text
            .find("Examples:\n")
            .unwrap_or_else(|| panic!("{name} --help has no example:\n{text}"));
        assert!(
            text[examples..].contains("\n  vgpu-admin ") && text[examples..].contains(name),
            "{name}: the example does not run it:\n{text}"
        );
        // The command's own options, then the global ones under their own heading.
        let global = text.find("Global options:\n").expect("global heading");
        assert!(
            text.find("--db").unwrap() > global,
            "{name}: --db before its own options"
        );
        assert!(!text[..global].contains("--xe-timeout"), "{name}");
        assert!(
            text.lines().next().is_some_and(|l| !l.is_empty()),
            "{name}: no summary"
        );
    }
}

/// Runs bash's completion for `words` (the line as bash splits it; the last word is the one
/// being completed) with the installed completion script; returns the candidates.
fn bash_complete(env: &Env, script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE={line}\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _vgpu_admin_complete vgpu-admin \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = shell_quote(script.to_str().unwrap()),
        words = words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        line = shell_quote(&line),
    );
    // `vgpu-admin` on PATH is the one under test (the completion calls it by name).
    let bin_dir = assert_cmd::cargo::cargo_bin("vgpu-admin")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = env.command(Vec::<String>::new());
    let envs: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    cmd = Command::new("bash");
    cmd.arg("--norc").arg("-c").arg(program).env("PATH", path);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn issue_13_bash_completes_options_values_and_vms_after_a_command() {
    let env = Env::new();
    env.registered(vm(&uuid(1), "render-01", "running", None), 1, "A", 1);
    env.registered(vm(&uuid(2), "cad 02", "halted", None), 2, "B", 2);
    env.host_vm(vm(&uuid(3), "web-01", "halted", None));
    let script = env.dir.path().join("vgpu-admin.bash");
    let generated = env.run(&["completions", "bash"]);
    generated.code(0);
    std::fs::write(&script, generated.stdout()).unwrap();
    env.clear_calls();

    // Options of the command, after it (this is what clap's script got wrong).
    let options = bash_complete(&env, &script, &["vgpu-admin", "set-pool", "--"]);
    for o in ["--vm-uuid", "--vm-name", "--pool", "--no-restart"] {
        assert!(
            options.contains(&o.to_string()),
            "{o} not offered: {options:?}"
        );
    }
    // Values from the header's allowed values, not file names.
    assert_eq!(
        bash_complete(&env, &script, &["vgpu-admin", "set-pool", "--pool", ""]),
        ["A", "B"]
    );
    assert_eq!(
        bash_complete(
            &env,
            &script,
            &["vgpu-admin", "set-priority", "--priority", "h"]
        ),
        ["high"]
    );
    assert_eq!(
        bash_complete(
            &env,
            &script,
            &["vgpu-admin", "set-hook-policy", "--policy", ""]
        ),
        ["warn", "enforce"]
    );
    // Registered VMs from the database, with no xe call; `--opt=` split as bash splits it.
    assert_eq!(
        bash_complete(&env, &script, &["vgpu-admin", "show-vm", "--vm-uuid", ""]),
        [uuid(1), uuid(2)]
    );
    assert_eq!(
        bash_complete(
            &env,
            &script,
            &["vgpu-admin", "set-pool", "--vm-name", "=", "ca"]
        ),
        ["cad\\ 02"]
    );
    assert_eq!(
        env.calls().len(),
        0,
        "completion from the database called xe"
    );
    // register-vm offers the host's VMs not registered yet: one xe listing.
    assert_eq!(
        bash_complete(
            &env,
            &script,
            &["vgpu-admin", "register-vm", "--vm-name", ""]
        ),
        ["web-01"]
    );
    assert!(!env.calls().is_empty());
    // Global options before the command are honoured (--db of another, empty database).
    let other = env.dir.path().join("other.db");
    env.run(&["--db", other.to_str().unwrap(), "init"]).code(0);
    env.clear_calls();
    let from_host = bash_complete(
        &env,
        &script,
        &[
            "vgpu-admin",
            "--db",
            other.to_str().unwrap(),
            "show-vm",
            "--vm-uuid",
            "7d5a",
        ],
    );
    assert_eq!(
        from_host,
        [uuid(1), uuid(2), uuid(3)],
        "nothing registered there: the host's"
    );
}

#[test]
fn the_hidden_complete_command_offers_no_name_that_cannot_be_typed() {
    let env = Env::new();
    env.host_vm(vm(&uuid(1), "evil\nname", "halted", None));
    env.host_vm(vm(&uuid(2), "plain", "halted", None));
    env.run(&["complete", "vm-name", "", "--command", "register-vm"])
        .code(0)
        .stdout_is("plain\n");
    env.run(&[
        "complete",
        "vm-uuid",
        "7d5a8c3e-92f1-4b6a-b0c2-000000000002",
    ])
    .code(0)
    .stdout_is(&format!("{}\n", uuid(2)));
}

/// Does `pattern` (a path from a spec's %files, `*` for any characters) match `path`?
fn glob_matches(pattern: &str, path: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some(mut rest) = path.strip_prefix(parts[0]) else {
        return false;
    };
    for (i, part) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[test]
fn issue_13_the_rpm_spec_packages_exactly_what_install_stages() {
    let env = Env::new();
    let stage = env.dir.path().join("stage");
    env.run(&["install", "--root", stage.to_str().unwrap(), "--files-only"])
        .code(0);
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/vgpu-admin.spec"),
    )
    .unwrap();
    let files_section = spec.split("\n%files\n").nth(1).expect("%files");
    let entries: Vec<(bool, String)> = files_section
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("%changelog"))
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("%defattr"))
        .map(|l| {
            let dir = l.starts_with("%dir ");
            let path = l
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_start_matches('/')
                .to_string();
            (dir, path)
        })
        .collect();
    // Every staged file is packaged.
    for file in files_under(&stage) {
        let file = file.to_str().unwrap();
        assert!(
            entries.iter().any(|(dir, p)| !dir && glob_matches(p, file)),
            "{file} is staged but not in the spec's %files"
        );
    }
    // Every packaged path exists (the licences are added by scripts/build-rpm).
    for (dir, path) in &entries {
        if path.starts_with("usr/share/licenses/") {
            continue;
        }
        if *dir {
            assert!(stage.join(path).is_dir(), "%dir {path} is not staged");
        } else {
            assert!(
                files_under(&stage)
                    .iter()
                    .any(|f| glob_matches(path, f.to_str().unwrap())),
                "{path} is in %files but not staged"
            );
        }
    }
    // The scriptlets: the earlier tool's binary is moved aside before the link replaces it,
    // and the database is made by the binary itself after the files are in place.
    assert!(spec.contains("mv -f /etc/vgpu/vgpu-admin /etc/vgpu/vgpu-admin.earlier-tool"));
    assert!(spec.contains("/usr/local/bin/vgpu-admin install --database-only"));
    assert!(spec.contains("%global _binary_payload w6.xzdio"));
}

#[test]
fn install_database_only_makes_the_database_and_writes_no_file() {
    let env = Env::new();
    let root = env.dir.path().join("root");
    env.run(&[
        "install",
        "--root",
        root.to_str().unwrap(),
        "--database-only",
    ])
    .code(0)
    .stdout_has("created ")
    .stdout_has("device driver: vgpu-stub (default; cannot ask ");
    let db = root.join("etc/vgpu/vgpu_config.db");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!root.join("usr").exists());
    assert!(!root.join("etc/xapi.d").exists());
    env.run(&[
        "install",
        "--root",
        root.to_str().unwrap(),
        "--database-only",
        "--files-only",
    ])
    .code(2)
    .one_error_line();
}
