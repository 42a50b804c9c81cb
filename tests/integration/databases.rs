//! Issue 11, the database file: read commands never create it, changing commands do; a SQLite
//! file of something else is refused byte for byte; a newer schema is read but never written;
//! a locked, read-only or newer database is found before any VM is stopped; the GPU mediator's
//! extra `vms` columns survive our migrations and our changes.

use crate::common::{uuid, vm, Env, Outcome};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const ARGS: &str = "-device vgpu-stub,pool_id=A,priority=high,vm_id=7";

/// A registered VM (vm_id 7, pool A, high), running on the fake host with its args in sync.
fn running_vm() -> (Env, String) {
    let env = Env::new();
    let u = uuid(1);
    env.registered(vm(&u, "win10", "running", Some(ARGS)), 7, "A", 2);
    env.clear_calls();
    (env, u)
}

/// The VM was not touched: its row, args and power as before, and no xe call changed anything.
#[track_caller]
fn vm_untouched(env: &Env, u: &str) {
    let calls = env.call_names();
    for changing in ["vm-shutdown", "vm-param-set", "vm-param-remove", "vm-start"] {
        assert!(
            !calls.iter().any(|c| c == changing),
            "{changing} was called: {calls:?}"
        );
    }
    assert_eq!(env.args(u).as_deref(), Some(ARGS));
    assert_eq!(env.power(u), "running");
}

/// The exact line a foreign database is refused with.
fn foreign_line(path: &Path, found: &str) -> String {
    format!(
        "error: {} is not a vgpu-admin database: it holds {found}; nothing was changed\n",
        path.display()
    )
}

