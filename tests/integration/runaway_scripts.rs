//! Issue 11, runaway admin scripts (`vgpu-admin run FILE`): whatever a script does — loop,
//! recurse, grow strings, arrays, maps or blobs, keep many large values, nest its source, call
//! `eval` — the run ends with exit status 1 and a clear `error:` line, within 5 s of wall time
//! and under 256 MiB of peak memory (the run's `ru_maxrss`, read with `wait4` by a small parent
//! process), never with a crash (a signal, 101, 134, 139).

use crate::common::Env;
use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most wall time a runaway script may take, start to exit.
const WALL_LIMIT: Duration = Duration::from_secs(5);
/// The most memory a runaway script's process may have had resident, in KiB.
const RSS_LIMIT_KIB: i64 = 256 * 1024;

/// How a measured run ended.
struct Measured {
    /// The exit status, if the process exited.
    code: Option<i32>,
    /// The signal that ended it, if one did.
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// Peak resident memory, KiB.
    max_rss_kib: i64,
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Starts `argv` from a small process (python3), waits for it and writes `code signal maxrss_kib`
/// to the report file. The kernel keeps a process's peak memory across `exec`, so a child forked
/// straight from this test process (hundreds of MiB once a failing test has printed a backtrace)
/// would report this process's peak; a grandchild forked from python3 starts from python3's.
const MEASURE_PY: &str = r#"
import os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
with open(report, "w") as f:
    f.write(f"{code} {sig} {usage.ru_maxrss}")
"#;

/// Runs `vgpu-admin <args>` and measures its wall time and peak memory (`wait4`'s rusage of
/// the run, taken by a small python3 parent: see [`MEASURE_PY`]); the figure includes the few
/// MiB python3 had when it forked.
fn measure(env: &Env, args: &[&str]) -> Measured {
    let inner = env.command(args);
    let report = env.dir.path().join("measure-report");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(MEASURE_PY)
        .arg(&report)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn python3 and vgpu-admin");
    let pgid = child.id() as libc::pid_t;
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    // A guard against a hang: a run still going after a minute is killed (and fails below).
    let done = Arc::new(AtomicBool::new(false));
    let guard = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !done.load(Ordering::SeqCst) {
                // SAFETY: kill has no memory-safety preconditions; the group is ours.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        })
    };
    let status = child.wait().expect("wait for python3");
    let elapsed = start.elapsed();
    done.store(true, Ordering::SeqCst);
    guard.join().unwrap();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no measurement ({e}); python3 ended with {status}"));
    let fields: Vec<i64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("number"))
        .collect();
    let (code, signal) = match (fields[0], fields[1]) {
        (c, 0) if c >= 0 => (Some(c as i32), None),
        (_, s) => (None, Some(s as i32)),
    };
    Measured {
        code,
        signal,
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        elapsed,
        max_rss_kib: fields[2],
    }
}

/// Writes `source` as an admin script and runs it with `vgpu-admin <global> run FILE`.
fn run_script(name: &str, source: &str, global: &[&str]) -> Measured {
    let env = Env::new();
    let path = env.file(&format!("{name}.rhai"), source);
    let mut args: Vec<&str> = global.to_vec();
    args.extend(["run", path.to_str().unwrap()]);
    let m = measure(&env, &args);
    // Shown with --nocapture: the figures of each case.
    eprintln!(
        "runaway case {name}: exit {:?} signal {:?}, {:.2} s, peak RSS {} MiB, {}",
        m.code,
        m.signal,
        m.elapsed.as_secs_f64(),
        m.max_rss_kib / 1024,
        m.stderr.lines().next().unwrap_or_default()
    );
    m
}

/// What is wrong with a run that should have been stopped cleanly: exit 1 (no signal, no
/// panic), a first stderr line `error: ...` containing `reason`, in time and within memory.
fn problems(name: &str, m: &Measured, reason: &str) -> Vec<String> {
    let mut found = Vec::new();
    if m.signal.is_some() || m.code != Some(1) {
        found.push(format!(
            "{name}: exit {:?}, signal {:?} (expected exit 1); stderr: {}",
            m.code,
            m.signal,
            tail(&m.stderr).trim_end()
        ));
    }
    let first = m.stderr.lines().next().unwrap_or_default();
    if !(first.starts_with("error: ") && first.contains(reason)) {
        found.push(format!(
            "{name}: first stderr line {:?} lacks {reason:?}",
            &first[..first.len().min(300)]
        ));
    }
    if m.stderr.contains("panicked") || m.stderr.contains("overflowed") {
        found.push(format!("{name}: {}", tail(&m.stderr).trim_end()));
    }
    if m.elapsed >= WALL_LIMIT {
        found.push(format!(
            "{name}: took {:.2} s (limit {} s)",
            m.elapsed.as_secs_f64(),
            WALL_LIMIT.as_secs()
        ));
    }
    if m.max_rss_kib >= RSS_LIMIT_KIB {
        found.push(format!(
            "{name}: peak RSS {} MiB (limit {} MiB)",
            m.max_rss_kib / 1024,
            RSS_LIMIT_KIB / 1024
        ));
    }
    found
}

