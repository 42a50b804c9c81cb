//! The change journal (migration 5): what a change to a VM is about to do, written before the
//! VM is touched and removed when the change is complete, so that an interrupted change can be
//! completed or undone. Each write here is one short transaction: the database's write lock is
//! never held while xe runs.

use super::{HeldIds, Store, StoreError, VmRecord};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// What a change does to the VM's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Inserts the row.
    Register,
    /// Changes the row.
    Update,
    /// Deletes the row.
    Remove,
    /// Leaves the row: rewrites the args from it (and may restart the VM).
    Repair,
}

impl Op {
    /// The word stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Update => "update",
            Op::Remove => "remove",
            Op::Repair => "repair",
        }
    }

    fn parse(text: &str) -> Op {
        match text {
            "register" => Op::Register,
            "update" => Op::Update,
            "remove" => Op::Remove,
            _ => Op::Repair,
        }
    }
}

/// The values of a VM's row that a change sets (the columns vgpu-admin owns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowValues {
    /// vm_id.
    pub vm_id: i64,
    /// vm_name.
    pub vm_name: Option<String>,
    /// pool_id.
    pub pool_id: String,
    /// priority (0, 1, 2).
    pub priority: i64,
    /// The GPU mediator's controls (weight, rate, queue depth, quarantine), for the audit
    /// trail; `None` in rows written before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<Controls>,
}

/// The GPU mediator's per-VM controls, as the audit trail shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// weight.
    pub weight: i64,
    /// max_jobs_per_sec.
    pub max_jobs_per_sec: i64,
    /// max_queue_depth.
    pub max_queue_depth: i64,
    /// quarantined.
    pub quarantined: bool,
}

impl RowValues {
    /// True when both describe the same columns vgpu-admin's changes write (vm_id, name, pool,
    /// priority): the mediator's controls, which it may write itself meanwhile, do not count.
    pub fn same_row(a: Option<&RowValues>, b: Option<&RowValues>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                (a.vm_id, &a.vm_name, &a.pool_id, a.priority)
                    == (b.vm_id, &b.vm_name, &b.pool_id, b.priority)
            }
            (None, None) => true,
            _ => false,
        }
    }
}

impl From<&VmRecord> for RowValues {
    fn from(r: &VmRecord) -> Self {
        RowValues {
            vm_id: r.vm_id,
            vm_name: r.vm_name.clone(),
            pool_id: r.pool_id.clone(),
            priority: r.priority_level,
            controls: Some(Controls {
                weight: r.weight,
                max_jobs_per_sec: r.max_jobs_per_sec,
                max_queue_depth: r.max_queue_depth,
                quarantined: r.quarantined,
            }),
        }
    }
}

/// One change in progress (or interrupted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The VM.
    pub vm_uuid: String,
    /// The command that started it (`set-pool`).
    pub command: String,
    /// What it does to the row.
    pub op: Op,
    /// The row before (`None`: not registered).
    pub row_before: Option<RowValues>,
    /// The row after (`None`: removed).
    pub row_after: Option<RowValues>,
    /// device-model-args before (`None`: not set).
    pub args_before: Option<String>,
    /// device-model-args after (`None`: removed).
    pub args_after: Option<String>,
    /// The VM's power state when the change began.
    pub power_before: String,
    /// Whether the change stops and starts the VM.
    pub restart: bool,
    /// The host (uuid) a VM it stops is started on again: where it was resident.
    pub start_on: Option<String>,
    /// The run over many VMs it belongs to (how it was started: `set-pool --vm-id=1-7`), or
    /// `None` for a change of one VM. Finishing an interrupted change of such a run carries it
    /// forward when the VM was stopped for it (see `change::recover`).
    pub batch: Option<String>,
    /// What becomes of the VM's "restart pending" mark: set (it keeps running with the old
    /// values), cleared (halted, or restarted), or `None`: kept as it is.
    pub pending: Option<bool>,
    /// The last step completed: `planned`, `stopped`, `args written`, `saved`.
    pub step: String,
    /// The process that runs it.
    pub pid: i64,
    /// When it began.
    pub started_at: String,
}

fn to_json(row: &Option<RowValues>) -> Option<String> {
    row.as_ref().and_then(|r| serde_json::to_string(r).ok())
}

