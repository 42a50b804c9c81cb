//! Rows as read from the database, leniently, by column name: a row the earlier tool let in
//! although it is invalid is still read, and its `invalid` field says what is wrong with it.
//!
//! These types are the one list of a VM's and a pool's fields: scripts get them as maps, `--json`
//! prints them and templates read them, all through their `Serialize`. Adding a column to
//! `vms` (a migration) and a field here is all it takes for every one of those to show it.

use crate::model::{is_canonical_uuid, printable, Pool, Priority, VmName, MAX_VM_ID};
use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde::{Serialize, Serializer};

/// One row of `vms`, as stored, with what is shown of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmRecord {
    /// The VM uuid (may be empty or malformed in a database from the earlier tool; shown
    /// with control characters escaped).
    #[serde(serialize_with = "shown")]
    pub vm_uuid: String,
    /// The vGPU vm_id (may be out of range in a database from the earlier tool).
    pub vm_id: i64,
    /// The VM's name-label, if stored (shown with control characters escaped).
    #[serde(serialize_with = "shown_opt")]
    pub vm_name: Option<String>,
    /// The pool letter.
    pub pool_id: String,
    /// The priority word (`unknown` for a level out of range).
    pub priority: &'static str,
    /// The priority as stored: 0, 1 or 2.
    pub priority_level: i64,
    /// When the row was created (SQLite `CURRENT_TIMESTAMP`, UTC).
    pub created_at: String,
    /// When the row was last changed.
    pub updated_at: String,
    /// What is wrong with the row, if anything (rows the earlier tool let in).
    pub invalid: Option<String>,
    /// True when the VM runs with its previous settings until it is restarted.
    pub restart_pending: bool,
    /// The GPU mediator's scheduler weight, 1..100 (50 when the column is not there yet).
    pub weight: i64,
    /// The mediator's rate limit, jobs per second (0: unlimited).
    pub max_jobs_per_sec: i64,
    /// The mediator's limit of queued jobs (0: unlimited).
    pub max_queue_depth: i64,
    /// True when the mediator rejects the VM's new GPU submissions.
    pub quarantined: bool,
    /// The faults the mediator counted for the VM.
    pub error_count: i64,
}

fn shown<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&printable(text))
}

fn shown_opt<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => shown(t, s),
        None => s.serialize_none(),
    }
}

/// Reads a text column without failing on invalid UTF-8, unexpected types or a missing column.
fn text(row: &Row<'_>, name: &str) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(name) {
        Err(rusqlite::Error::InvalidColumnName(_)) => None,
        Err(e) => return Err(e),
        Ok(ValueRef::Null) => None,
        Ok(ValueRef::Integer(n)) => Some(n.to_string()),
        Ok(ValueRef::Real(f)) => Some(f.to_string()),
        Ok(ValueRef::Text(t) | ValueRef::Blob(t)) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

/// Reads an integer column as SQLite's `CAST(x AS INTEGER)` would (text: its leading number,
/// else 0); NULL or a missing column reads as `default`.
fn int(row: &Row<'_>, name: &str, default: i64) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(name) {
        Err(rusqlite::Error::InvalidColumnName(_)) => default,
        Err(e) => return Err(e),
        Ok(ValueRef::Null) => default,
        Ok(ValueRef::Integer(n)) => n,
        Ok(ValueRef::Real(f)) => f as i64,
        Ok(ValueRef::Text(t) | ValueRef::Blob(t)) => {
            let t = String::from_utf8_lossy(t);
            let t = t.trim_start();
            let end = t
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
                .map_or(t.len(), |(i, _)| i);
            t[..end].parse().unwrap_or(0)
        }
    })
}

