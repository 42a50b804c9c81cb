//! Issue 16, changing many VMs at once: selections (`--vm-id=1-7`, `--pool`, `--priority`,
//! `--name`, `--all`), one plan and one confirmation, the VMs to restart stopped, changed and
//! started in waves of `--parallel` at a time; export, plan and apply of a whole configuration.

use crate::common::{uuid, vm, Env};

/// The user's example: virtual users 1 to 20 (vm_ids 1..=20, named `user-NN`), all in pool B
/// with priority medium, the even ones running. Returns their uuids, in vm_id order.
pub fn twenty_users() -> (Env, Vec<String>) {
    let env = Env::new();
    let mut uuids = Vec::new();
    for n in 1..=20u32 {
        let u = uuid(n);
        let args = format!("-device vgpu-stub,pool_id=B,priority=medium,vm_id={n}");
        let power = if n % 2 == 0 { "running" } else { "halted" };
        env.registered(
            vm(&u, &format!("user-{n:02}"), power, Some(&args)),
            i64::from(n),
            "B",
            1,
        );
        uuids.push(u);
    }
    (env, uuids)
}

/// The xe calls of `name` made so far.
fn count(env: &Env, name: &str) -> usize {
    env.call_names().iter().filter(|c| *c == name).count()
}

#[test]
fn issue_16_a_selection_changes_every_vm_it_picks_after_one_confirmation() {
    let (env, uuids) = twenty_users();
    env.clear_calls();
    let out = env.run_with_input(&["set-pool", "--vm-id=1-7", "--pool=A"], "yes\n");
    out.code(0);
    assert_eq!(
        out.stdout().matches("(yes/no)").count(),
        1,
        "one confirmation"
    );
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let pool = if n <= 7 { "A" } else { "B" };
        assert_eq!(env.row(u).unwrap().1, pool, "user {n}");
        assert_eq!(
            env.args(u).as_deref(),
            Some(format!("-device vgpu-stub,pool_id={pool},priority=medium,vm_id={n}").as_str())
        );
        let power = if n % 2 == 0 { "running" } else { "halted" };
        assert_eq!(env.power(u), power, "user {n}");
    }
    // Users 2, 4 and 6 were running: each stopped and started once.
    assert_eq!(count(&env, "vm-shutdown"), 3);
    assert_eq!(count(&env, "vm-start"), 3);
    println!("{}", out.stdout());
}

/// What the users' file asks for user `n`: (pool, priority, priority level).
fn wanted(n: usize) -> (&'static str, &'static str, i64) {
    let pool = if n <= 7 { "A" } else { "B" };
    let level = n % 3;
    (pool, ["low", "medium", "high"][level], level as i64)
}

/// The user's example as a file: users 1-7 in pool A, 8-20 in pool B, priorities mixed.
fn users_file(uuids: &[String]) -> String {
    let mut text = String::from("# users 1-7 on GPU A, 8-20 on GPU B\n");
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let (pool, priority, _) = wanted(n);
        text.push_str(&format!(
            "\n[[vm]]\nuuid = \"{u}\"\nname = \"user-{n:02}\"\npool = \"{pool}\"\npriority = \"{priority}\"\nvm_id = {n}\n"
        ));
    }
    text
}

/// The xe calls that change something.
fn writes(env: &Env) -> Vec<String> {
    env.call_names()
        .into_iter()
        .filter(|c| c != "vm-list" && c != "vm-param-get" && c != "host-list")
        .collect()
}

