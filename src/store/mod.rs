//! The SQLite store: the only place in vgpu-admin that speaks SQL.
//!
//! One database file (WAL mode, a busy timeout, foreign keys on), created with mode 0600 on first
//! use and migrated in place. Rows the earlier tool let in although they are invalid are read
//! leniently and reported through [`VmRecord::problem`], never by failing.

mod history;
mod journal;
mod migrations;
mod records;

pub use history::{HistoryFilter, HistoryRecord, Origin};
pub use journal::{Entry as JournalEntry, Op, RowValues};
pub use migrations::{latest_version, MigrationReport, MIGRATIONS};
pub use records::{PoolRecord, VmRecord};

use crate::model::{Pool, Priority, VmId, VmName, VmUuid, MAX_VM_ID};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default database path, shared with the earlier tool.
pub const DEFAULT_DB_PATH: &str = "/etc/vgpu/vgpu_config.db";

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be created or opened.
    #[error("cannot open database {path}: {reason}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// There is no database file (and this command does not create one).
    #[error("no database at {path}: nothing is registered there yet ('vgpu-admin init' or the first change creates it; check --db)")]
    Missing {
        /// The database path.
        path: PathBuf,
    },
    /// An SQLite database of something else: not ours to change.
    #[error("{path} is not a vgpu-admin database: it holds {found}; nothing was changed")]
    Foreign {
        /// The database path.
        path: PathBuf,
        /// What was found.
        found: String,
    },
    /// A database written by a newer vgpu-admin: read, but not changed.
    #[error("database {path} has schema version {version}, newer than this vgpu-admin's ({ours}): upgrade vgpu-admin to change anything; nothing was changed")]
    NewerSchema {
        /// The database path.
        path: PathBuf,
        /// Its version.
        version: i64,
        /// Ours.
        ours: i64,
    },
    /// The file exists but is not an SQLite database.
    #[error("{path} is not a vgpu-admin database (not an SQLite file); nothing was changed")]
    NotADatabase {
        /// The database path.
        path: PathBuf,
    },
    /// A change was asked for but the database can only be read.
    #[error("database {path} is read-only for this user: {what} needs write access")]
    ReadOnly {
        /// The database path.
        path: PathBuf,
        /// What was attempted.
        what: String,
    },
    /// The database holds neither our schema nor the earlier tool's, and cannot be migrated.
    #[error(
        "database {path} has no vgpu-admin tables and is read-only, so they cannot be created"
    )]
    NoSchema {
        /// The database path.
        path: PathBuf,
    },
    /// The uuid is registered already.
    #[error("VM {0} is already registered")]
    AlreadyRegistered(String),
    /// The vm-id is carried by the device of a VM of the host.
    #[error("vm-id {vm_id} is carried by the vGPU device of VM {by}; choose another vm-id (or adopt that VM)")]
    VmIdCarried {
        /// The vm-id asked for.
        vm_id: i64,
        /// The VM whose device-model-args carry it.
        by: String,
    },
    /// The vm-id belongs to another VM.
    #[error("vm-id {vm_id} is already taken by VM {by}")]
    VmIdTaken {
        /// The vm-id asked for.
        vm_id: i64,
        /// The uuid of the VM that holds it.
        by: String,
    },
    /// No free vm-id is left in 1..=2147483647.
    #[error("no free vm-id is left (1..=2147483647 are all taken)")]
    NoFreeVmId,
    /// A change to the VM is recorded and not finished.
    #[error("an unfinished change to VM {uuid} ({command}) is recorded: 'vgpu-admin recover' completes or undoes it")]
    Unfinished {
        /// The VM.
        uuid: String,
        /// The command that started it.
        command: String,
    },
    /// The VM is not in the database.
    #[error("VM {0} is not registered")]
    NotRegistered(String),
    /// Another process held the database longer than the busy timeout.
    #[error("database {path} is locked by another process (waited {secs} s); try again")]
    Busy {
        /// The database path.
        path: PathBuf,
        /// The seconds waited.
        secs: u64,
    },
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True for errors caused by the admin's input (exit status 2).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StoreError::AlreadyRegistered(_)
                | StoreError::VmIdTaken { .. }
                | StoreError::VmIdCarried { .. }
        )
    }

    /// True for "not registered" (exit status 3).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotRegistered(_))
    }
}

/// Which VMs to list or count. As a script's map: `#{pool, priority}` (`pool_id` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmFilter {
    /// Only this pool.
    #[serde(default, alias = "pool_id")]
    pub pool: Option<Pool>,
    #[serde(default)]
    /// Only this priority.
    pub priority: Option<Priority>,
}

