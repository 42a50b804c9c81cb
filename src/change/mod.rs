//! Applying a change to a VM: its database row and its `platform:device-model-args` end up both
//! old or both new, whatever happens — an xe call failing or answering late, the database locked,
//! a signal, `kill -9`.
//!
//! The two cannot share a transaction (one is in xapi), so the order is designed:
//! 1. the change is recorded in the journal (one short transaction: a locked, read-only or newer
//!    database stops it here, before the VM is touched; its vm_id is reserved);
//! 2. a running VM that needs it is stopped;
//! 3. the args are written (after a failure or a timeout they are read back: what is there
//!    decides whether the change goes on or is undone);
//! 4. the row (and the pending-restart mark) is saved (one short transaction; if that fails the
//!    args are set back);
//! 5. the VM is started again; the journal entry goes.
//!
//! The database's write lock is held only inside steps 1 and 4, never while xe runs or a VM
//! stops or starts. A signal is handled between steps: the step in hand finishes, the VM's power
//! state is put back, and the run ends saying what it did. A run that dies leaves its journal
//! entry, which [`recover`] completes or undoes. Changes to one VM are serialised by its
//! [`lock`], taken by the caller before it reads the VM.

pub mod batch;
mod from_pool;
pub mod lock;
mod recover;

pub use from_pool::{register_from_pool, sync_one, FromPool, Synced};

pub use recover::recover;

use crate::exit::{Failure, Status};
use crate::interrupt;
use crate::model::{printable, Driver, Pool, Priority, VmConfig, VmId, VmUuid};
use crate::pool_record::{self, PoolKey};
use crate::store::{
    HeldIds, JournalEntry, NewVm, Op, RowValues, Store, StoreError, VmChanges, VmRecord,
};
use crate::vgpu;
use crate::xe::{Xe, XeError};
use std::collections::BTreeMap;

/// What a change does to the VM's row.
#[derive(Debug, Clone)]
pub enum Request {
    /// Registers the VM.
    Register(NewVm),
    /// Changes its row.
    Update(VmChanges),
    /// Removes it (and the device from its args).
    Remove,
    /// Leaves the row: writes the device from it into the args (and restarts the VM, if asked).
    Repair,
}

/// A change, as the script worked it out with the VM locked.
#[derive(Debug, Clone)]
pub struct Change {
    /// The VM.
    pub uuid: VmUuid,
    /// How messages name it (`web01 (uuid)`).
    pub label: String,
    /// The command (`set-pool`), for the journal and reports.
    pub command: String,
    /// What to do.
    pub request: Request,
    /// The vm_ids the pool's other VMs carry: taken.
    pub held: HeldIds,
    /// The VM's args as read (on their own) with the VM locked.
    pub args_before: Option<String>,
    /// Its power state then.
    pub power_before: String,
    /// Stop it before and start it after.
    pub restart: bool,
    /// The host (uuid) it runs on, as read with it: a VM this change stops is started there
    /// again, never where the pool master would place it.
    pub resident_on: Option<String>,
    /// Its pool record as read with it (its `vgpu-admin:` other-config keys).
    pub pool_record: BTreeMap<String, String>,
    /// The driver for a device the change adds.
    pub driver: Driver,
    /// The run over many VMs this change is part of (how it was started), `None` for a change
    /// of one VM. Such a change, once begun, is carried through even when a signal arrives
    /// (the run starts no further VM instead), and an interrupted one is carried forward by
    /// recovery rather than undone, so that running the same command again restarts no VM
    /// twice.
    pub batch: Option<String>,
}

/// What a change runs with.
pub struct Io<'a> {
    /// The database.
    pub store: &'a Store,
    /// xe.
    pub xe: &'a Xe,
    /// Prints a line of the dialogue.
    pub say: &'a dyn Fn(&str),
    /// Only say what would be done.
    pub dry_run: bool,
    /// Show a spinner while a VM stops or starts.
    pub spinner: bool,
    /// The pool's key, which signs the VM's pool record (`None`: a dry run on a host without
    /// one yet).
    pub pool_key: Option<&'a PoolKey>,
}

/// The pool record a row stands for (`None`: no row, or no key to sign it with).
fn record_of(
    uuid: &str,
    row: Option<&RowValues>,
    key: Option<&PoolKey>,
) -> Option<Vec<(String, String)>> {
    let config = config(row?).ok()?;
    Some(pool_record::entries(key?, uuid, &config))
}

