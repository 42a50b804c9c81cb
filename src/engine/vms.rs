//! The `vms::` module: registered VMs in the database.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::values::{vm_map, VmList};
use super::vgpu::held_ids;
use super::HostError;
use crate::model::VmName;
use crate::store::{HeldIds, NewVm, VmChanges, VmFilter};
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, INT};
use std::rc::Rc;

/// A script's map as the Rust type that lists its allowed keys (see `NewVm`, `VmChanges`,
/// `VmFilter`): values checked by the model, unknown keys refused (exit status 2).
fn from_map<T: serde::de::DeserializeOwned>(
    map: &Map,
    what: &str,
) -> Result<T, Box<EvalAltResult>> {
    rhai::serde::from_dynamic(&Dynamic::from_map(map.clone())).map_err(|e| {
        let text = HostError::message_of(&e);
        let text = match text.rfind(" (line ") {
            Some(i) if text.ends_with(')') => text[..i].to_string(),
            _ => text,
        };
        let text = text.trim_start_matches("Syntax error: ").replace('`', "'");
        HostError::usage(format!("{what}: {text}"))
    })
}

fn filter_of(map: &Map) -> Result<VmFilter, Box<EvalAltResult>> {
    from_map(map, "filter")
}

pub(super) fn new_vm_of(vm: &Map) -> Result<NewVm, Box<EvalAltResult>> {
    from_map(vm, "VM map")
}

pub(super) fn changes_of(changes: &Map) -> Result<VmChanges, Box<EvalAltResult>> {
    from_map(changes, "changes")
}

/// One line describing a row, for dry-run output: its stored columns.
fn describe(row: &crate::store::VmRecord) -> String {
    format!(
        "vm_uuid={}, vm_id={}, vm_name={}, pool_id={}, priority={} ({})",
        row.vm_uuid,
        row.vm_id,
        row.vm_name.as_deref().unwrap_or("NULL"),
        row.pool_id,
        row.priority_level,
        row.priority
    )
}

fn register_with(ctx: &Context, vm: &Map, held: &HeldIds) -> Result<Map, Box<EvalAltResult>> {
    let new = new_vm_of(vm)?;
    let store = ctx.store_for_script()?;
    if ctx.config.dry_run {
        let row = store
            .preview_register(&new, held)
            .map_err(HostError::store)?;
        ctx.dry_run_note(&format!("insert into vms: {}", describe(&row)));
        return Ok(vm_map(&row));
    }
    let row = ctx
        .store_for_script_write()?
        .register(&new, held)
        .map_err(HostError::store)?;
    Ok(vm_map(&row))
}

fn preview_register_with(
    ctx: &Context,
    vm: &Map,
    held: &HeldIds,
) -> Result<Map, Box<EvalAltResult>> {
    let new = new_vm_of(vm)?;
    let row = ctx
        .store_for_script()?
        .preview_register(&new, held)
        .map_err(HostError::store)?;
    Ok(vm_map(&row))
}

fn update_with(
    ctx: &Context,
    uuid: &str,
    changes: &Map,
    held: &HeldIds,
) -> Result<Map, Box<EvalAltResult>> {
    if ctx.config.dry_run {
        let row = preview_update_row(ctx, uuid, changes, held)?;
        ctx.dry_run_note(&format!("update vms: {}", describe(&row)));
        return Ok(vm_map(&row));
    }
    let uuid = super::uuid_arg(uuid)?;
    let changes = changes_of(changes)?;
    let (_, after) = ctx
        .store_for_script_write()?
        .update(uuid.as_str(), &changes, held)
        .map_err(HostError::store)?;
    Ok(vm_map(&after))
}

fn preview_update_with(
    ctx: &Context,
    uuid: &str,
    changes: &Map,
    held: &HeldIds,
) -> Result<Map, Box<EvalAltResult>> {
    Ok(vm_map(&preview_update_row(ctx, uuid, changes, held)?))
}

