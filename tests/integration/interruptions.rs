//! Interrupted changes (issue 11, "never leave a VM half-changed"): a signal at any step of a
//! change finishes the step in hand, puts the VM's power state back and says what was done;
//! `kill -9` at any step leaves the change journal, which `recover`, the next change to the VM
//! or its vm-pre-start hook finishes; an xe call that fails or times out is judged by what the
//! VM really has afterwards, not by what xe answered.

use crate::common::qemu::one_device;
use crate::common::{uuid, vm, Env, Outcome};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const OLD: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=1";
const NEW: &str = "-usb -device vgpu-stub,pool_id=B,priority=high,vm_id=1";

/// A vgpu-admin run in the background, in its own process group (as a shell runs a job in
/// the foreground: a Ctrl-C goes to the whole group), its output collected as it comes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Running {
    /// Starts `cmd`; stdin is a pipe kept open when `stdin_pipe`, else /dev/null.
    fn start(mut cmd: Command, stdin_pipe: bool) -> Running {
        cmd.process_group(0)
            .stdin(if stdin_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vgpu-admin");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone()),
            collect(child.stderr.take().unwrap(), err.clone()),
        ];
        Running {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            readers,
        }
    }

    fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Sends `signal` to the run's process group, as a terminal's Ctrl-C or a dropped SSH
    /// session does (xe, in a group of its own, does not get it).
    fn signal_group(&self, signal: i32) {
        // SAFETY: kill with a valid process group id and signal number.
        let rc = unsafe { libc::kill(-(self.child.id() as i32), signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the end (60 s at most) and returns what it printed; a run ended by a signal
    /// has status -1.
    fn finish(mut self) -> Outcome {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("vgpu-admin did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        drop(self.stdin.take());
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let text =
            |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        Outcome::from_parts(
            status.code().unwrap_or(-1),
            text(&self.out),
            text(&self.err),
        )
    }
}

/// Waits up to `limit` for the run to end by itself; true when it did.
fn wait_for_exit(run: &mut Running, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if run.child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Polls `ready` until it holds; fails the test after `limit`.
fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The xe commands logged so far, read while the fake may be writing (a line being written is
/// not counted yet).
fn logged_calls(env: &Env) -> Vec<String> {
    let text = std::fs::read_to_string(&env.xe_log).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str::<Vec<String>>(l).ok())
        .filter_map(|c| c.into_iter().next())
        .collect()
}

/// Waits until xe `command` has been called (the fake logs a call when it begins, before its
/// delay).
fn wait_for_call(env: &Env, command: &str) {
    wait_until(
        &format!("xe {command} to be called"),
        Duration::from_secs(20),
        || logged_calls(env).iter().any(|c| c == command),
    );
}

/// The fake host's state, or `None` while a fake xe is rewriting it.
fn host_now(env: &Env) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(&env.xe_state).ok()?).ok()
}

/// Waits until every once-only fault has been taken: the fake xe that took it has acted.
fn wait_for_faults_taken(env: &Env) {
    wait_until(
        "the fake xe to act on its fault",
        Duration::from_secs(20),
        || {
            host_now(env).is_some_and(|s| {
                s["faults"]
                    .as_array()
                    .is_none_or(|f| f.iter().all(|f| f["once"] != true))
            })
        },
    );
}

fn journal_count(env: &Env) -> i64 {
    env.sql()
        .query_row("SELECT COUNT(*) FROM change_journal", [], |r| r.get(0))
        .expect("journal")
}

/// `check` says the VM is in sync (row and args agree).
fn assert_in_sync(env: &Env, u: &str) {
    let out = env.run(&["check"]);
    out.code(0);
    assert!(
        out.stdout()
            .lines()
            .any(|l| l.starts_with("in sync:") && l.contains(u)),
        "{u} not in sync:\n{}",
        out.stdout()
    );
}

/// The pool of the row and of the args' device, which must agree; returns it.
fn agreed_pool(env: &Env, u: &str) -> String {
    let row = env.row(u).expect("row");
    let device = one_device(env.args(u).as_deref()).expect("one device");
    assert_eq!(row.1, device.pool, "row {row:?} vs args {:?}", env.args(u));
    assert_eq!(
        (row.0, row.2),
        (1, 2),
        "vm_id and priority are unchanged: {row:?}"
    );
    assert_eq!((device.vm_id, device.priority.as_str()), (1, "high"));
    assert_in_sync(env, u);
    row.1
}

/// A running VM, registered in pool A, its args in sync.
fn running_vm() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "web", "running", Some(OLD)), 1, "A", 2);
    (env, u)
}

