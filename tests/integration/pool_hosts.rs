//! Issue 14, a pool of hosts: `xe vm-list` shows every VM of the pool, each resident on one host.
//! A VM stopped for a change is started again on the host it ran on (`vm-start on=`), never where
//! the pool master would place it; `status` and `scan-vms` say where each VM runs, mark this host,
//! and `--host` shows one host's VMs.

use crate::common::{uuid, vm, Env};

const H1: &str = "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a01";
const H2: &str = "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a02";

/// A pool of two hosts (this dom0 is H1) with a registered VM running on H2.
fn pool_with_vm_on_h2() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(
        vm(
            &u,
            "render-01",
            "running",
            Some("-device vgpu-stub,pool_id=A,priority=medium,vm_id=1"),
        ),
        1,
        "A",
        1,
    );
    env.pool_hosts(&[(H1, "xcp-host-01"), (H2, "xcp-host-02")]);
    env.host_vm_set(&u, "resident_on", serde_json::json!(H2));
    (env, u)
}

#[test]
fn issue_14_a_changed_vm_is_started_again_on_the_host_it_ran_on() {
    let (env, u) = pool_with_vm_on_h2();
    env.run(&["--yes", "set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(0)
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(env.resident_on(&u).as_deref(), Some(H2));
    let starts: Vec<Vec<String>> = env
        .calls()
        .into_iter()
        .filter(|c| c[0] == "vm-start")
        .collect();
    assert_eq!(
        starts,
        vec![vec![
            "vm-start".to_string(),
            format!("uuid={u}"),
            format!("on={H2}")
        ]]
    );

    // Where the pool master would have put it: a plain start after a stop moves it (the
    // fake places a VM on the host after the one it last ran on, as a busy pool may).
    let moved = env.file(
        "plain-restart.rhai",
        &format!("xe::shutdown(\"{u}\");\nxe::start(\"{u}\");\n"),
    );
    env.run(&["run", moved.to_str().unwrap()]).code(0);
    assert_eq!(
        env.resident_on(&u).as_deref(),
        Some(H1),
        "without on= the VM moves"
    );
}

#[test]
fn issue_14_a_host_that_cannot_take_the_vm_is_said_and_it_is_not_started_elsewhere() {
    let (env, u) = pool_with_vm_on_h2();
    env.pool_host_set(H2, "full", serde_json::json!(true));
    let out = env.run(&["--yes", "set-priority", "--vm-uuid", &u, "--priority=high"]);
    out.code(1)
        .one_error_line()
        .stderr_has("step 'start the VM' failed: xe vm-start failed: The host does not have enough free memory to start the VM. The change is saved")
        .stderr_has("is halted and was not started on another host")
        .stderr_has(&format!("'xe vm-start uuid={u} on={H2}'"));
    assert_eq!(env.power(&u), "halted");
    assert_eq!(env.resident_on(&u), None);
    // The change itself is saved: row and args agree.
    assert_eq!(env.row(&u).map(|r| r.2), Some(2));
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1")
    );
    assert!(env
        .calls()
        .iter()
        .filter(|c| c[0] == "vm-start")
        .all(|c| c.contains(&format!("on={H2}"))));
}

#[test]
fn issue_14_status_and_scan_vms_say_where_each_vm_runs_in_three_xe_calls() {
    let (env, u) = pool_with_vm_on_h2();
    let here = uuid(2);
    env.registered(
        vm(
            &here,
            "cad-01",
            "running",
            Some("-device vgpu-stub,pool_id=B,priority=high,vm_id=2"),
        ),
        2,
        "B",
        2,
    );
    env.host_vm_set(&here, "resident_on", serde_json::json!(H1));
    env.host_vm(vm(&uuid(3), "web-01", "halted", None));
    env.clear_calls();

    let status = env.run(&["status"]);
    status
        .code(0)
        .stdout_has("    - render-01 (ID: 1, Priority: medium): running on xcp-host-02, in sync\n")
        .stdout_has(
            "    - cad-01 (ID: 2, Priority: high): running on xcp-host-01 (this host), in sync\n",
        )
        .stdout_has(&format!("  - web-01 ({}): halted\n", uuid(3)));
    assert_eq!(env.call_names(), ["vm-list", "vm-list", "host-list"]);
    env.clear_calls();

    env.run(&["scan-vms"])
        .code(0)
        .stdout_has("VM ID: 1 | running on xcp-host-02 | in sync\n")
        .stdout_has("VM ID: 2 | running on xcp-host-01 (this host) | in sync\n");
    assert_eq!(env.call_names(), ["vm-list", "vm-list", "host-list"]);

    // One host's VMs: by name, by uuid, or "this".
    for (wanted, shown, hidden) in [
        ("xcp-host-02", "render-01", "cad-01"),
        (H2, "render-01", "cad-01"),
        ("this", "cad-01", "render-01"),
    ] {
        let out = env.run(&["scan-vms", "--host", wanted]);
        out.code(0)
            .stdout_has(&format!("Name: {shown} "))
            .stdout_lacks(&format!("Name: {hidden} "));
        let out = env.run(&["status", "--host", wanted]);
        out.code(0)
            .stdout_has(&format!("- {shown} ("))
            .stdout_lacks(&format!("- {hidden} ("));
    }
    let json = env.run(&["--json", "status"]).json();
    assert_eq!(json["host"]["states"][&u]["resident_on"], H2);

    // A host the pool does not have: exit 2, one line naming the hosts; nothing else printed.
    env.run(&["scan-vms", "--host", "xcp-host-09"])
        .code(2)
        .one_error_line()
        .stderr_has("no host of the pool is named 'xcp-host-09'; the hosts: xcp-host-01 (this host), xcp-host-02");
}

/// The VM's pool record as the fake pool database holds it.
fn record(env: &Env, u: &str) -> std::collections::BTreeMap<String, String> {
    let state = env.host();
    let vm = state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["uuid"] == u)
        .cloned()
        .unwrap();
    vm["other_config"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pool_key(env: &Env) -> vgpu_admin::pool_record::PoolKey {
    vgpu_admin::pool_record::PoolKey::load(&env.db.with_file_name("pool.key"))
        .unwrap()
        .expect("the first change makes the pool key")
}

#[test]
fn issue_14_a_change_writes_the_signed_pool_record_in_the_same_call_as_the_args() {
    use vgpu_admin::pool_record::{read, Claim};
    let (env, u) = pool_with_vm_on_h2();
    env.run(&["--yes", "set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(0);
    let sets: Vec<Vec<String>> = env
        .calls()
        .into_iter()
        .filter(|c| c[0] == "vm-param-set")
        .collect();
    assert_eq!(sets.len(), 1, "one call: {sets:?}");
    // The signature first, then the args, then the values.
    assert!(sets[0][2].starts_with("other-config:vgpu-admin:sig="));
    assert!(sets[0][3].starts_with("platform:device-model-args="));
    assert_eq!(
        sets[0][4..],
        [
            "other-config:vgpu-admin:pool=B",
            "other-config:vgpu-admin:priority=medium",
            "other-config:vgpu-admin:vm-id=1"
        ]
    );
    let key = pool_key(&env);
    match read(&record(&env, &u), &u, Some(&key)) {
        Claim::Valid(c) => assert_eq!(
            (c.pool.as_str(), c.priority.as_str(), c.vm_id.get()),
            ("B", "medium", 1)
        ),
        other => panic!("{other:?}"),
    }
    // remove-vm strips it (the signature first) with the device.
    env.run(&["remove-vm", "--vm-uuid", &u, "--no-restart"])
        .code(0);
    assert!(record(&env, &u).is_empty());
}

#[test]
fn issue_14_a_write_stopped_half_way_never_leaves_a_valid_record_for_other_args() {
    use vgpu_admin::pool_record::{read, Claim};
    // xe applies a call's keys in turn: stop after each number of them.
    for applied in 0..=4 {
        let (env, u) = pool_with_vm_on_h2();
        // A first change gives the VM a record (pool B).
        env.run(&[
            "--yes",
            "set-pool",
            "--vm-uuid",
            &u,
            "--pool=B",
            "--no-restart",
        ])
        .code(0);
        env.fault_raw(serde_json::json!({
            "command": "vm-param-set", "uuid": u, "once": true, "after_keys": applied,
            "stderr": "Error: injected failure after some keys"
        }));
        let out = env.run(&["set-vm-id", "--vm-uuid", &u, "--vm-id=9", "--no-restart"]);
        let _ = out.status();
        let _ = out.stderr();
        let args = env.args(&u).expect("args");
        let key = pool_key(&env);
        match read(&record(&env, &u), &u, Some(&key)) {
            Claim::Valid(c) => assert_eq!(
                vgpu_admin::vgpu::sync(Some(&args), &c),
                vgpu_admin::vgpu::Sync::InSync,
                "after {applied} keys the record claims {c:?} but the args are {args}"
            ),
            Claim::None | Claim::Unverified(_) => {}
        }
        // And the database agrees with the args, whatever happened.
        let (vm_id, _, _, _) = env.row(&u).unwrap();
        assert!(
            args.contains(&format!("vm_id={vm_id}")),
            "after {applied} keys: row {vm_id}, args {args}"
        );
    }
}

#[test]
fn issue_14_a_vm_id_named_only_in_another_vms_pool_record_is_taken() {
    let (env, _) = pool_with_vm_on_h2();
    // A VM registered on another host: only the pool database says it has vm_id 5.
    let other = uuid(7);
    env.host_vm(vm(&other, "remote-gpu", "halted", None));
    env.host_vm_set(
        &other,
        "other_config",
        serde_json::json!([["vgpu-admin:vm-id", "5"], ["vgpu-admin:pool", "A"]]),
    );
    let mine = uuid(8);
    env.host_vm(vm(&mine, "new-vm", "halted", None));
    env.run(&["register-vm", "--vm-uuid", &mine, "--vm-id=5"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!("remote-gpu ({other})"));
    assert_eq!(env.row(&mine), None);
    // An automatic vm_id skips it.
    env.run(&["register-vm", "--vm-uuid", &mine]).code(0);
    let (id, ..) = env.row(&mine).unwrap();
    assert_ne!(id, 5);
}

/// A second host's environment over the same pool (the same fake xe state), with the pool key
/// copied to it when `with_key`.
fn second_host(first: &Env, with_key: bool) -> Env {
    let mut env = Env::new();
    env.xe_state = first.xe_state.clone();
    if with_key {
        std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
        std::fs::copy(
            first.db.with_file_name("pool.key"),
            env.db.with_file_name("pool.key"),
        )
        .unwrap();
    }
    env
}

fn hook(env: &Env, u: &str) -> crate::common::Outcome {
    env.run(&["hook", "vm-pre-start", "-vmuuid", u, "-reason", "none"])
}

#[test]
fn issue_14_a_vm_registered_on_host_1_is_known_to_host_2s_hook_in_one_xe_call() {
    let host1 = Env::new();
    let u = uuid(1);
    host1.host_vm(vm(&u, "render-01", "halted", None));
    host1
        .run(&[
            "register-vm",
            "--vm-uuid",
            &u,
            "--pool=B",
            "--priority=high",
            "--vm-id=7",
        ])
        .code(0);

    // Host 2 has an empty database and the pool's key: the VM starts there.
    let host2 = second_host(&host1, true);
    host2.run(&["init"]).code(0);
    host2.clear_calls();
    hook(&host2, &u).code(0).quiet().stdout_is("");
    assert_eq!(
        host2.row(&u),
        Some((7, "B".into(), 2, Some("render-01".into())))
    );
    assert_eq!(host2.call_names(), ["vm-list"], "one xe call");
    let history = host2.run(&["--json", "history"]).json();
    assert_eq!(history[0]["command"], "hook vm-pre-start");
    assert!(history[0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("written from the VM's pool record"));
    // Its next start there: the row is known, one call as for any VM in sync.
    host2.clear_calls();
    hook(&host2, &u).code(0).stdout_is("");
    assert_eq!(host2.call_names(), ["vm-param-get"]);

    // A host without the pool's key believes no record: nothing written, no xe call.
    let host3 = second_host(&host1, false);
    host3.run(&["init"]).code(0);
    host3.clear_calls();
    hook(&host3, &u).code(0).stdout_is("");
    assert_eq!(host3.row(&u), None);
    assert!(host3.calls().is_empty());
}

#[test]
fn issue_14_a_pool_record_changed_by_the_vms_owner_or_copied_to_a_clone_is_not_believed() {
    let host1 = Env::new();
    let u = uuid(1);
    host1.host_vm(vm(&u, "render-01", "halted", None));
    host1
        .run(&["register-vm", "--vm-uuid", &u, "--pool=A", "--priority=low"])
        .code(0);
    // The owner raises its own priority in other-config (xapi lets a VM admin do that).
    let mut raised = record(&host1, &u);
    raised.insert("vgpu-admin:priority".into(), "high".into());
    host1.host_vm_set(
        &u,
        "other_config",
        serde_json::json!(raised.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>()),
    );
    // A clone carries the original's (valid) record under its own uuid.
    let clone = uuid(2);
    host1.host_vm(vm(&clone, "render-01-clone", "halted", None));
    let original: Vec<[String; 2]> = record(&host1, &u)
        .into_iter()
        .map(|(k, v)| [k, if v == "high" { "low".into() } else { v }])
        .collect();
    host1.host_vm_set(&clone, "other_config", serde_json::json!(original));

    let host2 = second_host(&host1, true);
    host2.run(&["init"]).code(0);
    for vm_uuid in [&u, &clone] {
        hook(&host2, vm_uuid).code(1).stdout_has(
            "carries a vGPU pool record this host does not believe (its signature does not match",
        );
        assert_eq!(host2.row(vm_uuid), None);
    }
}

#[test]
fn issue_14_a_pool_record_whose_vm_id_this_host_gives_another_vm_is_refused() {
    let host1 = Env::new();
    let u = uuid(1);
    host1.host_vm(vm(&u, "render-01", "halted", None));
    host1
        .run(&["register-vm", "--vm-uuid", &u, "--vm-id=7"])
        .code(0);
    let host2 = second_host(&host1, true);
    host2.seed(&[(7, &uuid(9), Some("local-vm"), "A", 1)]);
    let before = host2.db_bytes();
    hook(&host2, &u)
        .code(1)
        .stdout_has(&format!("vgpu-admin: VM {u}: the pool record of VM {u} gives it a vm_id this host's database has for another VM"));
    assert_eq!(host2.row(&u), None);
    assert_eq!(host2.db_bytes(), before);
}

#[test]
fn issue_14_sync_into_an_empty_database_reproduces_the_rows_and_reports_conflicts() {
    let host1 = Env::new();
    let (a, b, c) = (uuid(1), uuid(2), uuid(3));
    host1.host_vm(vm(&a, "render-01", "halted", None));
    host1.host_vm(vm(&b, "render-02", "halted", None));
    host1.host_vm(vm(&c, "plain", "halted", None));
    host1
        .run(&[
            "register-vm",
            "--vm-uuid",
            &a,
            "--pool=B",
            "--priority=high",
            "--vm-id=3",
        ])
        .code(0);
    host1
        .run(&[
            "register-vm",
            "--vm-uuid",
            &b,
            "--pool=A",
            "--priority=low",
            "--vm-id=4",
        ])
        .code(0);

    // A new host (its database lost, or never made), with the pool's key.
    let host2 = second_host(&host1, true);
    host2.run(&["init"]).code(0);
    host2.clear_calls();
    let plan = host2.run(&["--dry-run", "sync"]);
    plan.code(0)
        .stdout_has(&format!(
            "would add: render-01 ({a}): pool B, priority high, vm_id 3\n"
        ))
        .stdout_has(
            "2 would be added, 0 would be updated, 0 conflicts, 0 not believed, 0 unchanged\n",
        );
    assert_eq!(host2.vm_count(), 0, "a dry run writes nothing");
    assert_eq!(
        host2.call_names(),
        ["vm-list", "vm-list"],
        "one checked listing"
    );
    host2
        .run(&["sync"])
        .code(0)
        .stdout_has("2 added, 0 updated, 0 conflicts");
    for u in [&a, &b] {
        assert_eq!(host2.row(u), host1.row(u), "row of {u}");
    }
    let history = host2.run(&["--json", "history"]).json();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(history
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["command"] == "sync"
            && r["outcome"]
                .as_str()
                .unwrap()
                .starts_with("written from the VM's pool record")));
    assert_eq!(host2.row(&c), None);
    host2
        .run(&["sync"])
        .code(0)
        .stdout_is("0 added, 0 updated, 0 conflicts, 0 not believed, 2 unchanged\n");

    // Changed on host 1: host 2's row is refreshed (the record and the VM's args agree).
    host1
        .run(&["set-priority", "--vm-uuid", &a, "--priority=medium"])
        .code(0);
    host2.run(&["check"])
        .code(5)
        .stdout_has(&format!("record:   render-01 ({a}): this database says pool B, priority high, vm_id 3; the pool record pool B, priority medium, vm_id 3"));
    host2.run(&["sync"]).code(0).stdout_has(&format!(
        "updated:    render-01 ({a}): pool B→B, priority high→medium, vm_id 3→3\n"
    ));
    assert_eq!(host2.row(&a), host1.row(&a));

    // A conflict: host 2's row, the record and the args all differ. Reported, not overwritten.
    let conn = host2.sql();
    conn.execute("UPDATE vms SET pool_id = 'B' WHERE vm_uuid = ?1", [&b])
        .unwrap();
    drop(conn);
    host1.host_vm_set(
        &b,
        "platform",
        serde_json::json!([[
            "device-model-args",
            "-device vgpu-stub,pool_id=B,priority=high,vm_id=4"
        ]]),
    );
    let row_before = host2.row(&b);
    host2.run(&["sync"])
        .code(5)
        .stdout_has(&format!("conflict:   render-02 ({b}): this database says pool B, priority low, vm_id 4, the pool record pool A, priority low, vm_id 4, and the VM's args agree with neither"))
        .stdout_has("1 conflicts");
    assert_eq!(host2.row(&b), row_before);
}

#[test]
fn issue_14_sync_refuses_records_it_cannot_believe() {
    let host1 = Env::new();
    let a = uuid(1);
    host1.host_vm(vm(&a, "render-01", "halted", None));
    host1
        .run(&["register-vm", "--vm-uuid", &a, "--vm-id=3"])
        .code(0);
    // A host of another pool (its own key).
    let other = second_host(&host1, false);
    other.run(&["set-hook-policy", "--policy=warn"]).code(0);
    std::fs::write(
        other.db.with_file_name("pool.key"),
        format!("{}\n", "cd".repeat(32)),
    )
    .unwrap();
    other.run(&["sync"])
        .code(5)
        .stdout_has(&format!("unverified: render-01 ({a}): its pool record is not believed: its signature does not match"))
        .stdout_has("0 added, 0 updated, 0 conflicts, 1 not believed, 0 unchanged");
    assert_eq!(other.row(&a), None);
}
