//! Rows as read from the database, leniently: a row the earlier tool let in although it is
//! invalid is still read, and [`VmRecord::problem`] says what is wrong with it.

use crate::model::{is_canonical_uuid, Pool, Priority, VmName, MAX_VM_ID};
use rusqlite::types::ValueRef;
use rusqlite::Row;

/// One row of `vms`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRecord {
    /// The vGPU vm_id (may be out of range in a database from the earlier tool).
    pub vm_id: i64,
    /// The VM uuid (may be empty or malformed in a database from the earlier tool).
    pub vm_uuid: String,
    /// The VM's name-label, if stored.
    pub vm_name: Option<String>,
    /// The pool letter.
    pub pool_id: String,
    /// The priority as stored: 0, 1 or 2.
    pub priority_level: i64,
    /// When the row was created (SQLite `CURRENT_TIMESTAMP`, UTC).
    pub created_at: String,
    /// When the row was last changed.
    pub updated_at: String,
    /// True when the VM runs with its previous settings until it is restarted.
    pub restart_pending: bool,
}

/// Reads a text column without failing on invalid UTF-8 or unexpected types.
fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

/// Reads an integer column (already `CAST AS INTEGER` in SQL); NULL reads as 0.
fn int(row: &Row<'_>, i: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => n,
        _ => 0,
    })
}

impl VmRecord {
    /// Builds a record from the columns selected by the store (see `VM_COLUMNS`).
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(VmRecord {
            vm_id: int(row, 0)?,
            vm_uuid: text(row, 1)?.unwrap_or_default(),
            vm_name: text(row, 2)?,
            pool_id: text(row, 3)?.unwrap_or_default(),
            priority_level: int(row, 4)?,
            created_at: text(row, 5)?.unwrap_or_default(),
            updated_at: text(row, 6)?.unwrap_or_default(),
            restart_pending: int(row, 7)? != 0,
        })
    }

    /// The priority, when the stored level is 0, 1 or 2.
    pub fn priority(&self) -> Option<Priority> {
        Priority::from_level(self.priority_level)
    }

    /// The priority word, or `unknown` for an out-of-range level.
    pub fn priority_word(&self) -> &'static str {
        self.priority().map_or("unknown", Priority::as_str)
    }

    /// The pool, when the stored letter is A or B.
    pub fn pool(&self) -> Option<Pool> {
        Pool::parse(&self.pool_id)
            .ok()
            .filter(|p| p.as_str() == self.pool_id)
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
    pub fn problem(&self) -> Option<String> {
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
            problems.push(format!("unknown pool '{}'", self.pool_id));
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Builds a record from the columns selected by the store.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PoolRecord {
            pool_id: text(row, 0)?.unwrap_or_default(),
            pool_name: text(row, 1)?.unwrap_or_default(),
            description: text(row, 2)?.filter(|d| !d.is_empty()),
            enabled: int(row, 3)? != 0,
            vm_count: int(row, 4)?,
            created_at: text(row, 5)?.unwrap_or_default(),
            updated_at: text(row, 6)?.unwrap_or_default(),
        })
    }
}