fn from_json(text: Option<String>) -> Option<RowValues> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Store {
    fn journal_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        Ok(Entry {
            vm_uuid: row.get(0)?,
            command: row.get(1)?,
            op: Op::parse(&row.get::<_, String>(2)?),
            row_before: from_json(row.get(3)?),
            row_after: from_json(row.get(4)?),
            args_before: row.get(5)?,
            args_after: row.get(6)?,
            power_before: row.get(7)?,
            restart: row.get::<_, i64>(8)? != 0,
            pending: row.get::<_, Option<i64>>(9)?.map(|p| p != 0),
            step: row.get(10)?,
            pid: row.get(11)?,
            started_at: row.get::<_, Option<String>>(12)?.unwrap_or_default(),
            start_on: row.get(13)?,
            batch: row.get(14)?,
        })
    }

    /// The columns read into an [`Entry`] (`start_on` is NULL in a journal older than schema 6,
    /// `batch` older than schema 9).
    fn journal_columns(&self) -> String {
        format!(
            "vm_uuid, command, op, row_before, row_after, args_before, args_after, power_before, \
             restart, pending, step, pid, CAST(started_at AS TEXT), {}, {}",
            if self.has_start_on {
                "start_on"
            } else {
                "NULL"
            },
            if self.has_batch { "batch" } else { "NULL" }
        )
    }

    /// Every change recorded in the journal.
    pub fn journal(&self) -> Result<Vec<Entry>, StoreError> {
        if !self.has_journal {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM change_journal ORDER BY started_at, vm_uuid",
            self.journal_columns()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([], Self::journal_row)
            .map_err(|e| self.classify(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.classify(e))
    }

    /// The change recorded for `uuid`, if any.
    pub fn journal_entry(&self, uuid: &str) -> Result<Option<Entry>, StoreError> {
        if !self.has_journal {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM change_journal WHERE vm_uuid = ?1",
            self.journal_columns()
        );
        self.conn
            .query_row(&sql, [uuid], Self::journal_row)
            .optional()
            .map_err(|e| self.classify(e))
    }

    /// Records a change before anything is touched: one transaction that also checks, again,
    /// that its vm_id is free (in the rows, in `held`, and among the other recorded changes),
    /// so that the id stays reserved until the change is complete.
    pub fn journal_begin(&self, entry: &Entry, held: &HeldIds) -> Result<(), StoreError> {
        let tx = self.write_tx("recording a change")?;
        if let Some(other) = self.journal_entry(&entry.vm_uuid)? {
            return Err(StoreError::Unfinished {
                uuid: other.vm_uuid,
                command: other.command,
            });
        }
        if let Some(after) = &entry.row_after {
            // An id the VM keeps was checked when it got it.
            if entry.row_before.as_ref().map(|r| r.vm_id) != Some(after.vm_id) {
                self.check_vm_id_free(after.vm_id, &entry.vm_uuid, held)?;
            }
        }
        tx.conn
            .execute(
                "INSERT INTO change_journal (vm_uuid, command, op, vm_id, row_before, row_after, \
                   args_before, args_after, power_before, restart, pending, step, pid, start_on, batch) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'planned', ?12, ?13, ?14)",
                params![
                    entry.vm_uuid,
                    entry.command,
                    entry.op.as_str(),
                    entry.row_after.as_ref().map(|r| r.vm_id),
                    to_json(&entry.row_before),
                    to_json(&entry.row_after),
                    entry.args_before,
                    entry.args_after,
                    entry.power_before,
                    entry.restart,
                    entry.pending,
                    i64::from(std::process::id()),
                    entry.start_on,
                    entry.batch,
                ],
            )
            .map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// Records the step a change has completed.
    pub fn journal_step(&self, uuid: &str, step: &str) -> Result<(), StoreError> {
        let tx = self.write_tx("recording a change")?;
        tx.conn
            .execute(
                "UPDATE change_journal SET step = ?2 WHERE vm_uuid = ?1",
                [uuid, step],
            )
            .map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// Removes a change from the journal (complete, or undone).
    pub fn journal_end(&self, uuid: &str) -> Result<(), StoreError> {
        if !self.has_journal {
            return Ok(());
        }
        let tx = self.write_tx("recording a change")?;
        tx.conn
            .execute("DELETE FROM change_journal WHERE vm_uuid = ?1", [uuid])
            .map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// Saves `entry`'s change: the VM's row becomes its `row_after` (`None`: deleted), its
    /// pending-restart mark its `pending` (`None`: kept), the step `saved`, and one history row
    /// says `outcome`: one transaction.
    pub fn journal_save(&self, entry: &Entry, outcome: &str) -> Result<(), StoreError> {
        let uuid = entry.vm_uuid.as_str();
        let row = entry.row_after.as_ref();
        let pending = entry.pending;
        let tx = self.write_tx("saving a change")?;
        // The audit trail, in the same transaction as the change it records.
        self.history_insert(
            Some(&entry.command),
            uuid,
            entry.row_before.as_ref(),
            row,
            outcome,
        )?;
        let exists = self.vm(uuid)?.is_some();
        let vm_id = row.map_or(0, |r| r.vm_id);
        let result = match (row, exists) {
            (Some(r), true) => tx.conn.execute(
                "UPDATE vms SET vm_id = ?2, vm_name = ?3, pool_id = ?4, priority = ?5, \
                   updated_at = CURRENT_TIMESTAMP WHERE vm_uuid = ?1 \
                   AND (vm_id IS NOT ?2 OR vm_name IS NOT ?3 OR pool_id IS NOT ?4 OR priority IS NOT ?5)",
                params![uuid, r.vm_id, r.vm_name, r.pool_id, r.priority],
            ),
            (Some(r), false) => tx.conn.execute(
                "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.vm_id, uuid, r.vm_name, r.pool_id, r.priority],
            ),
            (None, _) => tx
                .conn
                .execute("DELETE FROM vms WHERE vm_uuid = ?1", [uuid]),
        };
        result.map_err(|e| self.constraint_error(e, vm_id, uuid))?;
        let pending = if row.is_none() { Some(false) } else { pending };
        if let (true, Some(pending)) = (self.has_pending, pending) {
            let sql = if pending {
                "INSERT OR REPLACE INTO restart_pending (vm_uuid, since) VALUES (?1, CURRENT_TIMESTAMP)"
            } else {
                "DELETE FROM restart_pending WHERE vm_uuid = ?1"
            };
            tx.conn.execute(sql, [uuid]).map_err(|e| self.classify(e))?;
        }
        if self.has_journal {
            tx.conn
                .execute(
                    "UPDATE change_journal SET step = 'saved' WHERE vm_uuid = ?1",
                    [uuid],
                )
                .map_err(|e| self.classify(e))?;
        }
        tx.commit().map_err(|e| self.classify(e))
    }
}