fn slow_once(env: &Env, command: &str, u: &str, ms: u64) {
    env.fault_raw(serde_json::json!({
        "command": command, "uuid": u, "once": true, "delay_ms": ms
    }));
}

fn set_pool_b(env: &Env, u: &str) -> Command {
    env.command(["--yes", "set-pool", "--vm-uuid", u, "--pool", "B"])
}

const STEPS: [&str; 3] = ["vm-shutdown", "vm-param-set", "vm-start"];

/// One signal at each step of `--yes set-pool` on a running VM.
fn signal_at_each_step(signal: i32, name: &str) {
    for step in STEPS {
        let (env, u) = running_vm();
        slow_once(&env, step, &u, 1200);
        let run = Running::start(set_pool_b(&env, &u), false);
        wait_for_call(&env, step);
        run.signal_group(signal);
        let out = run.finish();
        let context = format!("{name} during {step}");
        assert_eq!(out.status(), 128 + signal, "{context}: {out:#?}");
        // One line says what was done.
        out.one_error_line();
        let last = out.stderr().lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("error: interrupted by {name}: ")),
            "{context}: {out:#?}"
        );
        // Whatever the step, the VM runs again and nothing is left in the journal.
        assert_eq!(env.power(&u), "running", "{context}");
        assert_eq!(journal_count(&env), 0, "{context}");
        let pool = agreed_pool(&env, &u);
        let boots = env.boots(&u);
        assert_eq!(boots.len(), 1, "{context}: started once: {boots:?}");
        match step {
            // The VM was stopped when the signal was handled: it is started again with its
            // old configuration, nothing changed (old).
            "vm-shutdown" => {
                assert_eq!(pool, "A", "{context}");
                assert_eq!(env.args(&u).as_deref(), Some(OLD), "{context}");
                assert!(
                    last.contains("nothing was changed; VM web (")
                        && last.contains("was started again with its previous configuration."),
                    "{context}: {last}"
                );
                assert!(
                    !env.call_names().iter().any(|c| c == "vm-param-set"),
                    "{context}: no args written"
                );
                assert_eq!(boots[0].as_deref(), Some(OLD), "{context}");
            }
            // The args were being written (or the VM started): the change is carried through
            // to the database and the VM started again (new).
            _ => {
                assert_eq!(pool, "B", "{context}");
                assert_eq!(env.args(&u).as_deref(), Some(NEW), "{context}");
                assert!(
                    last.contains(
                        "the change was applied (database and device-model-args); VM web ("
                    ) && last.ends_with("was started again."),
                    "{context}: {last}"
                );
                assert_eq!(boots[0].as_deref(), Some(NEW), "{context}");
                // The change went through: the GPU mediator was told before the run ended.
                assert_eq!(
                    env.mediator_requests()
                        .iter()
                        .filter(|r| r[1] == 0x12)
                        .count(),
                    1,
                    "{context}: the mediator told"
                );
            }
        }
        assert_eq!(
            env.call_names()
                .iter()
                .filter(|c| *c == "vm-shutdown" || *c == "vm-start")
                .collect::<Vec<_>>(),
            ["vm-shutdown", "vm-start"],
            "{context}"
        );
    }
}

#[test]
fn issue_11_sigint_at_each_step_restores_power_and_says_what_was_done() {
    signal_at_each_step(libc::SIGINT, "SIGINT");
}

#[test]
fn issue_11_sigterm_at_each_step_restores_power_and_says_what_was_done() {
    signal_at_each_step(libc::SIGTERM, "SIGTERM");
}

#[test]
fn issue_11_sighup_at_each_step_restores_power_and_says_what_was_done() {
    signal_at_each_step(libc::SIGHUP, "SIGHUP");
}

