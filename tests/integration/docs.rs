//! The guides in `docs/` are kept true: every `console` block in them is run and its output
//! compared, every file block is written where the example says, and `docs/api.md` is what
//! `vgpu-admin api` prints.
//!
//! The transcript format (plain Markdown, readable on GitHub):
//!
//! ````text
//! ```rhai file=low-to-b.rhai        a file the following commands use, written in the
//! ...                               example's working directory (`scripts/commands/x.rhai`
//! ```                               makes an admin command: `--scripts ./scripts`)
//!
//! ```console
//! $ vgpu-admin list-vms --pool=A    a command; `echo yes | vgpu-admin ...` feeds a line
//! VM: ...                           the expected output, stdout and stderr as a terminal
//! Created: [..]                     shows them; `[..]` matches any text within a line,
//! ...                               `...` alone on a line any number of lines
//! [exit status 5]                   the exit status, when it is not 0
//! ```
//! ````
//!
//! A block inside an HTML comment (`<!-- ... -->`) runs but is not shown: set-up a reader does
//! not need. Each guide runs top to bottom in a fresh host: the database at the default path
//! (`VGPU_DB`), no admin scripts, and the fake xe serving the VMs of [`HOST`] (`VGPU_XE`) on a
//! pool of two [`HOSTS`], this dom0 being the first (`VGPU_INVENTORY`), with a GPU mediator
//! (the test harness's fake, `VGPU_MEDIATOR`).
//! Commands other than `vgpu-admin` (and `echo WORD |` in front of it) are not run: such
//! blocks are written as `sh`, not `console`.
//!
//! `UPDATE_DOCS=1 cargo test docs` rewrites `docs/api.md` from the binary.

use crate::common::{fake_xe, Env};
use assert_cmd::cargo::CommandCargoExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The host every guide runs against: a small pool as an admin would have it.
pub const HOST: &[(&str, &str, &str)] = &[
    (
        "0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e01",
        "render-01",
        "running",
    ),
    (
        "0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e02",
        "render-02",
        "running",
    ),
    (
        "0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e03",
        "render-03",
        "halted",
    ),
    ("0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e04", "cad-01", "running"),
    ("0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e05", "cad-02", "halted"),
    ("0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e06", "web-01", "running"),
];

/// The pool's hosts: the guides run on the first.
pub const HOSTS: &[(&str, &str)] = &[
    ("5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a01", "xcp-host-01"),
    ("5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a02", "xcp-host-02"),
];

/// One block of a guide.
#[derive(Debug)]
enum Block {
    /// A file to write (relative to the example's directory).
    File { path: String, text: String },
    /// Commands and what they print; `line` is the first line of the block in the guide.
    Console { line: usize, text: String },
}

/// The blocks of a Markdown file, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let file = words.find_map(|w| w.strip_prefix("file="));
        match (lang, file) {
            ("console", _) => out.push(Block::Console {
                line: n + 2,
                text: body,
            }),
            (_, Some(path)) => out.push(Block::File {
                path: path.to_string(),
                text: body,
            }),
            _ => {}
        }
    }
    out
}

/// One command of a console block and the output it must give.
#[derive(Debug)]
struct Step {
    line: usize,
    input: Option<String>,
    args: Vec<String>,
    expected: Vec<String>,
    status: i32,
}

fn steps(line: usize, text: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(command) = l.strip_prefix("$ ") {
            let (input, command) = match command.split_once(" | ") {
                Some((echo, rest)) => {
                    let word = echo.strip_prefix("echo ").unwrap_or_else(|| {
                        panic!("line {}: only `echo WORD |` may pipe", line + i)
                    });
                    (Some(format!("{word}\n")), rest)
                }
                None => (None, command),
            };
            let words = split(command);
            assert_eq!(
                words.first().map(String::as_str),
                Some("vgpu-admin"),
                "line {}: a console block runs vgpu-admin only (use an `sh` block)",
                line + i
            );
            out.push(Step {
                line: line + i,
                input,
                args: words[1..].to_vec(),
                expected: Vec::new(),
                status: 0,
            });
        } else if let Some(status) = l
            .strip_prefix("[exit status ")
            .and_then(|r| r.strip_suffix(']'))
        {
            let step = out.last_mut().expect("exit status after a command");
            step.status = status.parse().expect("exit status number");
        } else {
            let step = out
                .last_mut()
                .unwrap_or_else(|| panic!("line {}: output before any `$ ` command", line + i));
            step.expected.push(l.to_string());
        }
    }
    out
}

/// Splits a command line as sh would for the simple quoting the guides use ('...', "...").
fn split(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Does `actual` match `expected` (`[..]` within a line, `...` for any lines)?
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(first, a) && matches(rest, more)),
    }
}

fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
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

