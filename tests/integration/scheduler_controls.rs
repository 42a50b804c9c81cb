//! Issue 15, the GPU mediator's scheduler controls: its five columns (added by our migration or
//! by the mediator itself, either way round, every row and value kept), the phase-3 tool's
//! commands and lines, and bad values refused before anything is touched.

use crate::common::mediator::MAGIC;
use crate::common::{uuid, vm, Env};

/// The mediator's own schema statements, as it runs them at start (`vgpu_config.c`).
const MEDIATOR_ALTERS: &str = "ALTER TABLE vms ADD COLUMN weight INTEGER NOT NULL DEFAULT 50;
ALTER TABLE vms ADD COLUMN max_jobs_per_sec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN max_queue_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;";

/// The five columns of `vms` as SQLite describes them: (name, type, not null, default).
fn controls_columns(env: &Env) -> Vec<(String, String, bool, Option<String>)> {
    let conn = env.sql();
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info('vms') WHERE name IN ('weight','max_jobs_per_sec','max_queue_depth','quarantined','error_count') ORDER BY cid")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn expected_columns() -> Vec<(String, String, bool, Option<String>)> {
    [
        "weight",
        "max_jobs_per_sec",
        "max_queue_depth",
        "quarantined",
        "error_count",
    ]
    .iter()
    .map(|n| {
        let default = if *n == "weight" { "50" } else { "0" };
        (
            n.to_string(),
            "INTEGER".to_string(),
            true,
            Some(default.to_string()),
        )
    })
    .collect()
}

