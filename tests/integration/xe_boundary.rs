//! The xe boundary: a missing xe, xe's errors quoted, newlines refused before any call, the
//! timeout, names that need no escaping because no shell is involved, the fake's own formats,
//! and concurrent registrations.

use crate::common::{fake_xe, uuid, vm, Env, HostVm};
use std::process::Command;

#[test]
fn a_missing_xe_is_its_own_clear_error() {
    let env = Env::new();
    env.run(&["scan-vms"])
        .code(1)
        .one_error_line()
        .stderr_has("the xe command was not found")
        .stderr_has("is this an XCP-ng host?");
}

#[test]
fn xe_errors_are_quoted_by_their_first_line() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "web", "running", None));
    let script = env.file("start.rhai", &format!("xe::start(\"{u}\");"));
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .one_error_line()
        .stderr_has("error: xe vm-start failed: You attempted an operation on a VM that was not in an appropriate power state");
    let script = env.file(
        "get.rhai",
        &format!("xe::device_model_args(\"{}\");", uuid(9)),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .stderr_has("xe vm-param-get failed: The uuid you supplied was invalid.");
    let script = env.file(
        "unset.rhai",
        &format!("print(xe::device_model_args(\"{u}\") == ());"),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(0)
        .stdout_is("true\n");
}

#[test]
fn values_with_newlines_never_reach_xe() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "web", "halted", None));
    let script = env.file(
        "nl.rhai",
        &format!("xe::set_device_model_args(\"{u}\", \"-usb\\n-device evil\");"),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .one_error_line()
        .stderr_has("refusing to pass a value with a newline to xe");
    assert!(env.calls().is_empty());
}

#[test]
fn a_hanging_xe_is_stopped_at_the_timeout() {
    let env = Env::new();
    env.host_vm(vm(&uuid(1), "web", "halted", None));
    let mut cmd = env.command(["--xe-timeout=1", "scan-vms"]);
    cmd.env("FAKE_XE_DELAY_MS", "5000");
    let start = std::time::Instant::now();
    let out = crate::common::Outcome::of(cmd, None);
    out.code(1)
        .stderr_has("xe vm-list did not finish within 1 s and was stopped");
    assert!(
        start.elapsed().as_secs() < 5,
        "the child was killed, not waited for"
    );
}

#[test]
fn names_with_shell_metacharacters_round_trip_and_run_nothing() {
    let env = Env::new();
    let names = [
        "comma, name",
        "quote \" and ' both",
        "ünïcödé ☃",
        "$(touch MARKER)",
        "; rm -rf MARKER2; touch MARKER",
        "`touch MARKER`",
        "key: value; other: thing",
        "  spaced  ",
    ];
    for (i, name) in names.iter().enumerate() {
        env.host_vm(vm(&uuid(i as u32 + 1), name, "halted", None));
    }
    let script = env.file("names.rhai", "for vm in xe::vms() { print(vm.name); }");
    let mut cmd = env.command(["run", script.to_str().unwrap()]);
    cmd.current_dir(env.dir.path());
    let out = crate::common::Outcome::of(cmd, None);
    out.code(0);
    let printed: Vec<&str> = out.stdout().lines().collect();
    // xe prints the value after ": " as it is; trailing spaces of a name survive.
    assert_eq!(printed, names.to_vec());
    for (i, name) in names.iter().enumerate() {
        let u = uuid(i as u32 + 1);
        let mut cmd = env.command(["register-vm", &format!("--vm-name={name}")]);
        cmd.current_dir(env.dir.path());
        crate::common::Outcome::of(cmd, None).code(0);
        assert_eq!(env.row(&u).unwrap().3.as_deref(), Some(*name));
    }
    assert!(!env.dir.path().join("MARKER").exists());
    env.run(&["list-vms"])
        .code(0)
        .stdout_has("  Name: $(touch MARKER)\n");
}

