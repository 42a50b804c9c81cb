//! Power states and pending restarts (issue 10): a paused or suspended VM is not changed
//! underneath its saved state unless --no-restart says the change is for its next start; an
//! unknown power state is an error, not "halted"; a running VM whose change waits for a restart
//! shows "restart pending" until it restarts or the hook sees it start with the new values.

use crate::common::{uuid, vm, Env};

const IN_SYNC: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=1";

fn changing_calls(env: &Env) -> Vec<String> {
    env.call_names()
        .into_iter()
        .filter(|c| c != "vm-list" && c != "vm-param-get")
        .collect()
}

#[test]
fn issue_10_paused_and_suspended_vms_are_not_changed_underneath() {
    for state in ["paused", "suspended"] {
        let env = Env::new();
        let (u, free) = (uuid(1), uuid(2));
        env.registered(vm(&u, "web", state, Some(IN_SYNC)), 1, "A", 2);
        env.host_vm(vm(&free, "new", state, Some("-usb")));
        let before = env.db_bytes();
        let refusal = format!(
            "is {state}: resume it or shut it down first, or give --no-restart to apply the change at its next start; nothing was changed"
        );
        for args in [
            vec!["set-pool", "--vm-uuid", &u, "--pool=B"],
            vec!["update-vm", "--vm-uuid", &u, "--vm-id=9"],
            vec!["remove-vm", "--vm-uuid", &u],
            vec!["register-vm", "--vm-uuid", &free],
        ] {
            env.run_with_input(&args, "yes\n")
                .code(1)
                .one_error_line()
                .stderr_has(&refusal);
        }
        assert_eq!(env.db_bytes(), before, "{state}: database unchanged");
        assert_eq!(env.args(&u).as_deref(), Some(IN_SYNC));
        assert_eq!(env.args(&free).as_deref(), Some("-usb"));
        assert!(
            changing_calls(&env).is_empty(),
            "{state}: {:?}",
            env.calls()
        );

        // --no-restart: saved for the next start, the VM left as it is.
        env.run(&["set-pool", "--vm-uuid", &u, "--pool=B", "--no-restart"])
            .code(0)
            .stdout_has("restart pending");
        assert_eq!(env.row(&u).unwrap().1, "B");
        assert_eq!(
            env.args(&u).as_deref(),
            Some("-usb -device vgpu-stub,pool_id=B,priority=high,vm_id=1")
        );
        assert_eq!(env.power(&u), state);
        assert_eq!(changing_calls(&env), vec!["vm-param-set"]);
        env.run(&["show-vm", "--vm-uuid", &u])
            .code(0)
            .stdout_has("  Restart pending: yes");
        env.run(&["register-vm", "--vm-uuid", &free, "--no-restart"])
            .code(0)
            .stdout_has(&format!("The VM is {state}: its vGPU settings take effect at its next start (restart pending)."));
        assert_eq!(env.power(&free), state);
    }
}

#[test]
fn issue_10_an_unknown_power_state_is_an_error_not_halted() {
    for state in ["migrating", ""] {
        let env = Env::new();
        let u = uuid(1);
        env.registered(vm(&u, "web", state, Some(IN_SYNC)), 1, "A", 2);
        let before = env.db_bytes();
        env.run(&["set-pool", "--vm-uuid", &u, "--pool=B", "--no-restart"])
            .code(1)
            .one_error_line()
            .stderr_has(&format!(
                "reports the power state '{state}', which vgpu-admin does not know; nothing was changed"
            ));
        assert_eq!(env.db_bytes(), before);
        assert_eq!(env.args(&u).as_deref(), Some(IN_SYNC));
        assert!(changing_calls(&env).is_empty());
    }
}

#[test]
fn issue_10_restart_pending_is_shown_until_the_vm_restarts() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "web", "running", Some(IN_SYNC)), 1, "A", 2);
    env.run(&[
        "set-priority",
        "--vm-uuid",
        &u,
        "--priority=low",
        "--no-restart",
    ])
    .code(0)
    .stdout_has(
        "VM configuration saved; it takes effect at the VM's next start (restart pending).",
    );
    assert_eq!(env.power(&u), "running");

    env.run(&["status"]).code(0).stdout_has(
        "    - web (ID: 1, Priority: low): running on xcp-test, in sync, restart pending\n",
    );
    env.run(&["scan-vms"])
        .code(0)
        .stdout_has("| running on xcp-test | in sync | restart pending\n");
    env.run(&["show-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has("  Restart pending: yes (the VM still runs with its previous settings)\n");
    assert_eq!(
        env.run(&["--json", "show-vm", "--vm-uuid", &u])
            .code(0)
            .json()["restart_pending"],
        true
    );
    let status = env.run(&["--json", "status"]).code(0).json();
    assert_eq!(status["host"]["states"][&u]["restart_pending"], true);
    let scan = env.run(&["--json", "scan-vms"]).code(0).json();
    assert_eq!(scan["pools"]["A"][0]["restart_pending"], true);

    // The admin restarts it outside vgpu-admin: the hook sees it start with the new values.
    env.host_vm_set(&u, "power_state", serde_json::json!("halted"));
    env.run(&["hook", "vm-pre-start", "-vmuuid", &u, "-reason", "none"])
        .code(0)
        .stdout_is("");
    env.run(&["show-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_lacks("Restart pending");
    assert_eq!(
        env.run(&["--json", "show-vm", "--vm-uuid", &u])
            .code(0)
            .json()["restart_pending"],
        false
    );
}

#[test]
fn issue_10_a_restart_by_vgpu_admin_clears_the_pending_mark() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "web", "running", Some(IN_SYNC)), 1, "A", 2);
    env.run(&["set-pool", "--vm-uuid", &u, "--pool=B", "--no-restart"])
        .code(0);
    env.run(&["show-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has("Restart pending: yes");
    env.run(&["--yes", "set-priority", "--vm-uuid", &u, "--priority=low"])
        .code(0)
        .stdout_has("VM configuration updated successfully.");
    assert_eq!(
        env.boots(&u),
        vec![Some(
            "-usb -device vgpu-stub,pool_id=B,priority=low,vm_id=1".to_string()
        )]
    );
    env.run(&["show-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_lacks("Restart pending");
}

#[test]
fn issue_10_register_answered_no_and_hook_repairs_leave_a_restart_pending() {
    let env = Env::new();
    let (u, v) = (uuid(1), uuid(2));
    env.host_vm(vm(&u, "web", "running", Some("-usb")));
    env.run_with_input(&["register-vm", "--vm-uuid", &u], "no\n")
        .code(0)
        .stdout_has(
            "Not restarted: the settings take effect at the VM's next start (restart pending).",
        );
    env.run(&["show-vm", "--vm-uuid", &u])
        .code(0)
        .stdout_has("Restart pending: yes");

    // The hook repairs drift at a start (policy warn): this boot still has the old
    // values, so the VM waits for a restart.
    env.registered(
        vm(
            &v,
            "db",
            "halted",
            Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=2"),
        ),
        2,
        "A",
        2,
    );
    env.run(&["hook", "vm-pre-start", "-vmuuid", &v, "-reason", "none"])
        .code(1)
        .stdout_has("corrected the vGPU config");
    env.run(&["show-vm", "--vm-uuid", &v])
        .code(0)
        .stdout_has("Restart pending: yes");
    // A halted VM has nothing pending, whatever the mark says: status does not show it.
    env.run(&["status"])
        .code(0)
        .stdout_has("    - db (ID: 2, Priority: high): halted, in sync\n");
}