#[test]
fn issue_15_our_migration_adds_the_mediators_columns_exactly_and_keeps_its_values() {
    // A database we create has the columns exactly as the mediator makes them.
    let fresh = Env::new();
    fresh.run(&["init"]).code(0);
    assert_eq!(
        controls_columns(&fresh),
        expected_columns(),
        "our migration's columns"
    );

    // The earlier tool's database, extended by the mediator first (with values it wrote), then
    // migrated by us: the migration is a no-op on those columns and keeps every value.
    let legacy = Env::new();
    std::fs::create_dir_all(legacy.db.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&legacy.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE pools (pool_id CHAR(1) PRIMARY KEY, pool_name TEXT NOT NULL, description TEXT,
           enabled INTEGER DEFAULT 1, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
           updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE vms (vm_id INTEGER PRIMARY KEY, vm_uuid TEXT UNIQUE NOT NULL, vm_name TEXT,
           pool_id CHAR(1) NOT NULL DEFAULT 'A', priority INTEGER NOT NULL DEFAULT 1,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
           FOREIGN KEY (pool_id) REFERENCES pools(pool_id));
         INSERT INTO pools (pool_id, pool_name) VALUES ('A', 'Pool A'), ('B', 'Pool B');",
    )
    .unwrap();
    conn.execute_batch(MEDIATOR_ALTERS).unwrap();
    conn.execute(
        "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority, weight, max_jobs_per_sec, max_queue_depth, quarantined, error_count)
         VALUES (7, ?1, 'render-01', 'B', 2, 80, 50, 8, 1, 3)",
        [uuid(1)],
    )
    .unwrap();
    drop(conn);
    let json = legacy.run(&["--json", "show-vm", "--vm-uuid", &uuid(1)]);
    let _ = json.stderr();
    let json = json.json();
    assert_eq!(
        (
            &json["weight"],
            &json["max_jobs_per_sec"],
            &json["max_queue_depth"],
            &json["quarantined"],
            &json["error_count"]
        ),
        (
            &serde_json::json!(80),
            &serde_json::json!(50),
            &serde_json::json!(8),
            &serde_json::json!(true),
            &serde_json::json!(3)
        )
    );
    assert_eq!(controls_columns(&legacy), expected_columns());

    // Ours first, then the mediator starts: its check finds 'weight' and adds nothing; a
    // replay of its ALTERs would fail, and a row written through us keeps its values.
    let ours = Env::new();
    ours.host_vm(vm(&uuid(2), "cad-01", "halted", None));
    ours.run(&["register-vm", "--vm-uuid", &uuid(2)]).code(0);
    ours.run(&["set-weight", "--vm-uuid", &uuid(2), "--weight=90"])
        .code(0);
    let conn = ours.sql();
    let has_weight: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('vms') WHERE name = 'weight'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_weight, 1, "the mediator's own check finds the column");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS pools (pool_id CHAR(1) PRIMARY KEY, pool_name TEXT NOT NULL);
         INSERT OR IGNORE INTO pools (pool_id, pool_name) VALUES ('A', 'Pool A'), ('B', 'Pool B');",
    )
    .unwrap();
    let weight: i64 = conn
        .query_row(
            "SELECT weight FROM vms WHERE vm_uuid = ?1",
            [uuid(2)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(weight, 90);
}

#[test]
fn issue_15_the_commands_print_the_phase_3_lines_and_make_no_xe_call() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "render-01", "running", None), 7, "A", 2);
    env.clear_calls();
    env.run(&["set-weight", "--vm-uuid", &u, "--weight=80"])
        .code(0)
        .stdout_is(&format!("Scheduler weight for VM {u} set to 80\n"));
    env.run(&[
        "set-rate-limit",
        "--vm-uuid",
        &u,
        "--rate=50",
        "--queue-depth=8",
    ])
    .code(0)
    .stdout_is(&format!(
        "Rate limit for VM {u}: 50 jobs/sec, max queue depth: 8\n"
    ));
    env.run(&["quarantine-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_is(&format!(
            "VM {u} has been quarantined. New GPU submissions will be rejected.\n"
        ));
    assert!(env.calls().is_empty(), "no xe call: {:?}", env.calls());
    // After each change the mediator was asked to reload (0x12), and nothing else.
    assert_eq!(env.mediator_requests(), vec![[MAGIC, 0x12, 0, 0]; 3]);
    env.run(&["show-vm", "--vm-uuid", &u]).code(0).stdout_has(
        "  Priority: high (2)\n  Scheduler Weight: 80\n  Rate Limit: 50 jobs/sec\n  Max Queue Depth: 8\n  Quarantine: YES (error count: 0)\n",
    );
    env.run(&["show-weights"]).code(0).stdout_is(&format!(
        "VM ID  UUID                                  Name       Pool  Weight\n7      {u}  render-01  A     80\n"
    ));
    env.run(&["show-rate-limits"]).code(0).stdout_is(&format!(
        "VM ID  UUID                                  Name       Rate (j/s)  Queue Max  Quarantine\n7      {u}  render-01  50          8          YES\n"
    ));
    env.sql()
        .execute("UPDATE vms SET error_count = 4 WHERE vm_uuid = ?1", [&u])
        .unwrap();
    env.run(&["clear-quarantine", "--vm-uuid", &u])
        .code(0)
        .stdout_is(&format!(
            "Quarantine cleared for VM {u}. Error count reset.\n"
        ));
    env.run(&["set-rate-limit", "--vm-uuid", &u, "--rate=0"])
        .code(0)
        .stdout_is(&format!(
            "Rate limit for VM {u}: unlimited, max queue depth: 8\n"
        ));
    let json = env.run(&["--json", "show-vm", "--vm-uuid", &u]).json();
    assert_eq!(json["quarantined"], false);
    assert_eq!(json["error_count"], 0);
    assert_eq!(json["max_jobs_per_sec"], 0);
    // --vm-name: one xe call to find the VM, nothing else.
    env.clear_calls();
    env.run(&["set-weight", "--vm-name", "render-01", "--weight=10"])
        .code(0);
    assert_eq!(env.call_names(), ["vm-list"]);
    // Recorded in the history.
    let history = env.run(&["history", "--vm-uuid", &u]);
    history
        .code(0)
        .stdout_has(&format!(
            "  set-weight  render-01 ({u}): weight 50→80; done"
        ))
        .stdout_has(&format!(
            "  set-rate-limit  render-01 ({u}): rate 0→50 jobs/sec, queue depth 0→8; done"
        ))
        .stdout_has(&format!(
            "  quarantine-vm  render-01 ({u}): quarantined; done"
        ));
}

