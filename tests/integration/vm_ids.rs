//! vm_id uniqueness includes what the host's VMs carry (issue 10): an id in an unregistered VM's
//! hand-written device counts as taken (an explicit one is refused naming that VM, automatic ids
//! skip it), and `check` reports VMs whose devices carry the same vm_id.

use crate::common::{uuid, vm, Env};

/// A host with a registered VM (vm_id 5) and two hand-configured, unregistered VMs carrying
/// vm_ids 6 and 7, plus a plain VM to register.
fn host() -> Env {
    let env = Env::new();
    env.registered(
        vm(
            &uuid(1),
            "reg",
            "halted",
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=5"),
        ),
        5,
        "A",
        2,
    );
    env.host_vm(vm(
        &uuid(2),
        "hand six",
        "running",
        Some("-device vgpu-cuda,addr=5,vm_id=6"),
    ));
    env.host_vm(vm(
        &uuid(3),
        "hand seven",
        "halted",
        Some("-usb -device driver=vgpu-stub,pool_id=B,vm_id=7"),
    ));
    env.host_vm(vm(&uuid(4), "plain", "halted", Some("-usb")));
    env.clear_calls();
    env
}

#[test]
fn issue_10_an_id_carried_by_a_hand_configured_vm_is_taken() {
    let env = host();
    let before = env.db_bytes();
    env.run(&["register-vm", "--vm-uuid", &uuid(4), "--vm-id=6"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!(
            "vm-id 6 is carried by the vGPU device of VM hand six ({}); choose another vm-id (or adopt that VM)",
            uuid(2)
        ));
    env.run(&["set-vm-id", "--vm-uuid", &uuid(1), "--vm-id=7"])
        .code(2)
        .one_error_line()
        .stderr_has(&format!(
            "vm-id 7 is carried by the vGPU device of VM hand seven ({})",
            uuid(3)
        ));
    env.run(&["update-vm", "--vm-uuid", &uuid(1), "--pool=B", "--vm-id=6"])
        .code(2)
        .stderr_has("vm-id 6 is carried by");
    assert_eq!(env.db_bytes(), before);
    assert_eq!(env.args(&uuid(4)).as_deref(), Some("-usb"));
    assert!(!env.call_names().iter().any(|c| c == "vm-param-set"));

    // An automatic id skips them: 5 is the highest registered, 6 and 7 are carried.
    env.run(&["register-vm", "--vm-uuid", &uuid(4)])
        .code(0)
        .stdout_has("  VM ID: 8\n");
    assert_eq!(
        crate::common::qemu::one_device(env.args(&uuid(4)).as_deref())
            .unwrap()
            .vm_id,
        8
    );
    // Keeping one's own id is no clash with oneself.
    env.run(&["update-vm", "--vm-uuid", &uuid(1), "--pool=B", "--vm-id=5"])
        .code(0);
}

#[test]
fn issue_10_check_reports_vms_carrying_the_same_vm_id() {
    let env = host();
    env.run(&["check"])
        .code(0)
        .stdout_has("0 vm_id clashes, 0 pool records disagree");
    // A second hand-configured VM with vm_id 6, and one with the registered VM's 5.
    env.host_vm(vm(
        &uuid(5),
        "copy",
        "halted",
        Some("-device vgpu-stub,vm_id=6"),
    ));
    env.host_vm(vm(
        &uuid(6),
        "five",
        "halted",
        Some("-device vgpu-cuda,vm_id=5"),
    ));
    let out = env.run(&["check"]);
    out.code(5)
        .stdout_has(&format!(
            "clash:    vm_id 5 is carried by 2 VMs: reg ({}), five ({})",
            uuid(1),
            uuid(6)
        ))
        .stdout_has(&format!(
            "clash:    vm_id 6 is carried by 2 VMs: hand six ({}), copy ({})",
            uuid(2),
            uuid(5)
        ))
        .stdout_has("2 vm_id clashes, 0 pool records disagree");
    let json = env.run(&["--json", "check"]).code(5).json();
    let clashes = json["clashes"].as_array().unwrap();
    assert_eq!(clashes.len(), 2);
    assert_eq!(clashes[0]["vm_id"], 5);
    assert_eq!(clashes[0]["vms"].as_array().unwrap().len(), 2);

    // adopt does not register a VM into a clash.
    env.run(&["adopt", "--vm-uuid", &uuid(5)])
        .code(5)
        .stdout_has(&format!(
            "skipped: copy ({}): vm-id 6 is carried by the vGPU device of VM hand six ({})",
            uuid(5),
            uuid(2)
        ));
    assert_eq!(env.row(&uuid(5)), None);
}