/// Asserts the run was stopped cleanly (see [`problems`]).
#[track_caller]
fn stopped(name: &str, m: &Measured, reason: &str) {
    let found = problems(name, m, reason);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Runs every case and asserts each was stopped cleanly, reporting all that were not.
#[track_caller]
fn all_stopped(cases: &[(&str, &str)], reason: &str) {
    let mut found = Vec::new();
    for (name, source) in cases {
        let m = run_script(name, source, &[]);
        found.extend(problems(name, &m, reason));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The last lines of a long output (a source line can be very long).
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(2000)..].iter().collect()
}

#[test]
fn issue_11_an_infinite_loop_is_stopped() {
    let m = run_script("loop", "let n = 0;\nloop {\n    n += 1;\n}\n", &[]);
    stopped(
        "loop",
        &m,
        "script stopped: it ran more than 20000000 operations",
    );
}

#[test]
fn issue_11_a_long_loop_is_stopped_by_the_script_timeout() {
    // Each push re-measures the array: the operation limit is far away, the clock is not.
    let m = run_script(
        "array-timeout",
        "let a = [];\nloop { a.push(1); }\n",
        &["--script-timeout=1"],
    );
    stopped(
        "array-timeout",
        &m,
        "script stopped: it ran longer than 1 s",
    );
    assert!(m.elapsed < Duration::from_secs(3), "{:?}", m.elapsed);
}

#[test]
fn issue_11_deep_recursion_of_every_kind_is_stopped() {
    all_stopped(&[
        ("recursion", "fn f(n) { f(n + 1) }\nf(0);\n"),
        (
            "mutual-recursion",
            "fn a(n) { b(n + 1) }\nfn b(n) { a(n + 1) }\na(0);\n",
        ),
        ("fn-pointer", "fn f(n) { Fn(\"f\").call(n + 1) }\nf(0);\n"),
        (
            "curried",
            "fn f(a, n) { Fn(\"f\").curry(a).call(n + 1) }\nf(0, 0);\n",
        ),
        (
            "closures-calling-closures",
            "let f = |g, n| g.call(g, n + 1);\nf.call(f, 0);\n",
        ),
        (
            "nested-closures",
            // Closures cannot capture variables (that is what keeps a chain of them from
            // being built), so the closure is handed itself.
            "let deeper = |me, n| { let inner = |me, x| me.call(me, x + 1); inner.call(me, n) };\ndeeper.call(deeper, 0);\n",
        ),
        (
            "method-recursion",
            "fn grow() { this.push(1); this.grow(); }\nlet a = [];\na.grow();\n",
        ),
    ], "script stopped: functions nested deeper than 64 calls");
}

#[test]
fn issue_11_growing_strings_arrays_maps_and_blobs_are_stopped() {
    all_stopped(
        &[
            ("string-doubling", "let s = \"x\";\nloop { s += s; }\n"),
            (
                "string-interpolation",
                "let s = \"x\";\nloop { s = `${s}${s}`; }\n",
            ),
            ("string-pad", "let s = \"\";\ns.pad(20000000, \"x\");\n"),
            ("array-doubling", "let a = [1];\nloop { a += a; }\n"),
            ("array-pad", "let a = [];\na.pad(2000000, 0);\n"),
            ("array-push", "let a = [];\nloop { a.push(1); }\n"),
            (
                "map-growing",
                "let m = #{};\nlet i = 0;\nloop { m[`k${i}`] = i; i += 1; }\n",
            ),
            ("blob-push", "let b = blob();\nloop { b.push(1); }\n"),
            ("blob-alloc", "let b = blob(2000000, 7);\n"),
            ("blob-doubling", "let b = blob(1, 1);\nloop { b += b; }\n"),
            ("nested-arrays", "let a = [];\nloop { a = [a]; }\n"),
            ("nested-maps", "let m = #{};\nloop { m = #{ inner: m }; }\n"),
        ],
        "script stopped: ",
    );
}

/// `count` copies of a large value, each in its own variable and changed so that none is
/// shared: no single value is over its limit, together they are over the memory limit.
fn copies(make: &str, change: &str, count: usize) -> String {
    let mut source = format!("let v = {make};\n");
    for i in 0..count {
        source.push_str(&format!("let v{i} = v;\nv{i}{change};\n"));
    }
    source.push_str("print(\"all kept\");\n");
    source
}

#[test]
fn issue_11_many_large_values_in_separate_variables_hit_the_memory_limit() {
    let arrays = copies("[]; v.pad(900000, 0)", ".push(1)", 40);
    let strings = copies("\"\"; v.pad(15000000, \"s\")", " += \"x\"", 40);
    let blobs = copies("blob(999999, 1)", ".push(1)", 400);
    // Map keys are not counted by the map's own limit: a few maps of huge keys.
    let keys = "let k = \"\";\nk.pad(15000000, \"k\");\nlet m = #{};\nlet i = 0;\nloop { m[k + i] = i; i += 1; }\n";
    for (name, source) in [
        ("arrays-in-variables", arrays.as_str()),
        ("strings-in-variables", strings.as_str()),
        ("blobs-in-variables", blobs.as_str()),
        ("huge-map-keys", keys),
    ] {
        let m = run_script(name, source, &[]);
        stopped(
            name,
            &m,
            "script stopped: it took more than 160 MiB of memory",
        );
        assert!(!m.stdout.contains("all kept"), "{name}");
    }
}

#[test]
fn issue_11_eval_is_not_available() {
    for (name, source, says) in [
        (
            "eval",
            "eval(\"let x = 1;\");\n",
            "reserved keyword 'eval' is disabled",
        ),
        (
            "eval-in-function",
            "fn f() { eval(\"1\") }\nf();\n",
            "reserved keyword 'eval' is disabled",
        ),
        (
            "eval-by-name",
            "let f = Fn(\"eval\");\nf.call(\"1 + 1\");\n",
            "eval",
        ),
        ("eval-by-call", "call(Fn(\"eval\"), \"1 + 1\");\n", "eval"),
    ] {
        let m = run_script(name, source, &[]);
        stopped(name, &m, says);
        assert_eq!(m.stdout, "", "{name}");
    }
}

#[test]
fn issue_11_deeply_nested_source_text_is_a_syntax_error_not_a_crash() {
    let n = 100_000;
    let nested = |open: &str, middle: &str, close: &str| {
        format!("{}{middle}{}", open.repeat(n), close.repeat(n))
    };
    let sources = [
        (
            "parentheses",
            format!("let x = {};\n", nested("(", "1", ")")),
        ),
        (
            "array-literals",
            format!("let x = {};\n", nested("[", "1", "]")),
        ),
        (
            "map-literals",
            format!("let x = {};\n", nested("#{a: ", "1", "}")),
        ),
        ("blocks", format!("{};\n", nested("{ ", "1", " }"))),
        (
            "if-chains",
            format!("{};\n", nested("if true { ", "1", " }")),
        ),
        ("closures", format!("let f = {};\n", nested("|| ", "1", ""))),
        (
            "negations",
            format!("let x = {};\n", nested("!", "true", "")),
        ),
        (
            "function-calls",
            format!("let x = {};\n", nested("abs(", "1", ")")),
        ),
        (
            "index-chains",
            format!("let a = [1];\nlet x = a{};\n", "[0]".repeat(n)),
        ),
        (
            "operator-chain",
            format!("let x = 1{};\n", " + 1".repeat(n)),
        ),
        (
            "nested-functions",
            format!("{}\n", nested("fn f() { ", "1", " }")),
        ),
    ];
    for (name, source) in &sources {
        let m = run_script(name, source, &[]);
        stopped(name, &m, "error");
        let first = m.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: syntax error in ")
                || first.starts_with("error: script stopped: "),
            "{name}: {}",
            &first[..first.len().min(300)]
        );
    }
}

