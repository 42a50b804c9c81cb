//! The read commands on a small fixture: exact human output (the earlier tool's line format) and
//! the JSON documents with their stable field names.

use crate::common::mediator::HEALTH;
use crate::common::{uuid, Env};
use serde_json::json;

const TS: &str = "2026-01-02 03:04:05";

fn fixture() -> Env {
    let env = Env::new();
    env.seed(&[
        (1, &uuid(1), Some("web01"), "A", 2),
        (2, &uuid(2), None, "B", 0),
        (3, &uuid(3), Some("db, \"main\" $(x)"), "A", 1),
    ]);
    env.sql()
        .execute_batch(&format!(
            "UPDATE pools SET created_at = '{TS}', updated_at = '{TS}';
             UPDATE pools SET description = 'GPU-heavy VMs', enabled = 0 WHERE pool_id = 'B';"
        ))
        .unwrap();
    env
}

fn vm_block(n: u32, name: Option<&str>, id: i64, pool: &str, prio: &str, level: i64) -> String {
    let name_line = name.map_or(String::new(), |n| format!("  Name: {n}\n"));
    format!(
        "VM Configuration:\n  UUID: {}\n{name_line}  VM ID: {id}\n  Pool: {pool}\n  Priority: {prio} ({level})\n  Created: {TS}\n  Updated: {TS}\n",
        uuid(n)
    )
}

/// A VM as show-vm prints it: the GPU mediator's controls (here their defaults) after Priority.
fn show_vm_block(
    n: u32,
    name: Option<&str>,
    id: i64,
    pool: &str,
    prio: &str,
    level: i64,
) -> String {
    vm_block(n, name, id, pool, prio, level).replace(
        "  Created: ",
        "  Scheduler Weight: 50\n  Rate Limit: unlimited\n  Max Queue Depth: unlimited\n  Quarantine: no (error count: 0)\n  Created: ",
    )
}

#[test]
fn list_pools_prints_both_pools_in_the_classic_format() {
    let env = fixture();
    env.run(&["list-pools"]).code(0).quiet().stdout_is(&format!(
        "Pool A: Pool A\n  Status: Enabled\n  VMs: 2\n  Created: {TS}\n  Updated: {TS}\n\n\
         Pool B: Pool B\n  Description: GPU-heavy VMs\n  Status: Disabled\n  VMs: 1\n  Created: {TS}\n  Updated: {TS}\n"
    ));
    let json = env.run(&["list-pools", "--json"]).code(0).json();
    assert_eq!(
        json,
        json!([
            {"pool_id": "A", "pool_name": "Pool A", "description": null, "enabled": true,
             "vm_count": 2, "created_at": TS, "updated_at": TS},
            {"pool_id": "B", "pool_name": "Pool B", "description": "GPU-heavy VMs", "enabled": false,
             "vm_count": 1, "created_at": TS, "updated_at": TS}
        ])
    );
}