#[test]
fn issue_15_bad_values_are_exit_2_with_nothing_changed_and_no_call() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "render-01", "halted", None), 7, "A", 2);
    let before = env.db_bytes();
    env.clear_calls();
    for args in [
        vec!["set-weight", "--weight=0"],
        vec!["set-weight", "--weight=101"],
        vec!["set-weight", "--weight=ten"],
        vec!["set-rate-limit", "--rate=-1"],
        vec!["set-rate-limit", "--rate=5", "--queue-depth=many"],
        vec!["set-rate-limit", "--rate=4294967296"],
    ] {
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.insert(1, format!("--vm-uuid={u}"));
        env.run(&argv)
            .code(2)
            .one_error_line()
            .stderr_has("invalid ");
    }
    assert_eq!(env.db_bytes(), before);
    assert!(env.calls().is_empty());
    assert!(env.mediator_requests().is_empty(), "no socket request");
    env.run(&["set-weight", "--vm-uuid", &uuid(9), "--weight=5"])
        .code(3)
        .one_error_line();
}

#[test]
fn issue_15_without_the_mediator_the_change_stands_and_one_line_says_so() {
    let mut env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "render-01", "halted", None), 7, "A", 2);
    env.stop_mediator();
    env.run(&["set-weight", "--vm-uuid", &u, "--weight=30"])
        .code(0)
        .stdout_is(&format!("Scheduler weight for VM {u} set to 30\n"))
        .stderr_is(&format!(
            "note: the GPU mediator was not told (cannot connect to the GPU mediator at {}: No such file or directory (os error 2) (is the mediator daemon running?)); it reads the change when it next reloads\n",
            env.mediator_socket().display()
        ));
    let json = env.run(&["--json", "show-vm", "--vm-uuid", &u]).json();
    assert_eq!(json["weight"], 30);
    // A mediator answering an error status: its text is shown, the change stands.
    env.refusing_mediator();
    env.run(&["quarantine-vm", "--vm-uuid", &u])
        .code(0)
        .stderr_is("warning: the GPU mediator did not reload: ERROR: database is locked\n");
    assert_eq!(
        env.run(&["--json", "show-vm", "--vm-uuid", &u]).json()["quarantined"],
        true
    );
}

#[test]
fn issue_15_the_mediator_commands_speak_the_socket_protocol() {
    let mut env = Env::new();
    env.run(&["show-metrics"])
        .code(0)
        .stdout_is("Jobs: 42 submitted, 40 completed, 2 rejected\n");
    env.run(&["show-metrics", "--prometheus"])
        .code(0)
        .stdout_is("# TYPE vgpu_jobs_total counter\nvgpu_jobs_total 42\n");
    env.run(&["show-health"]).code(0).stdout_has("GPU 0: 61 C");
    env.mediator_connects(&[7]);
    env.run(&["show-connections"])
        .code(0)
        .stdout_is("Active VM connections: 1\nVM ID   FD  Jobs  Since\n7       10  0     2026-11-24 01:00:00\nServer sockets:\n  4  /var/vgpu/admin.sock (admin)\n  5  /var/xen/qemu/root-12/tmp/vgpu-mediator.sock\n");
    env.run(&["reload-config"])
        .code(0)
        .stdout_is("Config reloaded: 2 VM(s) updated\n");
    assert_eq!(
        env.mediator_requests(),
        vec![
            [MAGIC, 0x10, 0, 0],
            [MAGIC, 0x10, 1, 0],
            [MAGIC, 0x11, 0, 0],
            [MAGIC, 0x15, 0, 0],
            [MAGIC, 0x12, 0, 0]
        ]
    );
    // The fake follows the protocol: another magic is closed without an answer, an unknown
    // command is status 1.
    use std::io::{Read, Write};
    let mut raw = std::os::unix::net::UnixStream::connect(env.mediator_socket()).unwrap();
    raw.write_all(&[0u8; 16]).unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty());
    let mut raw = std::os::unix::net::UnixStream::connect(env.mediator_socket()).unwrap();
    let mut packet = Vec::new();
    for w in [MAGIC, 0x99u32, 0, 0] {
        packet.extend_from_slice(&w.to_le_bytes());
    }
    raw.write_all(&packet).unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    assert_eq!(u32::from_le_bytes(answer[4..8].try_into().unwrap()), 1);
    assert!(String::from_utf8_lossy(&answer[12..]).contains("Unknown admin command 0x99"));
    // No mediator: one line, exit 1.
    env.stop_mediator();
    env.run(&["show-health"])
        .code(1)
        .one_error_line()
        .stderr_has("cannot connect to the GPU mediator at ");
}

