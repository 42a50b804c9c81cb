//! Fault injection at every step of the changing commands: afterwards the database row and the
//! VM's device-model-args are both old or both new, a VM that was running is running again when
//! it can be, the exit status is 1, and the message names the step that failed.
//!
//! | command      | failing xe call   | step named          | row + args after | VM after |
//! |--------------|-------------------|---------------------|------------------|----------|
//! | set-pool     | vm-shutdown       | stop the VM         | old              | running  |
//! | set-pool     | vm-param-set      | write the device-model-args | old              | running  |
//! | set-pool     | vm-start (once)   | start the VM        | new              | halted   |
//! | update-vm    | vm-param-set      | write the device-model-args | old              | running  |
//! | register-vm  | vm-param-set      | write the device-model-args | old (none)       | running  |
//! | register-vm  | vm-shutdown       | stop the VM         | old (none)       | running  |
//! | register-vm  | vm-start (once)   | start the VM        | new              | halted   |
//! | remove-vm    | vm-shutdown       | stop the VM         | old              | running  |
//! | remove-vm    | vm-param-set      | write the device-model-args | old              | running  |
//! | remove-vm    | vm-start (once)   | start the VM        | new (removed)    | halted   |

use crate::common::{uuid, vm, Env, HostVm};

const OLD: &str = "-usb -device vgpu-stub,pool_id=A,priority=medium,vm_id=3";
const NEW: &str = "-usb -device vgpu-stub,pool_id=B,priority=medium,vm_id=3";

struct Case {
    command: &'static str,
    fails: &'static str,
    once: bool,
    step: &'static str,
    /// Expected (row present with pool, args) afterwards.
    row: Option<&'static str>,
    args: Option<&'static str>,
    power: &'static str,
}

fn run_case(case: &Case) {
    let env = Env::new();
    let u = uuid(1);
    let registered = case.command != "register-vm";
    env.host_vm(HostVm {
        uuid: &u,
        name: "win10",
        power: "running",
        args: Some(if registered { OLD } else { "-usb" }),
    });
    if registered {
        env.seed(&[(3, &u, Some("win10"), "A", 1)]);
    }
    env.fault(
        case.fails,
        Some(&u),
        &format!("Error: injected {} failure", case.fails),
        case.once,
    );
    let args: Vec<String> = match case.command {
        "set-pool" => vec![
            "set-pool".into(),
            format!("--vm-uuid={u}"),
            "--pool=B".into(),
        ],
        "update-vm" => vec![
            "update-vm".into(),
            format!("--vm-uuid={u}"),
            "--pool=B".into(),
        ],
        "register-vm" => vec![
            "register-vm".into(),
            format!("--vm-uuid={u}"),
            "--pool=B".into(),
            "--vm-id=3".into(),
        ],
        "remove-vm" => vec!["remove-vm".into(), format!("--vm-uuid={u}")],
        other => panic!("no case for {other}"),
    };
    let out = env.run_with_input(&args, "yes\n");
    let what = format!("{} with {} failing", case.command, case.fails);
    assert_eq!(
        out.status(),
        1,
        "{what}: exit status\n{}\n{}",
        out.stdout(),
        out.stderr()
    );
    let first_line = out.stderr().lines().next().unwrap_or_default();
    assert!(
        first_line.contains(&format!("step '{}' failed", case.step)),
        "{what}: message names the step: {first_line}"
    );
    assert!(
        first_line.contains(&format!("Error: injected {} failure", case.fails)),
        "{what}: message quotes xe: {first_line}"
    );
    assert_eq!(
        env.row(&u).map(|r| r.1),
        case.row.map(str::to_string),
        "{what}: row"
    );
    assert_eq!(env.args(&u).as_deref(), case.args, "{what}: args");
    assert_eq!(env.power(&u), case.power, "{what}: power state");
    // Whatever happened, database and args describe the same configuration.
    match (env.row(&u), env.args(&u)) {
        (Some((_, pool, _, _)), Some(args)) => assert!(
            args.contains(&format!("pool_id={pool}")),
            "{what}: consistent"
        ),
        (None, args) => assert!(
            !args.unwrap_or_default().contains("vgpu-stub"),
            "{what}: consistent"
        ),
        (Some(_), None) => panic!("{what}: registered without a stub"),
    }
}