impl VmRecord {
    /// Builds a record from a row of `SELECT vms.*, ... AS restart_pending`.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let mut record = VmRecord {
            vm_uuid: text(row, "vm_uuid")?.unwrap_or_default(),
            vm_id: int(row, "vm_id", 0)?,
            vm_name: text(row, "vm_name")?,
            pool_id: text(row, "pool_id")?.unwrap_or_default(),
            priority: "",
            priority_level: int(row, "priority", 0)?,
            created_at: text(row, "created_at")?.unwrap_or_default(),
            updated_at: text(row, "updated_at")?.unwrap_or_default(),
            invalid: None,
            restart_pending: int(row, "restart_pending", 0)? != 0,
            weight: int(row, "weight", crate::model::Weight::DEFAULT)?,
            max_jobs_per_sec: int(row, "max_jobs_per_sec", 0)?,
            max_queue_depth: int(row, "max_queue_depth", 0)?,
            quarantined: int(row, "quarantined", 0)? != 0,
            error_count: int(row, "error_count", 0)?,
        };
        record.derive();
        Ok(record)
    }

    /// A row not saved yet (what a preview or a dry run would store): no timestamps.
    pub fn unsaved(
        vm_uuid: String,
        vm_id: i64,
        vm_name: Option<String>,
        pool_id: String,
        priority_level: i64,
        restart_pending: bool,
    ) -> VmRecord {
        let mut record = VmRecord {
            vm_uuid,
            vm_id,
            vm_name,
            pool_id,
            priority: "",
            priority_level,
            created_at: String::new(),
            updated_at: String::new(),
            invalid: None,
            restart_pending,
            weight: crate::model::Weight::DEFAULT,
            max_jobs_per_sec: 0,
            max_queue_depth: 0,
            quarantined: false,
            error_count: 0,
        };
        record.derive();
        record
    }

    /// Fills in what is worked out from the stored values (after any of them changed).
    pub fn derive(&mut self) {
        self.priority = self.priority().map_or("unknown", Priority::as_str);
        self.invalid = self.problem();
    }

    /// The priority, when the stored level is 0, 1 or 2.
    pub fn priority(&self) -> Option<Priority> {
        Priority::from_level(self.priority_level)
    }

    /// The pool, when the stored letter is A or B.
    pub fn pool(&self) -> Option<Pool> {
        Pool::exact(&self.pool_id)
    }

    /// The vGPU configuration this row describes, when the row is valid.
    pub fn config(&self) -> Option<crate::model::VmConfig> {
        Some(crate::model::VmConfig {
            pool: self.pool()?,
            priority: self.priority()?,
            vm_id: crate::model::VmId::new(self.vm_id)?,
        })
    }

    /// What is wrong with this row, if anything (rows the earlier tool let in).
    fn problem(&self) -> Option<String> {
        let mut problems = Vec::new();
        if self.vm_uuid.is_empty() {
            problems.push("empty uuid".to_string());
        } else if !is_canonical_uuid(&self.vm_uuid) {
            problems.push("malformed uuid".to_string());
        } else if self.vm_uuid != self.vm_uuid.to_ascii_lowercase() {
            problems
                .push("uuid not in lowercase (another row holds the lowercase one)".to_string());
        }
        if !(1..=MAX_VM_ID).contains(&self.vm_id) {
            problems.push(format!("vm_id {} out of range 1..2147483647", self.vm_id));
        }
        if self.pool().is_none() {
            problems.push(format!("unknown pool '{}'", printable(&self.pool_id)));
        }
        if self.priority().is_none() {
            problems.push(format!("unknown priority {}", self.priority_level));
        }
        if let Some(name) = &self.vm_name {
            if let Err(e) = VmName::parse(name) {
                problems.push(e.to_string());
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// One row of `pools`, with the number of VMs in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolRecord {
    /// `A` or `B`.
    pub pool_id: String,
    /// The display name ("Pool A").
    pub pool_name: String,
    /// The optional description.
    pub description: Option<String>,
    /// Whether the pool is enabled.
    pub enabled: bool,
    /// How many VMs are registered in it.
    pub vm_count: i64,
    /// When the row was created.
    pub created_at: String,
    /// When the row was last changed.
    pub updated_at: String,
}

impl PoolRecord {
    /// Builds a record from a row of `SELECT pools.*, ... AS vm_count`.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PoolRecord {
            pool_id: text(row, "pool_id")?.unwrap_or_default(),
            pool_name: text(row, "pool_name")?.unwrap_or_default(),
            description: text(row, "description")?.filter(|d| !d.is_empty()),
            enabled: int(row, "enabled", 1)? != 0,
            vm_count: int(row, "vm_count", 0)?,
            created_at: text(row, "created_at")?.unwrap_or_default(),
            updated_at: text(row, "updated_at")?.unwrap_or_default(),
        })
    }
}
