//! `check [--fix]` and `adopt` on a fixture of in-sync, drifted, missing and hand-configured VMs.

use crate::common::{uuid, Env, HostVm};

/// 1 in sync, 2 drifted, 3 registered but gone, 4 manual stub (priority digit), 5 manual stub
/// whose vm_id 1 is taken, 6 manual stub with a bad pool, 7 plain unregistered VM.
fn fixture() -> Env {
    let env = Env::new();
    let vms: [(u32, &str, Option<&str>); 6] = [
        (
            1,
            "insync",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=1"),
        ),
        (
            2,
            "drifted",
            Some("-usb -device vgpu-stub,pool_id=B,priority=low,vm_id=9"),
        ),
        (
            4,
            "manual",
            Some("-device vgpu-stub,pool_id=B,priority=2,vm_id=40 -usb"),
        ),
        (
            5,
            "clash",
            Some("-device vgpu-stub,pool_id=A,priority=low,vm_id=1"),
        ),
        (
            6,
            "badpool",
            Some("-device vgpu-stub,pool_id=Q,priority=low,vm_id=60"),
        ),
        (7, "plain", Some("-usb")),
    ];
    for (n, name, args) in vms {
        env.host_vm(HostVm {
            uuid: &uuid(n),
            name,
            power: "halted",
            args,
        });
    }
    env.seed(&[
        (1, &uuid(1), Some("insync"), "A", 2),
        (2, &uuid(2), Some("drifted"), "A", 1),
        (3, &uuid(3), Some("gone"), "B", 0),
    ]);
    env.clear_calls();
    env
}

#[test]
fn check_reports_each_kind_of_drift_in_one_xe_call() {
    let env = fixture();
    let out = env.run(&["check"]);
    // Drift found: its own status, not "failed".
    out.code(5)
        .stdout_has(&format!("in sync:  insync ({})", uuid(1)))
        .stdout_has(&format!(
            "differs:  drifted ({}): pool_id=B (database: A); priority=low (database: medium); vm_id=9 (database: 2)",
            uuid(2)
        ))
        .stdout_has(&format!("missing:  {}: registered but not on this host", uuid(3)))
        .stdout_has(&format!("manual:   manual ({}): unregistered", uuid(4)))
        .stdout_has(&format!("clash:    vm_id 1 is carried by 2 VMs: insync ({}), clash ({})", uuid(1), uuid(5)))
        .stdout_has("1 in sync, 0 fixed, 1 differ, 1 missing, 0 invalid, 3 manual, 0 unsplittable, 1 vm_id clashes, 0 pool records disagree");
    // One checked listing: the uuids (--minimal), then the records.
    assert_eq!(env.call_names(), vec!["vm-list", "vm-list"]);
    let json = env.run(&["--json", "check"]).code(5).json();
    assert_eq!(json["differs"][0]["vm_uuid"], uuid(2));
    assert_eq!(json["manual"].as_array().unwrap().len(), 3);
}

#[test]
fn check_fix_rewrites_only_the_drifted_args() {
    let env = fixture();
    env.run(&["check", "--fix"])
        .code(5) // the missing VM cannot be fixed
        .stdout_has(&format!("fixed:    drifted ({})", uuid(2)));
    assert_eq!(
        env.args(&uuid(2)).as_deref(),
        Some("-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=2")
    );
    assert_eq!(
        env.args(&uuid(4)).as_deref(),
        Some("-device vgpu-stub,pool_id=B,priority=2,vm_id=40 -usb")
    );
    // The listing, then the drifted VM read on its own before its args are written.
    assert_eq!(
        env.call_names(),
        vec![
            "vm-list",
            "vm-list",
            "vm-list",
            "vm-param-get",
            "vm-param-set"
        ]
    );
    assert_eq!(env.power(&uuid(2)), "halted", "nothing is restarted");
    env.run(&["remove-vm", &format!("--vm-uuid={}", uuid(3))])
        .code(0);
    // The vm_id clash between "insync" and the unregistered "clash" is left to the admin.
    env.run(&["check"]).code(5).stdout_has(
        "2 in sync, 0 fixed, 0 differ, 0 missing, 0 invalid, 3 manual, 0 unsplittable, 1 vm_id clashes, 0 pool records disagree",
    );
}

#[test]
fn adopt_all_registers_manual_configs_and_skips_conflicts_whole() {
    let env = fixture();
    let out = env.run(&["adopt", "--all"]);
    out.code(5)
        .stdout_has(&format!(
            "adopted: manual ({}): pool B, priority high, vm_id 40",
            uuid(4)
        ))
        .stdout_has(&format!(
            "skipped: clash ({}): vm-id 1 is already taken by VM {}",
            uuid(5),
            uuid(1)
        ))
        .stdout_has(&format!(
            "skipped: badpool ({}): pool_id=Q (QEMU accepts only A or B)",
            uuid(6)
        ))
        .stdout_has("1 adopted, 2 skipped");
    assert_eq!(
        env.row(&uuid(4)),
        Some((40, "B".into(), 2, Some("manual".into())))
    );
    // The legacy digit is rewritten as a word; other words stay in order.
    assert_eq!(
        env.args(&uuid(4)).as_deref(),
        Some("-device vgpu-stub,pool_id=B,priority=high,vm_id=40 -usb")
    );
    assert_eq!(env.row(&uuid(5)), None);
    assert_eq!(env.row(&uuid(6)), None);
    assert_eq!(env.row(&uuid(7)), None);
    assert_eq!(
        env.args(&uuid(5)).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=low,vm_id=1")
    );
    env.run(&["adopt", "--all"])
        .code(5)
        .stdout_has("0 adopted, 2 skipped");
}

#[test]
fn adopt_one_vm_and_dry_run() {
    let env = fixture();
    let before = env.db_bytes();
    env.run(&["--dry-run", "adopt", &format!("--vm-uuid={}", uuid(4))])
        .code(0)
        .stdout_has(&format!("dry run: would insert into vms: vm_uuid={}, vm_id=40, vm_name=manual, pool_id=B, priority=2 (high)", uuid(4)))
        .stdout_has("dry run: would run: xe vm-param-set");
    assert_eq!(env.db_bytes(), before);
    assert_eq!(
        env.args(&uuid(4)).as_deref(),
        Some("-device vgpu-stub,pool_id=B,priority=2,vm_id=40 -usb")
    );

    env.run(&["adopt", &format!("--vm-uuid={}", uuid(4))])
        .code(0)
        .stdout_has("1 adopted, 0 skipped");
    env.run(&["adopt", &format!("--vm-uuid={}", uuid(4))])
        .code(2)
        .stderr_has("already registered");
    env.run(&["adopt", &format!("--vm-uuid={}", uuid(7))])
        .code(3)
        .stderr_has("has no vGPU device in its device-model-args");
    env.run(&["adopt"]).code(2).stderr_has(
        "required arguments were not provided: <--vm-uuid <uuid>|--vm-name <name>|--all>",
    );
    env.run(&["adopt", "--all", &format!("--vm-uuid={}", uuid(4))])
        .code(2)
        .one_error_line()
        .stderr_has("cannot be used with");
}