/// The files in `dir`, sorted (an absent directory has none).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// (name, type, notnull, default) of every column of `vms`, in order.
fn vms_columns(conn: &Connection) -> Vec<(String, String, bool, Option<String>)> {
    let mut stmt = conn.prepare("PRAGMA table_info(vms)").unwrap();
    stmt.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn vms_sql(conn: &Connection) -> String {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'vms'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn issue_11_read_commands_never_create_a_missing_database_or_its_directory() {
    let env = Env::new();
    let u = uuid(1);
    // A host VM, so that commands reading the host get as far as the database.
    env.host_vm(vm(&u, "win10", "running", Some(ARGS)));
    let dir = env.db.parent().unwrap().to_path_buf();
    let show = format!("--vm-uuid={u}");
    let reads: Vec<Vec<&str>> = vec![
        vec!["list-vms"],
        vec!["list-vms", "--pool=A"],
        vec!["--json", "list-vms"],
        vec!["show-vm", &show],
        vec!["status"],
        vec!["--json", "status"],
        vec!["list-pools"],
        vec!["show-pool", "--pool-id=A"],
        vec!["scan-vms"],
        vec!["check"],
    ];
    let expected = format!("error: no database at {}: ", env.db.display());
    for args in &reads {
        let out = env.run(args);
        out.code(1).one_error_line();
        assert!(
            out.stderr().starts_with(&expected),
            "{args:?}: {}",
            out.stderr()
        );
        assert!(!env.db.exists(), "{args:?} created the database");
        assert!(!dir.exists(), "{args:?} created the database's directory");
    }
    // doctor reports it among its findings, and creates nothing either.
    env.run(&["doctor"]).code(5).stdout_has("no database at");
    assert!(!dir.exists(), "doctor created the database's directory");

    // A mistyped --db is the same error, naming that path; nothing is created there.
    let typo = env.dir.path().join("etc/vgpu-typo/vgpu_config.db");
    let typo_arg = format!("--db={}", typo.display());
    for args in [
        vec![typo_arg.as_str(), "list-vms"],
        vec![typo_arg.as_str(), "status"],
        vec![typo_arg.as_str(), "show-vm", &show],
    ] {
        let out = env.run(&args);
        out.code(1)
            .one_error_line()
            .stderr_has(&format!("error: no database at {}: ", typo.display()));
        assert!(!typo.parent().unwrap().exists(), "{args:?}");
    }
    // No xe call changed anything either.
    assert_eq!(env.args(&u).as_deref(), Some(ARGS));
    assert_eq!(env.power(&u), "running");
}

#[test]
fn issue_11_changing_commands_and_init_create_the_database() {
    let u = uuid(1);
    let vm_arg = format!("--vm-uuid={u}");
    let writer = format!("vms::register(#{{ uuid: \"{}\" }});", uuid(2));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["init"], "Database ready: 2 pools, 0 registered VMs."),
        (
            vec!["register-vm", &vm_arg, "--pool=B", "--priority=high"],
            "VM registered successfully",
        ),
        (
            vec!["set-hook-policy", "--policy=enforce"],
            "Hook policy: enforce",
        ),
    ];
    for (args, says) in cases {
        let env = Env::new();
        env.host_vm(vm(&u, "web", "halted", None));
        assert!(!env.db.exists());
        env.run(&args).code(0).stdout_has(says);
        assert!(env.db.exists(), "{args:?} did not create the database");
        let mode = std::fs::metadata(&env.db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{args:?}: database file mode");
        assert_eq!(
            user_version(&env.db),
            vgpu_admin::store::latest_version(),
            "{args:?}"
        );
        // A read works on it afterwards.
        env.run(&["list-pools"]).code(0).stdout_has("Pool A");
        if args[0] == "register-vm" {
            assert_eq!(env.row(&u), Some((1, "B".into(), 2, Some("web".into()))));
        }
    }
    // An admin's script may change things: `run` creates it too.
    let env = Env::new();
    let script = env.file("write.rhai", &writer);
    env.run(&["run", script.to_str().unwrap()]).code(0);
    assert!(env.db.exists());
    assert_eq!(env.vm_count(), 1);
}

#[test]
fn issue_11_a_dry_run_creates_no_database() {
    let u = uuid(1);
    let vm_arg = format!("--vm-uuid={u}");
    let mut created = Vec::new();
    for args in [
        vec!["--dry-run", "init"],
        vec!["--dry-run", "register-vm", &vm_arg],
        vec!["--dry-run", "set-pool", &vm_arg, "--pool=B"],
        vec!["--dry-run", "remove-vm", &vm_arg],
        vec!["--dry-run", "adopt", &vm_arg],
        vec!["--dry-run", "set-hook-policy", "--policy=enforce"],
        vec!["--dry-run", "recover"],
    ] {
        let env = Env::new();
        env.host_vm(vm(&u, "web", "halted", None));
        let out = env.run(&args);
        // Nothing to show changes against: said, and nothing made.
        out.code(1)
            .one_error_line()
            .stderr_has("error: no database at ");
        let dir = env.db.parent().unwrap();
        if dir.exists() {
            created.push(format!(
                "{args:?} (exit {}) created {:?} in {}",
                out.status(),
                listing(dir),
                dir.display()
            ));
        }
        let calls = env.call_names();
        assert!(
            !calls.iter().any(|c| c == "vm-param-set" || c == "vm-start"),
            "{args:?}: {calls:?}"
        );
    }
    assert!(created.is_empty(), "{}", created.join("\n"));
}

/// A SQLite database of another application at the database path.
fn foreign_database(path: &Path, sql: &str) -> Vec<u8> {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

#[test]
fn issue_11_a_foreign_sqlite_database_is_refused_and_left_byte_for_byte() {
    let u = uuid(1);
    let vm_arg = format!("--vm-uuid={u}");
    let cases: &[(&str, &str)] = &[
        (
            "CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, password TEXT);
             INSERT INTO users (login, password) VALUES ('alice', 'x'), ('bob', 'y');",
            "the table 'users'",
        ),
        (
            "CREATE TABLE vms (id INTEGER PRIMARY KEY, name TEXT, memory INTEGER);
             INSERT INTO vms (name, memory) VALUES ('db01', 4096);",
            "a table 'vms' without the columns vm_id, vm_uuid, vm_name, pool_id, priority",
        ),
        (
            "CREATE TABLE vms (vm_id INTEGER, vm_uuid TEXT, vm_name TEXT, pool_id TEXT);
             INSERT INTO vms VALUES (1, 'u', 'n', 'A');",
            "a table 'vms' without the column priority",
        ),
        (
            // vgpu-admin's own tables beside another application's: not ours to change either.
            "CREATE TABLE pools (pool_id CHAR(1) PRIMARY KEY, pool_name TEXT NOT NULL);
             CREATE TABLE vms (vm_id INTEGER NOT NULL UNIQUE, vm_uuid TEXT UNIQUE NOT NULL,
                 vm_name TEXT, pool_id CHAR(1) NOT NULL DEFAULT 'A', priority INTEGER NOT NULL DEFAULT 1);
             CREATE TABLE users (id INTEGER PRIMARY KEY);",
            "the table 'users'",
        ),
    ];
    for (sql, found) in cases {
        let env = Env::new();
        env.host_vm(vm(&u, "web", "running", Some(ARGS)));
        let before = foreign_database(&env.db, sql);
        let files = listing(env.db.parent().unwrap());
        let line = foreign_line(&env.db, found);
        let writer = env.file(
            "write.rhai",
            &format!("vms::register(#{{ uuid: \"{}\" }});", uuid(2)),
        );
        let attempts: Vec<Vec<&str>> = vec![
            vec!["list-vms"],
            vec!["status"],
            vec!["show-vm", &vm_arg],
            vec!["init"],
            vec!["register-vm", &vm_arg, "--pool=B"],
            vec!["--yes", "register-vm", &vm_arg],
            vec!["--yes", "set-pool", &vm_arg, "--pool=B"],
            vec!["--yes", "remove-vm", &vm_arg],
            vec!["set-hook-policy", "--policy=enforce"],
            vec!["recover"],
            vec!["run", writer.to_str().unwrap()],
        ];
        for args in &attempts {
            let out = env.run(args);
            out.code(1);
            assert_eq!(out.stderr(), line, "{args:?}");
            assert_eq!(std::fs::read(&env.db).unwrap(), before, "{args:?}: bytes");
        }
        assert_eq!(
            listing(env.db.parent().unwrap()),
            files,
            "no file was added beside it"
        );
        vm_untouched(&env, &u);
    }
}

/// A registered, running VM in a database whose schema version is newer than ours.
fn newer_database() -> (Env, String, i64) {
    let (env, u) = running_vm();
    env.host_vm(vm(&uuid(2), "other", "halted", None));
    let newer = vgpu_admin::store::latest_version() + 1;
    // A later version may add tables of its own: still a vgpu-admin database, read only.
    env.sql()
        .execute_batch(&format!(
            "CREATE TABLE a_later_versions_table (x TEXT); PRAGMA user_version = {newer}"
        ))
        .unwrap();
    env.clear_calls();
    (env, u, newer)
}

#[test]
fn issue_11_a_newer_schema_is_read_with_a_warning_and_never_written() {
    let (env, u, newer) = newer_database();
    let before = env.db_bytes();
    let warning = format!(
        "warning: database {} has schema version {newer}, newer than this vgpu-admin's ({})",
        env.db.display(),
        vgpu_admin::store::latest_version()
    );
    for args in [
        vec!["list-vms"],
        vec!["status"],
        vec!["show-vm", &format!("--vm-uuid={u}")],
        vec!["list-pools"],
        // init finds the database there and changes nothing.
        vec!["init"],
    ] {
        let out = env.run(&args);
        out.code(0).stderr_has(&warning).stderr_has("reading only");
        assert!(
            !out.stderr().contains("error"),
            "{args:?}: {}",
            out.stderr()
        );
    }
    env.run(&["list-vms"])
        .stderr_has("newer than this vgpu-admin")
        .stdout_has("  Name: win10");
    assert_eq!(env.db_bytes(), before, "reads left the file as it was");

    let vm_arg = format!("--vm-uuid={u}");
    let other = format!("--vm-uuid={}", uuid(2));
    let writer = env.file(
        "write.rhai",
        &format!("vms::register(#{{ uuid: \"{}\" }});", uuid(3)),
    );
    let refusal = format!(
        "has schema version {newer}, newer than this vgpu-admin's ({}): upgrade vgpu-admin to change anything; nothing was changed",
        vgpu_admin::store::latest_version()
    );
    for args in [
        vec!["--yes", "set-pool", &vm_arg, "--pool=B"],
        vec!["--yes", "set-priority", &vm_arg, "--priority=low"],
        vec!["--yes", "update-vm", &vm_arg, "--pool=B", "--vm-id=9"],
        vec!["--yes", "remove-vm", &vm_arg],
        vec!["--yes", "register-vm", &other],
        vec!["set-hook-policy", "--policy=enforce"],
        vec!["run", writer.to_str().unwrap()],
    ] {
        let out = env.run(&args);
        out.code(1);
        let errors: Vec<&str> = out
            .stderr()
            .lines()
            .filter(|l| !l.starts_with(&warning))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{args:?}: one error line:\n{}",
            out.stderr()
        );
        assert!(
            errors[0].starts_with("error: ") && errors[0].contains(&refusal),
            "{args:?}: {}",
            out.stderr()
        );
        assert_eq!(env.db_bytes(), before, "{args:?}: bytes");
        vm_untouched(&env, &u);
    }
    assert_eq!(env.row(&u), Some((7, "A".into(), 2, Some("win10".into()))));
    assert_eq!(env.row(&uuid(2)), None);
    assert_eq!(user_version(&env.db), newer);
}

#[test]
fn issue_11_a_database_locked_beyond_the_busy_timeout_stops_no_vm() {
    let (env, u) = running_vm();
    let holder = Connection::open(&env.db).unwrap();
    holder
        .execute_batch(
            "BEGIN IMMEDIATE; UPDATE pools SET description = 'held' WHERE pool_id = 'B';",
        )
        .unwrap();
    let start = std::time::Instant::now();
    let out = env.run(&["--yes", "set-pool", &format!("--vm-uuid={u}"), "--pool=B"]);
    let waited = start.elapsed();
    out.code(1).one_error_line().stderr_has(&format!(
        "database {} is locked by another process (waited 10 s); try again",
        env.db.display()
    ));
    assert!(
        waited >= std::time::Duration::from_secs(9),
        "it gave up after {waited:?}, before the busy timeout"
    );
    vm_untouched(&env, &u);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(env.row(&u).unwrap().1, "A");
    // Once the lock is gone the same command goes through: the VM is restarted into pool B.
    env.clear_calls();
    env.run(&["--yes", "set-pool", &format!("--vm-uuid={u}"), "--pool=B"])
        .code(0);
    assert_eq!(env.row(&u).unwrap().1, "B");
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

/// Runs the binary as `nobody` (root ignores file modes), with the env's database, no admin
/// scripts and the fake xe.
fn as_nobody(env: &Env, args: &[&str]) -> Outcome {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("vgpu-admin"))
        .args(args)
        .env("VGPU_DB", &env.db)
        .env("VGPU_SCRIPTS", env.dir.path().join("none"))
        .env("VGPU_XE", crate::common::fake_xe())
        .env("FAKE_XE_STATE", &env.xe_state)
        .env("FAKE_XE_LOG", &env.xe_log);
    Outcome::of(cmd, None)
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn issue_11_a_read_only_database_stops_no_vm() {
    let (env, u) = running_vm();
    let dir: PathBuf = env.db.parent().unwrap().to_path_buf();
    // Everything the fake xe touches is open to `nobody`; the database and its directory are
    // only readable.
    for p in [env.dir.path(), dir.parent().unwrap(), &dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(&env.xe_log, "").unwrap();
    for p in [&env.xe_state, &env.xe_log] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = env.db_bytes();
    let run = |args: &[&str]| {
        if running_as_root() {
            as_nobody(&env, args)
        } else {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            let out = env.run(args);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            out
        }
    };
    // Reads work.
    run(&["list-vms"]).code(0).stdout_has("  Name: win10");
    let set_pool = ["--yes", "set-pool", &format!("--vm-uuid={u}"), "--pool=B"];
    // A change is refused before the VM is touched: here the VM's lock file cannot be made
    // beside the database either.
    let out = run(&set_pool);
    out.code(1).one_error_line();
    assert!(
        out.stderr().contains("read-only for this user")
            || out.stderr().contains("cannot open the lock file"),
        "{}",
        out.stderr()
    );
    vm_untouched(&env, &u);
    // With a lock file this user may open, it is the database that refuses.
    let lock = dir.join("vgpu_config.db.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&set_pool);
    out.code(1).one_error_line().stderr_has(&format!(
        "database {} is read-only for this user",
        env.db.display()
    ));
    vm_untouched(&env, &u);
    run(&["set-hook-policy", "--policy=enforce"])
        .code(1)
        .one_error_line()
        .stderr_has("read-only for this user");
    assert_eq!(env.db_bytes(), before);
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(env.row(&u).unwrap().1, "A");
}

/// The GPU mediator's database: the seed schema at user_version 0, with its columns added to
/// `vms` (exactly as the mediator does) and a row using them.
fn mediator_database(env: &Env, u: &str) {
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    let conn = Connection::open(&env.db).unwrap();
    conn.execute_batch(include_str!("../../migrations/0001_initial_schema.sql"))
        .unwrap();
    conn.execute_batch(
        "ALTER TABLE vms ADD COLUMN weight INTEGER NOT NULL DEFAULT 50;
         ALTER TABLE vms ADD COLUMN max_jobs_per_sec INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE vms ADD COLUMN max_queue_depth INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE vms ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE vms ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
         PRAGMA user_version = 0;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority, weight, max_jobs_per_sec, \
         max_queue_depth, quarantined, error_count) VALUES (7, ?1, 'win10', 'A', 2, 80, 25, 16, 1, 3)",
        [u],
    )
    .unwrap();
}

/// The mediator's columns of the row of `u`, if it has one.
fn mediator_values(env: &Env, u: &str) -> Option<(i64, i64, i64, i64, i64)> {
    use rusqlite::OptionalExtension;
    Connection::open(&env.db)
        .unwrap()
        .query_row(
            "SELECT weight, max_jobs_per_sec, max_queue_depth, quarantined, error_count \
             FROM vms WHERE vm_uuid = ?1",
            [u],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .unwrap()
}

#[test]
fn issue_11_the_gpu_mediators_columns_survive_migrations_and_every_change() {
    let env = Env::new();
    let (u, other, third) = (uuid(1), uuid(2), uuid(3));
    env.host_vm(vm(&u, "win10", "running", Some(ARGS)));
    env.host_vm(vm(&other, "db", "halted", None));
    env.host_vm(vm(&third, "web", "halted", None));
    mediator_database(&env, &u);
    let (columns, sql) = {
        let conn = Connection::open(&env.db).unwrap();
        (vms_columns(&conn), vms_sql(&conn))
    };
    assert_eq!(
        columns.len(),
        12,
        "the seed's 7 columns and the mediator's 5"
    );

    // The first command migrates it in place.
    env.run(&["list-vms"])
        .code(0)
        .stderr_has("note: adopted the database of the earlier vgpu-admin")
        .stdout_has("  Name: win10");
    assert_eq!(user_version(&env.db), vgpu_admin::store::latest_version());
    let check_table = |when: &str| {
        let conn = Connection::open(&env.db).unwrap();
        assert_eq!(
            vms_columns(&conn),
            columns,
            "{when}: columns and their order"
        );
        assert_eq!(vms_sql(&conn), sql, "{when}: the table was rebuilt");
    };
    check_table("after migrating");
    assert_eq!(mediator_values(&env, &u), Some((80, 25, 16, 1, 3)));

    // Registering: the new row gets the mediator's defaults.
    env.run(&["register-vm", &format!("--vm-uuid={other}"), "--pool=B"])
        .code(0);
    env.run(&["register-vm", &format!("--vm-uuid={third}")])
        .code(0);
    assert_eq!(mediator_values(&env, &other), Some((50, 0, 0, 0, 0)));
    check_table("after register-vm");

    // Changing a row keeps the mediator's values in it.
    let vm_arg = format!("--vm-uuid={u}");
    for args in [
        vec!["--yes", "set-pool", &vm_arg, "--pool=B"],
        vec!["--yes", "set-priority", &vm_arg, "--priority=low"],
        vec!["--yes", "set-vm-id", &vm_arg, "--vm-id=42"],
        vec![
            "--yes",
            "update-vm",
            &vm_arg,
            "--pool=A",
            "--priority=medium",
        ],
    ] {
        env.run(&args).code(0);
        assert_eq!(
            mediator_values(&env, &u),
            Some((80, 25, 16, 1, 3)),
            "{args:?}"
        );
    }
    assert_eq!(env.row(&u), Some((42, "A".into(), 1, Some("win10".into()))));
    assert_eq!(
        env.args(&u).as_deref(),
        Some("-device vgpu-stub,pool_id=A,priority=medium,vm_id=42")
    );
    env.run(&["set-hook-policy", "--policy=enforce"]).code(0);

    // Removing one row leaves the others and their values.
    env.run(&["--yes", "remove-vm", &format!("--vm-uuid={other}")])
        .code(0);
    assert_eq!(mediator_values(&env, &other), None);
    assert_eq!(mediator_values(&env, &u), Some((80, 25, 16, 1, 3)));
    assert_eq!(mediator_values(&env, &third), Some((50, 0, 0, 0, 0)));
    check_table("after every change");
    env.run(&["check"]).code(0);
}

#[test]
fn issue_11_mediator_columns_added_to_a_current_database_are_kept_too() {
    // Since issue 15 a current database has the mediator's columns already (migration 8): the
    // mediator, starting, finds 'weight' and adds nothing; what it writes there is kept.
    let env = Env::new();
    let (u, other) = (uuid(1), uuid(2));
    env.registered(vm(&u, "win10", "halted", Some(ARGS)), 7, "A", 2);
    env.host_vm(vm(&other, "db", "halted", None));
    {
        let conn = env.sql();
        let has_weight: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('vms') WHERE name = 'weight'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_weight, 1, "the mediator's check finds its column");
        conn.execute("UPDATE vms SET weight = 80 WHERE vm_uuid = ?1", [&u])
            .unwrap();
    }
    let (columns, sql) = {
        let conn = Connection::open(&env.db).unwrap();
        (vms_columns(&conn), vms_sql(&conn))
    };
    env.run(&["init"]).code(0);
    env.run(&["set-pool", &format!("--vm-uuid={u}"), "--pool=B"])
        .code(0);
    env.run(&["register-vm", &format!("--vm-uuid={other}")])
        .code(0);
    assert_eq!(mediator_values(&env, &u), Some((80, 0, 0, 0, 0)));
    assert_eq!(mediator_values(&env, &other), Some((50, 0, 0, 0, 0)));
    let conn = Connection::open(&env.db).unwrap();
    assert_eq!(vms_columns(&conn), columns);
    assert_eq!(vms_sql(&conn), sql);
}