#[test]
fn issue_11_a_second_signal_ends_the_run_at_once_and_recover_finishes_it() {
    let (env, u) = running_vm();
    slow_once(&env, "vm-shutdown", &u, 3000);
    let mut run = Running::start(set_pool_b(&env, &u), false);
    wait_for_call(&env, "vm-shutdown");
    run.signal_group(libc::SIGINT);
    run.signal_group(libc::SIGTERM);
    // The second signal does not wait for the step in hand: the run ends while xe still
    // shuts the VM down (its fault, taken when it acts, is still there).
    assert!(
        wait_for_exit(&mut run, Duration::from_millis(2500)),
        "a second signal ends the run at once"
    );
    let still_waiting = host_now(&env).is_some_and(|s| {
        s["faults"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["command"] == "vm-shutdown"))
    });
    let out = run.finish();
    assert!(still_waiting, "ended before xe answered: {out:#?}");
    // 128 + the signal handled second (two different signals sent at once may be handled
    // in either order).
    assert!(
        [128 + libc::SIGINT, 128 + libc::SIGTERM].contains(&out.status()),
        "{out:#?}"
    );
    assert_eq!(journal_count(&env), 1, "the change stays recorded");
    wait_for_faults_taken(&env);
    assert_eq!(env.power(&u), "halted");
    assert_warned(&env, &u, "planned");
    env.run(&["recover"]).code(0).stdout_has(
        "undone: none of it had been applied; the VM, stopped for the change, was started again.",
    );
    assert_eq!(env.power(&u), "running");
    assert_eq!(journal_count(&env), 0);
    assert_eq!(agreed_pool(&env, &u), "A");
    assert_eq!(env.args(&u).as_deref(), Some(OLD));
}

#[test]
fn issue_11_sigint_at_the_confirmation_prompt_cancels_with_nothing_changed() {
    let (env, u) = running_vm();
    let mut run = Running::start(
        env.command(["set-pool", "--vm-uuid", &u, "--pool", "B"]),
        true,
    );
    wait_until("the confirmation prompt", Duration::from_secs(20), || {
        run.stdout_now()
            .contains("Do you want to apply these settings? (yes/no): ")
    });
    run.signal_group(libc::SIGINT);
    // The signal ends the wait although stdin stays open (as a terminal's does).
    let ended = wait_for_exit(&mut run, Duration::from_secs(5));
    // (Ended or not, the input is closed now, so that the run ends and the rest is checked.)
    drop(run.stdin.take());
    let out = run.finish();
    // Nothing was changed, the VM untouched (only read).
    assert_eq!(
        env.row(&u),
        Some((1, "A".to_string(), 2, Some("web".into())))
    );
    assert_eq!(env.args(&u).as_deref(), Some(OLD));
    assert_eq!(env.power(&u), "running");
    assert!(env.boots(&u).is_empty());
    assert!(
        env.call_names()
            .iter()
            .all(|c| c == "vm-list" || c == "vm-param-get"),
        "{:?}",
        env.calls()
    );
    assert_eq!(journal_count(&env), 0);
    // The cancellation: at once, exit 4, one error line.
    assert!(
        ended,
        "SIGINT at the prompt did not end the wait for an answer (stdin kept open): {out:#?}"
    );
    out.code(4)
        .stdout_has("(SIGINT at the prompt: no)")
        .one_error_line()
        .stderr_has("Operation cancelled.");
}

/// `kill -9` of `--yes set-pool` (pool A to B) on a running VM while xe `step` runs (given a
/// fault: the call is slow, and may fail); waits for the orphaned xe call to end. Returns the
/// step the journal recorded.
fn killed_during(env: &Env, u: &str, step: &str, fault: serde_json::Value) -> String {
    env.fault_raw(fault);
    let mut run = Running::start(set_pool_b(env, u), false);
    wait_for_call(env, step);
    // SAFETY: kill with the pid of our child.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) },
        0
    );
    run.child.wait().expect("wait");
    let out = run.finish();
    assert_eq!(out.status(), -1, "killed: {out:#?}");
    // The xe call in hand is not killed with vgpu-admin (as on a real host, where xapi goes
    // on): wait for it to end.
    wait_for_faults_taken(env);
    assert_eq!(journal_count(env), 1, "the change stays recorded");
    env.sql()
        .query_row(
            "SELECT step FROM change_journal WHERE vm_uuid = ?1",
            [u],
            |r| r.get(0),
        )
        .expect("journal entry")
}

/// A fault that only slows `command` down (it then acts).
fn slow(command: &str, u: &str) -> serde_json::Value {
    serde_json::json!({"command": command, "uuid": u, "once": true, "delay_ms": 1200})
}

/// `list-vms` warns about the unfinished change (on stderr) and still lists.
fn assert_warned(env: &Env, u: &str, step: &str) {
    let out = env.run(&["list-vms"]);
    out.code(0)
        .stdout_has(u)
        .stderr_has(&format!(
            "warning: an interrupted set-pool of VM {u} (started "
        ))
        .stderr_has(&format!(
            "reached '{step}') is unfinished: 'vgpu-admin recover'"
        ));
}

