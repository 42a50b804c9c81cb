//! Issue 10, as a table: existing `platform:device-model-args` values × every path that writes
//! the value (register-vm, set-pool, update-vm, adopt, check --fix, the vm-pre-start hook,
//! remove-vm). Each pair runs the built binary against the fake xe on a halted VM, then boots
//! the result the way the site does (python3's `shlex.split`, QEMU's option parsing, the vGPU
//! device's own checks, in `crate::common::qemu`) and checks: exactly one valid vGPU device with the
//! expected values (none after remove-vm), its driver name and every other property kept in
//! order, every word of other owners unchanged (quoted bytes verbatim), the database row, the
//! exit status and message, and the xe writes (at most one, exactly the change, each after the
//! args were read on their own). A value that does not split is refused by every path with
//! nothing changed.
//!
//! One test function per path, each running the whole table; a failure names the case and the
//! path, and every failing pair of a path is reported at once.

use crate::common::qemu::{self, VgpuDevice};
use crate::common::{uuid, vm, Env, Outcome};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// The properties vgpu-admin owns on the vGPU device.
const OWN_KEYS: [&str; 3] = ["pool_id", "priority", "vm_id"];

/// The name-label of the VM in every case.
const NAME: &str = "win10";

/// What `adopt --vm-uuid U` does with a case's value (the values come from the device).
#[derive(Clone, Copy, Debug)]
enum Adopt {
    /// Registered with the device's own values; `rewritten`: the exact args afterwards
    /// (`None`: left byte-identical, no write).
    Adopted {
        vm_id: u32,
        pool: &'static str,
        priority: &'static str,
        level: i64,
        rewritten: Option<&'static str>,
    },
    /// Nothing to adopt: exit 3, "has no vGPU device".
    NoDevice,
    /// Reported and skipped whole: exit 1, with this reason.
    Skipped(&'static str),
}

/// An existing value and what the paths must make of it.
struct Case {
    name: &'static str,
    /// The value (`None`: the key is not set).
    value: Option<&'static str>,
    /// False for a value that python's shlex.split refuses: every path refuses it.
    splits: bool,
    /// The vGPU device an edit keeps: its driver name and its properties other than
    /// pool_id/priority/vm_id, in order, as QEMU reads them. `None`: there is none, and the
    /// tool adds a `vgpu-stub` (the default site driver).
    device: Option<(&'static str, &'static [(&'static str, &'static str)])>,
    /// Bytes of other owners that every result keeps verbatim.
    others_verbatim: &'static [&'static str],
    /// Bytes of the device that every result with the device keeps verbatim.
    device_verbatim: &'static [&'static str],
    adopt: Adopt,
}

/// Adopted as pool B, priority low, vm_id 9, args untouched.
const ADOPTED_B_LOW_9: Adopt = Adopt::Adopted {
    vm_id: 9,
    pool: "B",
    priority: "low",
    level: 0,
    rewritten: None,
};

