//! The commands that touch VMs, against the fake xe: output, exit status, database rows, the VM's
//! platform map and power state, and the exact xe calls made.

use crate::common::{uuid, vm, Env, HOST1};

/// The two calls that read one VM: its record (name, power state), then its args on their own.
fn vm_read(uuid: &str) -> Vec<Vec<String>> {
    vec![
        strings(&[
            "vm-list",
            &format!("uuid={uuid}"),
            "is-control-domain=false",
            "params=uuid,name-label,power-state,resident-on,other-config",
        ]),
        strings(&[
            "vm-param-get",
            &format!("uuid={uuid}"),
            "param-name=platform",
            "param-key=device-model-args",
        ]),
    ]
}

/// The two calls of a checked listing of every VM: the uuids, then the records.
fn listing() -> Vec<Vec<String>> {
    vec![
        strings(&[
            "vm-list",
            "is-control-domain=false",
            "params=uuid",
            "--minimal",
        ]),
        strings(&[
            "vm-list",
            "is-control-domain=false",
            "params=uuid,name-label,power-state,resident-on,other-config,platform",
        ]),
    ]
}

/// What scan-vms and status call: the checked listing and the pool's hosts.
fn listing_and_hosts() -> Vec<Vec<String>> {
    let mut calls = listing();
    calls.push(strings(&["host-list", "params=uuid,name-label"]));
    calls
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn register_a_halted_vm_by_uuid_reads_it_lists_the_host_and_writes_once() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(
        &u,
        "win10",
        "halted",
        Some("-device e1000,netdev=n0 -usb"),
    ));
    env.run(&[
        "register-vm",
        &format!("--vm-uuid={}", u.to_uppercase()),
        "--pool=b",
        "--priority",
        "HIGH",
        "--vm-id=7",
    ])
    .code(0)
    .quiet()
    .stdout_has("VM registered successfully:\nVM Configuration:\n")
    .stdout_has(&format!(
        "  UUID: {u}\n  Name: win10\n  VM ID: 7\n  Pool: B\n  Priority: high (2)\n"
    ))
    .stdout_lacks("running");
    assert_eq!(env.row(&u), Some((7, "B".into(), 2, Some("win10".into()))));
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device e1000,netdev=n0 -usb -device vgpu-stub,pool_id=B,priority=high,vm_id=7")
    );
    assert_eq!(env.power(&u), "halted");
    // The VM (record + args), the host's VMs (for the vm_ids their devices
    // carry), one write.
    let mut expected = vm_read(&u);
    expected.extend(listing());
    expected.push(env.set_call(
        &u,
        "-device e1000,netdev=n0 -usb -device vgpu-stub,pool_id=B,priority=high,vm_id=7",
    ));
    assert_eq!(env.calls(), expected);
}

#[test]
fn register_by_name_stores_the_name_label_and_takes_the_next_vm_id() {
    let env = Env::new();
    env.seed(&[(4, &uuid(9), None, "A", 1)]);
    let u = uuid(1);
    let name = "web, \"prod\" $(touch MARKER); rm -rf ü";
    env.host_vm(vm(&u, name, "halted", None));
    env.host_vm(vm(&uuid(2), "other", "halted", None));
    let mut cmd = env.command(["register-vm", &format!("--vm-name={name}")]);
    cmd.current_dir(env.dir.path());
    let out = crate::common::Outcome::of(cmd, None);
    out.code(0).stdout_has(&format!(
        "  Name: {name}\n  VM ID: 5\n  Pool: A\n  Priority: medium (1)"
    ));
    assert!(
        !env.dir.path().join("MARKER").exists(),
        "nothing may be executed"
    );
    assert_eq!(env.row(&u), Some((5, "A".into(), 1, Some(name.into()))));
    assert_eq!(
        env.calls()[0],
        strings(&[
            "vm-list",
            &format!("name-label={name}"),
            "is-control-domain=false",
            "params=uuid",
            "--minimal"
        ])
    );
    assert_eq!(env.calls().len(), 6);
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=medium,vm_id=5")
    );
}

#[test]
fn register_with_uuid_and_name_stores_the_given_name() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "label-on-host", "halted", None));
    env.run(&["register-vm", "--vm-uuid", &u, "--vm-name", "my name"])
        .code(0);
    assert_eq!(env.row(&u).unwrap().3.as_deref(), Some("my name"));
}

