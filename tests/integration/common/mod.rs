//! A fluent harness for running the built `vgpu-admin` binary against a temporary database and
//! scripts directory: `Env::new().run(&["list-vms"]).code(0).stdout_has("No VMs found")`.
#![allow(dead_code)]

pub mod mediator;
pub mod qemu;

use assert_cmd::cargo::CommandCargoExt;
use rusqlite::Connection;
use std::cell::Cell;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A temporary place to run vgpu-admin: its database path, admin scripts directory, and (once
/// a host VM is added) a fake `xe` with its state file and call log.
pub struct Env {
    /// The GPU mediator of this host (a fake on a real socket), stopped first when the
    /// environment goes.
    pub mediator: Option<mediator::FakeMediator>,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub scripts: PathBuf,
    pub xe_state: PathBuf,
    pub xe_log: PathBuf,
}

/// A VM on the fake host.
pub struct HostVm<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub power: &'a str,
    pub args: Option<&'a str>,
}

/// A VM for the fake host.
pub fn vm<'a>(uuid: &'a str, name: &'a str, power: &'a str, args: Option<&'a str>) -> HostVm<'a> {
    HostVm {
        uuid,
        name,
        power,
        args,
    }
}

/// The fake xe binary built with the package.
pub fn fake_xe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("fake-xe")
}

/// The fake pool's host when a test names none (the fake xe's default): running VMs run there,
/// and a VM restarted by a change is started there again (`on=`).
pub const HOST1: &str = "c0ffee00-0000-4000-8000-000000000001";

/// A uuid for test VM number `n`.
pub fn uuid(n: u32) -> String {
    format!("7d5a8c3e-92f1-4b6a-b0c2-{n:012x}")
}

