//! Confirmation before a running VM is stopped: the answers, end of input, `--yes`,
//! `--no-restart`, and the visible fallback to a forced shutdown.

use crate::common::{uuid, vm, Env};

const OLD_ARGS: &str = "-device vgpu-stub,pool_id=A,priority=medium,vm_id=3";
const NEW_ARGS: &str = "-device vgpu-stub,pool_id=B,priority=medium,vm_id=3";

/// A registered VM, running on the fake host with its stub in sync.
fn running_vm() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", Some(OLD_ARGS)), 3, "A", 1);
    (env, u)
}

/// The VM was not touched: row, args and power state as before, no changing xe call.
#[track_caller]
fn untouched(env: &Env, u: &str) {
    assert_eq!(env.row(u).unwrap().1, "A");
    assert_eq!(env.args(u).as_deref(), Some(OLD_ARGS));
    assert_eq!(env.power(u), "running");
    // The VM was read (its record, then its args on their own), nothing more.
    assert_eq!(env.call_names(), vec!["vm-list", "vm-param-get"]);
}

/// Stopped, changed and started again: the VM booted with the new args.
#[track_caller]
fn applied(env: &Env, u: &str) {
    assert_eq!(env.row(u).unwrap().1, "B");
    assert_eq!(env.args(u).as_deref(), Some(NEW_ARGS));
    assert_eq!(env.power(u), "running");
    assert_eq!(env.boots(u), vec![Some(NEW_ARGS.to_string())]);
    assert_eq!(
        env.call_names(),
        vec![
            "vm-list",
            "vm-param-get",
            "vm-shutdown",
            "vm-param-set",
            "vm-start"
        ]
    );
}

#[test]
fn answering_no_or_nothing_cancels_with_exit_4() {
    for input in ["no\n", "n\n", "\n", "", "maybe\n", "yes please\n"] {
        let (env, u) = running_vm();
        let out = env.run_with_input(&["set-pool", "--vm-uuid", &u, "--pool=B"], input);
        out.code(4)
            .stdout_has("Current configuration:\n  Pool: A")
            .stdout_has("New configuration:\n  Pool: B")
            .stdout_has("This change requires stopping and restarting the VM.\nDo you want to apply these settings? (yes/no): ")
            .stderr_has("Operation cancelled.");
        untouched(&env, &u);
    }
}

#[test]
fn closed_stdin_cancels() {
    let (env, u) = running_vm();
    // `run` gives the child no stdin at all (/dev/null).
    env.run(&["set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(4)
        .stderr_has("Operation cancelled.");
    untouched(&env, &u);
}

#[test]
fn yes_and_y_in_any_case_apply_and_restart() {
    for input in ["yes\n", "y\n", "YES\n", " Y \n"] {
        let (env, u) = running_vm();
        env.run_with_input(&["set-pool", "--vm-uuid", &u, "--pool=B"], input)
            .code(0)
            .stdout_has("Stopping VM win10")
            .stdout_has("Starting VM win10")
            .stdout_has("VM configuration updated successfully.");
        applied(&env, &u);
    }
}

#[test]
fn yes_flag_answers_without_reading() {
    let (env, u) = running_vm();
    env.run(&["--yes", "set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(0)
        .stdout_has("Do you want to apply these settings? (yes/no): yes (--yes)");
    applied(&env, &u);
    let (env, u) = running_vm();
    env.run(&["set-pool", "-y", "--vm-uuid", &u, "--pool=B"])
        .code(0);
    applied(&env, &u);
}

#[test]
fn no_restart_applies_for_the_next_boot_without_stopping() {
    let (env, u) = running_vm();
    env.run(&["set-pool", "--vm-uuid", &u, "--pool=B", "--no-restart"])
        .code(0)
        .stdout_lacks("Do you want")
        .stdout_has("The VM keeps running (--no-restart)")
        .stdout_has("it takes effect at the VM's next start");
    assert_eq!(env.row(&u).unwrap().1, "B");
    assert_eq!(env.args(&u).as_deref(), Some(NEW_ARGS));
    assert_eq!(env.power(&u), "running");
    assert!(env.boots(&u).is_empty());
    assert_eq!(
        env.call_names(),
        vec!["vm-list", "vm-param-get", "vm-param-set"]
    );
}

#[test]
fn a_refused_clean_shutdown_falls_back_to_a_forced_one_visibly() {
    for (key, said) in [
        ("pv_drivers", "lacks the feature"),
        (
            "ignores_shutdown",
            "didn't acknowledge the need to shutdown",
        ),
    ] {
        let (env, u) = running_vm();
        let value = serde_json::json!(key == "ignores_shutdown");
        env.host_vm_set(&u, key, value);
        env.run(&["--yes", "set-pool", "--vm-uuid", &u, "--pool=B"])
            .code(0)
            .stdout_has("Clean shutdown refused (")
            .stdout_has(said)
            .stdout_has("forcing the VM off.");
        let calls = env.calls();
        assert_eq!(
            calls[2],
            vec!["vm-shutdown".to_string(), format!("uuid={u}")]
        );
        assert_eq!(
            calls[3],
            vec![
                "vm-shutdown".to_string(),
                format!("uuid={u}"),
                "force=true".to_string()
            ]
        );
        assert_eq!(env.power(&u), "running");
        assert_eq!(env.boots(&u), vec![Some(NEW_ARGS.to_string())]);
    }
}

#[test]
fn remove_vm_asks_before_stopping_a_running_vm() {
    let (env, u) = running_vm();
    env.run_with_input(&["remove-vm", "--vm-uuid", &u], "no\n")
        .code(4)
        .one_error_line()
        .stderr_has("Operation cancelled.");
    untouched(&env, &u);
    env.clear_calls();
    env.run_with_input(&["remove-vm", "--vm-uuid", &u], "yes\n")
        .code(0);
    assert_eq!(env.row(&u), None);
    assert_eq!(env.args(&u), None);
    assert_eq!(env.power(&u), "running");
    assert_eq!(env.boots(&u), vec![None]);
    assert_eq!(
        env.call_names(),
        vec![
            "vm-list",
            "vm-param-get",
            "vm-shutdown",
            "vm-param-remove",
            "vm-start"
        ]
    );
}