#[test]
fn issue_11_kill_9_at_each_step_is_finished_by_recover() {
    struct Case {
        step: &'static str,
        fault: fn(&str) -> serde_json::Value,
        /// What the host has after the orphaned xe call: power, args.
        left: (&'static str, &'static str),
        journal_step: &'static str,
        recovered: &'static str,
        pool_after: &'static str,
    }
    let cases = [
        // Right after the journal entry is written: the shutdown fails (slowly) and does
        // nothing, so the VM is exactly as before with its change recorded: nothing to undo.
        Case {
            step: "vm-shutdown",
            fault: |u| {
                serde_json::json!({"command": "vm-shutdown", "uuid": u, "once": true,
                    "delay_ms": 1200, "stderr": "Error: injected failure"})
            },
            left: ("running", OLD),
            journal_step: "planned",
            recovered: "undone: none of it had been applied.",
            pool_after: "A",
        },
        // During the shutdown (which goes through): the VM is halted with its old args; it
        // is started again, nothing changed.
        Case {
            step: "vm-shutdown",
            fault: |u| slow("vm-shutdown", u),
            left: ("halted", OLD),
            journal_step: "planned",
            recovered: "undone: none of it had been applied; the VM, stopped for the change, was started again.",
            pool_after: "A",
        },
        // During the args write (which goes through): the row is completed, the VM started.
        Case {
            step: "vm-param-set",
            fault: |u| slow("vm-param-set", u),
            left: ("halted", NEW),
            journal_step: "stopped",
            recovered: "completed: the database now matches the VM's new device-model-args; the VM, stopped for the change, was started again.",
            pool_after: "B",
        },
        // During the start (which goes through): all was done already.
        Case {
            step: "vm-start",
            fault: |u| slow("vm-start", u),
            left: ("running", NEW),
            journal_step: "saved",
            recovered: "it had been applied completely.",
            pool_after: "B",
        },
    ];
    for case in cases {
        let (env, u) = running_vm();
        let step = killed_during(&env, &u, case.step, (case.fault)(&u));
        let context = format!("kill -9 during {} (journal '{step}')", case.step);
        assert_eq!(step, case.journal_step, "{context}");
        assert_eq!(env.power(&u), case.left.0, "{context}");
        assert_eq!(env.args(&u).as_deref(), Some(case.left.1), "{context}");
        assert_warned(&env, &u, case.journal_step);

        env.clear_calls();
        let out = env.run(&["recover"]);
        // (recover, opening the database, also says which changes are unfinished.)
        assert!(
            out.stderr()
                .lines()
                .all(|l| l.starts_with("warning: an interrupted set-pool of VM ")),
            "{context}: {}",
            out.stderr()
        );
        out.code(0).stdout_has(&format!(
            "Recovered the interrupted set-pool of VM {u} (started "
        ));
        assert!(
            out.stdout().contains(&format!(
                "reached '{}'): {}",
                case.journal_step, case.recovered
            )),
            "{context}: {}",
            out.stdout()
        );
        assert_eq!(journal_count(&env), 0, "{context}");
        assert_eq!(env.power(&u), "running", "{context}");
        assert_eq!(agreed_pool(&env, &u), case.pool_after, "{context}");
        let started = env.call_names().iter().filter(|c| *c == "vm-start").count();
        assert_eq!(
            started,
            usize::from(case.left.0 == "halted"),
            "{context}: only a VM left halted is started"
        );
        // Nothing left: the next command is quiet, recover has nothing to do.
        env.run(&["list-vms"]).code(0).quiet();
        env.run(&["recover"])
            .code(0)
            .stdout_has("Nothing to recover: no interrupted change is recorded.");
    }
}

#[test]
fn issue_11_kill_9_before_the_journal_leaves_nothing_to_recover() {
    let (env, u) = running_vm();
    // The VM's args are read (vm-param-get) before anything is recorded.
    env.fault_raw(serde_json::json!({
        "command": "vm-param-get", "uuid": u, "once": true, "delay_ms": 1200
    }));
    let mut run = Running::start(set_pool_b(&env, &u), false);
    wait_for_call(&env, "vm-param-get");
    // SAFETY: kill with the pid of our child.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) },
        0
    );
    run.child.wait().expect("wait");
    assert_eq!(run.finish().status(), -1);
    wait_for_faults_taken(&env);
    assert_eq!(journal_count(&env), 0);
    env.run(&["list-vms"]).code(0).quiet();
    env.run(&["recover"])
        .code(0)
        .stdout_has("Nothing to recover: no interrupted change is recorded.");
    assert_eq!(
        env.row(&u),
        Some((1, "A".to_string(), 2, Some("web".into())))
    );
    assert_eq!(env.args(&u).as_deref(), Some(OLD));
    assert_eq!(env.power(&u), "running");
}