#[test]
fn the_control_domain_is_never_listed() {
    let env = Env::new();
    env.host_vm(vm(&uuid(1), "web", "halted", None));
    let script = env.file("count.rhai", "print(xe::vms().len());");
    env.run(&["run", script.to_str().unwrap()])
        .code(0)
        .stdout_is("1\n");
    assert!(env.calls()[0].contains(&"is-control-domain=false".to_string()));
}

fn fake(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(fake_xe())
        .args(args)
        .env("FAKE_XE_STATE", &env.xe_state)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_fake_xe_speaks_the_documented_formats() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(HostVm {
        uuid: &u,
        name: "a,b\\c",
        power: "halted",
        args: Some("-usb"),
    });
    let (code, out, _) = fake(
        &env,
        &[
            "vm-list",
            &format!("uuid={u}"),
            "params=platform,name-label,uuid",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        // W = 4 + the longest key ("name-label ( RW)", 16 characters) = 20.
        format!("uuid ( RO)          : {u}\n    name-label ( RW): a,b\\c\n      platform (MRW): device-model-args: -usb; timeoffset: 0\n\n\n")
    );
    let (_, out, _) = fake(
        &env,
        &[
            "vm-list",
            "params=name-label,uuid",
            "is-control-domain=false",
            "--minimal",
        ],
    );
    assert_eq!(out, format!("{u}\n"));
    let (_, out, _) = fake(
        &env,
        &[
            "vm-list",
            "params=name-label",
            "is-control-domain=false",
            "--minimal",
        ],
    );
    assert_eq!(out, "a\\,b\\\\c\n");
    let (_, out, _) = fake(&env, &["vm-list", "name-label=nobody"]);
    assert_eq!(out, "");
    let (code, _, err) = fake(&env, &["vm-list", "colour=red"]);
    assert_eq!((code, err.as_str()), (1, "Error: Unknown field 'colour'\n"));
    let (code, _, err) = fake(
        &env,
        &[
            "vm-param-remove",
            &format!("uuid={u}"),
            "param-name=platform",
            "param-key=nope",
        ],
    );
    assert_eq!((code, err.as_str()), (1, "Error: Key nope is not in map\n"));
    let (code, _, err) = fake(
        &env,
        &[
            "vm-param-get",
            &format!("uuid={u}"),
            "param-name=platform",
            "param-key=nope",
        ],
    );
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: Key nope not found in map\n")
    );
    let (code, _, err) = fake(&env, &["vm-shutdown", &format!("uuid={u}")]);
    assert_eq!(code, 1);
    assert!(
        err.ends_with(&format!(
            "vm: {u} (a,b\\c)\nexpected: running\nactual: halted\n"
        )),
        "{err}"
    );
    let (code, _, err) = fake(&env, &["vm-frobnicate"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Unknown command: vm-frobnicate\nFor usage run: 'xe help'\n"
        )
    );
    let (code, _, err) = fake(&env, &["vm-start", &format!("uuid={}", uuid(9))]);
    assert_eq!((code, err.as_str()), (1, "Error: No matching VMs found\n"));
}

#[test]
fn concurrent_registrations_without_a_vm_id_get_different_ids() {
    let env = Env::new();
    for i in 1..=6 {
        env.host_vm(vm(&uuid(i), &format!("vm{i}"), "halted", None));
    }
    env.run(&["init"]).code(0);
    let children: Vec<_> = (1..=6)
        .map(|i| {
            let mut cmd = env.command(["register-vm", &format!("--vm-uuid={}", uuid(i))]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ids: Vec<i64> = (1..=6).map(|i| env.row(&uuid(i)).unwrap().0).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
    for i in 1..=6 {
        let id = env.row(&uuid(i)).unwrap().0;
        assert_eq!(
            env.args(&uuid(i)),
            Some(format!(
                "-device vgpu-stub,pool_id=A,priority=medium,vm_id={id}"
            )),
            "args and database agree"
        );
    }
}