#[test]
fn issue_16_the_users_example_as_a_file_is_applied_after_one_confirmation() {
    let (env, uuids) = twenty_users();
    let file = env.file("users.toml", &users_file(&uuids));
    env.clear_calls();
    let out = env.run_with_input(&["apply", file.to_str().unwrap()], "yes\n");
    out.code(0);
    assert_eq!(
        out.stdout().matches("(yes/no)").count(),
        1,
        "one confirmation"
    );
    all_as_in_the_file(&env, &uuids);
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let (_, _, level) = wanted(n);
        assert_eq!(env.row(u).unwrap().2, level, "user {n}");
        assert_eq!(env.row(u).unwrap().3, Some(format!("user-{n:02}")));
        if n % 2 == 0 {
            assert_eq!(
                env.resident_on(u).as_deref(),
                Some(crate::common::HOST1),
                "on its host"
            );
        }
    }
    // Every VM changed (all move or change priority except those already as asked: users with
    // pool B and medium priority, n >= 8 and n % 3 == 1: 10, 13, 16, 19).
    let restarted = uuids.len() / 2 - [10, 16].len();
    assert_eq!(count(&env, "vm-shutdown"), restarted);
    assert_eq!(count(&env, "vm-start"), restarted);
    // One checked listing of the pool for the whole run.
    assert_eq!(count(&env, "vm-list"), 2);

    // The file again, and the exported configuration: nothing to do, no xe write.
    env.clear_calls();
    env.run(&["apply", file.to_str().unwrap()])
        .code(0)
        .stdout_has("No changes needed: the 20 VMs selected already are as asked.");
    let exported = env.run(&["export"]);
    exported.code(0).stdout_has("[[vm]]\nuuid = \"");
    let file2 = env.file("exported.toml", exported.stdout());
    env.run(&["apply", file2.to_str().unwrap()]).code(0);
    env.run(&["plan", file2.to_str().unwrap()])
        .code(0)
        .stdout_is(&format!(
            "No changes: the 20 VMs of {} are registered and configured as it says.\n",
            file2.display()
        ));
    assert!(writes(&env).is_empty(), "no xe write: {:?}", writes(&env));
}

/// The xe calls of `name` made for VM `uuid` so far.
pub fn calls_for(env: &Env, name: &str, uuid: &str) -> usize {
    let needle = format!("uuid={uuid}");
    env.calls()
        .iter()
        .filter(|c| c[0] == name && c.contains(&needle))
        .count()
}

/// Every VM as the users' file says, the running ones running again; none stopped or started
/// more than once.
fn all_as_in_the_file(env: &Env, uuids: &[String]) {
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let (pool, priority, _) = wanted(n);
        assert_eq!(env.row(u).unwrap().1, pool, "user {n}");
        assert_eq!(
            env.args(u),
            Some(format!(
                "-device vgpu-stub,pool_id={pool},priority={priority},vm_id={n}"
            )),
            "user {n}"
        );
        let power = if n % 2 == 0 { "running" } else { "halted" };
        assert_eq!(env.power(u), power, "user {n}");
        assert!(calls_for(env, "vm-start", u) <= 1, "user {n} started twice");
        assert!(
            calls_for(env, "vm-shutdown", u) <= 1,
            "user {n} stopped twice"
        );
    }
}

#[test]
fn issue_16_a_failed_start_in_a_wave_does_not_stop_the_others_and_the_table_names_it() {
    let (env, uuids) = twenty_users();
    // User 4 (running, in the first wave) cannot be started again.
    env.fault(
        "vm-start",
        Some(&uuids[3]),
        "The host does not have enough free memory to start the VM.",
        false,
    );
    let file = env.file("users.toml", &users_file(&uuids));
    let out = env.run(&["--yes", "apply", "--parallel=2", file.to_str().unwrap()]);
    out.code(1)
        .stdout_has(&format!(
            "user-04 ({})  FAILED           start the VM\n",
            uuids[3]
        ))
        .stdout_has(&format!(
            "user-04 ({}): step 'start the VM' failed: ",
            uuids[3]
        ))
        .stdout_has(&format!("user-06 ({})  done, restarted\n", uuids[5]));
    // Its change is saved (database and args), the VM is halted; every other VM is done.
    assert_eq!(env.power(&uuids[3]), "halted");
    assert_eq!(env.row(&uuids[3]).unwrap().1, "A");
    for (i, u) in uuids.iter().enumerate().filter(|(i, _)| *i != 3) {
        let n = i + 1;
        let power = if n % 2 == 0 { "running" } else { "halted" };
        assert_eq!(env.power(u), power, "user {n}");
    }
    // With --json: the outcomes, per VM.
    let (env, uuids) = twenty_users();
    env.fault("vm-start", Some(&uuids[3]), "no memory", false);
    let file = env.file("users.toml", &users_file(&uuids));
    let out = env.run(&["--yes", "--json", "apply", file.to_str().unwrap()]);
    // The dialogue and the table go to stderr, the JSON document alone to stdout.
    out.code(1).stderr_has("FAILED");
    let json: serde_json::Value = serde_json::from_str(out.stdout()).unwrap();
    let outcomes = json["outcomes"].as_array().unwrap();
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["uuid"], uuids[3].as_str());
    assert_eq!(failed[0]["step"], "start the VM");
    assert!(outcomes.iter().filter(|o| o["outcome"] == "done").count() >= 15);
}