const CASES: &[Case] = &[
    Case {
        name: "1 none (key not set)",
        value: None,
        splits: true,
        device: None,
        others_verbatim: &[],
        device_verbatim: &[],
        adopt: Adopt::NoDevice,
    },
    Case {
        name: "2 vgpu-stub",
        value: Some("-device vgpu-stub,pool_id=B,priority=low,vm_id=9"),
        splits: true,
        device: Some(("vgpu-stub", &[])),
        others_verbatim: &[],
        device_verbatim: &["-device vgpu-stub,"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "3 vgpu-cuda",
        value: Some("-device vgpu-cuda,pool_id=B,priority=low,vm_id=9"),
        splits: true,
        device: Some(("vgpu-cuda", &[])),
        others_verbatim: &[],
        device_verbatim: &["-device vgpu-cuda,"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "4 driver= form",
        value: Some("-device driver=vgpu-cuda,pool_id=B,priority=low,vm_id=9"),
        splits: true,
        device: Some(("vgpu-cuda", &[])),
        others_verbatim: &[],
        device_verbatim: &["-device driver=vgpu-cuda,"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "5 other owners' properties on the device",
        value: Some(
            "-device vgpu-cuda,addr=5,pool_id=B,id=gpu0,priority=low,vm_id=9,prefer_bar1_htod=on",
        ),
        splits: true,
        device: Some((
            "vgpu-cuda",
            &[("addr", "5"), ("id", "gpu0"), ("prefer_bar1_htod", "on")],
        )),
        others_verbatim: &[],
        device_verbatim: &["-device vgpu-cuda,addr=5,"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "6 two vGPU devices",
        value: Some("-device vgpu-stub,pool_id=B,vm_id=9 -usb -device vgpu-cuda,pool_id=A,vm_id=4"),
        splits: true,
        device: Some(("vgpu-stub", &[])),
        others_verbatim: &["-usb"],
        device_verbatim: &["-device vgpu-stub,"],
        adopt: Adopt::Skipped("2 vGPU devices"),
    },
    Case {
        name: "7 quoted words of other owners",
        value: Some(
            "-smbios \"type=1,product=My  VM\" -device vgpu-stub,pool_id=B,priority=low,vm_id=9 -name 'a  b'",
        ),
        splits: true,
        device: Some(("vgpu-stub", &[])),
        others_verbatim: &["-smbios \"type=1,product=My  VM\"", "-name 'a  b'"],
        device_verbatim: &["-device vgpu-stub,"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "8 ,, escapes",
        value: Some("-device vgpu-cuda,id=a,,b,pool_id=B,romfile=/x,,y.rom,priority=low,vm_id=9"),
        splits: true,
        device: Some(("vgpu-cuda", &[("id", "a,b"), ("romfile", "/x,y.rom")])),
        others_verbatim: &[],
        device_verbatim: &["-device vgpu-cuda,id=a,,b,", "romfile=/x,,y.rom"],
        adopt: ADOPTED_B_LOW_9,
    },
    Case {
        name: "9 legacy digit priority",
        value: Some("-device vgpu-stub,pool_id=B,priority=1,vm_id=9"),
        splits: true,
        device: Some(("vgpu-stub", &[])),
        others_verbatim: &[],
        device_verbatim: &["-device vgpu-stub,"],
        adopt: Adopt::Adopted {
            vm_id: 9,
            pool: "B",
            priority: "medium",
            level: 1,
            rewritten: Some("-device vgpu-stub,pool_id=B,priority=medium,vm_id=9"),
        },
    },
    Case {
        name: "10 other words only",
        value: Some("-usb -m 4G"),
        splits: true,
        device: None,
        others_verbatim: &["-usb -m 4G"],
        device_verbatim: &[],
        adopt: Adopt::NoDevice,
    },
    Case {
        name: "11 unclosed quote",
        value: Some("-device vgpu-stub,pool_id=B,vm_id=9 -smbios \"type=1"),
        splits: false,
        device: None,
        others_verbatim: &[],
        device_verbatim: &[],
        adopt: Adopt::NoDevice, // not used: an unsplittable value is refused by every path
    },
];

/// A path that writes the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    RegisterVm,
    SetPool,
    UpdateVm,
    Adopt,
    CheckFix,
    Hook,
    RemoveVm,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::RegisterVm => "register-vm --vm-uuid U --pool A --priority high --vm-id 7",
            Path::SetPool => "set-pool --vm-uuid U --pool A (registered 7/B/high)",
            Path::UpdateVm => {
                "update-vm --vm-uuid U --pool A --priority high --vm-id 7 (registered 3/B/low)"
            }
            Path::Adopt => "adopt --vm-uuid U",
            Path::CheckFix => "check --fix (registered 7/A/high)",
            Path::Hook => "hook vm-pre-start -vmuuid U -reason none (registered 7/A/high, warn)",
            Path::RemoveVm => "remove-vm --vm-uuid U (registered 7/A/high)",
        })
    }
}

impl Path {
    /// Puts the VM (halted, with `value`) on the fake host, registered as the path needs:
    /// every path but adopt ends at pool A, priority high, vm_id 7.
    fn setup(self, env: &Env, u: &str, value: Option<&str>) {
        let host = vm(u, NAME, "halted", value);
        match self {
            Path::RegisterVm | Path::Adopt => {
                env.host_vm(host);
            }
            Path::SetPool => env.registered(host, 7, "B", 2),
            Path::UpdateVm => env.registered(host, 3, "B", 0),
            Path::CheckFix | Path::RemoveVm => env.registered(host, 7, "A", 2),
            Path::Hook => {
                env.registered(host, 7, "A", 2);
                env.run(&["set-hook-policy", "--policy=warn"]).code(0);
            }
        }
    }

    fn run(self, env: &Env, u: &str) -> Outcome {
        let args: Vec<&str> = match self {
            Path::RegisterVm => vec![
                "--yes",
                "register-vm",
                "--vm-uuid",
                u,
                "--pool",
                "A",
                "--priority",
                "high",
                "--vm-id",
                "7",
            ],
            Path::SetPool => vec!["--yes", "set-pool", "--vm-uuid", u, "--pool", "A"],
            Path::UpdateVm => vec![
                "--yes",
                "update-vm",
                "--vm-uuid",
                u,
                "--pool",
                "A",
                "--priority",
                "high",
                "--vm-id",
                "7",
            ],
            Path::Adopt => vec!["--yes", "adopt", "--vm-uuid", u],
            Path::CheckFix => vec!["check", "--fix"],
            Path::Hook => vec!["hook", "vm-pre-start", "-vmuuid", u, "-reason", "none"],
            Path::RemoveVm => vec!["--yes", "remove-vm", "--vm-uuid", u],
        };
        env.run(&args)
    }
}

/// The row every path but adopt and remove-vm leaves: (vm_id 7, pool A, high, the name).
fn row_a_high_7() -> Option<(i64, String, i64, Option<String>)> {
    Some((7, "A".into(), 2, Some(NAME.into())))
}

/// The device's properties other than pool_id/priority/vm_id, in order.
fn other_props(device: &VgpuDevice) -> Vec<(String, String)> {
    device
        .props
        .iter()
        .filter(|(k, _)| !OWN_KEYS.contains(&k.as_str()))
        .cloned()
        .collect()
}

type Memo<T> = OnceLock<Mutex<HashMap<Option<String>, T>>>;

/// `f(value)`, computed once per value: each `crate::common::qemu` call runs python3, and the same
/// values come back in many pairs.
fn memo<T: Clone>(cache: &Memo<T>, value: Option<&str>, f: fn(Option<&str>) -> T) -> T {
    let key = value.map(str::to_string);
    let cache = cache.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(&key) {
        return hit.clone();
    }
    let result = f(value);
    cache.lock().unwrap().insert(key, result.clone());
    result
}

/// `qemu::one_device`, memoised.
fn one_device(value: Option<&str>) -> Result<VgpuDevice, String> {
    static CACHE: Memo<Result<VgpuDevice, String>> = OnceLock::new();
    memo(&CACHE, value, qemu::one_device)
}

/// `qemu::boot`, memoised.
fn boot(value: Option<&str>) -> Result<Vec<VgpuDevice>, String> {
    static CACHE: Memo<Result<Vec<VgpuDevice>, String>> = OnceLock::new();
    memo(&CACHE, value, qemu::boot)
}

/// `qemu::other_words`, memoised.
fn other_words(value: Option<&str>) -> Vec<String> {
    static CACHE: Memo<Vec<String>> = OnceLock::new();
    memo(&CACHE, value, qemu::other_words)
}

/// The read of a VM's args on their own.
fn read_args_call(u: &str) -> Vec<String> {
    [
        "vm-param-get",
        &format!("uuid={u}"),
        "param-name=platform",
        "param-key=device-model-args",
    ]
    .map(String::from)
    .to_vec()
}

/// The xe writes a run made are exactly the change from `before` to `after` (none when equal,
/// unless the run `registers` the VM, which writes its pool record with its args; a
/// vm-param-remove when the key went, else one vm-param-set of the new value, with the signed
/// pool record of a registered VM), each after a vm-param-get of the same VM's args.
fn check_writes(env: &Env, u: &str, before: Option<&str>, after: Option<&str>, registers: bool) {
    let calls = env.calls();
    let writes: Vec<(usize, Vec<String>)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c[0] == "vm-param-set" || c[0] == "vm-param-remove")
        .map(|(i, c)| (i, c.clone()))
        .collect();
    let expected: Vec<Vec<String>> = match after {
        // Registering (adopt) gives the VM its pool record: written with its args, unchanged.
        Some(value) if after == before && registers => vec![env.set_call(u, value)],
        _ if after == before => vec![],
        None => vec![[
            "vm-param-remove",
            &format!("uuid={u}"),
            "param-name=platform",
            "param-key=device-model-args",
        ]
        .map(String::from)
        .to_vec()],
        // A registered VM's args come with its signed pool record.
        Some(value) if env.row(u).is_some() => vec![env.set_call(u, value)],
        Some(value) => vec![[
            "vm-param-set",
            &format!("uuid={u}"),
            &format!("platform:device-model-args={value}"),
        ]
        .map(String::from)
        .to_vec()],
    };
    assert_eq!(
        writes.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        expected,
        "xe writes (all calls: {calls:?})"
    );
    for (i, write) in &writes {
        assert!(
            calls[..*i].contains(&read_args_call(u)),
            "{write:?} was not preceded by a vm-param-get of the VM's device-model-args: {calls:?}"
        );
    }
}

