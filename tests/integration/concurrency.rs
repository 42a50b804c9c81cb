//! Concurrent changes to one VM (issue 11, "never leave a VM half-changed"): changes to a VM
//! run one after the other, each on top of the previous (the per-VM lock, the VM read after
//! taking it), a running VM is never stopped twice at once, and the database's write lock is
//! never held while xe runs or a prompt waits, so that the GPU mediator, which writes with no
//! busy timeout at all, never fails.

use crate::common::qemu::one_device;
use crate::common::{uuid, vm, Env, Outcome};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A vgpu-admin run in the background, its output collected as it comes.
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
        cmd.stdin(if stdin_pipe {
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

    fn answer(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is a pipe");
        stdin.write_all(text.as_bytes()).expect("answer");
        stdin.flush().expect("flush");
    }

    fn finished(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_some()
    }

    /// Waits for the end (60 s at most) and returns what it printed.
    fn finish(mut self) -> Outcome {
        drop(self.stdin.take());
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

/// Polls `ready` until it holds; fails the test after `limit`.
fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `check` exits 0 and reports `uuids` in sync (row and args agree).
fn assert_in_sync(env: &Env, uuids: &[&str]) {
    let out = env.run(&["check"]);
    out.code(0);
    for u in uuids {
        out.stdout_has(&format!("({u})"));
        assert!(
            out.stdout()
                .lines()
                .any(|l| l.starts_with("in sync:") && l.contains(u)),
            "{u} not in sync:\n{}",
            out.stdout()
        );
    }
}

fn journal_count(env: &Env) -> i64 {
    env.sql()
        .query_row("SELECT COUNT(*) FROM change_journal", [], |r| r.get(0))
        .expect("journal")
}

fn priority_name(level: i64) -> &'static str {
    ["low", "medium", "high"][level as usize]
}

#[test]
fn issue_11_three_concurrent_changes_to_a_halted_vm_all_land() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(
        vm(
            &u,
            "web",
            "halted",
            Some("-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=1"),
        ),
        1,
        "A",
        2,
    );
    let commands: [&[&str]; 3] = [
        &["set-pool", "--vm-uuid", &u, "--pool", "B"],
        &["set-priority", "--vm-uuid", &u, "--priority", "low"],
        &["set-vm-id", "--vm-uuid", &u, "--vm-id", "7"],
    ];
    // Started together; every xe call takes 300 ms, so that they overlap.
    let runs: Vec<Running> = commands
        .iter()
        .map(|args| {
            let mut cmd = env.command(*args);
            cmd.env("FAKE_XE_DELAY_MS", "300");
            Running::start(cmd, false)
        })
        .collect();
    let outs: Vec<Outcome> = runs.into_iter().map(Running::finish).collect();
    for out in &outs {
        out.code(0)
            .stdout_has("VM configuration updated successfully.");
    }
    // They did overlap: the later ones waited for the VM's lock.
    let waited = outs
        .iter()
        .filter(|o| {
            o.stdout().contains(&format!(
                "Waiting for another vgpu-admin that is changing VM {u}..."
            ))
        })
        .count();
    assert!(waited >= 1, "no run waited for another: {outs:#?}");

    // Each change was made on top of the previous one: none was lost.
    assert_eq!(
        env.row(&u),
        Some((7, "B".to_string(), 0, Some("web".into())))
    );
    let device = one_device(env.args(&u).as_deref()).expect("one device");
    assert_eq!(
        (device.pool.as_str(), device.priority.as_str(), device.vm_id),
        ("B", "low", 7)
    );
    assert!(
        env.args(&u).unwrap().starts_with("-usb "),
        "{:?}",
        env.args(&u)
    );
    assert_in_sync(&env, &[&u]);
    assert_eq!(env.power(&u), "halted");
    assert!(env.boots(&u).is_empty(), "a halted VM is not started");
    assert_eq!(
        env.call_names()
            .iter()
            .filter(|c| *c == "vm-param-set")
            .count(),
        3
    );
    assert_eq!(journal_count(&env), 0);
}

#[test]
fn issue_11_eight_concurrent_changes_to_a_running_vm_restart_it_one_at_a_time() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(
        vm(
            &u,
            "web",
            "running",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1 -usb"),
        ),
        1,
        "A",
        2,
    );
    // Eight different changes (each has its own vm_id, so each really changes the VM).
    let wanted: Vec<(i64, &str, i64)> = (0..8)
        .map(|i| (20 + i, ["A", "B"][(i % 2) as usize], i % 3))
        .collect();
    let runs: Vec<Running> = wanted
        .iter()
        .map(|(id, pool, level)| {
            let id = id.to_string();
            let mut cmd = env.command([
                "--yes",
                "update-vm",
                "--vm-uuid",
                &u,
                "--vm-id",
                &id,
                "--pool",
                pool,
                "--priority",
                priority_name(*level),
            ]);
            cmd.env("FAKE_XE_DELAY_MS", "60");
            Running::start(cmd, false)
        })
        .collect();
    let outs: Vec<Outcome> = runs.into_iter().map(Running::finish).collect();
    // Every one waits for the VM's lock, however long: all succeed.
    for out in &outs {
        out.code(0)
            .stdout_has("VM configuration updated successfully.")
            .quiet();
    }

    // The row is one of the eight changes (the last one applied) and the args agree.
    let (id, pool, level, name) = env.row(&u).expect("row");
    assert_eq!(name.as_deref(), Some("web"));
    assert!(
        wanted.contains(&(id, pool.as_str(), level)),
        "{:?} is none of {wanted:?}",
        (id, &pool, level)
    );
    let device = one_device(env.args(&u).as_deref()).expect("one device");
    assert_eq!(
        (
            device.pool.as_str(),
            device.priority.as_str(),
            i64::from(device.vm_id)
        ),
        (pool.as_str(), priority_name(level), id)
    );
    assert_in_sync(&env, &[&u]);
    assert_eq!(env.power(&u), "running");
    assert_eq!(journal_count(&env), 0);

    // Stopped and started once per change, never two stops at once: shutdown and start
    // alternate, each change booting with its own configuration.
    let power_calls: Vec<String> = env
        .call_names()
        .into_iter()
        .filter(|c| c == "vm-shutdown" || c == "vm-start")
        .collect();
    let alternating: Vec<String> = (0..8)
        .flat_map(|_| ["vm-shutdown".to_string(), "vm-start".to_string()])
        .collect();
    assert_eq!(power_calls, alternating);
    let boots = env.boots(&u);
    assert_eq!(boots.len(), 8, "{boots:?}");
    let mut booted: Vec<(i64, String, i64)> = boots
        .iter()
        .map(|b| {
            let d = one_device(b.as_deref()).expect("one device per boot");
            let level = ["low", "medium", "high"]
                .iter()
                .position(|p| *p == d.priority)
                .unwrap() as i64;
            (i64::from(d.vm_id), d.pool, level)
        })
        .collect();
    assert_eq!(
        boots.last().unwrap(),
        &env.args(&u),
        "the last boot has the final args"
    );
    booted.sort();
    let mut expected: Vec<(i64, String, i64)> = wanted
        .iter()
        .map(|(i, p, l)| (*i, p.to_string(), *l))
        .collect();
    expected.sort();
    assert_eq!(
        booted, expected,
        "each change booted once, with its own values"
    );
}