/// The configuration a row describes.
fn config(row: &RowValues) -> Result<VmConfig, Failure> {
    let invalid = || {
        Failure::failed(format!(
            "the database entry (vm_id {}) is not valid",
            row.vm_id
        ))
    };
    Ok(VmConfig {
        pool: Pool::parse(&row.pool_id).map_err(|_| invalid())?,
        priority: Priority::from_level(row.priority).ok_or_else(invalid)?,
        vm_id: VmId::new(row.vm_id).ok_or_else(invalid)?,
    })
}

fn args_error(e: vgpu::ArgsError) -> Failure {
    Failure::failed(e.to_string())
}

/// The journal entry for `change`: its row and args after, checked.
fn prepare(change: &Change, store: &Store) -> Result<JournalEntry, Failure> {
    let uuid = change.uuid.as_str();
    let row_before = store.vm(uuid)?.as_ref().map(RowValues::from);
    let row_after = match &change.request {
        Request::Register(new) => {
            Some(RowValues::from(&store.preview_register(new, &change.held)?))
        }
        Request::Update(changes) => Some(RowValues::from(&store.preview_update(
            uuid,
            changes,
            &change.held,
        )?)),
        Request::Remove => None,
        Request::Repair => Some(
            row_before
                .clone()
                .ok_or_else(|| Failure::from(StoreError::NotRegistered(uuid.to_string())))?,
        ),
    };
    let args_after = match &row_after {
        Some(row) => Some(
            vgpu::merge(change.args_before.as_deref(), &config(row)?, change.driver)
                .map_err(args_error)?,
        ),
        None => match &change.args_before {
            Some(args) => vgpu::strip(args).map_err(args_error)?,
            None => None,
        },
    };
    let op = match change.request {
        Request::Register(_) => Op::Register,
        Request::Update(_) => Op::Update,
        Request::Remove => Op::Remove,
        Request::Repair => Op::Repair,
    };
    // A VM that keeps running with changed args has its previous settings until it restarts;
    // a halted or restarted one has nothing pending; unchanged args change nothing.
    let pending = if change.restart || change.power_before == "halted" {
        Some(false)
    } else if args_after != change.args_before {
        Some(true)
    } else {
        None
    };
    Ok(JournalEntry {
        vm_uuid: uuid.to_string(),
        command: change.command.clone(),
        op,
        row_before,
        pending,
        row_after,
        args_before: change.args_before.clone(),
        args_after,
        power_before: change.power_before.clone(),
        restart: change.restart,
        start_on: change.resident_on.clone().filter(|_| change.restart),
        batch: change.batch.clone(),
        step: "planned".into(),
        pid: 0,
        started_at: String::new(),
    })
}