#[test]
fn issue_11_a_long_chain_of_closures_is_stopped_without_a_crash() {
    // A closure capturing the previous one would build a chain a million deep that no size
    // limit sees and whose teardown overflows the stack: closures cannot capture variables, so
    // the script ends with an error, cleanly.
    let m = run_script(
        "closure-chain",
        "let f = || 0;\nloop {\n    let g = f;\n    f = || g.call() + 1;\n}\n",
        &[],
    );
    stopped("closure-chain", &m, "script stopped: ");
}

#[test]
fn issue_11_a_finished_script_holding_a_long_closure_chain_exits_cleanly() {
    let m = run_script(
        "closure-chain-kept",
        "let f = || 0;\nfor i in 0..300000 {\n    let g = f;\n    f = || g.call() + 1;\n}\nprint(\"built\");\n",
        &[],
    );
    assert!(
        m.signal.is_none() && m.code == Some(0),
        "exit {:?}, signal {:?}\n--- stderr\n{}",
        m.code,
        m.signal,
        tail(&m.stderr)
    );
    assert_eq!(m.stdout, "built\n");
    assert!(m.elapsed < WALL_LIMIT, "{:?}", m.elapsed);
    assert!(
        m.max_rss_kib < RSS_LIMIT_KIB,
        "{} MiB",
        m.max_rss_kib / 1024
    );
}

#[test]
fn issue_11_one_operation_cannot_take_memory_beyond_the_limit() {
    // A single built-in call that builds a value many times the size of its input: the memory
    // limit, checked between operations, and the size limits, checked on the result, come too
    // late unless the call itself is bounded.
    all_stopped(&[
        (
            "split-every-character",
            "let s = \"\";\ns.pad(6000000, \"a\");\nlet parts = s.split(\"\");\nprint(parts.len());\n",
        ),
        (
            "replace-expanding",
            "let s = \"\";\ns.pad(1000000, \"a\");\nlet t = \"\";\nt.pad(300, \"b\");\ns.replace(\"a\", t);\nprint(s.len());\n",
        ),
        (
            "to-chars",
            "let s = \"\";\ns.pad(16000000, \"a\");\nlet c = s.to_chars();\nprint(c.len());\n",
        ),
    ], "script stopped: ");
}
