//! Finishing a change whose run died (kill -9, a crash, a lost host): what the VM and the
//! database hold now decides. Args already new: the change is completed (the row saved). Args
//! still old: nothing of it had been applied, so there is nothing to undo. Anything else is left
//! as found and said. A VM the change had stopped is started again (not by the startup hook,
//! which runs because the VM is starting).

use super::{record_of, Io, Runner};
use crate::exit::Failure;
use crate::store::{JournalEntry, RowValues};

/// Completes or undoes the recorded change `entry`; `starting`: the VM is being started (the
/// startup hook). Returns what was done, in one line.
pub fn recover(entry: &JournalEntry, io: &Io, starting: bool) -> Result<String, Failure> {
    let uuid = entry.vm_uuid.as_str();
    let head = format!(
        "the interrupted {} of VM {uuid} (started {}, reached '{}')",
        entry.command, entry.started_at, entry.step
    );
    let args_now = match io.xe.device_model_args(uuid) {
        Ok(args) => args,
        Err(e) if e.is_no_such_vm() => {
            io.store.journal_end(uuid)?;
            return Ok(format!("{head}: the VM is gone; the record was dropped"));
        }
        Err(e) => {
            return Err(Failure::failed(format!(
            "cannot finish {head}: its device-model-args cannot be read ({e}); it stays recorded"
        )))
        }
    };
    let row_now = io.store.vm(uuid)?.as_ref().map(RowValues::from);
    let mut done = Vec::new();
    let mut args_now = args_now;
    if carry_forward(entry, &args_now, io, starting) {
        // Part of a run over many VMs, stopped for its change and not yet changed: the change
        // is written and the VM started once, so that the run, repeated, finds it done.
        let runner = Runner {
            io,
            uuid,
            label: uuid,
            entry,
            record_before: Vec::new(),
            record_after: record_of(uuid, entry.row_after.as_ref(), io.pool_key),
        };
        match runner.write_args(&entry.args_after) {
            Ok(()) => {
                args_now = entry.args_after.clone();
                done.push(
                    "carried forward: the VM, stopped for it, got its new device-model-args".into(),
                );
            }
            Err(e) => done.push(format!("carrying it forward failed ({e})")),
        }
    }
    if args_now == entry.args_after {
        if RowValues::same_row(row_now.as_ref(), entry.row_after.as_ref()) {
            done.push("it had been applied completely".to_string());
        } else {
            io.store
                .journal_save(entry, "recovered: completed after the run was interrupted")?;
            done.push("completed: the database now matches the VM's new device-model-args".into());
        }
    } else if args_now == entry.args_before {
        done.push("undone: none of it had been applied".into());
    } else {
        done.push(
            "left as found: the VM's device-model-args are neither the old nor the new value (see 'vgpu-admin check')"
                .into(),
        );
    }
    if entry.restart && entry.power_before == "running" && !starting {
        match io.xe.power_state(uuid).ok().as_deref() {
            // On the host it ran on, as the change would have.
            Some("halted") => match io
                .xe
                .call(&crate::xe::Xe::start_call(uuid, entry.start_on.as_deref()))
            {
                Ok(()) => done.push("the VM, stopped for the change, was started again".into()),
                Err(e) => done.push(format!(
                    "starting the VM again failed ({e}): it is halted{}",
                    entry
                        .start_on
                        .as_deref()
                        .map_or(String::new(), |h| format!(" (its host: {h})"))
                )),
            },
            Some(_) => {}
            None => done.push("its power state cannot be read".into()),
        }
    }
    io.store.journal_end(uuid)?;
    Ok(format!("{head}: {}", done.join("; ")))
}

/// Whether the interrupted change `entry` is to be carried forward: it belongs to a run over
/// many VMs, stopped a running VM that is still halted, and had not written its args yet.
fn carry_forward(
    entry: &crate::store::JournalEntry,
    args_now: &Option<String>,
    io: &Io,
    starting: bool,
) -> bool {
    entry.batch.is_some()
        && !starting
        && entry.restart
        && entry.power_before == "running"
        && args_now == &entry.args_before
        && entry.args_after != entry.args_before
        && io.xe.power_state(&entry.vm_uuid).ok().as_deref() == Some("halted")
}