#[test]
fn register_refuses_unknown_ambiguous_and_duplicate_vms_before_touching_anything() {
    let env = Env::new();
    let (a, b, c) = (uuid(1), uuid(2), uuid(3));
    env.host_vm(vm(&a, "twin", "halted", None));
    env.host_vm(vm(&b, "twin", "running", None));
    env.host_vm(vm(&c, "solo", "halted", None));
    env.seed(&[(7, &uuid(50), None, "A", 1)]);

    env.run(&["register-vm", "--vm-name=nobody"])
        .code(3)
        .one_error_line()
        .stderr_has("no VM named 'nobody' (see 'xe vm-list')");
    env.run(&["register-vm", "--vm-name=twin"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!(
            "2 VMs are named 'twin' ({a}, {b}); choose one with --vm-uuid"
        ));
    env.run(&["register-vm", &format!("--vm-uuid={}", uuid(99))])
        .code(3)
        .one_error_line()
        .stderr_has("is not on this host");
    env.run(&["register-vm", "--vm-name=solo", "--vm-id=7"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!("vm-id 7 is already taken by VM {}", uuid(50)));
    env.run(&["register-vm"])
        .code(2)
        .stderr_has("required arguments were not provided: <--vm-uuid <uuid>|--vm-name <name>>");
    env.run(&["register-vm", "--vm-name=solo"]).code(0);
    env.clear_calls();
    env.run(&["register-vm", "--vm-name=solo"])
        .code(2)
        .stderr_has("is already registered");
    assert_eq!(
        env.call_names(),
        vec!["vm-list", "vm-list", "vm-param-get"],
        "refused after the lookup (name, then the VM), nothing changed"
    );
    assert_eq!(env.vm_count(), 2);
    assert_eq!(env.args(&a), None);
    assert_eq!(env.args(&b), None);
}

#[test]
fn registering_a_running_vm_offers_the_restart() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "db", "running", Some("-usb")));
    // "no": registered for the next boot, not restarted.
    env.run_with_input(&["register-vm", "--vm-uuid", &u], "no\n")
        .code(0)
        .stdout_has("The VM is running: its vGPU settings take effect at its next start.")
        .stdout_has("Do you want to apply these settings? (yes/no): no\n")
        .stdout_has("Not restarted");
    assert_eq!(env.power(&u), "running");
    let register = [
        "vm-list",
        "vm-param-get",
        "vm-list",
        "vm-list",
        "vm-param-set",
    ];
    assert_eq!(env.call_names(), register);
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=1")
    );

    // "yes" on another VM: stopped and started with the new args.
    let w = uuid(2);
    env.host_vm(vm(&w, "web", "running", None));
    env.clear_calls();
    env.run_with_input(&["register-vm", "--vm-uuid", &w, "--priority=low"], "y\n")
        .code(0)
        .stdout_has("VM restarted with its vGPU settings.");
    // Asked first, then one unit: stop, write, start.
    assert_eq!(
        env.call_names(),
        [&register[..4], &["vm-shutdown", "vm-param-set", "vm-start"]].concat()
    );
    assert_eq!(env.power(&w), "running");
    assert_eq!(
        env.boots(&w),
        vec![Some(
            "-device vgpu-stub,pool_id=A,priority=low,vm_id=2".to_string()
        )]
    );

    // --no-restart: no question at all.
    let x = uuid(3);
    env.host_vm(vm(&x, "x", "running", None));
    env.clear_calls();
    env.run(&["register-vm", "--vm-uuid", &x, "--no-restart"])
        .code(0)
        .stdout_lacks("Do you want");
    assert_eq!(env.call_names(), register);
}