#[test]
fn issue_16_a_run_killed_mid_wave_is_finished_by_running_it_again_and_no_vm_restarts_twice() {
    let (env, uuids) = twenty_users();
    // Every stop and start of a VM takes 600 ms: the run is killed in its second wave.
    for command in ["vm-shutdown", "vm-start"] {
        env.fault_raw(serde_json::json!({"command": command, "delay_ms": 600}));
    }
    let file = env.file("users.toml", &users_file(&uuids));
    let mut child = env
        .command(["--yes", "apply", "--parallel=3", file.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the second wave has stopped its VMs' (4 shutdowns logged), then kill -9.
    let start = std::time::Instant::now();
    while count(&env, "vm-shutdown") < 4 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no second wave"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: kill with the pid of our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    child.wait().unwrap();
    // The xe calls in hand end on their own (as xapi's would): let them.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let journal: i64 = env
        .sql()
        .query_row(
            "SELECT count(*) FROM change_journal WHERE batch IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        journal > 0,
        "the killed run left its changes in the journal"
    );
    // Some VMs are halted now that ran before: the run again finishes the job.
    env.run(&["--yes", "apply", "--parallel=3", file.to_str().unwrap()])
        .code(0);
    all_as_in_the_file(&env, &uuids);
    let left: i64 = env
        .sql()
        .query_row("SELECT count(*) FROM change_journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn issue_16_bad_selections_and_files_are_refused_with_nothing_touched() {
    let (env, uuids) = twenty_users();
    // A VM of the pool, not registered, whose device carries vm_id 30.
    let other = uuid(99);
    env.host_vm(vm(
        &other,
        "manual",
        "halted",
        Some("-device vgpu-stub,pool_id=A,priority=low,vm_id=30"),
    ));
    let before = env.db_bytes();
    env.clear_calls();
    let file_of = |name: &str, text: &str| env.file(name, text).to_str().unwrap().to_string();
    let vm_entry = |u: &str, n: i64| {
        format!("[[vm]]\nuuid = \"{u}\"\npool = \"A\"\npriority = \"low\"\nvm_id = {n}\n\n")
    };

    // Selections.
    env.run(&["set-pool", "--vm-id=7-1", "--pool=A"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid vm-id list '7-1': the range 7-1 runs downwards");
    env.run(&["set-pool", "--vm-id=50-60", "--pool=A"])
        .code(3)
        .one_error_line()
        .stderr_is("error: no registered VM matches the selection --vm-id=50-60\n");
    env.run(&["remove-vm", "--name=user-0*", "--pool=A"])
        .code(3)
        .stderr_has("no registered VM matches the selection --name=user-0* --pool=A");
    env.run(&[
        "set-priority",
        "--vm-uuid",
        &uuids[0],
        "--all",
        "--priority=high",
    ])
    .code(2)
    .one_error_line();
    env.run(&["remove-vm", "--all", "--pool=A"])
        .code(2)
        .one_error_line();
    env.run(&["set-pool", "--name=[x", "--pool=A"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid name pattern '[x'");
    env.run(&["update-vm", "--all", "--vm-id=5"])
        .code(2)
        .one_error_line()
        .stderr_has("--vm-id gives one VM its vm_id: it cannot be used with a selection");

    // Files: syntax, values (each with its line), a vm_id twice, a vm_id the pool has, a VM
    // not in the pool.
    let syntax = file_of("syntax.toml", "[[vm]\nuuid = 1\n");
    env.run(&["apply", "--yes", &syntax])
        .code(2)
        .stderr_has(&format!("error: {syntax}:1: "))
        .stderr_has(": 1 error (above); the file was refused whole, nothing was changed");
    let values =
        file_of(
            "values.toml",
            &format!(
        "{}[[vm]]\nuuid = \"{}\"\npool = \"C\"\npriority = \"low\"\nvm_id = 2\nweight = 101\n",
        vm_entry(&uuids[0], 1), uuids[1]),
        );
    env.run(&["apply", "--yes", &values])
        .code(2)
        .stderr_has(&format!(
            "error: {values}:9: invalid pool 'C': expected A or B\n"
        ))
        .stderr_has(&format!(
            "error: {values}:12: invalid weight '101': expected a whole number from 1 to 100\n"
        ))
        .stderr_has(&format!(
            "error: {values}: 2 errors (above); the file was refused whole, nothing was changed\n"
        ));
    let twice = file_of(
        "twice.toml",
        &format!("{}{}", vm_entry(&uuids[0], 5), vm_entry(&uuids[1], 5)),
    );
    env.run(&["plan", &twice]).code(2).stderr_has(&format!(
        "error: {twice}:11: vm_id 5 is given twice (also line 1)\n"
    ));
    let clash = file_of(
        "clash.toml",
        &format!("{}{}", vm_entry(&uuids[0], 30), vm_entry(&uuid(77), 31)),
    );
    let out = env.run(&["apply", "--yes", &clash]);
    out.code(2)
        .stderr_has(&format!("error: {clash}:1: VM user-01 ({}): vm-id 30 is carried by the vGPU device of VM manual ({other})", uuids[0]))
        .stderr_has(&format!("error: {clash}:7: VM {} is not in the pool (see 'xe vm-list')\n", uuid(77)))
        .stderr_has("2 of its VMs cannot be applied (above); the file was refused whole, nothing was changed");
    let missing = env.dir.path().join("missing.toml");
    env.run(&["plan", missing.to_str().unwrap()])
        .code(2)
        .one_error_line()
        .stderr_has("cannot read ");

    assert_eq!(env.db_bytes(), before, "database unchanged");
    assert!(writes(&env).is_empty(), "no xe write: {:?}", writes(&env));
}

#[test]
fn issue_16_a_terminal_shows_progress_and_a_dry_run_only_the_plan() {
    let (env, uuids) = twenty_users();
    // A dry run: the plan, nothing asked, nothing written.
    let before = env.db_bytes();
    env.clear_calls();
    env.run(&["--dry-run", "set-priority", "--pool=B", "--name=user-1?", "--priority=high"])
        .code(0)
        .stdout_has(&format!("user-10 ({})  running  B, medium, 10                B, high, 10  yes\n", uuids[9]))
        .stdout_has("10 VMs to change, 5 of them restarted; 0 already as asked.\nDry run: nothing was changed.\n")
        .stdout_lacks("user-09")
        .stdout_lacks("(yes/no)");
    assert_eq!(env.db_bytes(), before);
    assert!(writes(&env).is_empty());

    // On a terminal: a progress bar with the VMs done and the wave.
    for command in ["vm-shutdown", "vm-start"] {
        env.fault_raw(serde_json::json!({"command": command, "delay_ms": 400}));
    }
    let mut cmd = env.command([
        "--yes",
        "set-priority",
        "--vm-id=2,4,6",
        "--priority=high",
        "--parallel=2",
    ]);
    cmd.env("TERM", "xterm");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(30_000))
        .strip_ansi_escape_codes(true);
    let mut p = rexpect::session::spawn_with_options(cmd, options).expect("spawn in a pty");
    p.exp_string("/3 VMs  wave 1 of 2").unwrap();
    p.exp_string("wave 2 of 2").unwrap();
    p.exp_string("done, restarted").unwrap();
    p.exp_eof().unwrap();
    for u in [&uuids[1], &uuids[3], &uuids[5]] {
        assert_eq!(env.row(u).unwrap().2, 2);
        assert_eq!(env.power(u), "running");
    }
}

#[test]
fn issue_16_the_scheduler_controls_of_a_selection_in_one_transaction() {
    let (env, uuids) = twenty_users();
    env.clear_calls();
    let out = env.run_with_input(&["set-weight", "--vm-id=8-20", "--weight=80"], "yes\n");
    out.code(0)
        .stdout_has(&format!("8      {}  user-08  50            80\n", uuids[7]))
        .stdout_has("13 VMs updated.\n");
    assert_eq!(out.stdout().matches("(yes/no)").count(), 1);
    let weights: Vec<i64> = {
        let conn = env.sql();
        let mut stmt = conn
            .prepare("SELECT weight FROM vms ORDER BY vm_id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(weights, [vec![50; 7], vec![80; 13]].concat());
    // No xe call at all (no --name), and the mediator asked to reload once.
    assert!(env.calls().is_empty());
    assert_eq!(
        env.mediator_requests()
            .iter()
            .filter(|r| r[1] == 0x12)
            .count(),
        1
    );
    // "no": nothing changed.
    env.run_with_input(&["quarantine-vm", "--all"], "no\n")
        .code(4)
        .stderr_has("Operation cancelled.");
    let quarantined: i64 = env
        .sql()
        .query_row("SELECT count(*) FROM vms WHERE quarantined = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(quarantined, 0);
}

#[test]
fn issue_16_removals_by_selection_and_by_a_pruned_file() {
    let (env, uuids) = twenty_users();
    // remove-vm of a selection: the device leaves the args, the rows go, running VMs restart.
    env.run(&["--yes", "remove-vm", "--vm-id=1-2"])
        .code(0)
        .stdout_has(&format!(
            "user-02 ({})  running  B, medium, 2                 (removed)  yes\n",
            uuids[1]
        ));
    assert!(env.row(&uuids[0]).is_none() && env.row(&uuids[1]).is_none());
    assert_eq!(env.args(&uuids[1]), None);
    assert_eq!(env.power(&uuids[1]), "running");

    // The exported file, less three VMs; one VM of it is gone from the pool meanwhile.
    let exported = env.run(&["--json", "export"]);
    let vms: Vec<serde_json::Value> = serde_json::from_str(exported.code(0).stdout()).unwrap();
    assert_eq!(vms.len(), 18);
    assert_eq!(vms[0]["uuid"], uuids[2].as_str());
    assert_eq!(vms[0]["weight"], 50);
    let text = env.run(&["export"]).stdout().to_string();
    let kept: String = text
        .split("[[vm]]")
        .filter(|block| {
            !["user-03", "user-04", "user-05"]
                .iter()
                .any(|n| block.contains(n))
        })
        .collect::<Vec<_>>()
        .join("[[vm]]");
    let file = env.file("fewer.toml", &kept);
    let file = file.to_str().unwrap();
    let mut state = env.host();
    state["vms"]
        .as_array_mut()
        .unwrap()
        .retain(|vm| vm["uuid"] != uuids[4].as_str());
    std::fs::write(&env.xe_state, state.to_string()).unwrap();
    // Without --prune: nothing to do; with it, the plan shows three removals.
    env.run(&["plan", file])
        .code(0)
        .stdout_has("No changes: the 15 VMs of ");
    env.run(&["plan", "--prune", file])
        .code(0)
        .stdout_has(&format!(
            "user-04 ({})  running          B, medium, 4                 (removed)  yes\n",
            uuids[3]
        ))
        .stdout_has(&format!(
            "user-05 ({})  not in the pool  B, medium, 5                 (removed)  no\n",
            uuids[4]
        ))
        .stdout_has("3 VMs to change, 1 of them restarted; 15 already as asked.\n");
    env.run(&["--yes", "apply", "--prune", file]).code(0);
    for gone in &uuids[2..5] {
        assert!(env.row(gone).is_none());
    }
    assert_eq!(env.args(&uuids[3]), None);
    assert_eq!(env.power(&uuids[3]), "running");
    assert_eq!(env.vm_count(), 15);
}

#[test]
fn issue_16_a_file_that_changes_only_scheduler_controls_writes_them_without_a_restart() {
    let (env, uuids) = twenty_users();
    let text = env.run(&["export"]).stdout().to_string();
    // user-02 (running) gets weight 70 and a rate limit; user-03 (halted) a new pool too.
    let edited = text
        .replacen(
            &format!("uuid = \"{}\"\nname = \"user-02\"\npool = \"B\"\npriority = \"medium\"\nvm_id = 2\nweight = 50\nmax_jobs_per_sec = 0", uuids[1]),
            &format!("uuid = \"{}\"\nname = \"user-02\"\npool = \"B\"\npriority = \"medium\"\nvm_id = 2\nweight = 70\nmax_jobs_per_sec = 20", uuids[1]),
            1,
        )
        .replacen(
            &format!("uuid = \"{}\"\nname = \"user-03\"\npool = \"B\"\npriority = \"medium\"\nvm_id = 3\nweight = 50", uuids[2]),
            &format!("uuid = \"{}\"\nname = \"user-03\"\npool = \"A\"\npriority = \"medium\"\nvm_id = 3\nweight = 90", uuids[2]),
            1,
        );
    assert_ne!(edited, text);
    let file = env.file("controls.toml", &edited);
    let file = file.to_str().unwrap();
    env.run(&["plan", file])
        .code(0)
        .stdout_has(&format!("user-02 ({})  running  B, medium, 2                 B, medium, 2  no       weight 50->70, max_jobs_per_sec 0->20\n", uuids[1]))
        .stdout_has(&format!("user-03 ({})  halted   B, medium, 3                 A, medium, 3  no       weight 50->90\n", uuids[2]))
        .stdout_has("2 VMs to change, 0 of them restarted; 18 already as asked.\n");
    env.clear_calls();
    env.run(&["--yes", "apply", file]).code(0);
    let controls = |u: &str| -> (i64, i64, String) {
        env.sql()
            .query_row(
                "SELECT weight, max_jobs_per_sec, pool_id FROM vms WHERE vm_uuid = ?1",
                [u],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    assert_eq!(controls(&uuids[1]), (70, 20, "B".to_string()));
    assert_eq!(controls(&uuids[2]), (90, 0, "A".to_string()));
    // The running VM was not touched: its controls are the mediator's business.
    assert_eq!(
        calls_for(&env, "vm-shutdown", &uuids[1]) + calls_for(&env, "vm-param-set", &uuids[1]),
        0
    );
    env.run(&["plan", file])
        .code(0)
        .stdout_has("No changes: the 20 VMs of ");
}

#[test]
fn issue_16_the_json_export_is_a_configuration_file_too() {
    let (env, uuids) = twenty_users();
    let exported = env.run(&["--json", "export"]);
    let file = env.file("vgpu.json", exported.code(0).stdout());
    env.clear_calls();
    env.run(&["plan", file.to_str().unwrap()])
        .code(0)
        .stdout_has("No changes: the 20 VMs of ");
    assert!(writes(&env).is_empty());
    // Edited: user-01 to pool A, user-02 a bad pool, each error on its VM's line.
    let mut vms: Vec<serde_json::Value> = serde_json::from_str(exported.stdout()).unwrap();
    vms[0]["pool"] = "A".into();
    let file = env.file("one.json", &serde_json::to_string_pretty(&vms).unwrap());
    env.run(&["--yes", "apply", file.to_str().unwrap()])
        .code(0)
        .stdout_has("1 VM to change, 0 of them restarted; 19 already as asked.");
    assert_eq!(env.row(&uuids[0]).unwrap().1, "A");
    vms[1]["pool"] = "Z".into();
    let text = serde_json::to_string_pretty(&vms).unwrap();
    // The line of user-02's object: the `{` before its uuid.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains(&uuids[1])).unwrap();
    let line = lines[..at].iter().rposition(|l| l.trim() == "{").unwrap() + 1;
    let file = env.file("bad.json", &text);
    env.run(&["apply", file.to_str().unwrap()])
        .code(2)
        .stderr_has(&format!(
            "{}:{line}: invalid pool 'Z': expected A or B\n",
            file.display()
        ));
}

#[test]
fn issue_16_each_vm_of_a_wave_is_started_again_on_the_host_it_ran_on() {
    let (env, uuids) = twenty_users();
    let (h1, h2) = (
        "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a01",
        "5b8f0e3a-1c2d-4e5f-8a9b-0c1d2e3f4a02",
    );
    env.pool_hosts(&[(h1, "xcp-host-01"), (h2, "xcp-host-02")]);
    // Users 2 and 6 run on the second host, 4 on this one.
    for (u, host) in [(&uuids[1], h2), (&uuids[3], h1), (&uuids[5], h2)] {
        env.host_vm_set(u, "resident_on", serde_json::json!(host));
    }
    env.clear_calls();
    env.run(&[
        "--yes",
        "set-priority",
        "--vm-id=1-6",
        "--priority=low",
        "--parallel=3",
    ])
    .code(0);
    for (u, host) in [(&uuids[1], h2), (&uuids[3], h1), (&uuids[5], h2)] {
        let starts: Vec<Vec<String>> = env
            .calls()
            .into_iter()
            .filter(|c| c[0] == "vm-start" && c.contains(&format!("uuid={u}")))
            .collect();
        assert_eq!(
            starts,
            vec![vec![
                "vm-start".to_string(),
                format!("uuid={u}"),
                format!("on={host}")
            ]]
        );
        assert_eq!(env.resident_on(u).as_deref(), Some(host));
    }
}
