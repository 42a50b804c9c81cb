//! Changing many VMs in one run: the changes that need no restart one after the other, then the
//! VMs that do, stopped, changed and started in waves of at most `parallel` at a time. Each VM
//! goes through [`super::run`] exactly as a change of one VM does (its own journal entry, both
//! or neither, started again on the host it ran on); the caller holds every VM's lock.
//!
//! A failed VM does not stop the others. A signal lets the changes in hand finish (a VM is never
//! left halted by it) and starts no further wave: those VMs are "not started", and running the
//! same command again finishes the job (see [`super::recover`] for a run killed outright).

use super::{run, Change, Io};
use crate::exit::Failure;
use crate::interrupt;
use crate::pool_record::PoolKey;
use crate::store::{Origin, Store, VmRecord};
use crate::xe::Xe;
use std::path::Path;
use std::sync::Mutex;

/// How one VM's change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Applied.
    Done,
    /// Not applied, or applied in part (the message says which).
    Failed {
        /// The step that failed (`stop the VM`, `write the device-model-args`, ...), when known.
        step: Option<String>,
        /// What happened.
        message: String,
    },
    /// Not begun: the run was interrupted before its wave.
    NotStarted,
}

/// One VM's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The VM.
    pub uuid: String,
    /// How messages name it.
    pub label: String,
    /// How its change ended.
    pub ending: Ending,
    /// Its row afterwards (`None`: removed, or not changed).
    pub row: Option<VmRecord>,
    /// Whether it was stopped and started for the change.
    pub restart: bool,
}

/// What the run reports while it goes, for a progress display.
#[derive(Debug)]
pub enum Event<'a> {
    /// A wave of VMs to restart begins (1-based, of `waves`).
    Wave {
        /// This wave.
        wave: usize,
        /// How many there are.
        waves: usize,
    },
    /// One VM's change ended.
    Ended(&'a Outcome),
}

/// What a run over many VMs runs with.
pub struct Batch<'a> {
    /// The database: each change in a wave opens its own connection.
    pub db: &'a Path,
    /// Who and where, for the history rows.
    pub origin: Origin,
    /// xe.
    pub xe: &'a Xe,
    /// The pool key that signs the VMs' pool records.
    pub pool_key: Option<&'a PoolKey>,
    /// How many VMs are restarted at a time (at least 1).
    pub parallel: usize,
    /// Prints a line of the dialogue (lines of changes running together interleave; each names
    /// its VM).
    pub say: &'a (dyn Fn(&str) + Sync),
    /// Told of each wave and each VM's end.
    pub event: &'a (dyn Fn(Event) + Sync),
}

/// The step a change's failure names (`step 'stop the VM' failed: ...`).
fn failed_step(message: &str) -> Option<String> {
    let rest = message.strip_prefix("step '")?;
    Some(rest[..rest.find('\'')?].to_string())
}

/// Applies one change with its own database connection.
fn one(change: &Change, batch: &Batch) -> Outcome {
    let result = (|| -> Result<Option<VmRecord>, Failure> {
        let store = Store::open(batch.db, false)?;
        store.set_origin(batch.origin.clone());
        let io = Io {
            store: &store,
            xe: batch.xe,
            say: &|t: &str| (batch.say)(t),
            dry_run: false,
            spinner: false,
            pool_key: batch.pool_key,
        };
        run(change, &io)
    })();
    let (ending, row) = match result {
        Ok(row) => (Ending::Done, row),
        Err(f) => (
            Ending::Failed {
                step: failed_step(&f.message),
                message: f.message,
            },
            None,
        ),
    };
    Outcome {
        uuid: change.uuid.to_string(),
        label: change.label.clone(),
        ending,
        row,
        restart: change.restart,
    }
}

/// Runs `changes` (see the module documentation); returns one outcome per change, in the order
/// given.
pub fn run_all(changes: &[Change], batch: &Batch) -> Vec<Outcome> {
    let parallel = batch.parallel.max(1);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; changes.len()]);
    let record = |i: usize, outcome: Outcome| {
        (batch.event)(Event::Ended(&outcome));
        if let Ok(mut all) = results.lock() {
            all[i] = Some(outcome);
        }
    };
    let (quick, restarts): (Vec<usize>, Vec<usize>) =
        (0..changes.len()).partition(|i| !changes[*i].restart);
    let not_started = |i: usize| Outcome {
        uuid: changes[i].uuid.to_string(),
        label: changes[i].label.clone(),
        ending: Ending::NotStarted,
        row: None,
        restart: changes[i].restart,
    };
    // The changes without a restart: a write each, one after the other.
    for &i in &quick {
        if interrupt::pending().is_some() {
            record(i, not_started(i));
            continue;
        }
        record(i, one(&changes[i], batch));
    }
    // The restarts, in waves.
    let waves: Vec<&[usize]> = restarts.chunks(parallel).collect();
    for (w, wave) in waves.iter().enumerate() {
        if interrupt::pending().is_some() {
            for &i in *wave {
                record(i, not_started(i));
            }
            continue;
        }
        (batch.event)(Event::Wave {
            wave: w + 1,
            waves: waves.len(),
        });
        std::thread::scope(|scope| {
            for &i in *wave {
                let record = &record;
                scope.spawn(move || record(i, one(&changes[i], batch)));
            }
        });
    }
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|| not_started(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::failed_step;

    #[test]
    fn the_failed_step_is_read_from_the_message() {
        assert_eq!(
            failed_step("step 'start the VM' failed: no memory. The change is saved").as_deref(),
            Some("start the VM")
        );
        assert_eq!(failed_step("VM x is paused"), None);
    }
}