#[test]
fn set_commands_on_a_halted_vm_read_it_and_write_once() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(
        &u,
        "win10",
        "halted",
        Some("-device e1000 -device vgpu-stub,pool_id=A,priority=1,vm_id=3 -usb"),
    ));
    env.seed(&[(3, &u, Some("win10"), "A", 1)]);

    env.run(&["set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(0)
        .stdout_has("Current configuration:\n  Pool: A\n  Priority: medium (1)\n  VM ID: 3\n")
        .stdout_has("New configuration:\n  Pool: B\n  Priority: medium (1)\n  VM ID: 3\n")
        .stdout_has("Power state: halted")
        .stdout_has("VM configuration updated successfully.")
        .stdout_lacks("Do you want");
    let mut expected = vm_read(&u);
    expected.push(env.set_call(
        &u,
        "-device e1000 -device vgpu-stub,pool_id=B,priority=medium,vm_id=3 -usb",
    ));
    assert_eq!(env.calls(), expected);
    assert_eq!(env.row(&u).unwrap().1, "B");

    env.clear_calls();
    env.run(&["set-priority", "--vm-uuid", &u, "--priority=2"])
        .code(0);
    env.run(&["set-vm-id", "--vm-uuid", &u, "--vm-id=42"])
        .code(0);
    env.run(&[
        "update-vm",
        "--vm-uuid",
        &u,
        "--pool=a",
        "--priority=low",
        "--vm-id=43",
    ])
    .code(0);
    // Each reads the VM and writes once; a new vm_id is first checked against the ids
    // the host's VMs carry (one listing).
    let read_write = ["vm-list", "vm-param-get", "vm-param-set"];
    let read_list_write = [
        "vm-list",
        "vm-param-get",
        "vm-list",
        "vm-list",
        "vm-param-set",
    ];
    assert_eq!(
        env.call_names(),
        [&read_write[..], &read_list_write, &read_list_write].concat()
    );
    assert_eq!(env.row(&u), Some((43, "A".into(), 0, Some("win10".into()))));
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device e1000 -device vgpu-stub,pool_id=A,priority=low,vm_id=43 -usb")
    );
    assert_eq!(env.power(&u), "halted", "a halted VM is never started");
}

#[test]
fn no_change_is_said_and_touches_nothing() {
    let env = Env::new();
    let u = uuid(1);
    let args = "-device vgpu-cuda,addr=5,pool_id=A,priority=high,vm_id=3";
    env.host_vm(vm(&u, "win10", "running", Some(args)));
    env.seed(&[(3, &u, None, "A", 2)]);
    env.run(&["set-priority", "--vm-uuid", &u, "--priority=high"])
        .code(0)
        .stdout_is(&format!(
            "No changes needed: VM win10 ({u}) already has pool A, priority high, vm_id 3, and its device-model-args match.\n"
        ));
    env.run(&["update-vm", "--vm-uuid", &u, "--vm-id=3"])
        .code(0)
        .stdout_has("No changes needed");
    // The VM was looked at (its args read on their own), nothing was written.
    assert_eq!(
        env.call_names(),
        vec!["vm-list", "vm-param-get", "vm-list", "vm-param-get"]
    );
    assert_eq!(env.args(&u).as_deref(), Some(args));
}

#[test]
fn set_vm_id_refuses_an_id_held_by_another_vm() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.host_vm(vm(&u, "a", "running", None));
    env.seed(&[(3, &u, None, "A", 2), (4, &v, None, "B", 0)]);
    let before = env.db_bytes();
    env.run(&["set-vm-id", "--vm-uuid", &u, "--vm-id=4"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!("vm-id 4 is already taken by VM {v}"));
    env.run(&["update-vm", "--vm-uuid", &u])
        .code(2)
        .stderr_has("required arguments were not provided: <--pool <A|B>|--priority <low|medium|high>|--vm-id <id>>");
    env.run(&["set-pool", "--vm-uuid", &uuid(77), "--pool=B"])
        .code(3)
        .stderr_has("is not registered");
    assert!(env.calls().is_empty());
    assert_eq!(env.db_bytes(), before);
}