/// The table above, as data: (command, failing call, once, step, row pool, args, power after).
#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { command: "set-pool",    fails: "vm-shutdown",  once: false, step: "stop the VM",      row: Some("A"), args: Some(OLD),    power: "running" },
    Case { command: "set-pool",    fails: "vm-param-set", once: false, step: "write the device-model-args", row: Some("A"), args: Some(OLD),    power: "running" },
    Case { command: "set-pool",    fails: "vm-start",     once: true,  step: "start the VM",     row: Some("B"), args: Some(NEW),    power: "halted" },
    Case { command: "update-vm",   fails: "vm-param-set", once: false, step: "write the device-model-args", row: Some("A"), args: Some(OLD),    power: "running" },
    Case { command: "register-vm", fails: "vm-param-set", once: false, step: "write the device-model-args", row: None,      args: Some("-usb"), power: "running" },
    Case { command: "register-vm", fails: "vm-shutdown",  once: false, step: "stop the VM",      row: None,      args: Some("-usb"), power: "running" },
    Case { command: "register-vm", fails: "vm-start",     once: true,  step: "start the VM",     row: Some("B"), args: Some(NEW),    power: "halted" },
    Case { command: "remove-vm",   fails: "vm-shutdown",  once: false, step: "stop the VM",      row: Some("A"), args: Some(OLD),    power: "running" },
    Case { command: "remove-vm",   fails: "vm-param-set", once: false, step: "write the device-model-args", row: Some("A"), args: Some(OLD),    power: "running" },
    Case { command: "remove-vm",   fails: "vm-start",     once: true,  step: "start the VM",     row: None,      args: Some("-usb"), power: "halted" },
];

fn run_cases_of(command: &str) {
    let cases: Vec<&Case> = CASES.iter().filter(|c| c.command == command).collect();
    assert!(!cases.is_empty());
    for case in cases {
        run_case(case);
    }
}

#[test]
fn set_pool_faults() {
    run_cases_of("set-pool");
}

#[test]
fn update_vm_faults() {
    run_cases_of("update-vm");
}

#[test]
fn register_vm_faults() {
    run_cases_of("register-vm");
}

#[test]
fn remove_vm_faults() {
    run_cases_of("remove-vm");
}

#[test]
fn after_a_failed_change_the_vm_boots_with_its_previous_configuration() {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", Some(OLD)), 3, "A", 1);
    env.fault(
        "vm-param-set",
        Some(&u),
        "Error: injected vm-param-set failure",
        false,
    );
    env.run(&["--yes", "set-pool", "--vm-uuid", &u, "--pool=B"])
        .code(1)
        .stderr_has("was started again with its previous configuration");
    assert_eq!(env.boots(&u), vec![Some(OLD.to_string())]);
    assert_eq!(
        env.call_names(),
        vec![
            "vm-list",
            "vm-param-get",
            "vm-shutdown",
            "vm-param-set",
            // after the failure, the args are read back: they are the old ones
            "vm-param-get",
            "vm-start"
        ]
    );
}

#[test]
fn an_xe_message_ending_in_a_full_stop_reads_as_one_sentence() {
    // XenAPI messages usually end with a full stop; the step's message goes on after it.
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", Some(OLD)), 3, "A", 1);
    env.fault(
        "vm-shutdown",
        Some(&u),
        "Error: The server failed to handle your request, due to an internal error.",
        false,
    );
    env.run_with_input(
        &["set-pool", &format!("--vm-uuid={u}"), "--pool=B"],
        "yes\n",
    )
    .code(1)
    .stderr_has("due to an internal error. Nothing was changed; VM win10 (")
    .one_error_line();
}