#[test]
fn show_pool_lists_its_vms() {
    let env = fixture();
    env.run(&["show-pool", "--pool-id=a"]).code(0).stdout_is(&format!(
        "Pool A: Pool A\n  Status: Enabled\n  VMs: 2\n  Created: {TS}\n  Updated: {TS}\n\n\
         VMs in this pool (2):\n  - web01 (ID: 1, Priority: high)\n  - db, \"main\" $(x) (ID: 3, Priority: medium)\n"
    ));
    env.run(&["show-pool", "--pool-id", "B"])
        .code(0)
        .stdout_has(&format!("  - {} (ID: 2, Priority: low)", uuid(2)));
    let json = env
        .run(&["--json", "show-pool", "--pool-id=A"])
        .code(0)
        .json();
    assert_eq!(json["pool_id"], "A");
    assert_eq!(json["vm_count"], 2);
    let ids: Vec<i64> = json["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vm_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 3]);
}

#[test]
fn list_vms_prints_blocks_and_filters_by_pool_priority_and_both() {
    let env = fixture();
    let all = format!(
        "{}\n{}\n{}",
        vm_block(1, Some("web01"), 1, "A", "high", 2),
        vm_block(2, None, 2, "B", "low", 0),
        vm_block(3, Some("db, \"main\" $(x)"), 3, "A", "medium", 1)
    );
    env.run(&["list-vms"]).code(0).quiet().stdout_is(&all);

    let ids = |args: &[&str]| -> Vec<i64> {
        let mut full = vec!["--json", "list-vms"];
        full.extend_from_slice(args);
        env.run(&full)
            .code(0)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["vm_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&[]), vec![1, 2, 3]);
    assert_eq!(ids(&["--pool=A"]), vec![1, 3]);
    assert_eq!(ids(&["--pool", "b"]), vec![2]);
    assert_eq!(ids(&["--priority=HIGH"]), vec![1]);
    assert_eq!(ids(&["--priority", "1"]), vec![3]);
    assert_eq!(ids(&["--pool=A", "--priority=low"]), Vec::<i64>::new());
    assert_eq!(ids(&["--pool=A", "--priority=medium"]), vec![3]);

    env.run(&["list-vms", "--pool=B", "--priority=high"])
        .code(0)
        .stdout_is("No VMs found\n");
    env.run(&["list-vms", "--pool=B"])
        .code(0)
        .stdout_is(&vm_block(2, None, 2, "B", "low", 0));
}

#[test]
fn list_vms_json_has_the_stable_field_names() {
    let env = fixture();
    let json = env
        .run(&["list-vms", "--json", "--pool=B"])
        .code(0)
        .quiet()
        .json();
    assert_eq!(
        json,
        json!([{
            "vm_uuid": uuid(2), "vm_id": 2, "vm_name": null, "pool_id": "B",
            "priority": "low", "priority_level": 0,
            "created_at": TS, "updated_at": TS, "invalid": null, "restart_pending": false,
            "weight": 50, "max_jobs_per_sec": 0, "max_queue_depth": 0, "quarantined": false,
            "error_count": 0
        }])
    );
}

#[test]
fn show_vm_prints_one_vm_and_finds_uuids_in_any_case() {
    let env = fixture();
    env.run(&["show-vm", &format!("--vm-uuid={}", uuid(1))])
        .code(0)
        .stdout_is(&show_vm_block(1, Some("web01"), 1, "A", "high", 2));
    env.run(&["show-vm", "--vm-uuid", &uuid(3).to_uppercase()])
        .code(0)
        .stdout_has("  Name: db, \"main\" $(x)");
    let json = env
        .run(&["show-vm", "--json", &format!("--vm-uuid={}", uuid(2))])
        .code(0)
        .json();
    assert_eq!(json["vm_uuid"], uuid(2));
    assert_eq!(json["priority"], "low");
    assert_eq!(json["priority_level"], 0);
}

#[test]
fn show_vm_of_an_unregistered_uuid_exits_3() {
    let env = fixture();
    let before = env.db_bytes();
    env.run(&["show-vm", &format!("--vm-uuid={}", uuid(99))])
        .code(3)
        .one_error_line()
        .stderr_has(&format!("VM {} is not registered", uuid(99)));
    assert_eq!(env.db_bytes(), before);
}

#[test]
fn status_shows_pools_counts_per_priority_and_members() {
    let env = fixture();
    // No xe here: the host part cannot be read, which the exit status says (5).
    env.run(&["status"]).code(5).stdout_is(&format!(
        "=== vGPU Configuration Status ===\n\n\
         Pool A: Pool A\n  Status: Enabled\n  VMs: 2\n  Created: {TS}\n  Updated: {TS}\n\
         \x20 By priority: high 1, medium 1, low 0\n  VMs (2):\n\
         \x20   - web01 (ID: 1, Priority: high)\n    - db, \"main\" $(x) (ID: 3, Priority: medium)\n\n\
         Pool B: Pool B\n  Description: GPU-heavy VMs\n  Status: Disabled\n  VMs: 1\n  Created: {TS}\n  Updated: {TS}\n\
         \x20 By priority: high 0, medium 0, low 1\n  VMs (1):\n    - {} (ID: 2, Priority: low)\n\n\
         Total: 3 registered VMs\n\
         Hook policy: warn (time limit 10 s)\n\
         Device driver: vgpu-stub (default; not chosen for this site: see set-device-driver)\n\
         Host: not available (the xe command was not found ({}); is this an XCP-ng host? (set --xe or VGPU_XE))\n\n\
         === GPU mediator ===\n  {HEALTH}\n  Connected VMs: 0 of 3 registered\n",
        uuid(2),
        env.dir.path().join("no-xe-here").display()
    ));
    let json = env.run(&["status", "--json"]).code(5).json();
    assert_eq!(json["total_vms"], 3);
    assert_eq!(
        json["pools"][0]["by_priority"],
        json!({"high": 1, "medium": 1, "low": 0})
    );
    assert_eq!(json["pools"][1]["vms"][0]["vm_uuid"], uuid(2));
}

#[test]
fn an_empty_database_reads_cleanly() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    env.run(&["list-vms"]).code(0).stdout_is("No VMs found\n");
    assert_eq!(env.run(&["list-vms", "--json"]).code(0).json(), json!([]));
    env.run(&["status"])
        .code(5)
        .stdout_has("Total: 0 registered VMs");
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new();
    let rows: Vec<(i64, String)> = (1..=5000).map(|i| (i, uuid(i as u32))).collect();
    let conn = env.sql();
    conn.execute_batch("BEGIN").unwrap();
    for (id, u) in &rows {
        conn.execute(
            "INSERT INTO vms (vm_id, vm_uuid) VALUES (?1, ?2)",
            rusqlite::params![id, u],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    let mut child = env
        .command(["list-vms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, like `| head`
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}