#[test]
fn issue_15_quarantined_vms_are_marked_and_a_change_to_one_says_so_first() {
    let env = Env::new();
    let (q, ok) = (uuid(1), uuid(2));
    env.registered(
        vm(
            &q,
            "render-01",
            "running",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7"),
        ),
        7,
        "A",
        2,
    );
    env.registered(
        vm(
            &ok,
            "cad-01",
            "halted",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=8"),
        ),
        8,
        "A",
        2,
    );
    env.run(&["quarantine-vm", "--vm-uuid", &q]).code(0);

    env.run(&["list-vms"])
        .code(0)
        .stdout_has(&format!("  UUID: {q}\n  Name: render-01\n"))
        .stdout_has("  Quarantined: yes (the GPU mediator rejects its new GPU submissions)\n");
    let list = env.run(&["list-vms"]);
    assert_eq!(
        list.stdout().matches("Quarantined: yes").count(),
        1,
        "only the quarantined VM"
    );
    env.run(&["status"])
        .code(0)
        .stdout_has(
            "    - render-01 (ID: 7, Priority: high): running on xcp-test, in sync, QUARANTINED\n",
        )
        .stdout_has("    - cad-01 (ID: 8, Priority: high): halted, in sync\n");
    env.run(&["scan-vms"])
        .code(0)
        .stdout_has("VM ID: 7 | running on xcp-test | in sync | QUARANTINED\n");
    // show-vm says it once, in the controls' line.
    let show = env.run(&["show-vm", "--vm-uuid", &q]);
    show.code(0)
        .stdout_has("  Quarantine: YES (error count: 0)\n");
    assert!(!show.stdout().contains("Quarantined: yes"));
    // A change to it says so before asking; "no" changes nothing.
    env.run_with_input(&["set-priority", "--vm-uuid", &q, "--priority=low"], "no\n")
        .code(4)
        .stdout_has("Note: this VM is quarantined (error count 0): the GPU mediator rejects its new GPU submissions until 'vgpu-admin clear-quarantine'.\n")
        .stderr_has("Operation cancelled.");
}

#[test]
fn issue_15_the_mediator_is_told_after_every_change_it_reads() {
    let mut env = Env::new();
    let (a, b) = (uuid(1), uuid(2));
    env.host_vm(vm(&a, "render-01", "halted", None));
    env.host_vm(vm(&b, "cad-01", "halted", None));
    let reloads = |env: &Env| {
        env.mediator_requests()
            .iter()
            .filter(|r| **r == [MAGIC, 0x12, 0, 0])
            .count()
    };
    env.run(&["register-vm", "--vm-uuid", &a]).code(0);
    assert_eq!(reloads(&env), 1, "register-vm");
    env.run(&["set-pool", "--vm-uuid", &a, "--pool=B"]).code(0);
    env.run(&["set-priority", "--vm-uuid", &a, "--priority=low"])
        .code(0);
    env.run(&["set-vm-id", "--vm-uuid", &a, "--vm-id=9"])
        .code(0);
    env.run(&["update-vm", "--vm-uuid", &a, "--pool=A", "--priority=high"])
        .code(0);
    assert_eq!(reloads(&env), 5, "each set-* and update-vm");
    // A dry run, and a change that needs nothing, tell it nothing.
    env.run(&["--dry-run", "set-pool", "--vm-uuid", &a, "--pool=B"])
        .code(0);
    env.run(&["set-pool", "--vm-uuid", &a, "--pool=A"])
        .code(0)
        .stdout_has("No changes needed");
    assert_eq!(reloads(&env), 5);
    env.run(&["remove-vm", "--vm-uuid", &a]).code(0);
    assert_eq!(reloads(&env), 6, "remove-vm");
    // Without a mediator the change stands, with one line.
    env.stop_mediator();
    env.run(&["register-vm", "--vm-uuid", &b])
        .code(0)
        .stdout_has("VM registered successfully:")
        .stderr_has("note: the GPU mediator was not told (cannot connect to the GPU mediator at ");
    assert!(env.row(&b).is_some());
}