/// What `update` would store, checked the same way, without writing.
fn preview_update_row(
    ctx: &Context,
    uuid: &str,
    changes: &Map,
    held: &HeldIds,
) -> Result<crate::store::VmRecord, Box<EvalAltResult>> {
    let uuid = super::uuid_arg(uuid)?;
    let changes = changes_of(changes)?;
    ctx.store_for_script()?
        .preview_update(uuid.as_str(), &changes, held)
        .map_err(HostError::store)
}

/// Registers `vms::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "vms",
    /// Every registered VM, in vm_id order, as a lazy list of maps (see `VmList`).
    /// Each VM map has `vm_uuid`, `vm_id`, `vm_name` (or `()`), `pool_id`, `priority` (word),
    /// `priority_level` (0/1/2), `created_at`, `updated_at` and `invalid` (why a row left by
    /// the earlier tool is invalid, or `()`).
    fn list(ctx) -> Rr<VmList> {
        Ok(VmList::new(ctx.store_for_script()?, VmFilter::default()))
    });
    host_fn!(api, ctx, "vms",
    /// The registered VMs matching `filter`: `#{pool: "A", priority: "high"}` (either key may
    /// be left out; values are checked like the command-line options).
    fn list(ctx, filter: Map) -> Rr<VmList> {
        Ok(VmList::new(ctx.store_for_script()?, filter_of(&filter)?))
    });
    host_fn!(api, ctx, "vms",
    /// How many VMs are registered.
    fn count(ctx) -> Rr<INT> {
        ctx.store_for_script()?.count_vms(VmFilter::default()).map_err(HostError::store)
    });
    host_fn!(api, ctx, "vms",
    /// How many registered VMs match `filter` (`#{pool: "A", priority: "high"}`).
    fn count(ctx, filter: Map) -> Rr<INT> {
        ctx.store_for_script()?.count_vms(filter_of(&filter)?).map_err(HostError::store)
    });
    host_fn!(api, ctx, "vms",
    /// The VM registered under `uuid` (any case), as a map, or `()` when it is not registered.
    /// A malformed uuid is an error.
    fn get(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        let vm = ctx.store_for_script()?.vm(uuid.as_str()).map_err(HostError::store)?;
        Ok(vm.map_or(Dynamic::UNIT, |vm| Dynamic::from_map(vm_map(&vm))))
    });
    host_fn!(api, ctx, "vms",
    /// Registers a VM: `#{uuid, name, pool, priority, vm_id}`; only `uuid` is required.
    /// Defaults: pool A, priority medium, and the next free vm_id, taken atomically so that
    /// concurrent processes never get the same one. Fails (exit status 2) when the uuid is
    /// registered already or the vm_id is taken. Returns the new VM's map. Under `--dry-run`
    /// it prints the row it would insert and returns it.
    fn register(ctx, vm: Map) -> Rr<Map> {
        register_with(ctx, &vm, &HeldIds::new())
    });
    host_fn!(api, ctx, "vms",
    /// Like `vms::register(vm)`; the ids in `held` (from `vgpu::vm_ids_held`: ids the
    /// host's VMs carry) count as taken too: an explicit one is refused, naming the VM that
    /// carries it, and an automatic one skips them.
    fn register(ctx, vm: Map, held: Map) -> Rr<Map> {
        register_with(ctx, &vm, &held_ids(&held)?)
    });
    host_fn!(api, ctx, "vms",
    /// Checks a registration like `vms::register` does and returns the VM map it would
    /// store (the vm_id it would take, empty timestamps), changing nothing.
    fn preview_register(ctx, vm: Map) -> Rr<Map> {
        preview_register_with(ctx, &vm, &HeldIds::new())
    });
    host_fn!(api, ctx, "vms",
    /// Like `vms::preview_register(vm)`, with the ids in `held` taken too.
    fn preview_register(ctx, vm: Map, held: Map) -> Rr<Map> {
        preview_register_with(ctx, &vm, &held_ids(&held)?)
    });
    host_fn!(api, ctx, "vms",
    /// Changes a registered VM: `changes` may hold `name`, `pool`, `priority` and `vm_id`;
    /// the others keep their values. Everything is checked first (a vm_id held by another VM
    /// is refused, exit status 2). Returns the VM's map after the change. Under `--dry-run`
    /// it prints the change and returns the map it would leave.
    fn update(ctx, uuid: &str, changes: Map) -> Rr<Map> {
        update_with(ctx, uuid, &changes, &HeldIds::new())
    });
    host_fn!(api, ctx, "vms",
    /// Like `vms::update(uuid, changes)`, with the ids in `held` taken too.
    fn update(ctx, uuid: &str, changes: Map, held: Map) -> Rr<Map> {
        update_with(ctx, uuid, &changes, &held_ids(&held)?)
    });
    host_fn!(api, ctx, "vms",
    /// Makes the same change (as `vms::update`) to every VM of `uuids` in one database
    /// transaction: all of them or none. Returns their maps afterwards, in the same order.
    /// For settings no VM restart depends on (the scheduler controls); under `--dry-run` it
    /// prints each change.
    fn update_many(ctx, uuids: Array, changes: Map) -> Rr<Array> {
        let each = |ctx: &Context| -> Result<Array, Box<EvalAltResult>> {
            uuids
                .iter()
                .map(|u| update_with(ctx, &u.to_string(), &changes, &HeldIds::new()).map(Dynamic::from_map))
                .collect()
        };
        if ctx.config.dry_run {
            return each(ctx);
        }
        let store = ctx.store_for_script_write()?;
        store.batch(|| each(ctx))
    });
    host_fn!(api, ctx, "vms",
    /// Checks a change like `vms::update` does and returns the VM map it would leave,
    /// changing nothing. Use it to validate before stopping a VM.
    fn preview_update(ctx, uuid: &str, changes: Map) -> Rr<Map> {
        preview_update_with(ctx, uuid, &changes, &HeldIds::new())
    });
    host_fn!(api, ctx, "vms",
    /// Like `vms::preview_update(uuid, changes)`, with the ids in `held` taken too.
    fn preview_update(ctx, uuid: &str, changes: Map, held: Map) -> Rr<Map> {
        preview_update_with(ctx, uuid, &changes, &held_ids(&held)?)
    });
    host_fn!(api, ctx, "vms",
    /// For a VM this host has no row for: reads its name, pool record and device-model-args
    /// in one xe call (none when this host has no pool key, `pool.key` beside the database) and,
    /// when the record's signature checks out, writes its row here (registered on another host
    /// of the pool). Returns `#{vm, args}` (the row's map; the args as listed), `#{unverified:
    /// why}` for a record that is not believed, or `()` when the VM is not registered anywhere.
    /// A vm_id this database has for another VM is an error (exit 2). Under `--dry-run` it
    /// writes nothing.
    fn from_pool(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        let key = ctx.pool_key(false)?;
        if key.is_none() {
            return Ok(Dynamic::UNIT);
        }
        ctx.check_outside_transaction()?;
        let store = if ctx.config.dry_run { ctx.store_for_script()? } else { ctx.store_for_script_write()? };
        let xe = ctx.xe();
        let found = ctx
            .waiting(|| crate::change::register_from_pool(&uuid, &store, &xe, key.as_deref(), ctx.config.dry_run))
            .map_err(HostError::boxed)?;
        Ok(match found {
            crate::change::FromPool::NotRegistered => Dynamic::UNIT,
            crate::change::FromPool::Unverified(why) => {
                let mut m = Map::new();
                m.insert("unverified".into(), why.into());
                Dynamic::from_map(m)
            }
            crate::change::FromPool::Written(row, vm) => {
                let mut m = Map::new();
                m.insert("vm".into(), Dynamic::from_map(vm_map(&row)));
                m.insert("args".into(), vm.device_model_args.clone().map_or(Dynamic::UNIT, Dynamic::from));
                Dynamic::from_map(m)
            }
        })
    });
    host_fn!(api, ctx, "vms",
    /// Brings this host's rows in line with the pool records of `host_vms` (from `xe::vms`: the
    /// whole pool), where that is safe: a VM with a believed record and no row gets one
    /// (`added`); a row that the record and the VM's args both contradict is refreshed
    /// (`updated`: changed on another host); a row, record and args that disagree are left
    /// alone (`conflict`); a record not believed is `unverified`; `same` and `none` (no record)
    /// change nothing. Returns one map per VM: `#{uuid, name, outcome, why, before, after}`
    /// (`before`/`after`: VM maps or `()`). Under `--dry-run` it writes nothing.
    fn sync_from_pool(ctx, host_vms: rhai::Array) -> Rr<rhai::Array> {
        let key = ctx.pool_key(false)?;
        let store = if ctx.config.dry_run { ctx.store_for_script()? } else { ctx.store_for_script_write()? };
        let mut out = rhai::Array::new();
        for item in &host_vms {
            let Some(m) = item.read_lock::<Map>().map(|m| m.clone()) else { continue };
            let text = |k: &str| m.get(k).filter(|v| !v.is_unit()).map(|v| v.to_string());
            let record = super::vgpu::pool_record_of(&m);
            let vm = crate::xe::HostVm {
                uuid: text("uuid").unwrap_or_default(),
                name: text("name_label").unwrap_or_default(),
                power_state: text("power_state").unwrap_or_default(),
                device_model_args: text("device_model_args"),
                args_exact: false,
                resident_on: text("resident_on"),
                pool_record: record,
            };
            let synced = crate::change::sync_one(&vm, &store, key.as_deref(), ctx.config.dry_run)
                .map_err(HostError::boxed)?;
            use crate::change::Synced;
            let (outcome, why, before, after) = match synced {
                Synced::NoRecord => ("none", String::new(), None, None),
                Synced::Unverified(why) => ("unverified", why, None, None),
                Synced::Same => ("same", String::new(), None, None),
                Synced::Added(row) => ("added", String::new(), None, Some(*row)),
                Synced::Updated(before, after) => ("updated", String::new(), Some(*before), Some(*after)),
                Synced::Conflict(why) => ("conflict", why, None, None),
            };
            let mut r = Map::new();
            r.insert("uuid".into(), vm.uuid.clone().into());
            r.insert("name".into(), crate::model::printable(&vm.name).into_owned().into());
            r.insert("outcome".into(), outcome.into());
            r.insert("why".into(), why.into());
            let as_map = |row: Option<crate::store::VmRecord>| row.map_or(Dynamic::UNIT, |r| Dynamic::from_map(vm_map(&r)));
            r.insert("before".into(), as_map(before));
            r.insert("after".into(), as_map(after));
            out.push(Dynamic::from_map(r));
        }
        Ok(out)
    });
    host_fn!(api, ctx, "vms",
    /// The audit trail, oldest first: every change to a VM's configuration as maps `#{id, at,
    /// command, vm_uuid, before, after, outcome, user, host}` (`before`/`after`: `#{vm_id,
    /// vm_name, pool_id, priority}` with the priority level, or `()` when not registered).
    /// `filter`: `#{vm_uuid: "...", since: "YYYY-MM-DD[ HH:MM[:SS]]"}` (either key may be left
    /// out; UTC).
    fn history(ctx, filter: Map) -> Rr<rhai::Array> {
        let filter: crate::store::HistoryFilter = from_map(&filter, "history filter")?;
        let rows = ctx.store_for_script()?.history(&filter).map_err(HostError::store)?;
        Ok(rows.iter().map(|r| Dynamic::from_map(super::values::to_map(r))).collect())
    });
    host_fn!(api, ctx, "vms",
    /// Writes one history row for VM `uuid` with `outcome` (its configuration, unchanged in the
    /// database, as before and after): for a change to the VM's args alone, such as the startup
    /// hook's repair. Under `--dry-run` it only says so.
    fn record(ctx, uuid: &str, outcome: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        if ctx.config.dry_run {
            ctx.dry_run_note(&format!("record in the history: VM {uuid}: {outcome}"));
            return Ok(());
        }
        ctx.store_for_script_write()?.history_note(uuid.as_str(), outcome).map_err(HostError::store)
    });
    host_fn!(api, ctx, "vms",
    /// Marks a registered VM as running with its previous settings until it is restarted
    /// (`pending = true`, shown as "restart pending"), or clears the mark. Under `--dry-run`
    /// it only says so.
    fn set_restart_pending(ctx, uuid: &str, pending: bool) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        if ctx.config.dry_run {
            if pending {
                ctx.dry_run_note(&format!("mark VM {uuid} as waiting for a restart"));
            }
            return Ok(());
        }
        ctx.store_for_script_write()?.set_restart_pending(uuid.as_str(), pending).map_err(HostError::store)
    });
    host_fn!(api, ctx, "vms",
    /// Deletes a VM's registration and returns the map it had. Not registered: error (exit 3).
    /// Under `--dry-run` it prints the row it would delete.
    fn remove(ctx, uuid: &str) -> Rr<Map> {
        let uuid = super::uuid_arg(uuid)?;
        let store = ctx.store_for_script()?;
        let row = store.vm(uuid.as_str()).map_err(HostError::store)?.ok_or_else(|| {
            HostError::store(crate::store::StoreError::NotRegistered(uuid.to_string()))
        })?;
        if ctx.config.dry_run {
            ctx.dry_run_note(&format!("delete from vms: {}", describe(&row)));
            return Ok(vm_map(&row));
        }
        let row = ctx.store_for_script_write()?.remove(uuid.as_str()).map_err(HostError::store)?;
        Ok(vm_map(&row))
    });
    host_fn!(api, ctx, "vms",
    /// The name to store for a VM whose name-label is `label`: control characters escaped and
    /// cut to 255 characters, so that any VM can be registered by uuid; `()` for an empty label.
    fn storable_name(_ctx, label: &str) -> Rr<Dynamic> {
        let (name, _) = VmName::from_label(label);
        Ok(name.map_or(Dynamic::UNIT, |n| Dynamic::from(n.to_string())))
    });
    host_fn!(api, ctx, "vms",
    /// The vm_id `vms::register` would assign now (one above the highest in use).
    fn next_vm_id(ctx) -> Rr<INT> {
        ctx.store_for_script()?.next_vm_id(&HeldIds::new()).map_err(HostError::store)
    });
    host_fn!(api, ctx, "vms",
    /// The vm_id `vms::register(vm, held)` would assign now, skipping the ids in `held`.
    fn next_vm_id(ctx, held: Map) -> Rr<INT> {
        ctx.store_for_script()?.next_vm_id(&held_ids(&held)?).map_err(HostError::store)
    });

    let c = ctx.clone();
    api.register(
        "vms",
        "transaction",
        &[("work", "FnPtr")],
        "Dynamic",
        &[
            "Runs `work` (a function or closure) as one database transaction: every change it makes",
            "through `vms::` is kept together, or none is if it throws (or the process is killed).",
            "Returns what `work` returns. Use it for bulk changes: 10,000 registrations in one",
            "transaction take a fraction of a second. xe cannot be called inside it (the database",
            "would stay locked while xe runs); for a change to a VM use `vms::apply`.",
        ],
        move |call: NativeCallContext, work: FnPtr| -> Result<Dynamic, Box<EvalAltResult>> {
            if c.config.dry_run {
                // Nothing is written in a dry run: no transaction to hold.
                return work.call_within_context::<Dynamic>(&call, ());
            }
            let store = c.store_for_script_write()?;
            store.batch(|| work.call_within_context::<Dynamic>(&call, ()))
        },
    );
}
