//! Schema migrations: numbered SQL files from `migrations/`, applied in order, once each.
//!
//! The schema version is SQLite's `PRAGMA user_version`. A database made by the earlier C tool has
//! the same tables and version 0: migration 1 is written with `IF NOT EXISTS` so that it adopts such
//! a database in place, keeping every row.

use rusqlite::{Connection, TransactionBehavior};

/// One migration: its number (the schema version it produces), file name and SQL.
pub struct Migration {
    /// The schema version after this migration.
    pub version: i64,
    /// The file it comes from, for messages.
    pub name: &'static str,
    /// The SQL to run.
    pub sql: &'static str,
}

/// A migration from its number and the file in `migrations/` (the file name written once).
macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("../../migrations/", $file)),
        }
    };
}

/// Every migration, in order. Add new files here with the next number.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_initial_schema.sql"),
    migration!(2, "0002_lowercase_uuids.sql"),
    migration!(3, "0003_settings.sql"),
    migration!(4, "0004_restart_pending.sql"),
    migration!(5, "0005_change_journal.sql"),
    migration!(6, "0006_start_on.sql"),
    migration!(7, "0007_history.sql"),
    migration!(8, "0008_scheduler_controls.sql"),
    migration!(9, "0009_batches.sql"),
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What [`migrate`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found before migrating.
    pub from: i64,
    /// The version after migrating.
    pub to: i64,
    /// True when the database was made by the earlier tool (tables present, version 0).
    pub adopted_legacy: bool,
}

/// Reads `PRAGMA user_version`.
pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// True when the `vms` and `pools` tables exist.
pub fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('vms', 'pools')",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 2)
}

/// True when the table `name` exists.
pub fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// True when `table` has the column `column`.
pub fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The tables vgpu-admin (or the earlier tool) makes; no other may be in a database it changes.
const OUR_TABLES: &[&str] = &[
    "pools",
    "vms",
    "settings",
    "restart_pending",
    "change_journal",
    "history",
];

/// The columns `vms` must have for vgpu-admin to use it (other columns, such as the GPU
/// mediator's, are fine).
const VMS_COLUMNS: &[&str] = &["vm_id", "vm_uuid", "vm_name", "pool_id", "priority"];

/// What makes a database not ours, if anything: tables vgpu-admin does not make, or a `vms`
/// table without its columns. An empty database is ours to fill.
pub fn foreign_tables(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let unknown: Vec<&str> = tables
        .iter()
        .map(String::as_str)
        .filter(|t| !OUR_TABLES.contains(t))
        .collect();
    if !unknown.is_empty() {
        let shown: Vec<String> = unknown
            .iter()
            .take(5)
            .map(|t| format!("'{}'", crate::model::shown(t)))
            .collect();
        return Ok(Some(format!(
            "the table{} {}{}",
            if unknown.len() > 1 { "s" } else { "" },
            shown.join(", "),
            if unknown.len() > 5 { ", ..." } else { "" }
        )));
    }
    if tables.iter().any(|t| t == "vms") {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('vms')")?;
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let missing: Vec<&str> = VMS_COLUMNS
            .iter()
            .copied()
            .filter(|c| !columns.iter().any(|have| have == c))
            .collect();
        if !missing.is_empty() {
            return Ok(Some(format!(
                "a table 'vms' without the column{} {}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", ")
            )));
        }
    }
    Ok(None)
}

/// Runs one migration's SQL. An `ALTER TABLE t ADD COLUMN c ...` statement whose column is
/// already there (the GPU mediator adds its columns to `vms` itself) is skipped, so that such a
/// migration is a no-op on a database the mediator has extended.
fn run_migration(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let adds_column = |statement: &str| -> Option<(String, String)> {
        let words: Vec<&str> = statement.split_whitespace().collect();
        match words.as_slice() {
            [alter, table, t, add, column, c, ..]
                if alter.eq_ignore_ascii_case("ALTER")
                    && table.eq_ignore_ascii_case("TABLE")
                    && add.eq_ignore_ascii_case("ADD")
                    && column.eq_ignore_ascii_case("COLUMN") =>
            {
                Some((t.to_string(), c.to_string()))
            }
            _ => None,
        }
    };
    if !sql.lines().any(|l| adds_column(l.trim()).is_some()) {
        return conn.execute_batch(sql);
    }
    // Statement by statement (these files hold no ';' inside a statement).
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((table, column)) = adds_column(statement) {
            if has_column(conn, &table, &column)? {
                continue;
            }
        }
        conn.execute_batch(statement)?;
    }
    Ok(())
}

/// Applies every pending migration inside one `BEGIN IMMEDIATE` transaction.
///
/// Concurrent processes are safe: the second one waits for the first (busy timeout) and then finds
/// nothing left to do.
pub fn migrate(conn: &Connection) -> rusqlite::Result<MigrationReport> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let from = current_version(&tx)?;
    let adopted_legacy = from == 0 && has_tables(&tx)?;
    let mut to = from;
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        run_migration(&tx, m.sql)?;
        // PRAGMA takes no bound parameters; the version is our own constant.
        tx.execute_batch(&format!("PRAGMA user_version = {}", m.version))?;
        to = m.version;
    }
    tx.commit()?;
    Ok(MigrationReport {
        from,
        to,
        adopted_legacy,
    })
}