impl Env {
    /// A fresh directory with no database yet and an empty scripts directory.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("etc/vgpu/vgpu_config.db");
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("scripts dir");
        let xe_state = dir.path().join("xe-state.json");
        let xe_log = dir.path().join("xe-calls.log");
        // Every host runs a GPU mediator: changes tell it to reload (a test stops it to see
        // what happens without one).
        let mediator = Some(mediator::FakeMediator::start(
            &dir.path().join("admin.sock"),
            false,
        ));
        Env {
            mediator,
            dir,
            db,
            scripts,
            xe_state,
            xe_log,
        }
    }

    /// The fake GPU mediator's requests so far.
    pub fn mediator_requests(&self) -> Vec<mediator::Request> {
        self.mediator
            .as_ref()
            .map(|m| m.requests())
            .unwrap_or_default()
    }

    /// The VMs with these vm_ids are connected to the GPU mediator from now on.
    pub fn mediator_connects(&self, vm_ids: &[u32]) {
        if let Some(m) = &self.mediator {
            m.connect(vm_ids);
        }
    }

    /// Stops the GPU mediator: its socket is gone.
    pub fn stop_mediator(&mut self) {
        self.mediator = None;
        let _ = std::fs::remove_file(self.mediator_socket());
    }

    /// Runs a GPU mediator that answers a reload with an error status.
    pub fn refusing_mediator(&mut self) {
        self.stop_mediator();
        self.mediator = Some(mediator::FakeMediator::start(&self.mediator_socket(), true));
    }

    /// A command for the binary with this environment's database and scripts directory.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::cargo_bin("vgpu-admin").expect("binary");
        cmd.args(args)
            .env("VGPU_DB", &self.db)
            .env("VGPU_SCRIPTS", &self.scripts)
            .env_remove("VGPU_XE_TIMEOUT")
            // Which host of the pool this is: the test's own file, when it writes one.
            .env(
                "VGPU_INVENTORY",
                self.dir.path().join("xensource-inventory"),
            )
            // The GPU mediator's socket: the test's own (absent unless it starts a fake one).
            .env("VGPU_MEDIATOR", self.mediator_socket());
        if self.xe_state.exists() {
            cmd.env("VGPU_XE", fake_xe())
                .env("FAKE_XE_STATE", &self.xe_state)
                .env("FAKE_XE_LOG", &self.xe_log);
        } else {
            // No host in this test: xe is simply not there.
            cmd.env("VGPU_XE", self.dir.path().join("no-xe-here"));
        }
        cmd
    }

    /// Runs the binary with `args` and no input.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Outcome {
        Outcome::of(self.command(args), None)
    }

    /// Runs the binary with `args`, feeding `input` on stdin.
    pub fn run_with_input<S: AsRef<OsStr>>(&self, args: &[S], input: &str) -> Outcome {
        Outcome::of(self.command(args), Some(input))
    }

    /// The fake host's state.
    pub fn host(&self) -> serde_json::Value {
        std::fs::read_to_string(&self.xe_state)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({"vms": [], "faults": []}))
    }

    fn save_host(&self, state: &serde_json::Value) {
        std::fs::write(&self.xe_state, serde_json::to_string_pretty(state).unwrap())
            .expect("state");
    }

    /// Adds a VM to the fake host (created on first use, with a control domain).
    pub fn host_vm(&self, vm: HostVm<'_>) -> &Self {
        let mut state = self.host();
        if state["vms"].as_array().unwrap().is_empty() {
            state["vms"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "uuid": "00000000-0000-0000-0000-00000000d0d0",
                    "name_label": "Control domain on host: xcp-test",
                    "power_state": "running", "is_control_domain": true, "platform": []
                }));
        }
        let mut platform = vec![serde_json::json!(["timeoffset", "0"])];
        if let Some(args) = vm.args {
            platform.insert(0, serde_json::json!(["device-model-args", args]));
        }
        state["vms"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "uuid": vm.uuid, "name_label": vm.name, "power_state": vm.power,
                "platform": platform, "pv_drivers": true, "boots": []
            }));
        self.save_host(&state);
        self
    }

    /// Where this environment's GPU mediator socket is (a fake one listens there once a test
    /// starts it).
    pub fn mediator_socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// Makes the fake pool these hosts (uuid, name-label), this dom0 being the first (its
    /// inventory says so).
    pub fn pool_hosts(&self, hosts: &[(&str, &str)]) {
        let mut state = self.host();
        state["hosts"] = hosts
            .iter()
            .map(|(uuid, name)| serde_json::json!({"uuid": uuid, "name_label": name}))
            .collect();
        self.save_host(&state);
        std::fs::write(
            self.dir.path().join("xensource-inventory"),
            format!(
                "PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='{}'\n",
                hosts[0].0
            ),
        )
        .expect("inventory");
    }

    /// Changes one attribute of a fake pool host (`full`, `name_label`).
    pub fn pool_host_set(&self, uuid: &str, key: &str, value: serde_json::Value) {
        let mut state = self.host();
        for host in state["hosts"].as_array_mut().expect("hosts") {
            if host["uuid"] == uuid {
                host[key] = value.clone();
            }
        }
        self.save_host(&state);
    }

    /// The host a fake VM runs on (`None`: it runs nowhere).
    pub fn resident_on(&self, uuid: &str) -> Option<String> {
        let state = self.host();
        let vm = state["vms"]
            .as_array()?
            .iter()
            .find(|v| v["uuid"] == uuid)?
            .clone();
        if vm["power_state"] != "running" && vm["power_state"] != "paused" {
            return None;
        }
        Some(vm["resident_on"].as_str().unwrap_or(HOST1).to_string())
    }

    /// The `vm-param-set` a change makes for VM `uuid` with args `args`: its signature, the
    /// args, then its pool record (pool, priority word, vm_id) as the database now holds them,
    /// signed with this environment's pool key.
    pub fn set_call(&self, uuid: &str, args: &str) -> Vec<String> {
        let (vm_id, pool, level, _) = self.row(uuid).expect("registered");
        let priority = ["low", "medium", "high"][level as usize];
        let key = vgpu_admin::pool_record::PoolKey::load(&self.db.with_file_name("pool.key"))
            .expect("pool key")
            .expect("pool key made by the change");
        let config = vgpu_admin::model::VmConfig {
            pool: vgpu_admin::model::Pool::parse(&pool).unwrap(),
            priority: vgpu_admin::model::Priority::parse(priority).unwrap(),
            vm_id: vgpu_admin::model::VmId::new(vm_id).unwrap(),
        };
        vec![
            "vm-param-set".to_string(),
            format!("uuid={uuid}"),
            format!("other-config:vgpu-admin:sig={}", key.sign(uuid, &config)),
            format!("platform:device-model-args={args}"),
            format!("other-config:vgpu-admin:pool={pool}"),
            format!("other-config:vgpu-admin:priority={priority}"),
            format!("other-config:vgpu-admin:vm-id={vm_id}"),
        ]
    }

    /// A VM that is both on the fake host and registered (its name stored), in `pool` with
    /// priority level `priority` and `vm_id`.
    pub fn registered(&self, vm: HostVm<'_>, vm_id: i64, pool: &str, priority: i64) {
        let (uuid, name) = (vm.uuid.to_string(), vm.name.to_string());
        self.host_vm(vm);
        self.seed(&[(vm_id, &uuid, Some(&name), pool, priority)]);
    }

    /// Changes one attribute of a fake VM (`pv_drivers`, `ignores_shutdown`, `resident_on`...).
    pub fn host_vm_set(&self, uuid: &str, key: &str, value: serde_json::Value) {
        let mut state = self.host();
        for vm in state["vms"].as_array_mut().unwrap() {
            if vm["uuid"] == uuid {
                vm[key] = value.clone();
            }
        }
        self.save_host(&state);
    }

    /// Makes the fake xe fail `command` (for `uuid`, or any) with `stderr`, once or always.
    pub fn fault(&self, command: &str, uuid: Option<&str>, stderr: &str, once: bool) {
        let mut state = self.host();
        if !state["faults"].is_array() {
            state["faults"] = serde_json::json!([]);
        }
        state["faults"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "command": command, "uuid": uuid, "stderr": stderr, "once": once
            }));
        self.save_host(&state);
    }

    /// Adds a fault given whole: `{"command", "uuid", "stderr", "once", "delay_ms", "after_ms"}`
    /// (see the fake xe: a fault without `stderr` only slows the call down or answers late).
    pub fn fault_raw(&self, fault: serde_json::Value) {
        let mut state = self.host();
        if !state["faults"].is_array() {
            state["faults"] = serde_json::json!([]);
        }
        state["faults"].as_array_mut().unwrap().push(fault);
        self.save_host(&state);
    }

    fn host_field(&self, uuid: &str, key: &str) -> serde_json::Value {
        let state = self.host();
        state["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|vm| vm["uuid"] == uuid)
            .map(|vm| vm[key].clone())
            .unwrap_or(serde_json::Value::Null)
    }

    /// The VM's `platform:device-model-args` on the fake host.
    pub fn args(&self, uuid: &str) -> Option<String> {
        self.host_field(uuid, "platform")
            .as_array()?
            .iter()
            .find(|p| p[0] == "device-model-args")
            .and_then(|p| p[1].as_str().map(str::to_string))
    }

    /// The VM's power state on the fake host.
    pub fn power(&self, uuid: &str) -> String {
        self.host_field(uuid, "power_state")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The device-model-args each start of the VM booted with.
    pub fn boots(&self, uuid: &str) -> Vec<Option<String>> {
        self.host_field(uuid, "boots")
            .as_array()
            .map(|b| b.iter().map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// The xe calls made since the last `clear_calls` (each an argv without `xe`).
    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.xe_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    /// The xe commands (first words) called since the last `clear_calls`.
    pub fn call_names(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c[0].clone()).collect()
    }

    /// Forgets the xe calls made so far.
    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(&self.xe_log);
    }

    /// The `vms` row of `uuid`: (vm_id, pool, priority, name).
    pub fn row(&self, uuid: &str) -> Option<(i64, String, i64, Option<String>)> {
        use rusqlite::OptionalExtension;
        self.sql()
            .query_row(
                "SELECT vm_id, pool_id, priority, vm_name FROM vms WHERE vm_uuid = ?1",
                [uuid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .expect("row")
    }

    /// Writes a file under the admin scripts directory (`commands/x.rhai`).
    pub fn script(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.scripts.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write script");
        path
    }

    /// Writes a file in the temp directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Creates the database (through the binary) if needed and opens it directly.
    pub fn sql(&self) -> Connection {
        if !self.db.exists() {
            self.run(&["init"]).code(0);
        }
        Connection::open(&self.db).expect("open db")
    }

    /// Registers VMs directly in the database: (vm_id, uuid, name, pool, priority).
    pub fn seed(&self, rows: &[(i64, &str, Option<&str>, &str, i64)]) {
        let conn = self.sql();
        for (id, uuid, name, pool, priority) in rows {
            conn.execute(
                "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
                rusqlite::params![id, uuid, name, pool, priority],
            )
            .expect("seed row");
        }
    }

    /// The database file's bytes (after every connection closed, WAL checkpointed).
    pub fn db_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.db).unwrap_or_default()
    }

    /// Number of rows in `vms`.
    pub fn vm_count(&self) -> i64 {
        self.sql()
            .query_row("SELECT COUNT(*) FROM vms", [], |r| r.get(0))
            .expect("count")
    }

    /// The path of the database.
    pub fn db_path(&self) -> &Path {
        &self.db
    }
}

/// What a run printed and how it ended. Strict, like just's `Test`: unless the test asserts
/// otherwise, a run must end with status 0 and print nothing on stderr — checked when the
/// outcome is dropped. Asserting the status (`code`, or reading `status()`) or anything about
/// stderr (`stderr_has`, `stderr_is`, `one_error_line`, `quiet`, or reading `stderr()`) takes
/// that part over.
#[derive(Debug)]
pub struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
    status_seen: Cell<bool>,
    stderr_seen: Cell<bool>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if !self.status_seen.get() {
            assert_eq!(
                self.status, 0,
                "exit status (the test did not expect a failure)\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            );
        }
        if !self.stderr_seen.get() {
            assert!(
                self.stderr.is_empty(),
                "stderr (the test did not expect anything there):\n{}",
                self.stderr
            );
        }
    }
}