/// Records the change; an automatic vm_id taken by a concurrent change meanwhile is chosen anew.
fn begin(change: &Change, store: &Store) -> Result<JournalEntry, Failure> {
    let auto_id = matches!(&change.request, Request::Register(new) if new.vm_id.is_none());
    let mut tries = 0;
    loop {
        let entry = prepare(change, store)?;
        match store.journal_begin(&entry, &change.held) {
            Ok(()) => return Ok(entry),
            Err(StoreError::VmIdTaken { .. }) if auto_id && tries < 5 => tries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A pool record's entries in the order one call writes them (the signature first).
fn in_writing_order(record: &BTreeMap<String, String>) -> Vec<(String, String)> {
    pool_record::KEYS
        .iter()
        .filter_map(|k| record.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Applies `change` (see the module documentation); returns the VM's row afterwards (`None`
/// when removed).
pub fn run(change: &Change, io: &Io) -> Result<Option<VmRecord>, Failure> {
    let _critical = interrupt::Critical::enter();
    if io.dry_run {
        return dry_run(change, io);
    }
    let uuid = change.uuid.as_str();
    let entry = begin(change, io.store)?;
    let runner = Runner {
        io,
        uuid,
        label: &change.label,
        entry: &entry,
        record_before: in_writing_order(&change.pool_record),
        record_after: record_of(uuid, entry.row_after.as_ref(), io.pool_key),
    };
    if let Err(failure) = runner.apply() {
        // The audit trail says how it ended. (A change saved before a later step failed, such
        // as the start, has its own "done" row from that save.)
        let outcome = match failure.status {
            Status::Interrupted(_) => "interrupted",
            _ => "failed",
        };
        let _ = io.store.history_failed(
            &entry.command,
            uuid,
            entry.row_before.as_ref(),
            entry.row_after.as_ref(),
            &format!("{outcome}: {}", failure.message),
        );
        return Err(failure);
    }
    Ok(io.store.vm(uuid)?)
}

struct Runner<'a> {
    io: &'a Io<'a>,
    uuid: &'a str,
    label: &'a str,
    entry: &'a JournalEntry,
    /// The VM's pool record as read, and as the change leaves it (`None`: stripped).
    record_before: Vec<(String, String)>,
    record_after: Option<Vec<(String, String)>>,
}

impl Runner<'_> {
    fn say(&self, text: &str) {
        (self.io.say)(text);
    }

    fn xe<T>(
        &self,
        call: impl FnOnce(&Xe) -> Result<T, XeError>,
        waiting: Option<String>,
    ) -> Result<T, XeError> {
        let _spinner = waiting.map(|m| crate::output::Spinner::start(&m, self.io.spinner));
        call(self.io.xe)
    }

    fn power_now(&self) -> Option<String> {
        self.io.xe.power_state(self.uuid).ok()
    }

    /// Removes the journal entry; a failure is said (recover tidies it later).
    fn end(&self) {
        if let Err(e) = self.io.store.journal_end(self.uuid) {
            self.say(&format!(
                "warning: the change journal could not be cleared ({e}); 'vgpu-admin recover' will tidy it"
            ));
        }
    }

    fn step(&self, step: &str) {
        // Only informative: what recovery decides rests on what it finds, not on this.
        let _ = self.io.store.journal_step(self.uuid, step);
    }

    /// Writes the args and the pool record: one call when both are set (see
    /// [`crate::pool_record`] for the order). With no record to write, the keys the VM has (or
    /// may have been given by this change) are stripped, the signature first.
    fn write(&self, args: &Option<String>, record: &[(String, String)]) -> Result<(), XeError> {
        match args {
            Some(value) if !record.is_empty() => self.xe(
                |xe| xe.call(&Xe::set_vm_config_call(self.uuid, value, record)),
                None,
            )?,
            Some(value) => self.xe(
                |xe| xe.call(&Xe::set_device_model_args_call(self.uuid, value)),
                None,
            )?,
            None => self.xe(
                |xe| xe.call(&Xe::remove_device_model_args_call(self.uuid)),
                None,
            )?,
        }
        if record.is_empty() {
            let mut keys: Vec<&str> = self.record_before.iter().map(|(k, _)| k.as_str()).collect();
            if args != &self.entry.args_after {
                // Undoing: what this change may have written goes too.
                keys.extend(self.record_after.iter().flatten().map(|(k, _)| k.as_str()));
            }
            for key in pool_record::KEYS.iter().filter(|k| keys.contains(k)) {
                match self.xe(
                    |xe| xe.call(&Xe::remove_other_config_call(self.uuid, key)),
                    None,
                ) {
                    Err(XeError::Failed { message, .. }) if message.contains("not in map") => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// Writes `args` with the matching pool record: the change's new record with its new args,
    /// the record the VM had with its old ones.
    fn write_args(&self, args: &Option<String>) -> Result<(), XeError> {
        let record = if args == &self.entry.args_after {
            self.record_after.clone().unwrap_or_default()
        } else {
            self.record_before.clone()
        };
        self.write(args, &record)
    }

    fn stop(&self) -> Result<(), XeError> {
        self.say(&format!("Stopping VM {}...", self.label));
        let waiting = Some(format!("Stopping VM {}...", self.label));
        match self.xe(|xe| xe.call(&Xe::shutdown_call(self.uuid, false)), waiting) {
            Err(e) if e.is_clean_shutdown_refused() => {
                self.say(&format!(
                    "Clean shutdown refused ({e}); forcing the VM off."
                ));
                let waiting = Some(format!("Forcing VM {} off...", self.label));
                self.xe(|xe| xe.call(&Xe::shutdown_call(self.uuid, true)), waiting)
            }
            other => other,
        }
    }

    fn start(&self) -> Result<(), XeError> {
        self.say(&format!("Starting VM {}...", self.label));
        let waiting = Some(format!("Starting VM {}...", self.label));
        let on = self.entry.start_on.as_deref();
        match self.xe(|xe| xe.call(&Xe::start_call(self.uuid, on)), waiting) {
            // It answered late or failed, but the VM runs: that is what was wanted.
            Err(_) if self.power_now().as_deref() == Some("running") => Ok(()),
            other => other,
        }
    }

    /// Puts the VM's power state back after a change that did not go through; says how.
    fn restore(&self, stopped: bool) -> String {
        if !stopped {
            return format!(
                "VM {} is {}, untouched.",
                self.label, self.entry.power_before
            );
        }
        match self.start() {
            Ok(()) => format!(
                "VM {} was started again with its previous configuration.",
                self.label
            ),
            Err(e) => format!(
                "starting VM {} again failed too ({e}): it is halted.",
                self.label
            ),
        }
    }

    /// A signal to act on between steps: none in a run over many VMs, which carries each change
    /// it began through and stops starting new ones instead.
    fn signal(&self) -> Option<i32> {
        if self.entry.batch.is_some() {
            None
        } else {
            interrupt::pending()
        }
    }

    fn interrupted(&self, signal: i32, what: String) -> Failure {
        Failure::new(
            Status::Interrupted(signal),
            format!("interrupted by {}: {what}", interrupt::name(signal)),
        )
    }

    fn apply(&self) -> Result<(), Failure> {
        let entry = self.entry;
        let mut stopped = false;
        if entry.restart {
            if let Some(signal) = self.signal() {
                self.end();
                return Err(self.interrupted(
                    signal,
                    format!(
                        "nothing was changed; VM {} is {}, untouched.",
                        self.label, entry.power_before
                    ),
                ));
            }
            match self.stop() {
                Ok(()) => stopped = true,
                Err(e) => match self.power_now().as_deref() {
                    Some("halted") => {
                        self.say(&format!(
                            "xe reported '{e}', but VM {} is halted: going on.",
                            self.label
                        ));
                        stopped = true;
                    }
                    now => {
                        self.end();
                        return Err(Failure::failed(format!(
                            "step 'stop the VM' failed: {}. Nothing was changed; VM {} is {}.",
                            sentence(&e),
                            self.label,
                            now.unwrap_or("in an unknown power state")
                        )));
                    }
                },
            }
            self.step("stopped");
        }
        if let Some(signal) = self.signal() {
            let power = self.restore(stopped);
            self.end();
            return Err(self.interrupted(signal, format!("nothing was changed; {power}")));
        }
        let record_changed =
            self.record_after.as_deref().unwrap_or_default() != self.record_before.as_slice();
        let args_changed = entry.args_after != entry.args_before || record_changed;
        if args_changed {
            if let Err(e) = self.write_args(&entry.args_after) {
                self.args_write_failed(e, stopped)?;
            }
            self.step("args written");
        }
        if let Err(e) = self.io.store.journal_save(entry, "done") {
            let undone = if args_changed {
                self.write_args(&entry.args_before)
            } else {
                Ok(())
            };
            let power = self.restore(stopped);
            return Err(match undone {
                Ok(()) => {
                    self.end();
                    Failure::failed(format!(
                        "step 'save to the database' failed: {}. The device-model-args were set back: nothing was changed; {power}",
                        sentence(&e)
                    ))
                }
                Err(u) => Failure::failed(format!(
                    "step 'save to the database' failed: {e}, and setting the device-model-args back failed too ({u}): the change stays recorded as unfinished; run 'vgpu-admin recover'; {power}"
                )),
            });
        }
        if stopped {
            if let Err(e) = self.start() {
                self.end();
                return Err(Failure::failed(match &entry.start_on {
                    Some(host) => format!(
                        "step 'start the VM' failed: {}. The change is saved (database and device-model-args); VM {} is {} and was not started on another host: start it on its host when it can take it with 'xe vm-start uuid={} on={host}'.",
                        sentence(&e),
                        self.label,
                        self.power_now().unwrap_or_else(|| "in an unknown power state".into()),
                        self.uuid
                    ),
                    None => format!(
                        "step 'start the VM' failed: {}. The change is saved (database and device-model-args); VM {} is {}: start it with 'xe vm-start uuid={}'.",
                        sentence(&e),
                        self.label,
                        self.power_now().unwrap_or_else(|| "in an unknown power state".into()),
                        self.uuid
                    ),
                }));
            }
        }
        // A signal that came while the last steps ran is left pending for the caller, which
        // finishes what follows a change first (see [`applied_then_interrupted`]).
        self.end();
        Ok(())
    }

    /// After writing the args failed or timed out: what is there decides.
    fn args_write_failed(&self, e: XeError, stopped: bool) -> Result<(), Failure> {
        let entry = self.entry;
        match self.io.xe.device_model_args(self.uuid) {
            Ok(now) if now == entry.args_after => {
                self.say(&format!(
                    "xe reported '{e}', but the new device-model-args are in place: going on."
                ));
                Ok(())
            }
            Ok(now) if now == entry.args_before => {
                let power = self.restore(stopped);
                self.end();
                Err(Failure::failed(format!(
                    "step 'write the device-model-args' failed: {}. Nothing was changed; {power}",
                    sentence(&e)
                )))
            }
            Ok(now) => {
                let back = match self.write_args(&entry.args_before) {
                    Ok(()) => "they were set back to their previous value".to_string(),
                    Err(b) => format!("setting them back failed ({b})"),
                };
                let power = self.restore(stopped);
                self.end();
                Err(Failure::failed(format!(
                    "step 'write the device-model-args' failed: {e}; they were found as '{}' and {back}; the database was not changed; {power}",
                    printable(now.as_deref().unwrap_or("(not set)"))
                )))
            }
            Err(read) => {
                let power = self.restore(stopped);
                Err(Failure::failed(format!(
                    "step 'write the device-model-args' failed: {e}, and they cannot be read back ({read}): the change stays recorded as unfinished; run 'vgpu-admin recover' when xe answers; {power}"
                )))
            }
        }
    }
}

/// Says what `change` would do, and does none of it.
fn dry_run(change: &Change, io: &Io) -> Result<Option<VmRecord>, Failure> {
    let entry = prepare(change, io.store)?;
    let uuid = change.uuid.as_str();
    let note = |what: String| (io.say)(&format!("dry run: would {what}"));
    if entry.restart {
        note(format!(
            "run: {}",
            Xe::display_call(&Xe::shutdown_call(uuid, false))
        ));
    }
    let record_after = record_of(uuid, entry.row_after.as_ref(), io.pool_key).unwrap_or_default();
    let record_before = in_writing_order(&change.pool_record);
    if entry.args_after != entry.args_before || record_after != record_before {
        let call = match &entry.args_after {
            Some(v) if !record_after.is_empty() => Xe::set_vm_config_call(uuid, v, &record_after),
            Some(v) => Xe::set_device_model_args_call(uuid, v),
            None => Xe::remove_device_model_args_call(uuid),
        };
        note(format!("run: {}", Xe::display_call(&call)));
        if record_after.is_empty() {
            for (key, _) in &record_before {
                note(format!(
                    "run: {}",
                    Xe::display_call(&Xe::remove_other_config_call(uuid, key))
                ));
            }
        }
    }
    match &entry.row_after {
        Some(r) if !RowValues::same_row(entry.row_before.as_ref(), Some(r)) => note(format!(
            "{} vms: vm_uuid={uuid}, vm_id={}, vm_name={}, pool_id={}, priority={} ({})",
            if entry.row_before.is_some() {
                "update"
            } else {
                "insert into"
            },
            r.vm_id,
            r.vm_name
                .as_deref()
                .map_or("NULL".into(), |n| printable(n).into_owned()),
            r.pool_id,
            r.priority,
            Priority::from_level(r.priority).map_or("unknown", Priority::as_str),
        )),
        None if entry.row_before.is_some() => note(format!("delete from vms: vm_uuid={uuid}")),
        _ => {}
    }
    if entry.pending == Some(true) {
        note(format!("mark VM {uuid} as waiting for a restart"));
    }
    if entry.restart {
        note(format!(
            "run: {}",
            Xe::display_call(&Xe::start_call(uuid, entry.start_on.as_deref()))
        ));
    }
    Ok(entry.row_after.map(|r| {
        VmRecord::unsaved(
            uuid.to_string(),
            r.vm_id,
            r.vm_name,
            r.pool_id,
            r.priority,
            entry.pending == Some(true),
        )
    }))
}

/// What a run says when `signal` came while `change` was being applied and the change went
/// through: the caller finishes its work (tells the GPU mediator), then ends with 128 + signal.
pub fn applied_then_interrupted(change: &Change, signal: i32) -> Failure {
    let power = if change.restart {
        format!("; VM {} was started again", change.label)
    } else {
        String::new()
    };
    Failure::new(
        Status::Interrupted(signal),
        format!(
            "interrupted by {}: the change was applied (database and device-model-args){power}.",
            interrupt::name(signal)
        ),
    )
}

/// An error as the middle of a sentence: without its own closing full stop (xe's messages often
/// end with one), so that "... failed: <error>. Nothing was changed" reads right.
fn sentence(e: &impl std::fmt::Display) -> String {
    e.to_string().trim_end_matches('.').to_string()
}
