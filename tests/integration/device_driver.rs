//! The vGPU driver name as the site has it (issue 10): the `device_driver` setting, shown by
//! `status`, set with `set-device-driver` (or detected from the host's QEMU by `--detect` and
//! `install`), used only for a device the tool adds; `doctor` compares it with the host.
//! The host's QEMU is a stand-in script that answers `-device help` as QEMU does.

use crate::common::{uuid, vm, Env};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes a stand-in QEMU at `path` whose `-device help` lists `drivers` (among others).
fn fake_qemu(path: &Path, drivers: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut listed = String::from("name \"pci-testdev\", bus PCI, desc \"PCI Test Device\"\\n");
    for d in drivers {
        listed.push_str(&format!("name \"{d}\", bus PCI, desc \"vGPU\"\\n"));
    }
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"-device help\" ] || {{ echo \"unexpected: $*\" >&2; exit 1; }}\n\
             printf 'Misc devices:\\n{listed}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn qemu_in(env: &Env, drivers: &[&str]) -> PathBuf {
    let path = env.dir.path().join("qemu/qemu-system-i386");
    fake_qemu(&path, drivers);
    path
}

fn setting(env: &Env) -> Option<String> {
    use rusqlite::OptionalExtension;
    env.sql()
        .query_row(
            "SELECT value FROM settings WHERE key = 'device_driver'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
}

#[test]
fn issue_10_the_driver_names_only_devices_the_tool_adds() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    // (No xe here: the host part of status is not read, hence 5.)
    env.run(&["status"]).code(5).stdout_has(
        "Device driver: vgpu-stub (default; not chosen for this site: see set-device-driver)",
    );
    env.run(&["set-device-driver", "--driver=VGPU-CUDA"])
        .code(0)
        .stdout_is("Device driver: vgpu-cuda\n");
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));
    env.run(&["status"])
        .code(5)
        .stdout_has("Device driver: vgpu-cuda\n");
    let json = env.run(&["--json", "status"]).code(5).json();
    assert_eq!(json["device_driver"]["name"], "vgpu-cuda");
    assert_eq!(json["device_driver"]["chosen"], true);

    // A VM without a device gets the site's driver; one with a device keeps its own name.
    let (fresh, old) = (uuid(1), uuid(2));
    env.host_vm(vm(&fresh, "fresh", "halted", Some("-usb")));
    env.registered(
        vm(
            &old,
            "old",
            "halted",
            Some("-device vgpu-stub,addr=5,pool_id=A,priority=low,vm_id=2"),
        ),
        2,
        "A",
        0,
    );
    env.run(&["register-vm", "--vm-uuid", &fresh, "--vm-id=1"])
        .code(0);
    assert_eq!(
        env.args(&fresh).as_deref(),
        Some("-usb -device vgpu-cuda,pool_id=A,priority=medium,vm_id=1")
    );
    env.run(&["set-pool", "--vm-uuid", &old, "--pool=B"])
        .code(0);
    assert_eq!(
        env.args(&old).as_deref(),
        Some("-device vgpu-stub,addr=5,pool_id=B,priority=low,vm_id=2")
    );
    assert_eq!(
        crate::common::qemu::one_device(env.args(&old).as_deref())
            .unwrap()
            .driver,
        "vgpu-stub"
    );
}

#[test]
fn issue_10_bad_driver_values_change_nothing() {
    let env = Env::new();
    env.run(&["set-device-driver", "--driver=vgpu-cuda"])
        .code(0);
    let before = env.db_bytes();
    env.run(&["set-device-driver", "--driver=nvidia"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid value 'nvidia' for --driver: expected one of vgpu-stub, vgpu-cuda");
    env.run(&["set-device-driver"])
        .code(2)
        .one_error_line()
        .stderr_has(
            "required arguments were not provided: <--driver <vgpu-stub|vgpu-cuda>|--detect>",
        );
    env.run(&["set-device-driver", "--detect", "--qemu=qemu-system-i386"])
        .code(2)
        .one_error_line()
        .stderr_has("expected an absolute path");
    env.run(&[
        "set-device-driver",
        "--driver=vgpu-stub",
        "--qemu=/usr/bin/qemu",
    ])
    .code(2)
    .one_error_line()
    .stderr_has("--qemu goes with --detect");
    assert_eq!(env.db_bytes(), before);
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));
}