#[test]
fn remove_vm_strips_only_the_stub_and_deletes_the_row() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.host_vm(vm(
        &u,
        "a",
        "halted",
        Some("-device e1000 -device vgpu-stub,pool_id=A,priority=high,vm_id=3 -usb"),
    ));
    env.host_vm(vm(
        &v,
        "b",
        "halted",
        Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=4"),
    ));
    env.seed(&[(3, &u, None, "A", 2), (4, &v, None, "B", 0)]);

    env.run(&["remove-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has("VM removed from the database");
    assert_eq!(env.args(&u).as_deref(), Some("-device e1000 -usb"));
    assert_eq!(env.row(&u), None);
    assert_eq!(
        env.call_names(),
        vec!["vm-list", "vm-param-get", "vm-param-set"]
    );

    env.clear_calls();
    env.run(&["remove-vm", "--vm-uuid", &v]).code(0);
    assert_eq!(
        env.args(&v),
        None,
        "nothing else was left: the key is removed"
    );
    assert_eq!(
        env.calls()[2],
        strings(&[
            "vm-param-remove",
            &format!("uuid={v}"),
            "param-name=platform",
            "param-key=device-model-args"
        ])
    );
    env.run(&["remove-vm", "--vm-uuid", &v])
        .code(3)
        .stderr_has("is not registered");
}

#[test]
fn remove_vm_of_a_vm_gone_from_the_host_removes_the_row_only() {
    let env = Env::new();
    env.host_vm(vm(&uuid(5), "other", "halted", None));
    env.seed(&[(3, &uuid(1), None, "A", 2)]);
    env.run(&["remove-vm", "--vm-uuid", &uuid(1)])
        .code(0)
        .stdout_has("is not on this host");
    assert_eq!(env.row(&uuid(1)), None);
    assert_eq!(env.call_names(), vec!["vm-list"]);
}

#[test]
fn scan_vms_groups_by_pool_and_name_and_compares_with_the_database() {
    let env = Env::new();
    let (a1, a2, b1, gone, manual, plain) = (uuid(1), uuid(2), uuid(3), uuid(4), uuid(5), uuid(6));
    env.host_vm(vm(
        &a2,
        "zeta",
        "running",
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=2"),
    ));
    env.host_vm(vm(
        &a1,
        "alpha",
        "halted",
        Some("-device vgpu-stub,pool_id=B,priority=1,vm_id=1"),
    ));
    env.host_vm(vm(&b1, "beta", "halted", None));
    env.host_vm(vm(
        &manual,
        "hand-made",
        "running",
        Some("-device vgpu-stub,pool_id=A,priority=2,vm_id=9"),
    ));
    env.host_vm(vm(&plain, "plain", "halted", Some("-usb")));
    env.seed(&[
        (1, &a1, None, "A", 0),
        (2, &a2, None, "A", 2),
        (3, &b1, None, "B", 1),
        (4, &gone, Some("gone"), "B", 1),
    ]);

    let out = env.run(&["scan-vms"]);
    out.code(0).quiet();
    let text = &out.stdout();
    let expected = [
        "=== Pool A: 2 VMs ===",
        &format!("UUID: {a1} | Name: alpha | Pool: A | Priority: low (0) | VM ID: 1 | halted | differs: QEMU would refuse the device: priority=1 (only low, medium or high); pool_id=B (database: A)"),
        "      device-model-args: -device vgpu-stub,pool_id=B,priority=1,vm_id=1",
        &format!("UUID: {a2} | Name: zeta | Pool: A | Priority: high (2) | VM ID: 2 | running on xcp-test | in sync"),
        "=== Pool B: 1 VMs ===",
        &format!("UUID: {b1} | Name: beta | Pool: B | Priority: medium (1) | VM ID: 3 | halted | differs: no device-model-args"),
        "      device-model-args: (none)",
        "=== Registered but not in the pool: 1 VMs ===",
        &format!("UUID: {gone} | Name: gone | Pool: B | Priority: medium (1) | VM ID: 4 | missing from host"),
        "=== Unregistered VMs: 2 ===",
        &format!("UUID: {manual} | Name: hand-made | running on xcp-test | manual vGPU device config"),
        &format!("UUID: {plain} | Name: plain | halted | Not registered"),
        "      device-model-args: -usb",
    ];
    let mut at = 0;
    for line in expected {
        let found = text[at..]
            .find(line)
            .unwrap_or_else(|| panic!("missing or out of order: {line}\n{text}"));
        at += found + line.len();
    }
    assert_eq!(env.calls(), listing_and_hosts());

    let json = env.run(&["--json", "scan-vms"]).code(0).json();
    assert_eq!(json["pools"]["A"][0]["name"], "alpha");
    assert_eq!(json["unregistered"].as_array().unwrap().len(), 2);
    assert_eq!(json["missing"][0]["vm_uuid"], gone);
}

#[test]
fn scan_and_status_make_exactly_three_xe_calls_with_500_vms() {
    let env = Env::new();
    let mut state = serde_json::json!({"vms": [], "faults": []});
    let mut rows = Vec::new();
    for i in 1..=500u32 {
        let u = uuid(i);
        let args = format!(
            "-device vgpu-stub,pool_id={},priority=low,vm_id={i}",
            if i % 2 == 0 { "A" } else { "B" }
        );
        state["vms"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "uuid": u, "name_label": format!("vm{i:03}"), "power_state": "running",
                "platform": [["device-model-args", args]]
            }));
        if i <= 400 {
            rows.push((i as i64, u, if i % 2 == 0 { "A" } else { "B" }));
        }
    }
    std::fs::write(&env.xe_state, state.to_string()).unwrap();
    let conn = env.sql();
    for (id, u, pool) in &rows {
        conn.execute(
            "INSERT INTO vms (vm_id, vm_uuid, pool_id, priority) VALUES (?1, ?2, ?3, 0)",
            rusqlite::params![id, u, pool],
        )
        .unwrap();
    }
    drop(conn);
    let scan = env.run(&["scan-vms"]);
    scan.code(0)
        .stdout_has("=== Pool A: 200 VMs ===")
        .stdout_has("=== Unregistered VMs: 100 ===");
    assert_eq!(scan.stdout().matches("| in sync").count(), 400);
    // As the README says: the checked listing and the hosts, whatever the number of VMs.
    assert_eq!(env.calls(), listing_and_hosts());
    env.clear_calls();
    let status = env.run(&["status"]);
    status.code(0).stdout_has("=== Unregistered VMs: 100 ===");
    assert_eq!(
        status
            .stdout()
            .matches(": running on xcp-test, in sync")
            .count(),
        400
    );
    assert_eq!(env.calls(), listing_and_hosts());
}