/// A VM to register. As a script's map: `#{uuid, name, pool, priority, vm_id}` (the column
/// names `vm_uuid`, `vm_name`, `pool_id` too); anything else is refused.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVm {
    /// Its uuid.
    #[serde(alias = "vm_uuid")]
    pub uuid: VmUuid,
    /// Its name-label, if known.
    #[serde(default, alias = "vm_name")]
    pub name: Option<VmName>,
    /// Its pool (A when not given).
    #[serde(default, alias = "pool_id", deserialize_with = "or_default")]
    pub pool: Pool,
    /// Its priority (medium when not given).
    #[serde(default, deserialize_with = "or_default")]
    pub priority: Priority,
    /// Its vm-id; `None` takes the next free one, atomically.
    #[serde(default)]
    pub vm_id: Option<VmId>,
}

/// A value, or its default when the script gave `()`.
fn or_default<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(<Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

/// Changes to a registered VM; `None` keeps the current value. As a script's map:
/// `#{name, pool, priority, vm_id}`; anything else is refused.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmChanges {
    /// New name-label.
    #[serde(default, alias = "vm_name")]
    pub name: Option<VmName>,
    /// New pool.
    #[serde(default, alias = "pool_id")]
    pub pool: Option<Pool>,
    /// New priority.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// New vm-id.
    #[serde(default)]
    pub vm_id: Option<VmId>,
    /// New scheduler weight (the GPU mediator reads it live).
    #[serde(default)]
    pub weight: Option<crate::model::Weight>,
    /// New rate limit, jobs per second (0: unlimited).
    #[serde(default)]
    pub max_jobs_per_sec: Option<crate::model::Limit>,
    /// New limit of queued jobs (0: unlimited).
    #[serde(default)]
    pub max_queue_depth: Option<crate::model::Limit>,
    /// Quarantine on or off.
    #[serde(default)]
    pub quarantined: Option<bool>,
    /// A new error count (`clear-quarantine` sets 0).
    #[serde(default)]
    pub error_count: Option<crate::model::Limit>,
}

/// An open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    read_only: bool,
    migration: MigrationReport,
    /// The database has the `restart_pending` table (a read-only older one may not).
    has_pending: bool,
    /// The database has the `change_journal` table.
    has_journal: bool,
    /// The journal records where a restarted VM is started (schema 6).
    has_start_on: bool,
    /// The journal records which run over many VMs a change belongs to (schema 9).
    has_batch: bool,
    /// The database has the `history` table (schema 7).
    has_history: bool,
    /// What the history rows written through this store name.
    origin: std::cell::RefCell<Origin>,
    /// The schema version is newer than ours: reads only.
    newer: Option<i64>,
}

/// What a VM row is read as: every column of `vms` (by name: [`VmRecord::from_row`]), and
/// the pending-restart mark; `{pending}` is filled in by [`Store::vm_columns`].
const VM_COLUMNS: &str = "vms.*, {pending} AS restart_pending";

/// The pending-restart flag of a row (migration 4).
const PENDING_COLUMN: &str =
    "EXISTS (SELECT 1 FROM restart_pending p WHERE p.vm_uuid = vms.vm_uuid)";

/// Ids of the vGPU devices the host's VMs carry that the database does not know of: a vm_id to
/// the VM carrying it (as shown in messages). They count as taken.
pub type HeldIds = std::collections::BTreeMap<i64, String>;