#[test]
fn issue_11_after_kill_9_the_next_change_to_the_vm_recovers_first() {
    let (env, u) = running_vm();
    let step = killed_during(&env, &u, "vm-param-set", slow("vm-param-set", &u));
    assert_eq!(step, "stopped");
    assert_eq!(env.power(&u), "halted");
    assert_eq!(env.args(&u).as_deref(), Some(NEW));
    assert_eq!(env.row(&u).unwrap().1, "A", "the row is still old");

    let out = env.run(&[
        "--yes",
        "set-priority",
        "--vm-uuid",
        &u,
        "--priority",
        "low",
    ]);
    out.code(0)
        .stdout_has(&format!("Recovered the interrupted set-pool of VM {u} (started "))
        .stdout_has("completed: the database now matches the VM's new device-model-args; the VM, stopped for the change, was started again.")
        .stdout_has("VM configuration updated successfully.");
    // The recovered change first (pool B), then its own (priority low) on top of it.
    let recovered_at = out.stdout().find("Recovered").unwrap();
    let current_at = out.stdout().find("Current configuration:").unwrap();
    assert!(recovered_at < current_at, "{}", out.stdout());
    assert_eq!(
        env.row(&u),
        Some((1, "B".to_string(), 0, Some("web".into())))
    );
    let device = one_device(env.args(&u).as_deref()).unwrap();
    assert_eq!(
        (device.pool.as_str(), device.priority.as_str(), device.vm_id),
        ("B", "low", 1)
    );
    assert_in_sync(&env, &u);
    assert_eq!(env.power(&u), "running");
    assert_eq!(journal_count(&env), 0);
    assert_eq!(
        env.boots(&u),
        vec![
            Some(NEW.to_string()),
            Some("-usb -device vgpu-stub,pool_id=B,priority=low,vm_id=1".to_string())
        ],
        "started by the recovery, then restarted by the change"
    );
}

#[test]
fn issue_11_after_kill_9_the_start_hook_finishes_the_change_without_starting_the_vm() {
    let (env, u) = running_vm();
    let step = killed_during(&env, &u, "vm-param-set", slow("vm-param-set", &u));
    assert_eq!(step, "stopped");
    // The VM is halted, as it is when xenopsd runs the hook to start it.
    assert_eq!(env.power(&u), "halted");
    env.clear_calls();
    let out = env.run(&["hook", "vm-pre-start", "-vmuuid", &u, "-reason", "none"]);
    // Under the default policy (warn), a recovery is worth a line in xenopsd's log: exit 1.
    out.code(1)
        .stdout_has(&format!(
            "vgpu-admin: recovered the interrupted set-pool of VM {u} (started "
        ))
        .stdout_has("completed: the database now matches the VM's new device-model-args");
    assert!(!out.stdout().contains("started again"), "{}", out.stdout());
    assert_eq!(journal_count(&env), 0);
    assert_eq!(env.row(&u).unwrap().1, "B");
    assert_eq!(env.args(&u).as_deref(), Some(NEW));
    assert_eq!(env.power(&u), "halted", "the hook does not start the VM");
    assert!(
        !env.call_names()
            .iter()
            .any(|c| c == "vm-start" || c == "vm-shutdown" || c == "vm-param-set"),
        "{:?}",
        env.calls()
    );
    assert!(env.boots(&u).is_empty());
    assert_in_sync(&env, &u);
}

/// `--xe-timeout 1 --yes set-pool` (pool A to B) on a running VM with `fault`.
fn set_pool_with_fault(fault: serde_json::Value) -> (Env, String, Outcome) {
    let (env, u) = running_vm();
    let mut fault = fault;
    fault["uuid"] = serde_json::json!(u);
    env.fault_raw(fault);
    let out = env.run(&[
        "--xe-timeout",
        "1",
        "--yes",
        "set-pool",
        "--vm-uuid",
        &u,
        "--pool",
        "B",
    ]);
    (env, u, out)
}

fn assert_new(env: &Env, u: &str) {
    assert_eq!(env.row(u).unwrap().1, "B");
    assert_eq!(env.args(u).as_deref(), Some(NEW));
    assert_eq!(env.power(u), "running");
    assert_eq!(env.boots(u), vec![Some(NEW.to_string())]);
    assert_eq!(journal_count(env), 0);
    assert_in_sync(env, u);
}