/// The result has exactly one valid vGPU device with (pool, priority, vm_id), the case's
/// driver and other properties, and every word of other owners unchanged.
fn check_device(case: &Case, after: Option<&str>, pool: &str, priority: &str, vm_id: u32) {
    let device = one_device(after)
        .unwrap_or_else(|e| panic!("the boot does not get one valid vGPU device ({e}): {after:?}"));
    assert_eq!(
        (device.pool.as_str(), device.priority.as_str(), device.vm_id),
        (pool, priority, vm_id),
        "the device's values in {after:?}"
    );
    let (driver, props) = case.device.unwrap_or(("vgpu-stub", &[]));
    assert_eq!(device.driver, driver, "the driver name in {after:?}");
    let props: Vec<(String, String)> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        other_props(&device),
        props,
        "the device's other properties, in order, in {after:?}"
    );
    let raw = after.unwrap_or_default();
    for bytes in case.device_verbatim {
        assert!(raw.contains(bytes), "{bytes:?} is not kept in {raw:?}");
    }
    check_other_words(case, after);
}

/// Every word of other owners is as before, as the VM gets it and byte for byte where quoted.
fn check_other_words(case: &Case, after: Option<&str>) {
    assert_eq!(
        other_words(after),
        other_words(case.value),
        "the words of other owners in {after:?}"
    );
    let raw = after.unwrap_or_default();
    for bytes in case.others_verbatim {
        assert!(raw.contains(bytes), "{bytes:?} is not kept in {raw:?}");
    }
}