#[test]
fn issue_15_status_shows_the_mediators_health_and_the_connected_vms() {
    let mut env = Env::new();
    let (a, b) = (uuid(1), uuid(2));
    env.registered(
        vm(
            &a,
            "render-01",
            "running",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7"),
        ),
        7,
        "A",
        2,
    );
    env.registered(
        vm(
            &b,
            "cad-01",
            "halted",
            Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=8"),
        ),
        8,
        "B",
        0,
    );
    // vm_id 7 is ours; 31 is connected but registered nowhere here.
    env.mediator_connects(&[7, 31]);
    env.run(&["status"]).code(0).stdout_has(
        "=== GPU mediator ===\n  GPU 0: 61 C, utilisation 37%, memory 2048/8192 MiB, power 95 W, ECC 0, watchdog resets 0, queue 3\n  Connected VMs: 1 of 2 registered\n    - render-01 (ID: 7)\n    - vm_id 31: connected, but no VM registered here has it\n",
    );
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["--json", "status"]).code(0).stdout()).unwrap();
    assert_eq!(json["mediator"]["connected"][0]["vm_uuid"], a.as_str());
    assert_eq!(json["mediator"]["connected"].as_array().unwrap().len(), 1);
    assert_eq!(json["mediator"]["unknown"], serde_json::json!([31]));
    // Health and connections were asked for, nothing else (status changes nothing).
    assert_eq!(
        env.mediator_requests(),
        vec![
            [MAGIC, 0x11, 0, 0],
            [MAGIC, 0x15, 0, 0],
            [MAGIC, 0x11, 0, 0],
            [MAGIC, 0x15, 0, 0]
        ]
    );
    // No mediator: one line in its place, the rest as before, the exit status unchanged.
    env.stop_mediator();
    let out = env.run(&["status"]);
    out.code(0)
        .stdout_has(&format!("GPU mediator: not available (cannot connect to the GPU mediator at {}: No such file or directory (os error 2) (is the mediator daemon running?))\n", env.mediator_socket().display()))
        .stdout_has("    - render-01 (ID: 7, Priority: high): running on xcp-test, in sync\n");
    assert!(!out.stdout().contains("=== GPU mediator ==="));
}

#[test]
fn issue_15_sync_and_the_hook_tell_the_mediator_about_rows_from_pool_records() {
    let env = Env::new();
    let a = uuid(1);
    env.host_vm(vm(&a, "render-01", "halted", None));
    env.run(&["register-vm", "--vm-uuid", &a, "--pool=B"])
        .code(0);
    let reloads = |env: &Env| {
        env.mediator_requests()
            .iter()
            .filter(|r| **r == [MAGIC, 0x12, 0, 0])
            .count()
    };
    assert_eq!(reloads(&env), 1);
    // The database is lost: sync writes the row back from the VM's pool record, and tells the
    // mediator; a sync with nothing to do tells it nothing.
    env.sql().execute("DELETE FROM vms", []).unwrap();
    env.run(&["sync"]).code(0).stdout_has("added:");
    assert_eq!(reloads(&env), 2, "sync added a row");
    env.run(&["sync"]).code(0);
    assert_eq!(reloads(&env), 2, "sync with nothing to do");
    // The hook's row from the pool record: the mediator learns the vm_id before the VM's device
    // connects to it.
    env.sql().execute("DELETE FROM vms", []).unwrap();
    let hook = |env: &Env| env.run(&["hook", "vm-pre-start", "-vmuuid", &a, "-reason", "none"]);
    hook(&env).code(0).stdout_is("");
    assert!(env.row(&a).is_some());
    assert_eq!(reloads(&env), 3, "the hook wrote a row");
    hook(&env).code(0);
    assert_eq!(reloads(&env), 3, "the hook with the row in place");
}