/// The GPU mediator stand-in: writes another VM's row with no busy timeout while `active`
/// says so, until `stop`; returns (writes, failures).
fn co_writer(
    db: std::path::PathBuf,
    other: String,
    active: impl Fn() -> bool + Send + 'static,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(usize, usize, Vec<String>)> {
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).expect("open db");
        conn.busy_timeout(Duration::ZERO).expect("busy timeout");
        let (mut writes, mut failures, mut errors) = (0, 0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            if active() {
                match conn.execute(
                    "UPDATE vms SET vm_name = ?1 WHERE vm_uuid = ?2",
                    rusqlite::params![format!("mediator-{writes}"), other],
                ) {
                    Ok(1) => writes += 1,
                    Ok(n) => panic!("updated {n} rows"),
                    Err(e) => {
                        failures += 1;
                        errors.push(e.to_string());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (writes, failures, errors)
    })
}

#[test]
fn issue_11_a_writer_without_busy_timeout_never_fails_while_vgpu_admin_waits() {
    let env = Env::new();
    let (u, other) = (uuid(1), uuid(2));
    env.registered(
        vm(
            &u,
            "web",
            "running",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1"),
        ),
        1,
        "A",
        2,
    );
    env.registered(
        vm(
            &other,
            "db",
            "running",
            Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=2"),
        ),
        2,
        "B",
        0,
    );

    // 1. While vgpu-admin waits for a slow xe (every call 1 s; the busy marker exists while
    // the fake waits), the co-writer writes.
    let busy = env.dir.path().join("xe-busy");
    let stop = Arc::new(AtomicBool::new(false));
    let busy_seen = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (busy, seen) = (busy.clone(), busy_seen.clone());
        co_writer(
            env.db.clone(),
            other.clone(),
            move || {
                let on = busy.exists();
                if on {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                on
            },
            stop.clone(),
        )
    };
    let mut cmd = env.command(["--yes", "set-pool", "--vm-uuid", &u, "--pool", "B"]);
    cmd.env("FAKE_XE_DELAY_MS", "1000")
        .env("FAKE_XE_BUSY", &busy);
    let out = Running::start(cmd, false).finish();
    stop.store(true, Ordering::SeqCst);
    let (writes, failures, errors) = writer.join().unwrap();
    out.code(0)
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(failures, 0, "the co-writer failed: {errors:?}");
    assert!(
        writes > 20,
        "the co-writer wrote only {writes} times (busy seen {})",
        busy_seen.load(Ordering::SeqCst)
    );
    assert_eq!(env.row(&u).unwrap().1, "B");
    assert_eq!(one_device(env.args(&u).as_deref()).unwrap().pool, "B");
    assert_eq!(env.power(&u), "running");
    assert!(
        env.row(&other).unwrap().3.unwrap().starts_with("mediator-"),
        "the co-writer's writes are there"
    );

    // 2. While the confirmation prompt waits (about a second), the co-writer writes; then
    // the answer "yes" goes on with the change.
    let mut run = Running::start(
        env.command(["set-pool", "--vm-uuid", &u, "--pool", "A"]),
        true,
    );
    wait_until("the confirmation prompt", Duration::from_secs(20), || {
        run.stdout_now()
            .contains("Do you want to apply these settings? (yes/no): ")
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = co_writer(env.db.clone(), other.clone(), || true, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let (writes, failures, errors) = writer.join().unwrap();
    assert!(!run.finished(), "the prompt is still waiting");
    assert_eq!(
        failures, 0,
        "the co-writer failed at the prompt: {errors:?}"
    );
    assert!(writes > 20, "the co-writer wrote only {writes} times");
    run.answer("yes\n");
    run.finish()
        .code(0)
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(env.row(&u).unwrap().1, "A");
    assert_eq!(one_device(env.args(&u).as_deref()).unwrap().pool, "A");
    assert_eq!(env.power(&u), "running");
    assert_in_sync(&env, &[&u, &other]);
    assert_eq!(journal_count(&env), 0);
}