#[test]
fn issue_10_detect_asks_the_hosts_qemu() {
    let env = Env::new();
    let qemu = qemu_in(&env, &["vgpu-cuda"]);
    let q = format!("--qemu={}", qemu.display());
    env.run(&["set-device-driver", "--detect", &q])
        .code(0)
        .stdout_is("This host's QEMU has vgpu-cuda.\nDevice driver: vgpu-cuda\n");
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));

    // A QEMU without the device, or one that cannot run: refused, setting kept.
    fake_qemu(&qemu, &[]);
    env.run(&["set-device-driver", "--detect", &q])
        .code(1)
        .one_error_line()
        .stderr_has("this host's QEMU has no vGPU driver; choose one with --driver");
    let missing = format!("--qemu={}", env.dir.path().join("nowhere/qemu").display());
    env.run(&["set-device-driver", "--detect", &missing])
        .code(1)
        .one_error_line()
        .stderr_has("cannot ask");
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));
}

#[test]
fn issue_10_install_detects_the_driver_once_and_then_only_warns() {
    let mut env = Env::new();
    let root = env.dir.path().join("root");
    env.db = root.join("etc/vgpu/vgpu_config.db");
    let qemu = root.join("usr/lib64/xen/bin/qemu-system-i386");
    let r = root.to_str().unwrap().to_string();

    // No QEMU there: the default is kept, and said.
    env.run(&["install", "--root", &r])
        .code(0)
        .stdout_has("device driver: vgpu-stub (default; cannot ask");
    assert_eq!(setting(&env), None);

    fake_qemu(&qemu, &["vgpu-cuda"]);
    env.run(&["install", "--root", &r])
        .code(0)
        .stdout_has(&format!(
            "device driver: vgpu-cuda (found in {}; saved as the site's driver)",
            qemu.display()
        ));
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));
    env.run(&["install", "--root", &r])
        .code(0)
        .stdout_has(&format!(
            "device driver: vgpu-cuda (site setting; {} has it)",
            qemu.display()
        ));

    // The admin's choice is never overridden: a QEMU that disagrees gets a warning.
    fake_qemu(&qemu, &["vgpu-stub"]);
    env.run(&["install", "--root", &r]).code(0).stdout_has(&format!(
        "warning: the site's device driver is vgpu-cuda, but {} has only vgpu-stub: run 'vgpu-admin set-device-driver --detect'",
        qemu.display()
    ));
    assert_eq!(setting(&env).as_deref(), Some("vgpu-cuda"));
}

#[test]
fn issue_10_doctor_compares_the_site_with_the_host() {
    let env = Env::new();
    env.run(&["doctor"])
        .code(5)
        .stdout_has("attend: no database at ");
    env.run(&["init"]).code(0);
    let qemu = qemu_in(&env, &["vgpu-cuda"]);
    let q = format!("--qemu={}", qemu.display());
    env.host_vm(vm(&uuid(1), "plain", "halted", Some("-usb")));
    env.host_vm(vm(
        &uuid(2),
        "cuda",
        "halted",
        Some("-device vgpu-cuda,pool_id=A,priority=low,vm_id=2"),
    ));
    // The site still has the default: QEMU disagrees.
    env.run(&["doctor", &q])
        .code(5)
        .stdout_has("attend: this host's QEMU has vgpu-cuda, the site's driver is vgpu-stub (the default; not chosen for this site): run 'vgpu-admin set-device-driver --detect'")
        .stdout_has(&format!(
            "attend: VM cuda ({}): its device names vgpu-cuda, not the site's vgpu-stub",
            uuid(2)
        ))
        .stdout_has("ok:     xe lists 2 VMs");
    env.run(&["set-device-driver", "--detect", &q]).code(0);
    env.run(&["doctor", &q])
        .code(0)
        .stdout_has("ok:     this host's QEMU has vgpu-cuda, the site's driver\n")
        .stdout_has("All is well.");
    let json = env.run(&["--json", "doctor", &q]).code(0).json();
    assert_eq!(json["device_driver"], "vgpu-cuda");
    assert_eq!(json["problems"], 0);

    // A VM whose device names the other driver would not start here.
    env.host_vm(vm(
        &uuid(3),
        "stub",
        "halted",
        Some("-device driver=vgpu-stub,vm_id=3"),
    ));
    env.run(&["doctor", &q]).code(5).stdout_has(&format!(
        "attend: VM stub ({}): its device names vgpu-stub, not the site's vgpu-cuda",
        uuid(3)
    ));
}
