//! The audit trail (migration 7): one row per change to a VM's configuration, written in the
//! change's own transaction, and a failed change's row saying how it failed.

use super::{RowValues, Store, StoreError};
use crate::model::{printable, Since, VmUuid};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// What every history row of this process names: the command, the user and the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The command (`set-pool`, `hook vm-pre-start`, `run`...).
    pub command: String,
    /// Who ran it (`SUDO_USER` or the login name).
    pub user: String,
    /// On which host.
    pub host: String,
}

/// One row of the history, as shown (`vgpu-admin history`, `vms::history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRecord {
    /// Its number (in the order written).
    pub id: i64,
    /// When (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub at: String,
    /// The command.
    pub command: String,
    /// The VM.
    pub vm_uuid: Option<String>,
    /// The configuration before (`None`: not registered).
    pub before: Option<RowValues>,
    /// The configuration after (`None`: not registered).
    pub after: Option<RowValues>,
    /// `done`, `failed: ...`, `interrupted: ...`, `args repaired: ...`, `recovered`.
    pub outcome: String,
    /// Who.
    pub user: String,
    /// Where.
    pub host: String,
}

/// Which rows to read. As a script's map: `#{vm_uuid, since}`; anything else is refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFilter {
    /// Only this VM.
    #[serde(default, alias = "uuid")]
    pub vm_uuid: Option<VmUuid>,
    /// Only rows written at or after this time.
    #[serde(default)]
    pub since: Option<Since>,
}

fn json(row: Option<&RowValues>) -> Option<String> {
    row.and_then(|r| serde_json::to_string(r).ok())
}

impl Store {
    /// Names the command, user and host of the history rows this store writes.
    pub fn set_origin(&self, origin: Origin) {
        *self.origin.borrow_mut() = origin;
    }

    /// Writes one history row on the open connection: inside the caller's transaction, so that
    /// the row and the change it records are committed together. `command` overrides the
    /// origin's (a change recorded by another command, finished by `recover`).
    pub(crate) fn history_insert(
        &self,
        command: Option<&str>,
        uuid: &str,
        before: Option<&RowValues>,
        after: Option<&RowValues>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        if !self.has_history {
            return Ok(());
        }
        let origin = self.origin.borrow();
        let command = command.unwrap_or(&origin.command);
        self.conn
            .execute(
                "INSERT INTO history (command, vm_uuid, config_before, config_after, outcome, user, host) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![command, uuid, json(before), json(after), outcome, origin.user, origin.host],
            )
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// Records a change that did not go through (its own short transaction): the configuration
    /// before, the one it tried, and how it ended.
    pub fn history_failed(
        &self,
        command: &str,
        uuid: &str,
        before: Option<&RowValues>,
        tried: Option<&RowValues>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx("recording a failed change")?;
        self.history_insert(Some(command), uuid, before, tried, outcome)?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// Records a change to the VM's args alone (the startup hook's repair): its configuration,
    /// unchanged in the database, before and after.
    pub fn history_note(&self, uuid: &str, outcome: &str) -> Result<(), StoreError> {
        let tx = self.write_tx("recording a repair")?;
        let row = self.vm(uuid)?.as_ref().map(RowValues::from);
        self.history_insert(None, uuid, row.as_ref(), row.as_ref(), outcome)?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// The rows matching `filter`, oldest first.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryRecord>, StoreError> {
        if !self.has_history {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, CAST(at AS TEXT), command, vm_uuid, config_before, config_after, \
                   outcome, user, host FROM history \
                 WHERE (?1 IS NULL OR vm_uuid = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY id",
            )
            .map_err(|e| self.classify(e))?;
        let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        let rows = stmt
            .query_map(
                params![
                    filter.vm_uuid.as_ref().map(VmUuid::as_str),
                    filter.since.as_ref().map(Since::as_str)
                ],
                |r| {
                    Ok(HistoryRecord {
                        id: r.get(0)?,
                        at: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        command: printable(&r.get::<_, String>(2)?).into_owned(),
                        vm_uuid: r.get(3)?,
                        before: parse(r.get(4)?),
                        after: parse(r.get(5)?),
                        outcome: printable(&r.get::<_, String>(6)?).into_owned(),
                        user: printable(&r.get::<_, String>(7)?).into_owned(),
                        host: printable(&r.get::<_, String>(8)?).into_owned(),
                    })
                },
            )
            .map_err(|e| self.classify(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.classify(e))
    }
}