#[test]
fn status_shows_power_and_sync_state_and_works_without_xe() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.seed(&[(1, &u, Some("web"), "A", 2), (2, &v, Some("db"), "B", 0)]);
    env.run(&["status"])
        .code(5)
        .stdout_has("    - web (ID: 1, Priority: high)\n")
        .stdout_has("Host: not available (the xe command was not found");
    env.host_vm(vm(
        &u,
        "web",
        "running",
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1"),
    ));
    env.host_vm(vm(&uuid(3), "loose", "halted", None));
    env.run(&["status"])
        .code(0)
        .stdout_has("    - web (ID: 1, Priority: high): running on xcp-test, in sync\n")
        .stdout_has("    - db (ID: 2, Priority: low): not on this host, missing from host\n")
        .stdout_has(&format!(
            "=== Unregistered VMs: 1 ===\n  - loose ({}): halted",
            uuid(3)
        ));
}

#[test]
fn dry_run_prints_the_exact_calls_and_changes_nothing() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "win10", "running", Some("-usb")));
    env.seed(&[(3, &u, None, "A", 1)]);
    let before = env.db_bytes();
    let out = env.run(&["--dry-run", "set-pool", "--vm-uuid", &u, "--pool=B"]);
    out.code(0)
        .stdout_has(&format!("dry run: would run: xe vm-shutdown uuid={u}\n"))
        .stdout_has(&format!("dry run: would update vms: vm_uuid={u}, vm_id=3, vm_name=NULL, pool_id=B, priority=1 (medium)\n"))
        .stdout_has(&format!("dry run: would run: xe vm-param-set uuid={u} 'platform:device-model-args=-usb -device vgpu-stub,pool_id=B,priority=medium,vm_id=3'\n"))
        .stdout_has(&format!("dry run: would run: xe vm-start uuid={u} on={HOST1}\n"));
    assert_eq!(
        env.call_names(),
        vec!["vm-list", "vm-param-get"],
        "only the VM was read"
    );
    assert_eq!(env.db_bytes(), before);
    assert_eq!(env.power(&u), "running");
    assert_eq!(env.args(&u).as_deref(), Some("-usb"));

    let w = uuid(2);
    env.host_vm(vm(&w, "new", "halted", None));
    env.run(&["--dry-run", "register-vm", "--vm-uuid", &w])
        .code(0)
        .stdout_has(&format!("dry run: would insert into vms: vm_uuid={w}, vm_id=4, vm_name=new, pool_id=A, priority=1 (medium)"));
    env.run(&["--dry-run", "remove-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has(&format!("dry run: would delete from vms: vm_uuid={u}"));
    assert_eq!(env.db_bytes(), before);
    assert_eq!(env.vm_count(), 1);
}

#[test]
fn changing_commands_print_one_json_document_with_json() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "win10", "running", None));
    let out = env.run(&["--json", "register-vm", "--vm-uuid", &u, "--no-restart"]);
    out.code(0).stderr_has("VM registered successfully:");
    assert_eq!(out.json()["vm_id"], 1);
    let out = env.run(&["--json", "--yes", "set-pool", "--vm-uuid", &u, "--pool=B"]);
    out.code(0)
        .stderr_has("Do you want to apply these settings? (yes/no): yes (--yes)")
        .stderr_has("Stopping VM win10");
    assert_eq!(out.json()["pool_id"], "B");
    let out = env.run(&["--json", "--dry-run", "remove-vm", "--vm-uuid", &u]);
    out.code(0).stderr_has("dry run: would delete from vms");
    assert_eq!(out.json()["vm_uuid"], u);
}