/// A fresh host for one guide.
fn host_env() -> Env {
    let env = Env::new();
    let mut vms = vec![serde_json::json!({
        "uuid": "00000000-0000-0000-0000-00000000d0d0",
        "name_label": "Control domain on host: xcp-host-01",
        "power_state": "running", "is_control_domain": true, "platform": []
    })];
    for (uuid, name, power) in HOST {
        vms.push(serde_json::json!({
            "uuid": uuid, "name_label": name, "power_state": power,
            "platform": [["timeoffset", "0"]], "pv_drivers": true, "boots": []
        }));
    }
    let hosts: Vec<serde_json::Value> = HOSTS
        .iter()
        .map(|(uuid, name)| serde_json::json!({"uuid": uuid, "name_label": name}))
        .collect();
    std::fs::write(
        &env.xe_state,
        serde_json::json!({"vms": vms, "hosts": hosts, "faults": []}).to_string(),
    )
    .expect("host state");
    // This dom0 is the first host of the pool.
    std::fs::write(
        env.dir.path().join("xensource-inventory"),
        format!("INSTALLATION_UUID='{}'\n", HOSTS[0].0),
    )
    .expect("inventory");
    // The devices of the VMs registered with vm_ids 2 and 3 (as the guides do) are connected to
    // this host's GPU mediator.
    env.mediator_connects(&[2, 3]);
    env
}

/// Runs one guide; returns the mismatches, each with its guide line.
fn run_guide(path: &Path) -> Vec<String> {
    let markdown = std::fs::read_to_string(path).expect("guide");
    let env = host_env();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut failures = Vec::new();
    for block in blocks(&markdown) {
        match block {
            Block::File { path: rel, text } => {
                let file = work.join(&rel);
                std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
                std::fs::write(&file, text).expect("write example file");
            }
            Block::Console { line, text } => {
                for step in steps(line, &text) {
                    let (status, output) = run_step(&env, &work, &step);
                    let actual: Vec<&str> = output.lines().collect();
                    if status != step.status || !matches(&step.expected, &actual) {
                        failures.push(format!(
                            "{}:{}: $ vgpu-admin {}\n--- expected (exit {}):\n{}\n--- got (exit {status}):\n{output}",
                            path.display(),
                            step.line,
                            step.args.join(" "),
                            step.status,
                            step.expected.join("\n"),
                        ));
                    }
                }
            }
        }
    }
    failures
}

/// Runs a step with stdout and stderr into one file, as a terminal would interleave them.
fn run_step(env: &Env, work: &Path, step: &Step) -> (i32, String) {
    let out_path = work.join(".output");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut cmd = Command::cargo_bin("vgpu-admin").expect("binary");
    cmd.args(&step.args)
        .current_dir(work)
        .env("VGPU_DB", &env.db)
        .env("VGPU_XE", fake_xe())
        .env("FAKE_XE_STATE", &env.xe_state)
        .env("FAKE_XE_LOG", &env.xe_log)
        .env("VGPU_INVENTORY", env.dir.path().join("xensource-inventory"))
        .env("VGPU_MEDIATOR", env.mediator_socket())
        .env_remove("VGPU_XE_TIMEOUT")
        .env("COLUMNS", "100")
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    // Without --scripts, the admin directory is the default one, which is not there.
    cmd.env("VGPU_SCRIPTS", env.dir.path().join("no-admin-scripts"));
    let status = match &step.input {
        Some(input) => {
            cmd.stdin(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn");
            use std::io::Write;
            let _ = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes());
            child.wait().expect("wait")
        }
        None => cmd.stdin(Stdio::null()).status().expect("run"),
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    (status.code().unwrap_or(-1), output)
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

#[test]
fn every_console_block_in_the_guides_is_true() {
    let mut guides: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    let mut failures = Vec::new();
    let mut commands = 0;
    for guide in &guides {
        let text = std::fs::read_to_string(guide).expect("guide");
        commands += blocks(&text)
            .iter()
            .map(|b| match b {
                Block::Console { line, text } => steps(*line, text).len(),
                Block::File { .. } => 0,
            })
            .sum::<usize>();
        failures.extend(run_guide(guide));
    }
    assert!(commands > 0, "the guides hold no console examples");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_api_reference_is_what_the_binary_prints() {
    let env = Env::new();
    let api = env.run(&["api"]);
    let expected = format!(
        "# The Rhai host API\n\n\
         This is the output of `vgpu-admin api` for this version (a test keeps it so). Each\n\
         function's documentation comes from the Rust code that implements it.\n\n\
         ```text\n{}```\n",
        api.stdout()
    );
    let path = docs_dir().join("api.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/api.md");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/api.md is not what `vgpu-admin api` prints: run `UPDATE_DOCS=1 cargo test docs`"
    );
}

#[test]
fn the_transcript_reader_matches_as_documented() {
    let exp = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(matches(&exp(&["a [..] c", "..."]), &["a b c", "x", "y"]));
    assert!(matches(&exp(&["...", "end"]), &["x", "end"]));
    assert!(!matches(&exp(&["a [..] c"]), &["a b d"]));
    assert!(!matches(&exp(&["a"]), &["a", "b"]));
    assert!(line_matches("[..]", "anything"));
    assert!(line_matches(
        "Created: [..]",
        "Created: 2026-11-23 10:00:00"
    ));
    assert!(!line_matches("x[..]y[..]z", "xyy"));
    assert_eq!(
        split("set-pool --vm-name 'my vm' --pool=B"),
        ["set-pool", "--vm-name", "my vm", "--pool=B"]
    );
    let s = steps(
        10,
        "$ echo yes | vgpu-admin set-pool --pool B\nDone\n[exit status 4]\n",
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].input.as_deref(), Some("yes\n"));
    assert_eq!(s[0].args, ["set-pool", "--pool", "B"]);
    assert_eq!(s[0].status, 4);
    assert_eq!(s[0].expected, ["Done"]);
}
