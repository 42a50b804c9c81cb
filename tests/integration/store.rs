//! The database file: schema, migrations, adopting the earlier tool's database, file mode,
//! read-only access and files that are not databases.

use crate::common::{uuid, Env};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;

/// (name, type, notnull, default, pk) for every column of `table`.
fn columns(conn: &Connection, table: &str) -> Vec<(String, String, bool, Option<String>, i64)> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn schema_sql(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT name, COALESCE(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn col(
    name: &str,
    ty: &str,
    notnull: bool,
    default: Option<&str>,
    pk: i64,
) -> (String, String, bool, Option<String>, i64) {
    (name.into(), ty.into(), notnull, default.map(Into::into), pk)
}

#[test]
fn fresh_database_has_exactly_the_specified_schema_and_pools() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    assert!(
        env.db.exists(),
        "database and its directory are created by init"
    );
    let mode = std::fs::metadata(&env.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode");

    let conn = Connection::open(&env.db).unwrap();
    assert_eq!(
        columns(&conn, "pools"),
        vec![
            col("pool_id", "CHAR(1)", false, None, 1),
            col("pool_name", "TEXT", true, None, 0),
            col("description", "TEXT", false, None, 0),
            col("enabled", "INTEGER", false, Some("1"), 0),
            col(
                "created_at",
                "TIMESTAMP",
                false,
                Some("CURRENT_TIMESTAMP"),
                0
            ),
            col(
                "updated_at",
                "TIMESTAMP",
                false,
                Some("CURRENT_TIMESTAMP"),
                0
            ),
        ]
    );
    assert_eq!(
        columns(&conn, "vms"),
        vec![
            col("vm_id", "INTEGER", true, None, 0),
            col("vm_uuid", "TEXT", true, None, 0),
            col("vm_name", "TEXT", false, None, 0),
            col("pool_id", "CHAR(1)", true, Some("'A'"), 0),
            col("priority", "INTEGER", true, Some("1"), 0),
            col(
                "created_at",
                "TIMESTAMP",
                false,
                Some("CURRENT_TIMESTAMP"),
                0
            ),
            col(
                "updated_at",
                "TIMESTAMP",
                false,
                Some("CURRENT_TIMESTAMP"),
                0
            ),
            // The GPU mediator's columns, exactly as it adds them (migration 8).
            col("weight", "INTEGER", true, Some("50"), 0),
            col("max_jobs_per_sec", "INTEGER", true, Some("0"), 0),
            col("max_queue_depth", "INTEGER", true, Some("0"), 0),
            col("quarantined", "INTEGER", true, Some("0"), 0),
            col("error_count", "INTEGER", true, Some("0"), 0),
        ]
    );
    let sql = schema_sql(&conn);
    let names: Vec<&str> = sql.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "change_journal",
            "history",
            "history_by_time",
            "history_by_vm",
            "idx_vm_pool",
            "idx_vm_priority",
            "idx_vm_uuid",
            "pools",
            "restart_pending",
            "settings",
            "sqlite_autoindex_change_journal_1",
            "sqlite_autoindex_pools_1",
            "sqlite_autoindex_restart_pending_1",
            "sqlite_autoindex_settings_1",
            "sqlite_autoindex_vms_1",
            "sqlite_autoindex_vms_2",
            "vms"
        ]
    );
    let settings: Vec<(String, String)> = conn
        .prepare("SELECT key, value FROM settings ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        settings,
        vec![
            ("hook_policy".into(), "warn".into()),
            ("hook_time_limit".into(), "10".into())
        ]
    );
    let vms_sql = &sql.iter().find(|(n, _)| n == "vms").unwrap().1;
    assert!(vms_sql.contains("CHECK(pool_id IN ('A', 'B'))"));
    assert!(vms_sql.contains("CHECK(priority IN (0, 1, 2))"));
    assert!(vms_sql.contains("FOREIGN KEY (pool_id) REFERENCES pools(pool_id)"));
    let pools: Vec<(String, String, i64)> = conn
        .prepare("SELECT pool_id, pool_name, enabled FROM pools ORDER BY pool_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        pools,
        vec![
            ("A".into(), "Pool A".into(), 1),
            ("B".into(), "Pool B".into(), 1)
        ]
    );
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, vgpu_admin::store::latest_version());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn opening_twice_changes_nothing() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let before = env.db_bytes();
    env.run(&["list-pools"]).code(0);
    env.run(&["status"]).code(5); // no host here
    assert_eq!(
        before,
        env.db_bytes(),
        "a second run must not rewrite the database"
    );
}

