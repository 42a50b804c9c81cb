//! The `vms::` functions that change a VM as one unit with its args: `lock`, `apply`,
//! `recover`, `unfinished`. The sequence, the journal and the undo live in `crate::change`;
//! this wires them to scripts.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::values::vm_map;
use super::vgpu::held_ids;
use super::vms::{changes_of, new_vm_of};
use super::HostError;
use crate::change::{self, Change, Request};
use crate::model::Driver;
use crate::store::HeldIds;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::rc::Rc;

fn text(plan: &Map, key: &str) -> Option<String> {
    plan.get(key)
        .filter(|v| !v.is_unit())
        .map(|v| v.to_string())
}

fn map(plan: &Map, key: &str) -> Map {
    plan.get(key)
        .and_then(|v| v.read_lock::<Map>().map(|m| m.clone()))
        .unwrap_or_default()
}

/// The change a script's plan map describes.
pub(super) fn change_of(ctx: &Context, plan: &Map) -> Result<Change, Box<EvalAltResult>> {
    let uuid = super::uuid_arg(&text(plan, "uuid").unwrap_or_default())?;
    let op = text(plan, "op").unwrap_or_default();
    let request = match op.as_str() {
        "register" => {
            let mut vm = map(plan, "vm");
            vm.insert("uuid".into(), uuid.to_string().into());
            Request::Register(new_vm_of(&vm)?)
        }
        "update" => Request::Update(changes_of(&map(plan, "vm"))?),
        "remove" => Request::Remove,
        "repair" => Request::Repair,
        other => {
            return Err(HostError::usage(format!(
                "unknown op '{other}' in the plan: expected register, update, remove or repair"
            )))
        }
    };
    let held: HeldIds = held_ids(&map(plan, "held"))?;
    let restart = plan
        .get("restart")
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false);
    Ok(Change {
        label: text(plan, "label").unwrap_or_else(|| uuid.to_string()),
        command: ctx.command_name(),
        request,
        held,
        args_before: text(plan, "args"),
        power_before: text(plan, "power_state").unwrap_or_default(),
        restart,
        resident_on: text(plan, "resident_on"),
        pool_record: map(plan, "pool_record")
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        driver: ctx.site_driver()?.unwrap_or(Driver::DEFAULT),
        batch: None,
        uuid,
    })
}