impl Store {
    /// Opens and migrates the database at `path`; with `create`, a missing file (and its
    /// directory) is created first, else it is [`StoreError::Missing`].
    ///
    /// Only a database that is empty or holds vgpu-admin's tables (those of the earlier tool
    /// included) is migrated; any other is [`StoreError::Foreign`] and left untouched. A
    /// database the current user cannot write is opened read-only, and one with a newer schema
    /// is read as it is: reads work, writes fail with [`StoreError::ReadOnly`] or
    /// [`StoreError::NewerSchema`].
    pub fn open(path: &Path, create: bool) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            if !create {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            create_database_file(path).map_err(|e| open_err(e.to_string()))?;
        } else if path.is_dir() {
            return Err(open_err("it is a directory".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(e.to_string()))?;
        let read_only = conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| open_err(e.to_string()))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_only,
            migration: MigrationReport::default(),
            has_pending: false,
            has_journal: false,
            has_start_on: false,
            has_batch: false,
            has_history: false,
            origin: std::cell::RefCell::new(Origin::default()),
            newer: None,
        };
        store.configure()?;
        store.has_pending =
            migrations::has_table(&store.conn, "restart_pending").map_err(|e| store.classify(e))?;
        store.has_journal =
            migrations::has_table(&store.conn, "change_journal").map_err(|e| store.classify(e))?;
        store.has_history =
            migrations::has_table(&store.conn, "history").map_err(|e| store.classify(e))?;
        store.has_start_on = store.has_journal
            && migrations::has_column(&store.conn, "change_journal", "start_on")
                .map_err(|e| store.classify(e))?;
        store.has_batch = store.has_journal
            && migrations::has_column(&store.conn, "change_journal", "batch")
                .map_err(|e| store.classify(e))?;
        Ok(store)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn.execute_batch("PRAGMA foreign_keys = ON")?;
        // The first read tells an SQLite file from anything else.
        let version = match migrations::current_version(&self.conn) {
            Ok(v) => v,
            Err(e) if self.read_only && needs_shm_write(&e) => {
                // A WAL database whose -shm file this user may not create: read it as immutable.
                self.reopen_immutable()?;
                migrations::current_version(&self.conn).map_err(|e| self.classify(e))?
            }
            Err(e) => return Err(self.classify(e)),
        };
        // Ours, the earlier tool's, or empty: anything else is left alone. (A newer schema may
        // hold tables of later versions: it is only read.)
        let foreign = if version <= latest_version() {
            migrations::foreign_tables(&self.conn).map_err(|e| self.classify(e))?
        } else {
            None
        };
        if let Some(found) = foreign {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                found,
            });
        }
        if version > latest_version() {
            self.newer = Some(version);
            crate::output::stderr_line(&format!(
                "warning: database {} has schema version {version}, newer than this vgpu-admin's ({}): reading only",
                self.path.display(),
                latest_version()
            ));
        }
        if self.read_only || self.newer.is_some() {
            if !migrations::has_tables(&self.conn).map_err(|e| self.classify(e))? {
                return Err(StoreError::NoSchema {
                    path: self.path.clone(),
                });
            }
            self.migration = MigrationReport {
                from: version,
                to: version,
                adopted_legacy: false,
            };
            return Ok(());
        }
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.classify(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: self.path.clone(),
                reason: format!("could not switch to WAL mode (journal mode is {mode})"),
            });
        }
        self.migration = if version >= latest_version() {
            MigrationReport {
                from: version,
                to: version,
                adopted_legacy: false,
            }
        } else {
            migrations::migrate(&self.conn).map_err(|e| self.classify(e))?
        };
        Ok(())
    }

    fn reopen_immutable(&mut self) -> Result<(), StoreError> {
        let uri = format!("file:{}?immutable=1", self.path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        self.conn = Connection::open_with_flags(uri, flags).map_err(|e| StoreError::Open {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// Turns an SQLite error into the clearest [`StoreError`].
    fn classify(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
                path: self.path.clone(),
            },
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy {
                path: self.path.clone(),
                secs: BUSY_TIMEOUT.as_secs(),
            },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
                path: self.path.clone(),
                what: "this change".into(),
            },
            _ => StoreError::Sqlite(e),
        }
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening the database migrated.
    pub fn migration(&self) -> &MigrationReport {
        &self.migration
    }

    /// Fails the way a write would when this database cannot be written (read-only, newer).
    pub fn ensure_writable(&self, what: &str) -> Result<(), StoreError> {
        if let Some(version) = self.newer {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                version,
                ours: latest_version(),
            });
        }
        if self.read_only {
            Err(StoreError::ReadOnly {
                path: self.path.clone(),
                what: what.to_string(),
            })
        } else {
            Ok(())
        }
    }

    fn write_tx(&self, what: &str) -> Result<WriteTx<'_>, StoreError> {
        self.ensure_writable(what)?;
        WriteTx::begin(&self.conn).map_err(|e| self.classify(e))
    }

    /// The columns of a VM row, for [`VmRecord::from_row`].
    fn vm_columns(&self) -> String {
        VM_COLUMNS.replace(
            "{pending}",
            if self.has_pending {
                PENDING_COLUMN
            } else {
                "0"
            },
        )
    }

    /// Marks a VM as running with its previous settings until it restarts, or clears the mark.
    pub fn set_restart_pending(&self, uuid: &str, pending: bool) -> Result<(), StoreError> {
        if !pending && (!self.has_pending || !self.vm(uuid)?.is_some_and(|v| v.restart_pending)) {
            return Ok(()); // nothing to clear: no write, no lock
        }
        let tx = self.write_tx("recording a pending restart")?;
        let sql = if pending {
            "INSERT OR REPLACE INTO restart_pending (vm_uuid, since) VALUES (?1, CURRENT_TIMESTAMP)"
        } else {
            "DELETE FROM restart_pending WHERE vm_uuid = ?1"
        };
        tx.conn.execute(sql, [uuid]).map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// Both pools with their VM counts, A first.
    pub fn pools(&self) -> Result<Vec<PoolRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.*, (SELECT COUNT(*) FROM vms v WHERE v.pool_id = p.pool_id) AS vm_count \
             FROM pools p ORDER BY p.pool_id",
        )?;
        let rows = stmt.query_map([], PoolRecord::from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.classify(e))
    }

    /// One pool, or `None` when its row is missing.
    pub fn pool(&self, pool: Pool) -> Result<Option<PoolRecord>, StoreError> {
        Ok(self
            .pools()?
            .into_iter()
            .find(|p| p.pool_id == pool.as_str()))
    }

    /// Calls `each` for every VM matching `filter`, ordered by vm_id, without holding them all in
    /// memory. Stops at the first error `each` returns.
    pub fn for_each_vm<E: From<StoreError>>(
        &self,
        filter: VmFilter,
        mut each: impl FnMut(VmRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "SELECT {} FROM vms \
             WHERE (?1 IS NULL OR pool_id = ?1) AND (?2 IS NULL OR priority = ?2) \
             ORDER BY vm_id, vm_uuid",
            self.vm_columns()
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| E::from(self.classify(e)))?;
        let pool = filter.pool.map(Pool::as_str);
        let priority = filter.priority.map(Priority::level);
        let mut rows = stmt
            .query(params![pool, priority])
            .map_err(|e| E::from(self.classify(e)))?;
        while let Some(row) = rows.next().map_err(|e| E::from(self.classify(e)))? {
            let record = VmRecord::from_row(row).map_err(|e| E::from(self.classify(e)))?;
            each(record)?;
        }
        Ok(())
    }

    /// Every VM matching `filter`, ordered by vm_id.
    pub fn vms(&self, filter: VmFilter) -> Result<Vec<VmRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_vm(filter, |vm| {
            out.push(vm);
            Ok::<(), StoreError>(())
        })?;
        Ok(out)
    }

    /// How many VMs match `filter`.
    pub fn count_vms(&self, filter: VmFilter) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT COUNT(*) FROM vms \
             WHERE (?1 IS NULL OR pool_id = ?1) AND (?2 IS NULL OR priority = ?2)",
        )?;
        let pool = filter.pool.map(Pool::as_str);
        let priority = filter.priority.map(Priority::level);
        stmt.query_row(params![pool, priority], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    /// The VM registered under `uuid` (compared exactly; canonical uuids are lowercase).
    pub fn vm(&self, uuid: &str) -> Result<Option<VmRecord>, StoreError> {
        let sql = format!("SELECT {} FROM vms WHERE vm_uuid = ?1", self.vm_columns());
        let mut stmt = self.conn.prepare_cached(&sql)?;
        stmt.query_row([uuid], VmRecord::from_row)
            .optional()
            .map_err(|e| self.classify(e))
    }

    /// The VM holding `vm_id`, if any.
    pub fn vm_by_id(&self, vm_id: i64) -> Result<Option<VmRecord>, StoreError> {
        let sql = format!("SELECT {} FROM vms WHERE vm_id = ?1", self.vm_columns());
        let mut stmt = self.conn.prepare_cached(&sql)?;
        stmt.query_row([vm_id], VmRecord::from_row)
            .optional()
            .map_err(|e| self.classify(e))
    }

    /// A site setting (see migration 3), or `None` when it is not set (or the database predates
    /// settings and is read-only).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let has_table: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'settings'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.classify(e))?;
        if has_table == 0 {
            return Ok(None);
        }
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.classify(e))
    }

    /// Sets a site setting; the caller validates the value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let tx = self.write_tx("changing a setting")?;
        tx.conn
            .execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, CURRENT_TIMESTAMP) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = CURRENT_TIMESTAMP",
                [key, value],
            )
            .map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))
    }

    /// The vm-id `register` would assign now: free in the database, not in `held` and not
    /// reserved by an unfinished change.
    pub fn next_vm_id(&self, held: &HeldIds) -> Result<i64, StoreError> {
        let mut taken = held.clone();
        if self.has_journal {
            let mut stmt = self.conn.prepare_cached(
                "SELECT vm_id, vm_uuid FROM change_journal WHERE vm_id IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, uuid) = row?;
                taken.insert(id, uuid);
            }
        }
        next_free_vm_id(&self.conn, &taken).map_err(|e| self.classify(e))?
    }

    /// What [`Store::register`] would store, checked the same way (uuid not registered, vm-id
    /// free and not in `held`), without writing anything. The timestamps are empty.
    pub fn preview_register(&self, vm: &NewVm, held: &HeldIds) -> Result<VmRecord, StoreError> {
        if self.vm(vm.uuid.as_str())?.is_some() {
            return Err(StoreError::AlreadyRegistered(vm.uuid.to_string()));
        }
        let vm_id = match vm.vm_id {
            Some(id) => {
                self.check_vm_id_free(id.get(), vm.uuid.as_str(), held)?;
                id.get()
            }
            None => self.next_vm_id(held)?,
        };
        Ok(VmRecord::unsaved(
            vm.uuid.to_string(),
            vm_id,
            vm.name.as_ref().map(|n| n.to_string()),
            vm.pool.to_string(),
            vm.priority.level(),
            false,
        ))
    }

    /// What [`Store::update`] would leave, checked the same way, without writing anything.
    pub fn preview_update(
        &self,
        uuid: &str,
        changes: &VmChanges,
        held: &HeldIds,
    ) -> Result<VmRecord, StoreError> {
        let mut row = self
            .vm(uuid)?
            .ok_or_else(|| StoreError::NotRegistered(uuid.to_string()))?;
        if let Some(id) = changes.vm_id.filter(|id| id.get() != row.vm_id) {
            self.check_vm_id_free(id.get(), uuid, held)?;
            row.vm_id = id.get();
        }
        if let Some(name) = &changes.name {
            row.vm_name = Some(name.to_string());
        }
        if let Some(pool) = changes.pool {
            row.pool_id = pool.to_string();
        }
        if let Some(priority) = changes.priority {
            row.priority_level = priority.level();
        }
        if let Some(weight) = changes.weight {
            row.weight = weight.get();
        }
        if let Some(rate) = changes.max_jobs_per_sec {
            row.max_jobs_per_sec = rate.get();
        }
        if let Some(depth) = changes.max_queue_depth {
            row.max_queue_depth = depth.get();
        }
        if let Some(quarantined) = changes.quarantined {
            row.quarantined = quarantined;
        }
        if let Some(count) = changes.error_count {
            row.error_count = count.get();
        }
        row.derive();
        Ok(row)
    }

    /// Registers a VM in one `BEGIN IMMEDIATE` transaction; a missing vm-id takes the next free
    /// one inside the same transaction, so concurrent processes never get the same id.
    pub fn register(&self, vm: &NewVm, held: &HeldIds) -> Result<VmRecord, StoreError> {
        self.register_saying(vm, held, "done")
    }

    /// Registers a VM the pool database records (registered on another host of the pool): as
    /// [`Store::register`], its history row saying where the configuration came from.
    pub fn register_from_pool(&self, vm: &NewVm) -> Result<VmRecord, StoreError> {
        self.register_saying(
            vm,
            &HeldIds::new(),
            "written from the VM's pool record (registered on another host of the pool)",
        )
    }

    fn register_saying(
        &self,
        vm: &NewVm,
        held: &HeldIds,
        outcome: &str,
    ) -> Result<VmRecord, StoreError> {
        let tx = self.write_tx("registering a VM")?;
        // The same checks as the preview, inside the transaction: nobody can slip in between.
        let row = self.preview_register(vm, held)?;
        tx.conn
            .prepare_cached(
                "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    row.vm_id,
                    row.vm_uuid,
                    row.vm_name,
                    row.pool_id,
                    row.priority_level
                ])
            })
            .map_err(|e| self.constraint_error(e, row.vm_id, &row.vm_uuid))?;
        self.history_insert(
            None,
            &row.vm_uuid,
            None,
            Some(&RowValues::from(&row)),
            outcome,
        )?;
        tx.commit().map_err(|e| self.classify(e))?;
        self.vm(vm.uuid.as_str())?
            .ok_or_else(|| StoreError::NotRegistered(vm.uuid.to_string()))
    }

    /// Applies `changes` to a registered VM; returns the row before and after.
    pub fn update(
        &self,
        uuid: &str,
        changes: &VmChanges,
        held: &HeldIds,
    ) -> Result<(VmRecord, VmRecord), StoreError> {
        self.update_saying(uuid, changes, held, "done")
    }

    /// Like [`Store::update`], its history row saying `outcome`.
    pub fn update_saying(
        &self,
        uuid: &str,
        changes: &VmChanges,
        held: &HeldIds,
        outcome: &str,
    ) -> Result<(VmRecord, VmRecord), StoreError> {
        let tx = self.write_tx("changing a VM")?;
        let before = self
            .vm(uuid)?
            .ok_or_else(|| StoreError::NotRegistered(uuid.to_string()))?;
        // The same checks as the preview, inside the transaction.
        self.preview_update(uuid, changes, held)?;
        tx.conn
            .execute(
                "UPDATE vms SET vm_name = COALESCE(?2, vm_name), pool_id = COALESCE(?3, pool_id), \
                    priority = COALESCE(?4, priority), vm_id = COALESCE(?5, vm_id), \
                    weight = COALESCE(?6, weight), \
                    max_jobs_per_sec = COALESCE(?7, max_jobs_per_sec), \
                    max_queue_depth = COALESCE(?8, max_queue_depth), \
                    quarantined = COALESCE(?9, quarantined), \
                    error_count = COALESCE(?10, error_count), \
                    updated_at = CURRENT_TIMESTAMP \
             WHERE vm_uuid = ?1",
                params![
                    uuid,
                    changes.name.as_ref().map(VmName::as_str),
                    changes.pool.map(Pool::as_str),
                    changes.priority.map(Priority::level),
                    changes.vm_id.map(VmId::get),
                    changes.weight.map(crate::model::Weight::get),
                    changes.max_jobs_per_sec.map(crate::model::Limit::get),
                    changes.max_queue_depth.map(crate::model::Limit::get),
                    changes.quarantined,
                    changes.error_count.map(crate::model::Limit::get)
                ],
            )
            .map_err(|e| self.constraint_error(e, changes.vm_id.map_or(0, VmId::get), uuid))?;
        let after = self
            .vm(uuid)?
            .ok_or_else(|| StoreError::NotRegistered(uuid.to_string()))?;
        self.history_insert(
            None,
            uuid,
            Some(&RowValues::from(&before)),
            Some(&RowValues::from(&after)),
            outcome,
        )?;
        tx.commit().map_err(|e| self.classify(e))?;
        Ok((before, after))
    }

    /// Deletes a registered VM; returns the removed row.
    pub fn remove(&self, uuid: &str) -> Result<VmRecord, StoreError> {
        let tx = self.write_tx("removing a VM")?;
        let before = self
            .vm(uuid)?
            .ok_or_else(|| StoreError::NotRegistered(uuid.to_string()))?;
        tx.conn
            .execute("DELETE FROM vms WHERE vm_uuid = ?1", [uuid])
            .map_err(|e| self.classify(e))?;
        self.history_insert(None, uuid, Some(&RowValues::from(&before)), None, "done")?;
        if self.has_pending {
            tx.conn
                .execute("DELETE FROM restart_pending WHERE vm_uuid = ?1", [uuid])
                .map_err(|e| self.classify(e))?;
        }
        tx.commit().map_err(|e| self.classify(e))?;
        Ok(before)
    }

    /// Runs `work` inside one write transaction: everything it does through this store is
    /// committed together, or nothing is when it returns an error (or the process dies).
    pub fn batch<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.write_tx("this change")?;
        let value = work()?;
        tx.commit().map_err(|e| E::from(self.classify(e)))?;
        Ok(value)
    }

    fn check_vm_id_free(
        &self,
        vm_id: i64,
        own_uuid: &str,
        held: &HeldIds,
    ) -> Result<(), StoreError> {
        match self.vm_by_id(vm_id)? {
            Some(other) if other.vm_uuid != own_uuid => Err(StoreError::VmIdTaken {
                vm_id,
                by: other.vm_uuid,
            }),
            _ => match held.get(&vm_id) {
                Some(by) => Err(StoreError::VmIdCarried {
                    vm_id,
                    by: by.clone(),
                }),
                None => match self.reserved_by(vm_id, own_uuid)? {
                    Some(by) => Err(StoreError::VmIdTaken { vm_id, by }),
                    None => Ok(()),
                },
            },
        }
    }

    /// The VM whose recorded, unfinished change reserves `vm_id` (other than `own_uuid`).
    fn reserved_by(&self, vm_id: i64, own_uuid: &str) -> Result<Option<String>, StoreError> {
        if !self.has_journal {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT vm_uuid FROM change_journal WHERE vm_id = ?1 AND vm_uuid <> ?2",
                params![vm_id, own_uuid],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.classify(e))
    }

    /// True while a write transaction is open (`vms::transaction`).
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// A unique-constraint failure is the last guard against a race: report it as such.
    fn constraint_error(&self, e: rusqlite::Error, vm_id: i64, uuid: &str) -> StoreError {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            let text = e.to_string();
            if text.contains("vms.vm_uuid") {
                return StoreError::AlreadyRegistered(uuid.to_string());
            }
            if text.contains("vms.vm_id") {
                let by = self
                    .vm_by_id(vm_id)
                    .ok()
                    .flatten()
                    .map_or_else(|| "another VM".to_string(), |r| r.vm_uuid);
                return StoreError::VmIdTaken { vm_id, by };
            }
        }
        self.classify(e)
    }
}