impl Outcome {
    /// Runs `cmd` (with a generous guard against hangs) and collects its output.
    pub fn of(mut cmd: Command, input: Option<&str>) -> Outcome {
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vgpu-admin");
        if let Some(text) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = stdin.write_all(text.as_bytes());
        }
        let output = wait_with_timeout(child, Duration::from_secs(120));
        Outcome::from_parts(
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// An outcome from what a run gave (for runs the test drives itself).
    pub fn from_parts(status: i32, stdout: String, stderr: String) -> Outcome {
        Outcome {
            status,
            stdout,
            stderr,
            status_seen: Cell::new(false),
            stderr_seen: Cell::new(false),
        }
    }

    /// The exit status (-1 when killed by a signal); the test takes over checking it.
    pub fn status(&self) -> i32 {
        self.status_seen.set(true);
        self.status
    }

    /// Standard output.
    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    /// Standard error; the test takes over checking it.
    pub fn stderr(&self) -> &str {
        self.stderr_seen.set(true);
        &self.stderr
    }

    /// Asserts the exit status.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        self.status_seen.set(true);
        assert_eq!(
            self.status, expected,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts stdout is exactly `expected`.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "stdout (stderr: {})", self.stderr);
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts stdout contains `needle` with runs of spaces counted as one (for aligned columns).
    #[track_caller]
    pub fn stdout_has_words(&self, needle: &str) -> &Self {
        let squeeze = |t: &str| {
            t.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            squeeze(&self.stdout).contains(&squeeze(needle)),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts stdout does not contain `needle`.
    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        self.stderr_seen.set(true);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts stderr is exactly `expected`.
    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Self {
        self.stderr_seen.set(true);
        assert_eq!(self.stderr, expected, "stderr");
        self
    }

    /// Asserts stderr is exactly one line, an error.
    #[track_caller]
    pub fn one_error_line(&self) -> &Self {
        self.stderr_seen.set(true);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        self
    }

    /// Asserts nothing was printed on stderr.
    #[track_caller]
    pub fn quiet(&self) -> &Self {
        self.stderr_seen.set(true);
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    use std::io::Read;
    // Read both pipes while waiting, so a large output never blocks the child.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                panic!("vgpu-admin did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    std::process::Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