fn assert_old(env: &Env, u: &str) {
    assert_eq!(
        env.row(u),
        Some((1, "A".to_string(), 2, Some("web".into())))
    );
    assert_eq!(env.args(u).as_deref(), Some(OLD));
    assert_eq!(env.power(u), "running");
    assert_eq!(journal_count(env), 0);
    assert_in_sync(env, u);
}

#[test]
fn issue_11_args_written_but_answered_late_go_on() {
    // (a) vm-param-set applies, then answers after 3 s: past the 1 s timeout.
    let (env, u, out) = set_pool_with_fault(serde_json::json!({
        "command": "vm-param-set", "once": true, "after_ms": 3000
    }));
    out.code(0)
        .quiet()
        .stdout_has("xe reported 'xe vm-param-set did not finish within 1 s and was stopped', but the new device-model-args are in place: going on.")
        .stdout_has("VM configuration updated successfully.");
    assert_new(&env, &u);

    // (b) vm-param-set applies, then fails.
    let (env, u, out) = set_pool_with_fault(serde_json::json!({
        "command": "vm-param-set", "once": true, "after_ms": 200,
        "stderr": "Error: lost connection to xapi"
    }));
    out.code(0)
        .quiet()
        .stdout_has("xe reported 'xe vm-param-set failed: Error: lost connection to xapi', but the new device-model-args are in place: going on.")
        .stdout_has("VM configuration updated successfully.");
    assert_new(&env, &u);
}

#[test]
fn issue_11_args_write_failing_without_acting_changes_nothing() {
    // (c) vm-param-set fails and does nothing: the VM is started again as it was.
    let (env, u, out) = set_pool_with_fault(serde_json::json!({
        "command": "vm-param-set", "once": true, "stderr": "Error: injected xapi failure"
    }));
    out.code(1)
        .one_error_line()
        .stderr_has("step 'write the device-model-args' failed: xe vm-param-set failed: Error: injected xapi failure. Nothing was changed; VM web (")
        .stderr_has("was started again with its previous configuration.");
    assert_old(&env, &u);
    assert_eq!(env.boots(&u), vec![Some(OLD.to_string())]);
}

#[test]
fn issue_11_a_start_answered_late_is_a_success() {
    // (d) vm-start starts the VM, then answers after 3 s: past the 1 s timeout.
    let (env, u, out) = set_pool_with_fault(serde_json::json!({
        "command": "vm-start", "once": true, "after_ms": 3000
    }));
    out.code(0)
        .quiet()
        .stdout_has("VM configuration updated successfully.");
    assert_new(&env, &u);
}

#[test]
fn issue_11_a_shutdown_timing_out_without_stopping_changes_nothing() {
    // (e) vm-shutdown does not act within the 1 s timeout (it is stopped before acting).
    let (env, u, out) = set_pool_with_fault(serde_json::json!({
        "command": "vm-shutdown", "once": true, "delay_ms": 3000
    }));
    out.code(1)
        .one_error_line()
        .stderr_has("step 'stop the VM' failed: xe vm-shutdown did not finish within 1 s and was stopped. Nothing was changed; VM web (")
        .stderr_has("is running.");
    assert_old(&env, &u);
    assert!(env.boots(&u).is_empty());
    assert!(
        !env.call_names()
            .iter()
            .any(|c| c == "vm-param-set" || c == "vm-start"),
        "{:?}",
        env.calls()
    );
}

#[test]
fn issue_14_recover_starts_the_vm_on_the_host_it_ran_on() {
    let h1 = "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a01";
    let h2 = "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a02";
    let (env, u) = running_vm();
    env.pool_hosts(&[(h1, "xcp-host-01"), (h2, "xcp-host-02")]);
    env.host_vm_set(&u, "resident_on", serde_json::json!(h2));
    // Killed while the args are written: the VM is halted, its change recorded with its host.
    let step = killed_during(&env, &u, "vm-param-set", slow("vm-param-set", &u));
    assert_eq!(step, "stopped");
    assert_eq!(env.power(&u), "halted");
    env.clear_calls();
    env.run(&["recover"])
        .code(0)
        .stdout_has("was started again");
    assert_eq!(env.resident_on(&u).as_deref(), Some(h2));
    assert!(env.calls().contains(&vec![
        "vm-start".to_string(),
        format!("uuid={u}"),
        format!("on={h2}")
    ]));
}