/// The table itself is right: where the value boots, its first device has the driver and
/// other properties the case names.
fn check_table(case: &Case) {
    if let Ok(devices) = boot(case.value) {
        match (devices.first(), case.device) {
            (None, None) => {}
            (Some(first), Some((driver, props))) => {
                assert_eq!(first.driver, driver, "table: driver");
                let props: Vec<(String, String)> = props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(other_props(first), props, "table: other properties");
            }
            (first, device) => panic!("table: boot finds {first:?}, the case says {device:?}"),
        }
    }
}

/// One (value, path) pair.
fn check_pair(case: &Case, path: Path) {
    check_table(case);
    let env = Env::new();
    let u = uuid(1);
    path.setup(&env, &u, case.value);
    let row_before = env.row(&u);
    env.clear_calls();
    let out = path.run(&env, &u);
    let after = env.args(&u);
    assert_eq!(env.power(&u), "halted", "a halted VM stays halted");
    let registers = row_before.is_none() && env.row(&u).is_some();
    check_writes(&env, &u, case.value, after.as_deref(), registers);

    if !case.splits {
        check_refused(&env, &u, path, &out, case, row_before, after.as_deref());
        return;
    }
    match path {
        Path::Adopt => check_adopt(&env, &u, &out, case, after.as_deref()),
        Path::RemoveVm => {
            out.code(0).quiet();
            assert_eq!(env.row(&u), None, "the row is deleted");
            assert_eq!(boot(after.as_deref()), Ok(vec![]), "no vGPU device is left");
            check_other_words(case, after.as_deref());
            if other_words(case.value).is_empty() {
                assert_eq!(after, None, "nothing else was left: the key is removed");
            }
        }
        _ => {
            match path {
                Path::Hook => {
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
                }
                Path::CheckFix => {
                    out.code(0)
                        .quiet()
                        .stdout_has(&format!("fixed:    {NAME} ({u})"))
                        .stdout_has("0 in sync, 1 fixed, 0 differ");
                }
                _ => {
                    out.code(0).quiet();
                }
            }
            assert_eq!(env.row(&u), row_a_high_7(), "the database row");
            check_device(case, after.as_deref(), "A", "high", 7);
        }
    }
}