/// The next free vm-id: one above the highest, or the lowest gap once the top is reached;
/// ids in `held` are skipped.
fn next_free_vm_id(conn: &Connection, held: &HeldIds) -> rusqlite::Result<Result<i64, StoreError>> {
    // MAX(vm_id) is answered from the unique index on vm_id; only a database holding a
    // non-integer vm_id (the earlier tool checked nothing) needs the slow, converting scan.
    let top: Option<i64> = conn
        .prepare_cached("SELECT MAX(vm_id) FROM vms")?
        .query_row([], |r| {
            Ok(match r.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(n) => Some(n),
                rusqlite::types::ValueRef::Null => Some(0),
                _ => None,
            })
        })?;
    let max = match top {
        Some(n) => n,
        None => conn.query_row(
            "SELECT COALESCE(MAX(CAST(vm_id AS INTEGER)), 0) FROM vms",
            [],
            |r| r.get(0),
        )?,
    };
    let mut candidate = max.max(0) + 1;
    while held.contains_key(&candidate) {
        candidate += 1;
    }
    if candidate <= MAX_VM_ID {
        return Ok(Ok(candidate));
    }
    // The top is reached: the lowest id from `from` on that no row has, skipping held ones.
    let mut from = 1;
    loop {
        let gap: Option<i64> = conn.query_row(
            "SELECT MIN(c) FROM (SELECT ?1 AS c WHERE NOT EXISTS (SELECT 1 FROM vms WHERE vm_id = ?1) \
             UNION ALL SELECT v.vm_id + 1 FROM vms v WHERE v.vm_id >= ?1 AND v.vm_id < ?2 \
               AND NOT EXISTS (SELECT 1 FROM vms w WHERE w.vm_id = v.vm_id + 1))",
            [from, MAX_VM_ID],
            |r| r.get(0),
        )?;
        match gap {
            Some(id) if held.contains_key(&id) => from = id + 1,
            Some(id) => return Ok(Ok(id)),
            None => return Ok(Err(StoreError::NoFreeVmId)),
        }
    }
}