/// Registers the change functions of `vms::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "vms",
    /// Takes VM `uuid`'s lock for the rest of the command, waiting while another vgpu-admin
    /// changes that VM: changes to one VM run one after the other. Read the VM's row and args
    /// after taking it. An interrupted change of that VM recorded in the journal is finished
    /// first (and said). Returns true when the VM may have changed since it was read before
    /// (the lock was waited for, or an interrupted change finished): read it again.
    fn lock(ctx, uuid: &str) -> Rr<bool> {
        let uuid = super::uuid_arg(uuid)?;
        if ctx.config.dry_run {
            // Nothing will be changed: nothing to serialise, and no file to create.
            ctx.store_for_script()?;
            return Ok(false);
        }
        ctx.store_for_script_write()?;
        ctx.lock_vm(uuid.as_str()).map_err(HostError::boxed)
    });
    host_fn!(api, ctx, "vms",
    /// Releases VM `uuid`'s lock before the end of the command.
    fn unlock(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        ctx.unlock_vm(uuid.as_str());
        Ok(())
    });
    host_fn!(api, ctx, "vms",
    /// Applies a change to a VM as one unit: its row and its device-model-args end up both old
    /// or both new, and so does its pool record (signed `vgpu-admin:` other-config keys, written
    /// in the same xe call as the args). `plan`: `#{uuid, op, vm, held, args, power_state,
    /// resident_on, pool_record, restart, label}` —
    /// `op` is `"register"` (`vm`: `#{name, pool, priority, vm_id}`), `"update"` (`vm`: the
    /// changes), `"remove"` or `"repair"` (rewrite the args from the row); `args` and
    /// `power_state`, `resident_on` and `pool_record` as read (with `xe::vm`) after `vms::lock`; `restart`:
    /// stop the VM before and start it after, on the host it was resident on; `held`: from `vgpu::vm_ids_held`. The change is recorded in the
    /// journal first; the database is locked only for its short writes, never while xe runs; a
    /// failure or a late xe answer is checked against what the VM really has, and a signal ends
    /// the step in hand, puts the VM's power state back and ends the run (exit 128 + signal);
    /// one that comes once the change is through is said, and the run ends with 128 + signal
    /// after the script has finished.
    /// A VM left running is marked "restart pending". Returns the VM's map afterwards (`()`
    /// when removed). Under `--dry-run` it prints what it would do.
    fn apply(ctx, plan: Map) -> Rr<Dynamic> {
        let change = change_of(ctx, &plan)?;
        if !ctx.config.dry_run && !ctx.holds_lock(change.uuid.as_str()) {
            return Err(HostError::failed(format!(
                "vms::apply needs the VM's lock: call vms::lock(\"{}\") before reading the VM",
                change.uuid
            )));
        }
        ctx.check_outside_transaction()?;
        let store = if ctx.config.dry_run { ctx.store_for_script()? } else { ctx.store_for_script_write()? };
        let xe = ctx.xe();
        let say = |t: &str| ctx.say(t);
        if !ctx.config.dry_run {
            // A database that cannot be written says so before the pool key is made.
            store.ensure_writable("recording a change").map_err(HostError::store)?;
        }
        let key = ctx.pool_key(true)?;
        let io = change::Io {
            store: &store,
            xe: &xe,
            say: &say,
            dry_run: ctx.config.dry_run,
            spinner: !ctx.config.json,
            pool_key: key.as_deref(),
        };
        let row = ctx.waiting(|| change::run(&change, &io)).map_err(HostError::boxed)?;
        if let Some(signal) = crate::interrupt::pending() {
            // Applied, and a signal came meanwhile: the script finishes what follows the change
            // (the mediator told), then the run ends with 128 + signal.
            ctx.end_after_script(change::applied_then_interrupted(&change, signal));
        }
        Ok(row.map_or(Dynamic::UNIT, |r| Dynamic::from_map(vm_map(&r))))
    });
    host_fn!(api, ctx, "vms",
    /// Finishes every interrupted change recorded in the journal whose process is gone:
    /// completes it when the VM already has the new args, else finds nothing applied; starts a
    /// VM the change had stopped. Returns one line per change saying what was done.
    fn recover(ctx) -> Rr<Array> {
        let store = if ctx.config.dry_run { ctx.store_for_script()? } else { ctx.store_for_script_write()? };
        let mut done = Array::new();
        for entry in store.journal().map_err(HostError::store)? {
            if ctx.config.dry_run {
                done.push(format!("(dry run) the interrupted {} of VM {} would be finished", entry.command, entry.vm_uuid).into());
                continue;
            }
            if !ctx.try_lock_vm(&entry.vm_uuid).map_err(HostError::boxed)? {
                done.push(format!("VM {}: its change is still running (pid {})", entry.vm_uuid, entry.pid).into());
                continue;
            }
            if let Some(line) = ctx.recover_vm(&entry.vm_uuid, false).map_err(HostError::boxed)? {
                done.push(line.into());
            }
            ctx.unlock_vm(&entry.vm_uuid);
        }
        Ok(done)
    });
    host_fn!(api, ctx, "vms",
    /// The changes recorded in the journal, as maps with `vm_uuid`, `command`, `step`,
    /// `started_at`, `pid` and `running` (false: interrupted, waiting for `vms::recover`).
    fn unfinished(ctx) -> Rr<Array> {
        let store = ctx.store_for_script()?;
        let mut out = Array::new();
        for entry in store.journal().map_err(HostError::store)? {
            let running = !ctx.try_lock_vm(&entry.vm_uuid).map_err(HostError::boxed)?;
            if !running {
                ctx.unlock_vm(&entry.vm_uuid);
            }
            let mut m = Map::new();
            m.insert("vm_uuid".into(), entry.vm_uuid.into());
            m.insert("command".into(), entry.command.into());
            m.insert("step".into(), entry.step.into());
            m.insert("started_at".into(), entry.started_at.into());
            m.insert("pid".into(), entry.pid.into());
            m.insert("running".into(), running.into());
            out.push(Dynamic::from_map(m));
        }
        Ok(out)
    });
}