/// adopt: the values come from the device.
fn check_adopt(env: &Env, u: &str, out: &Outcome, case: &Case, after: Option<&str>) {
    match case.adopt {
        Adopt::Adopted {
            vm_id,
            pool,
            priority,
            level,
            rewritten,
        } => {
            out.code(0)
                .quiet()
                .stdout_has(&format!(
                    "adopted: {NAME} ({u}): pool {pool}, priority {priority}, vm_id {vm_id}"
                ))
                .stdout_has("1 adopted, 0 skipped");
            assert_eq!(
                env.row(u),
                Some((i64::from(vm_id), pool.to_string(), level, Some(NAME.into()))),
                "the database row"
            );
            assert_eq!(after, rewritten.or(case.value), "the args after adopt");
            check_device(case, after, pool, priority, vm_id);
        }
        Adopt::NoDevice => {
            out.code(3)
                .one_error_line()
                .stderr_has("has no vGPU device");
            assert_eq!(env.row(u), None, "nothing is registered");
            assert_eq!(after, case.value, "the args are untouched");
        }
        Adopt::Skipped(reason) => {
            out.code(5)
                .stdout_has(&format!("skipped: {NAME} ({u}): {reason}"))
                .stdout_has("0 adopted, 1 skipped");
            assert_eq!(env.row(u), None, "nothing is registered");
            assert_eq!(after, case.value, "the args are untouched");
        }
    }
}

/// A value that does not split: refused with one clear line, nothing changed, no write.
fn check_refused(
    env: &Env,
    u: &str,
    path: Path,
    out: &Outcome,
    case: &Case,
    row_before: Option<(i64, String, i64, Option<String>)>,
    after: Option<&str>,
) {
    assert_eq!(after, case.value, "the args are byte-identical");
    assert_eq!(env.row(u), row_before, "the database row is unchanged");
    assert!(
        !env.call_names()
            .iter()
            .any(|c| c == "vm-param-set" || c == "vm-param-remove"),
        "no write: {:?}",
        env.call_names()
    );
    match path {
        Path::Hook => {
            out.code(1);
            assert_eq!(
                out.stdout().lines().count(),
                1,
                "one line: {}",
                out.stdout()
            );
            assert!(
                out.stdout().contains("cannot be corrected automatically")
                    && out.stdout().contains("cannot be split"),
                "{}",
                out.stdout()
            );
        }
        Path::CheckFix => {
            out.code(5).quiet();
            let lines: Vec<&str> = out.stdout().lines().filter(|l| l.contains(u)).collect();
            assert_eq!(lines.len(), 1, "one line about the VM: {}", out.stdout());
            assert!(
                lines[0].starts_with("differs:")
                    && lines[0].contains("not fixed")
                    && lines[0].contains("cannot be split"),
                "{}",
                out.stdout()
            );
            out.stdout_has("0 fixed, 1 differ");
        }
        _ => {
            out.code(1).one_error_line().stderr_has("cannot be split");
        }
    }
}

/// Runs every case on `path` and reports every failing pair, naming the case and the path.
fn table(path: Path) {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            std::panic::catch_unwind(|| check_pair(case, path))
                .err()
                .map(|panic| {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!(
                        "case {:?} (value {:?}) × path `{path}`:\n{why}",
                        case.name, case.value
                    )
                })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail on `{path}`:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn issue_10_register_vm_keeps_one_valid_device_and_every_other_word() {
    table(Path::RegisterVm);
}

#[test]
fn issue_10_set_pool_keeps_one_valid_device_and_every_other_word() {
    table(Path::SetPool);
}

#[test]
fn issue_10_update_vm_keeps_one_valid_device_and_every_other_word() {
    table(Path::UpdateVm);
}

#[test]
fn issue_10_adopt_takes_the_devices_values_and_keeps_every_other_word() {
    table(Path::Adopt);
}

#[test]
fn issue_10_check_fix_keeps_one_valid_device_and_every_other_word() {
    table(Path::CheckFix);
}

#[test]
fn issue_10_hook_repair_keeps_one_valid_device_and_every_other_word() {
    table(Path::Hook);
}

#[test]
fn issue_10_remove_vm_leaves_no_device_and_every_other_word() {
    table(Path::RemoveVm);
}
