//! The vm-pre-start hook, run the way xenopsd runs it: through the wrapper `install` wrote into
//! a temporary root, with `-vmuuid U -reason none`, against the fake xe. Plus install/uninstall,
//! the earlier tool's vgpu-vm-startup.sh, and set-hook-policy.

use crate::common::{fake_xe, uuid, Env, HostVm, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;

const GOOD: &str = "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=7";

/// An environment whose database lives in an installed root.
struct Installed {
    env: Env,
    root: PathBuf,
}

impl Installed {
    fn new() -> Installed {
        let mut env = Env::new();
        let root = env.dir.path().join("root");
        env.db = root.join("etc/vgpu/vgpu_config.db");
        let out = env.run(&["install", "--relocated", "--root", root.to_str().unwrap()]);
        out.code(0);
        Installed { env, root }
    }

    fn wrapper(&self) -> PathBuf {
        self.root.join("etc/xapi.d/vm-pre-start/50-vgpu-admin")
    }

    /// Runs `program` (the wrapper, or the startup script) as xenopsd would, with the fake xe.
    fn exec(&self, program: &Path, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("VGPU_XE", fake_xe())
            .env("FAKE_XE_STATE", &self.env.xe_state)
            .env("FAKE_XE_LOG", &self.env.xe_log);
        Outcome::of(cmd, None)
    }

    fn hook(&self, uuid: &str) -> Outcome {
        self.exec(&self.wrapper(), &["-vmuuid", uuid, "-reason", "none"])
    }

    fn policy(&self, policy: &str) {
        self.env
            .run(&["set-hook-policy", &format!("--policy={policy}")])
            .code(0);
    }
}

fn registered(args: Option<&str>) -> (Installed, String) {
    let inst = Installed::new();
    let u = uuid(1);
    inst.env.host_vm(HostVm {
        uuid: &u,
        name: "win10",
        power: "halted",
        args,
    });
    inst.env.seed(&[(7, &u, Some("win10"), "A", 2)]);
    inst.env.clear_calls();
    (inst, u)
}

#[test]
fn unregistered_vm_exit_0_silently_without_xe() {
    let inst = Installed::new();
    let u = uuid(1);
    inst.env.host_vm(HostVm {
        uuid: &u,
        name: "other",
        power: "halted",
        args: Some("-usb"),
    });
    inst.hook(&u).code(0).stdout_is("");
    assert!(inst.env.calls().is_empty());
}

#[test]
fn no_database_exit_0_silently_and_creates_none() {
    let inst = Installed::new();
    std::fs::remove_file(&inst.env.db).unwrap();
    inst.env.host_vm(HostVm {
        uuid: &uuid(1),
        name: "x",
        power: "halted",
        args: None,
    });
    inst.hook(&uuid(1)).code(0).stdout_is("");
    assert!(!inst.env.db.exists());
    assert!(inst.env.calls().is_empty());
}

#[test]
fn in_sync_vm_exit_0_after_exactly_one_xe_call() {
    let (inst, u) = registered(Some(GOOD));
    inst.hook(&u).code(0).stdout_is("");
    assert_eq!(inst.env.call_names(), vec!["vm-param-get"]);
    assert_eq!(inst.env.args(&u).as_deref(), Some(GOOD));
}

#[test]
fn drift_under_warn_is_corrected_for_the_next_boot_and_logged_with_exit_1() {
    let (inst, u) = registered(Some("-usb -device vgpu-stub,pool_id=B,priority=1,vm_id=7"));
    // xenopsd's argument order varies; the hook accepts any.
    let out = inst.exec(&inst.wrapper(), &["-reason", "none", "-vmuuid", &u]);
    out.code(1);
    assert_eq!(
        out.stdout().lines().count(),
        1,
        "one line: {}",
        out.stdout()
    );
    assert!(
        out.stdout().contains("corrected the vGPU config"),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().contains("applies from the VM's next boot"),
        "{}",
        out.stdout()
    );
    assert_eq!(inst.env.args(&u).as_deref(), Some(GOOD));
    assert_eq!(inst.env.call_names(), vec!["vm-param-get", "vm-param-set"]);
    // The next start boots with the corrected args.
    let start = Command::new(fake_xe())
        .args(["vm-start", &format!("uuid={u}")])
        .env("FAKE_XE_STATE", &inst.env.xe_state)
        .status()
        .unwrap();
    assert!(start.success());
    assert_eq!(inst.env.boots(&u), vec![Some(GOOD.to_string())]);
    // And the hook at that start finds it in sync.
    inst.env.clear_calls();
    inst.hook(&u).code(0).stdout_is("");
}

#[test]
fn missing_args_are_written_too() {
    let (inst, u) = registered(None);
    inst.hook(&u).code(1);
    assert_eq!(
        inst.env.args(&u).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7")
    );
}

#[test]
fn drift_under_enforce_is_corrected_and_stops_the_start_with_exit_2() {
    let (inst, u) = registered(Some(
        "-usb -device vgpu-stub,pool_id=A,priority=high,vm_id=8",
    ));
    inst.policy("enforce");
    let out = inst.hook(&u);
    out.code(2);
    assert_eq!(out.stdout().lines().count(), 1);
    assert!(
        out.stdout().contains("VM start stopped") && out.stdout().contains("start the VM again"),
        "{}",
        out.stdout()
    );
    assert_eq!(inst.env.args(&u).as_deref(), Some(GOOD));
    inst.hook(&u).code(0).stdout_is("");
}

#[test]
fn internal_failures_log_one_line_and_block_only_under_enforce() {
    let (inst, u) = registered(Some(GOOD));
    inst.env
        .fault("vm-param-get", None, "Error: injected xapi failure", false);
    let out = inst.hook(&u);
    out.code(1);
    assert_eq!(out.stdout().lines().count(), 1);
    assert!(
        out.stdout().contains(
            "hook vm-pre-start failed: xe vm-param-get failed: Error: injected xapi failure"
        ),
        "{}",
        out.stdout()
    );
    inst.policy("enforce");
    inst.hook(&u).code(2).stdout_has("injected xapi failure");

    // A bad uuid from the caller, and an unreadable database.
    inst.exec(&inst.wrapper(), &["-vmuuid", "garbage", "-reason", "none"])
        .code(2)
        .stdout_has("invalid VM uuid 'garbage'");
    std::fs::write(&inst.env.db, "not a database at all, just text".repeat(100)).unwrap();
    let out = inst.hook(&u);
    out.code(1);
    assert_eq!(out.stdout().lines().count(), 1);
    assert!(
        out.stdout().contains("cannot read the database"),
        "{}",
        out.stdout()
    );
}

#[test]
fn a_broken_or_runaway_hook_override_never_blocks_a_start_under_warn() {
    let (inst, u) = registered(Some(GOOD));
    let hooks = inst.root.join("etc/vgpu/scripts/hooks");
    std::fs::write(hooks.join("vm-pre-start.rhai"), "throw \"site bug\";\n").unwrap();
    let out = inst.hook(&u);
    out.code(1);
    assert_eq!(out.stdout().lines().count(), 1);
    assert!(out.stdout().contains("site bug"), "{}", out.stdout());

    std::fs::write(hooks.join("vm-pre-start.rhai"), "loop { }\n").unwrap();
    inst.hook(&u).code(1).stdout_has("script stopped");
}

#[test]
fn a_hook_that_hangs_is_stopped_by_the_wall_clock_limit() {
    let (inst, u) = registered(Some(GOOD));
    inst.env
        .run(&["set-hook-policy", "--policy=warn", "--time-limit=2"])
        .code(0)
        .stdout_has("Hook time limit: 2 s");
    let hooks = inst.root.join("etc/vgpu/scripts/hooks");
    // Each xe call takes 700 ms: the loop never hits the operation limit.
    std::fs::write(hooks.join("vm-pre-start.rhai"), "loop { xe::vms(); }\n").unwrap();
    let mut cmd = Command::new(inst.wrapper());
    cmd.args(["-vmuuid", &u, "-reason", "none"])
        .env("VGPU_XE", fake_xe())
        .env("FAKE_XE_STATE", &inst.env.xe_state)
        .env("FAKE_XE_DELAY_MS", "700");
    let start = std::time::Instant::now();
    let out = Outcome::of(cmd, None);
    out.code(1)
        .stdout_has("stopped after its time limit of 2 s");
    assert!(start.elapsed().as_secs() < 10);
}

#[test]
fn the_earlier_tools_startup_script_runs_the_same_check() {
    let (inst, u) = registered(Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=1"));
    let script = inst.root.join("etc/vgpu/vgpu-vm-startup.sh");
    inst.exec(&script, &[&u])
        .code(1)
        .stdout_has("corrected the vGPU config");
    assert_eq!(
        inst.env.args(&u).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7")
    );
    inst.exec(&script, &[]).code(1).stderr_has("Usage:");
}

#[test]
fn install_is_idempotent_and_uninstall_keeps_the_database() {
    let inst = Installed::new();
    let root = inst.root.to_str().unwrap().to_string();
    inst.env.seed(&[(1, &uuid(1), None, "A", 1)]);
    let again = inst.env.run(&["install", "--relocated", "--root", &root]);
    again.code(0);
    for line in again.stdout().lines() {
        assert!(
            line.starts_with("unchanged ")
                || line.starts_with("kept ")
                || line.starts_with("device driver: vgpu-stub (default; cannot ask "),
            "{line}"
        );
    }
    assert!(again.stdout().contains(&format!(
        "(schema version {}, 1 VMs)",
        vgpu_admin::store::latest_version()
    )));
    let wrapper = std::fs::read_to_string(inst.wrapper()).unwrap();
    assert!(wrapper.starts_with("#!/bin/sh\n"));
    assert!(wrapper.contains(&format!(
        "exec '{root}/usr/local/bin/vgpu-admin' --db '{root}/etc/vgpu/vgpu_config.db'"
    )));
    assert!(wrapper.ends_with("hook vm-pre-start \"$@\"\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(inst.wrapper())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(inst.root.join("etc/vgpu/vgpu-admin")).unwrap(),
        PathBuf::from("../../usr/local/bin/vgpu-admin")
    );

    inst.env
        .run(&["uninstall", "--root", &root])
        .code(0)
        .stdout_has("kept ");
    assert!(!inst.wrapper().exists());
    assert!(!inst.root.join("usr/local/bin/vgpu-admin").exists());
    assert!(inst.env.db.exists());
    assert_eq!(inst.env.vm_count(), 1);
    inst.env
        .run(&["uninstall", "--root", &root, "--purge"])
        .code(0)
        .stdout_has("absent ");
    assert!(!inst.env.db.exists());
}

#[test]
fn install_over_the_earlier_tools_layout_keeps_its_binary_aside() {
    let env = Env::new();
    let root = env.dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/vgpu")).unwrap();
    std::fs::write(root.join("etc/vgpu/vgpu-admin"), "old C binary").unwrap();
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/vgpu/vgpu-admin",
        root.join("usr/local/bin/vgpu-admin"),
    )
    .unwrap();
    env.run(&["install", "--root", root.to_str().unwrap()])
        .code(0)
        .stdout_has("moved ");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vgpu/vgpu-admin.earlier-tool")).unwrap(),
        "old C binary"
    );
    let installed = root.join("usr/local/bin/vgpu-admin");
    assert!(!std::fs::symlink_metadata(&installed)
        .unwrap()
        .file_type()
        .is_symlink());
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("vgpu-admin "));
}

#[test]
fn set_hook_policy_validates_and_status_shows_it() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let before = env.db_bytes();
    env.run(&["set-hook-policy", "--policy=loud"])
        .code(2)
        .one_error_line();
    env.run(&["set-hook-policy", "--policy=warn", "--time-limit=0"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid value '0' for --time-limit: expected a whole number from 1 to 300");
    assert_eq!(env.db_bytes(), before);
    env.run(&["set-hook-policy", "--policy", "ENFORCE"])
        .code(0)
        .stdout_is("Hook policy: enforce\n");
    env.run(&["status"])
        .code(5) // no host here
        .stdout_has("Hook policy: enforce (time limit 10 s)");
    assert_eq!(
        env.run(&["--json", "status"]).code(5).json()["hook"]["policy"],
        "enforce"
    );
}