/// True for the errors SQLite gives a reader that cannot create a WAL database's -shm file.
fn needs_shm_write(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::ReadOnly)
    )
}

/// Creates the parent directory and an empty database file readable by its owner only.
fn create_database_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it first: fine.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A write transaction that nests: the outermost is `BEGIN IMMEDIATE` (so writers queue on the
/// busy timeout instead of failing on a lock upgrade), inner ones are savepoints. Dropped without
/// [`WriteTx::commit`], it rolls back.
struct WriteTx<'a> {
    conn: &'a Connection,
    nested: bool,
    open: bool,
}

impl<'a> WriteTx<'a> {
    fn begin(conn: &'a Connection) -> rusqlite::Result<Self> {
        let nested = !conn.is_autocommit();
        conn.execute_batch(if nested {
            "SAVEPOINT vgpu_write"
        } else {
            "BEGIN IMMEDIATE"
        })?;
        Ok(WriteTx {
            conn,
            nested,
            open: true,
        })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn.execute_batch(if self.nested {
            "RELEASE vgpu_write"
        } else {
            "COMMIT"
        })
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing better can be done with a failed rollback than to leave it to SQLite,
            // which rolls back an unfinished transaction when the connection closes.
            let _ = self.conn.execute_batch(if self.nested {
                "ROLLBACK TO vgpu_write; RELEASE vgpu_write"
            } else {
                "ROLLBACK"
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/dir/v.db"), true).unwrap();
        (dir, store)
    }

    fn new_vm(n: u32, vm_id: Option<i64>) -> NewVm {
        NewVm {
            uuid: VmUuid::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap(),
            name: None,
            pool: Pool::B,
            priority: Priority::High,
            vm_id: vm_id.map(|id| VmId::new(id).unwrap()),
        }
    }

    #[test]
    fn next_vm_id_goes_one_above_the_highest_then_fills_gaps_at_the_top() {
        let (_dir, store) = store();
        assert_eq!(store.next_vm_id(&HeldIds::new()).unwrap(), 1);
        store
            .register(&new_vm(1, Some(5)), &HeldIds::new())
            .unwrap();
        assert_eq!(store.next_vm_id(&HeldIds::new()).unwrap(), 6);
        store
            .register(&new_vm(2, Some(MAX_VM_ID)), &HeldIds::new())
            .unwrap();
        assert_eq!(
            store.next_vm_id(&HeldIds::new()).unwrap(),
            1,
            "top reached: lowest free id"
        );
        store
            .register(&new_vm(3, Some(1)), &HeldIds::new())
            .unwrap();
        assert_eq!(store.next_vm_id(&HeldIds::new()).unwrap(), 2);
        let auto = store.register(&new_vm(4, None), &HeldIds::new()).unwrap();
        assert_eq!(auto.vm_id, 2);
    }

    #[test]
    fn held_ids_are_taken_too() {
        let (_dir, store) = store();
        store
            .register(&new_vm(1, Some(4)), &HeldIds::new())
            .unwrap();
        let held = HeldIds::from([(5, "web (x)".to_string()), (6, "db (y)".to_string())]);
        assert_eq!(store.next_vm_id(&held).unwrap(), 7);
        assert!(matches!(
            store.register(&new_vm(2, Some(5)), &held),
            Err(StoreError::VmIdCarried { vm_id: 5, .. })
        ));
        assert_eq!(store.register(&new_vm(3, None), &held).unwrap().vm_id, 7);
        store.register(&new_vm(4, Some(MAX_VM_ID)), &held).unwrap();
        let low = HeldIds::from([(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(
            store.next_vm_id(&low).unwrap(),
            3,
            "gap search skips held ids"
        );
    }

    #[test]
    fn next_vm_id_copes_with_a_text_vm_id_left_by_the_earlier_tool() {
        let (_dir, store) = store();
        store
            .register(&new_vm(1, Some(41)), &HeldIds::new())
            .unwrap();
        store
            .conn
            .execute(
                "INSERT INTO vms (vm_id, vm_uuid) VALUES ('abc', 'legacy')",
                [],
            )
            .unwrap();
        assert_eq!(store.next_vm_id(&HeldIds::new()).unwrap(), 42);
        let rows = store.vms(VmFilter::default()).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().any(|r| r.invalid.is_some()));
    }

    #[test]
    fn conflicts_are_refused_before_writing() {
        let (_dir, store) = store();
        store
            .register(&new_vm(1, Some(7)), &HeldIds::new())
            .unwrap();
        assert!(matches!(
            store.register(&new_vm(1, None), &HeldIds::new()),
            Err(StoreError::AlreadyRegistered(_))
        ));
        assert!(matches!(
            store.register(&new_vm(2, Some(7)), &HeldIds::new()),
            Err(StoreError::VmIdTaken { vm_id: 7, .. })
        ));
        let changes = VmChanges {
            vm_id: Some(VmId::new(7).unwrap()),
            ..VmChanges::default()
        };
        store
            .register(&new_vm(2, Some(8)), &HeldIds::new())
            .unwrap();
        assert!(matches!(
            store.update(new_vm(2, None).uuid.as_str(), &changes, &HeldIds::new()),
            Err(StoreError::VmIdTaken { vm_id: 7, .. })
        ));
        assert_eq!(store.count_vms(VmFilter::default()).unwrap(), 2);
    }

    #[test]
    fn a_failed_batch_leaves_nothing_behind() {
        let (_dir, store) = store();
        let result: Result<(), StoreError> = store.batch(|| {
            store.register(&new_vm(1, None), &HeldIds::new())?;
            store.register(&new_vm(2, None), &HeldIds::new())?;
            Err(StoreError::NoFreeVmId)
        });
        assert!(result.is_err());
        assert_eq!(store.count_vms(VmFilter::default()).unwrap(), 0);
        store
            .batch(|| {
                store
                    .register(&new_vm(3, None), &HeldIds::new())
                    .map(|_| ())
            })
            .unwrap();
        assert_eq!(store.count_vms(VmFilter::default()).unwrap(), 1);
    }

    #[test]
    fn update_and_remove_report_unregistered_vms() {
        let (_dir, store) = store();
        let uuid = new_vm(9, None).uuid;
        assert!(store.remove(uuid.as_str()).unwrap_err().is_not_found());
        assert!(store
            .update(uuid.as_str(), &VmChanges::default(), &HeldIds::new())
            .unwrap_err()
            .is_not_found());
    }
}