#[test]
fn issue_10_a_change_to_the_registered_value_still_repairs_drift() {
    let env = Env::new();
    let u = uuid(1);
    // The database says A/high/3; the args say priority=1, which QEMU would refuse.
    env.registered(
        vm(
            &u,
            "win10",
            "halted",
            Some("-device vgpu-cuda,addr=5,pool_id=A,priority=1,vm_id=3 -usb"),
        ),
        3,
        "A",
        2,
    );
    env.run(&["set-priority", "--vm-uuid", &u, "--priority=high"])
        .code(0)
        .stdout_has("Its device-model-args do not match the database (differs: QEMU would refuse the device: priority=1 (only low, medium or high)): they are rewritten.")
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device vgpu-cuda,addr=5,pool_id=A,priority=high,vm_id=3 -usb")
    );
    assert_eq!(env.row(&u), Some((3, "A".into(), 2, Some("win10".into()))));
    // Now it is in sync: nothing more to do, nothing written.
    env.clear_calls();
    env.run(&["set-priority", "--vm-uuid", &u, "--priority=high"])
        .code(0)
        .stdout_has("No changes needed");
    assert_eq!(env.call_names(), vec!["vm-list", "vm-param-get"]);
}

#[test]
fn issue_10_any_name_label_can_be_registered_by_uuid() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.host_vm(vm(&u, "evil\nname\u{1b}[31m", "halted", None));
    let long = "é".repeat(300);
    env.host_vm(vm(&v, &long, "halted", None));
    env.run(&["register-vm", "--vm-uuid", &u])
        .code(0)
        .stderr_has("note: the VM's name-label has control characters or is longer than 255 characters; it is stored as 'evil\\nname\\u{1b}[31m'")
        .stdout_has("  Name: evil\\nname\\u{1b}[31m\n");
    assert_eq!(
        env.row(&u).unwrap().3.as_deref(),
        Some("evil\\nname\\u{1b}[31m")
    );
    env.run(&["register-vm", "--vm-uuid", &v])
        .code(0)
        .stderr_has(
            "note: the VM's name-label has control characters or is longer than 255 characters",
        );
    assert_eq!(env.row(&v).unwrap().3, Some("é".repeat(255)));
    env.run(&["list-vms"]).code(0).stdout_lacks("\u{1b}");
}

#[test]
fn issue_10_dry_run_says_what_would_happen() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.host_vm(vm(&u, "new", "halted", Some("-usb")));
    env.registered(vm(&v, "old", "halted", Some("-usb")), 4, "A", 1);
    let before = env.db_bytes();
    env.run(&["--dry-run", "register-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has("Dry run: the VM would be registered:\nVM Configuration:")
        .stdout_lacks("registered successfully");
    env.run(&["--dry-run", "set-pool", "--vm-uuid", &v, "--pool=B"])
        .code(0)
        .stdout_has("Dry run: the configuration would be updated.")
        .stdout_lacks("updated successfully");
    env.run(&["--dry-run", "remove-vm", "--vm-uuid", &v])
        .code(0)
        .stdout_has(
            "Dry run: the vGPU device would be removed and the VM removed from the database.",
        );
    assert_eq!(env.db_bytes(), before);
    assert_eq!(env.args(&u).as_deref(), Some("-usb"));
    assert_eq!(env.args(&v).as_deref(), Some("-usb"));
    assert!(!env
        .call_names()
        .iter()
        .any(|c| c == "vm-param-set" || c == "vm-param-remove"));
}
