//! Issue 14, the audit trail: every change to a VM's configuration writes one history row in the
//! same transaction (command, VM, configuration before and after, outcome, user, host); a failed
//! change records its failure; the startup hook's repair is recorded; `history` shows them.

use crate::common::{uuid, vm, Env, Outcome};

/// Runs vgpu-admin as the admin `alice` behind sudo.
fn as_alice(env: &Env, args: &[&str]) -> Outcome {
    let mut cmd = env.command(args);
    cmd.env("SUDO_USER", "alice");
    Outcome::of(cmd, None)
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

#[test]
fn issue_14_history_rows_for_register_each_set_remove_a_hook_repair_and_a_failed_change() {
    let env = Env::new();
    let u = uuid(1);
    env.host_vm(vm(&u, "render-01", "halted", None));
    as_alice(&env, &["register-vm", "--vm-uuid", &u, "--pool=B"]).code(0);
    as_alice(&env, &["set-pool", "--vm-uuid", &u, "--pool=A"]).code(0);
    as_alice(&env, &["set-priority", "--vm-uuid", &u, "--priority=high"]).code(0);
    as_alice(&env, &["set-vm-id", "--vm-uuid", &u, "--vm-id=9"]).code(0);
    as_alice(
        &env,
        &["update-vm", "--vm-uuid", &u, "--priority=low", "--pool=B"],
    )
    .code(0);
    // A hand edit, repaired by the hook at the VM's start.
    env.host_vm_set(
        &u,
        "platform",
        serde_json::json!([[
            "device-model-args",
            "-device vgpu-stub,pool_id=A,priority=low,vm_id=9"
        ]]),
    );
    env.run(&["hook", "vm-pre-start", "-vmuuid", &u, "-reason", "none"])
        .code(1)
        .stdout_has("corrected the vGPU config");
    // A change that fails: the args cannot be written.
    env.fault("vm-param-set", Some(&u), "Error: injected failure", true);
    as_alice(
        &env,
        &["set-priority", "--vm-uuid", &u, "--priority=medium"],
    )
    .code(1)
    .one_error_line();
    as_alice(&env, &["remove-vm", "--vm-uuid", &u]).code(0);

    let rows = env.run(&["--json", "history"]).json();
    let rows = rows.as_array().expect("rows");
    let summary: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_string(),
                r["outcome"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let expected = [
        ("register-vm", "done"),
        ("set-pool", "done"),
        ("set-priority", "done"),
        ("set-vm-id", "done"),
        ("update-vm", "done"),
        ("hook vm-pre-start", "args repaired (differs"),
        ("set-priority", "failed"),
        ("remove-vm", "done"),
    ];
    assert_eq!(
        summary,
        expected
            .iter()
            .map(|(c, o)| (c.to_string(), o.to_string()))
            .collect::<Vec<_>>()
    );
    let cfg = |pool: &str, priority: i64, id: i64| {
        serde_json::json!({"vm_id": id, "vm_name": "render-01", "pool_id": pool, "priority": priority,
            "controls": {"weight": 50, "max_jobs_per_sec": 0, "max_queue_depth": 0, "quarantined": false}})
    };
    assert_eq!(rows[0]["before"], serde_json::Value::Null);
    assert_eq!(rows[0]["after"], cfg("B", 1, 1));
    assert_eq!(
        (&rows[1]["before"], &rows[1]["after"]),
        (&cfg("B", 1, 1), &cfg("A", 1, 1))
    );
    assert_eq!(rows[3]["after"], cfg("A", 2, 9));
    assert_eq!(rows[4]["after"], cfg("B", 0, 9));
    // The failed change says what it tried and why it failed; nothing changed.
    assert_eq!(
        (&rows[6]["before"], &rows[6]["after"]),
        (&cfg("B", 0, 9), &cfg("B", 1, 9))
    );
    assert!(rows[6]["outcome"]
        .as_str()
        .unwrap()
        .contains("step 'write the device-model-args' failed"));
    assert_eq!(rows[7]["after"], serde_json::Value::Null);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["vm_uuid"], u.as_str());
        assert_eq!(r["host"], this_hostname().as_str());
        let user = if i == 5 {
            r["user"].as_str().unwrap().to_string()
        } else {
            "alice".to_string()
        };
        assert_eq!(r["user"], user.as_str(), "row {i}");
    }

    // The text form, one line per change; filters.
    let text = env.run(&["history", "--vm-uuid", &u]);
    text.code(0)
        .stdout_has(&format!(
            "  set-pool  render-01 ({u}): pool B→A; done; by alice on "
        ))
        .stdout_has(&format!(
            "  update-vm  render-01 ({u}): pool A→B, priority high→low; done; by alice on "
        ));
    assert_eq!(text.stdout().lines().count(), 8);
    env.run(&["history", "--vm-uuid", &uuid(2)])
        .code(0)
        .stdout_is("No changes recorded.\n");
    env.run(&["history", "--since", "2999-01-01"])
        .code(0)
        .stdout_is("No changes recorded.\n");
    env.run(&["history", "--since", "yesterday"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid time 'yesterday': expected YYYY-MM-DD");
}

#[test]
fn issue_14_a_changes_history_row_is_in_its_transaction() {
    // A change refused by the database (locked? here: the vm_id is taken) writes nothing at
    // all: no row change, no history row.
    let env = Env::new();
    env.registered(vm(&uuid(1), "a", "halted", None), 1, "A", 1);
    env.registered(vm(&uuid(2), "b", "halted", None), 2, "A", 1);
    env.run(&["set-vm-id", "--vm-uuid", &uuid(2), "--vm-id=1"])
        .code(2)
        .one_error_line();
    let count: i64 = env
        .sql()
        .query_row("SELECT COUNT(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    // A script's own registrations in one transaction: one row each, none if it throws.
    let script = env.file(
        "bulk.rhai",
        &format!(
            "vms::transaction(|| {{ vms::register(#{{uuid: \"{}\"}}); vms::register(#{{uuid: \"{}\"}}); throw \"no\"; }});",
            uuid(3),
            uuid(4)
        ),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .stderr_has("error: script error: no\n");
    let count: i64 = env
        .sql()
        .query_row("SELECT COUNT(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "rolled back with the registrations");
}