/// Builds a database the way the earlier C tool did (its init_db.sql), with rows it let in.
fn legacy_database(env: &Env) {
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    let conn = Connection::open(&env.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS pools (
            pool_id CHAR(1) PRIMARY KEY CHECK(pool_id IN ('A', 'B')),
            pool_name TEXT NOT NULL, description TEXT,
            enabled INTEGER DEFAULT 1 CHECK(enabled IN (0, 1)),
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE IF NOT EXISTS vms (
            vm_id INTEGER NOT NULL UNIQUE, vm_uuid TEXT UNIQUE NOT NULL, vm_name TEXT,
            pool_id CHAR(1) NOT NULL DEFAULT 'A' CHECK(pool_id IN ('A', 'B')),
            priority INTEGER NOT NULL DEFAULT 1 CHECK(priority IN (0, 1, 2)),
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            FOREIGN KEY (pool_id) REFERENCES pools(pool_id));
         CREATE INDEX IF NOT EXISTS idx_vm_uuid ON vms(vm_uuid);
         CREATE INDEX IF NOT EXISTS idx_vm_pool ON vms(pool_id);
         CREATE INDEX IF NOT EXISTS idx_vm_priority ON vms(priority);
         INSERT OR IGNORE INTO pools (pool_id, pool_name, enabled) VALUES ('A', 'Pool A', 1), ('B', 'Pool B', 1);
         INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at) VALUES
            (7, '7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8', 'win10', 'A', 2, '2025-05-01 10:00:00', '2025-05-01 10:00:00'),
            (-5, 'ABCDEF00-92F1-4B6A-B0C2-D3E4F5A6B7C8', NULL, 'B', 0, '2025-05-01 10:00:00', '2025-05-01 10:00:00'),
            (3, '', 'ghost', 'A', 1, '2025-05-01 10:00:00', '2025-05-01 10:00:00'),
            (4, 'not-a-uuid', 'typo', 'B', 1, '2025-05-01 10:00:00', '2025-05-01 10:00:00');",
    )
    .unwrap();
}

#[test]
fn database_of_the_earlier_tool_is_adopted_with_every_row() {
    let env = Env::new();
    legacy_database(&env);

    let out = env.run(&["list-vms"]);
    out.code(0)
        .stderr_has("adopted the database of the earlier vgpu-admin")
        .stdout_has("  UUID: 7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8\n  Name: win10\n  VM ID: 7\n  Pool: A\n  Priority: high (2)")
        .stdout_has("  VM ID: -5\n  Pool: B\n  Priority: low (0)")
        .stdout_has("  Invalid: vm_id -5 out of range 1..2147483647")
        .stdout_has("  UUID: \n  Name: ghost")
        .stdout_has("  Invalid: empty uuid")
        .stdout_has("  UUID: not-a-uuid\n  Name: typo")
        .stdout_has("  Invalid: malformed uuid");
    assert_eq!(out.stdout().matches("VM Configuration:").count(), 4);

    // The uuid stored in capitals was lowercased by migration 2 and is found again.
    env.run(&["show-vm", "--vm-uuid=abcdef00-92f1-4b6a-b0c2-d3e4f5a6b7c8"])
        .code(0)
        .stdout_has("  VM ID: -5");

    let json = env.run(&["--json", "list-vms"]).code(0).json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let invalid: Vec<bool> = rows.iter().map(|r| !r["invalid"].is_null()).collect();
    assert_eq!(
        invalid,
        vec![true, true, true, false],
        "ordered by vm_id: -5, 3, 4, 7"
    );

    for args in [
        vec!["list-pools"],
        vec!["show-pool", "--pool-id=A"],
        vec!["show-pool", "--pool-id=B"],
        vec!["status"],
        vec!["--json", "status"],
        vec!["list-vms", "--pool=B", "--priority=medium"],
    ] {
        // (status: no host here, 5)
        env.run(&args)
            .code(if args.contains(&"status") { 5 } else { 0 });
    }
    env.run(&["status"])
        .code(5)
        .stdout_has("    - ghost (ID: 3, Priority: medium)")
        .stdout_has("    - win10 (ID: 7, Priority: high)");

    let conn = Connection::open(&env.db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version,
        vgpu_admin::store::latest_version(),
        "user_version advanced"
    );
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM vms", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 4, "row count unchanged");
}

#[test]
fn read_only_database_still_serves_read_commands() {
    let env = Env::new();
    env.seed(&[(1, &uuid(1), Some("web"), "A", 2)]);
    // Run as an unprivileged user when we are root (root ignores file modes), else chmod.
    let probe = env.file("probe", "");
    let as_nobody = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(probe).unwrap()) == 0;
    let dir = env.db.parent().unwrap().to_path_buf();
    let writer = env.file(
        "write.rhai",
        &format!("vms::register(#{{ uuid: \"{}\" }});", uuid(2)),
    );
    for p in [env.dir.path(), dir.parent().unwrap(), &dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    if !as_nobody {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&writer, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = env.db_bytes();

    let run = |args: &[&str]| {
        let mut cmd = if as_nobody {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(assert_cmd::cargo::cargo_bin("vgpu-admin"));
            c
        } else {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("vgpu-admin"))
        };
        cmd.args(args)
            .env("VGPU_DB", &env.db)
            .env("VGPU_SCRIPTS", env.dir.path().join("none"));
        crate::common::Outcome::of(cmd, None)
    };
    run(&["list-vms"]).code(0).stdout_has("  Name: web");
    run(&["show-vm", &format!("--vm-uuid={}", uuid(1))]).code(0);
    run(&["status"]).code(5).stdout_has("VMs: 1");
    run(&["run", writer.to_str().unwrap()])
        .code(1)
        .stderr_has("read-only for this user");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(before, env.db_bytes());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let env = Env::new();
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    let junk = "this is a text file, not a database\n".repeat(200);
    std::fs::write(&env.db, &junk).unwrap();
    env.run(&["list-vms"])
        .code(1)
        .one_error_line()
        .stderr_has("is not a vgpu-admin database");
    assert_eq!(std::fs::read_to_string(&env.db).unwrap(), junk);
}

#[test]
fn an_unusable_database_path_is_a_clear_error() {
    let env = Env::new();
    let blocker = env.file("blocker", "a file where a directory should be");
    let out = env
        .command(["init"])
        .env("VGPU_DB", blocker.join("vgpu.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot open database"),
        "{stderr}"
    );
}
