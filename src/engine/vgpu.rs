//! The `vgpu::` module: the vGPU device in `platform:device-model-args`, and the driver name
//! the site's QEMU has.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::model::{printable, Pool, Priority, VmConfig, VmId};
use crate::store::{HeldIds, VmFilter};
use crate::vgpu;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The configuration in a VM map (`pool_id` or `pool`, `priority`, `vm_id`).
fn config_of(vm: &Map) -> Result<VmConfig, Box<EvalAltResult>> {
    let text = |keys: &[&str]| -> Result<String, Box<EvalAltResult>> {
        keys.iter()
            .find_map(|k| vm.get(*k).filter(|v| !v.is_unit()))
            .map(|v| v.to_string())
            .ok_or_else(|| HostError::usage(format!("the VM map has no {}", keys[0])))
    };
    let pool = Pool::parse(&text(&["pool_id", "pool"])?).map_err(HostError::model)?;
    let priority = Priority::parse(&text(&["priority"])?).map_err(HostError::model)?;
    let vm_id = VmId::parse(&text(&["vm_id"])?).map_err(HostError::model)?;
    Ok(VmConfig {
        pool,
        priority,
        vm_id,
    })
}

/// `()` or a string, as an optional `&str`.
fn optional(value: &Dynamic) -> Option<String> {
    (!value.is_unit()).then(|| value.to_string())
}

fn args_error(e: vgpu::ArgsError) -> Box<EvalAltResult> {
    HostError::boxed_kind(crate::exit::Failure::failed(e.to_string()), "unsplittable")
}

/// "web01 (7d5a8c3e-...)": how messages name a VM of the host.
fn label(vm: &Map) -> String {
    let get = |k: &str| vm.get(k).and_then(optional).unwrap_or_default();
    let (uuid, name) = (get("uuid"), get("name"));
    if name.is_empty() {
        uuid
    } else {
        format!("{} ({uuid})", printable(&name))
    }
}

/// The vm_id each host VM's device carries, with the VM's label (for `vm_ids_held` and
/// `vm_id_clashes`).
fn carried(host_vms: &Array) -> Vec<(u32, String, String)> {
    let mut out = Vec::new();
    for vm in host_vms {
        let Some(m) = vm.read_lock::<Map>() else {
            continue;
        };
        let uuid = m.get("uuid").and_then(optional).unwrap_or_default();
        // The id its device carries, and the one the pool database records for it (believed
        // or not: either may be in use somewhere in the pool).
        let from_args = m
            .get("device_model_args")
            .and_then(optional)
            .and_then(|args| vgpu::carried_vm_id(&args));
        let from_record = crate::pool_record::named_vm_id(&pool_record_of(&m));
        let mut ids: Vec<u32> = from_args.into_iter().chain(from_record).collect();
        ids.dedup();
        for id in ids {
            out.push((id, uuid.clone(), label(&m)));
        }
    }
    out
}

/// The `pool_record` of a host VM map (see `xe::vms`), as the pool record module reads it.
pub(super) fn pool_record_of(host_vm: &Map) -> std::collections::BTreeMap<String, String> {
    host_vm
        .get("pool_record")
        .and_then(|r| r.read_lock::<Map>().map(|r| r.clone()))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A map `#{"7": "web01 (uuid)"}` as the vm_ids it holds.
pub fn held_ids(map: &Map) -> Result<HeldIds, Box<EvalAltResult>> {
    map.iter()
        .map(|(k, v)| {
            k.parse::<i64>().map(|id| (id, v.to_string())).map_err(|_| {
                HostError::usage(format!("'{k}' is not a vm_id in the map of held ids"))
            })
        })
        .collect()
}

/// Registers `vgpu::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "vgpu",
    /// The driver name written for a device the tool adds: the site's `device_driver` setting
    /// (see `set-device-driver`), else `vgpu-stub`.
    fn driver(ctx) -> Rr<String> {
        Ok(ctx.site_driver()?.unwrap_or(crate::model::Driver::DEFAULT).to_string())
    });
    host_fn!(api, ctx, "vgpu",
    /// The device word for a VM map (`pool_id`, `priority`, `vm_id`), naming the site's driver:
    /// `-device vgpu-stub,pool_id=A,priority=high,vm_id=7`.
    fn device_args(ctx, vm: Map) -> Rr<String> {
        let driver = ctx.site_driver()?.unwrap_or(crate::model::Driver::DEFAULT);
        Ok(vgpu::device_args(&config_of(&vm)?, driver))
    });
    host_fn!(api, ctx, "vgpu",
    /// `existing` device-model-args (a string or `()`) with the vGPU device set to `vm`'s
    /// pool, priority and vm_id: an existing device (`vgpu-stub` or `vgpu-cuda`) is edited in
    /// place, keeping its driver and other properties, further vGPU devices are removed, and
    /// every other word is kept byte for byte; without one, a device naming the site's driver
    /// (`vgpu::driver()`) is added. A value that cannot be split into words as qemu-wrapper
    /// splits it is an error (kind `"unsplittable"`, exit status 1).
    fn merge(ctx, existing: Dynamic, vm: Map) -> Rr<String> {
        let driver = ctx.site_driver()?.unwrap_or(crate::model::Driver::DEFAULT);
        vgpu::merge(optional(&existing).as_deref(), &config_of(&vm)?, driver).map_err(args_error)
    });
    host_fn!(api, ctx, "vgpu",
    /// `existing` device-model-args without any vGPU device, or `()` when nothing else is
    /// left (then remove the key rather than set it empty). Unsplittable: an error.
    fn strip(_ctx, existing: Dynamic) -> Rr<Dynamic> {
        let Some(value) = optional(&existing) else { return Ok(Dynamic::UNIT) };
        let stripped = vgpu::strip(&value).map_err(args_error)?;
        Ok(stripped.map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "vgpu",
    /// True when `value` (a string or `()`) splits into words as qemu-wrapper splits them
    /// (false for an unclosed quote: such a VM cannot start).
    fn splits(_ctx, value: Dynamic) -> Rr<bool> {
        Ok(optional(&value).is_none_or(|v| vgpu::shell_words::split(&v).is_ok()))
    });
    host_fn!(api, ctx, "vgpu",
    /// True when `value` (a string or `()`) has a vGPU device (false when it cannot be split).
    fn has_device(_ctx, value: Dynamic) -> Rr<bool> {
        Ok(optional(&value).is_some_and(|v| matches!(vgpu::parse(&v), Ok(Some(_)))))
    });
    host_fn!(api, ctx, "vgpu",
    /// The first vGPU device in `value` as `#{driver, pool_id, priority, vm_id, count,
    /// config, problem}`: its own properties as QEMU reads them (`()` when absent), how many
    /// vGPU devices there are, and either `config`, the configuration to register for it
    /// (`#{pool, priority, vm_id}`: a missing pool is A, a missing priority medium, a legacy
    /// digit priority its word) or `problem`, why there is none. `()` when there is no device;
    /// unsplittable: an error.
    fn parse(_ctx, value: Dynamic) -> Rr<Dynamic> {
        let Some(value) = optional(&value) else { return Ok(Dynamic::UNIT) };
        let Some(found) = vgpu::parse(&value).map_err(args_error)? else {
            return Ok(Dynamic::UNIT);
        };
        let text = |v: &Option<String>| v.clone().map_or(Dynamic::UNIT, Dynamic::from);
        let mut m = Map::new();
        m.insert("driver".into(), found.driver.to_string().into());
        m.insert("pool_id".into(), text(&found.pool_id));
        m.insert("priority".into(), text(&found.priority));
        m.insert("vm_id".into(), text(&found.vm_id));
        m.insert("count".into(), (found.count as rhai::INT).into());
        let (config, problem) = match found.config() {
            Ok(c) => {
                let mut config = Map::new();
                config.insert("pool".into(), c.pool.to_string().into());
                config.insert("priority".into(), c.priority.to_string().into());
                config.insert("vm_id".into(), c.vm_id.get().into());
                (Dynamic::from_map(config), Dynamic::UNIT)
            }
            Err(why) => (Dynamic::UNIT, Dynamic::from(why)),
        };
        m.insert("config".into(), config);
        m.insert("problem".into(), problem);
        Ok(Dynamic::from_map(m))
    });
    host_fn!(api, ctx, "vgpu",
    /// True when two VM maps give the device the same configuration — what the model calls a
    /// VM's configuration (today pool, priority and vm_id), whatever else the maps hold.
    fn same_config(_ctx, a: Map, b: Map) -> Rr<bool> {
        Ok(config_of(&a)? == config_of(&b)?)
    });
    host_fn!(api, ctx, "vgpu",
    /// Compares device-model-args `value` (string or `()`) with a VM map: `"in sync"` when the
    /// device QEMU will build has the VM's pool, priority and vm_id, else `"differs: ..."`
    /// saying why, including what QEMU would refuse.
    fn sync_state(_ctx, value: Dynamic, vm: Map) -> Rr<String> {
        Ok(vgpu::sync(optional(&value).as_deref(), &config_of(&vm)?).describe())
    });
    host_fn!(api, ctx, "vgpu",
    /// For the VMs of `host_vms` (from `xe::vms`) that are registered: a map from uuid to
    /// `#{power_state, sync_state, restart_pending, pending_note, resident_on, host_note}`
    /// (`restart_pending`: the VM is not halted and waits for a restart to get a change;
    /// `pending_note`: `", restart pending"` then, and `", QUARANTINED"` for a VM the GPU
    /// mediator quarantined, else `""`; `host_note`: `""` here), plus the
    /// entry `"*"` for registered VMs the host does not have. Made in one pass over the
    /// database, for `ui::print_each`'s `extra` argument.
    fn sync_states(ctx, host_vms: Array) -> Rr<Map> {
        sync_states_of(ctx, &host_vms, &Map::new())
    });
    host_fn!(api, ctx, "vgpu",
    /// Like `sync_states(host_vms)`, with `host_note` `" on <label>"` for a VM resident on a
    /// host: `host_labels` maps host uuids to labels (see the `hosts` stdlib module).
    fn sync_states(ctx, host_vms: Array, host_labels: Map) -> Rr<Map> {
        sync_states_of(ctx, &host_vms, &host_labels)
    });
    host_fn!(api, ctx, "vgpu",
    /// The vm_ids the vGPU devices of `host_vms` (from `xe::vms`, the whole pool) carry, or their
    /// pool records name, except VM `except_uuid`'s: a map from vm_id (as a string) to the VM. Pass it to
    /// `vms::register`, `vms::update` and their previews so that these ids count as taken.
    fn vm_ids_held(_ctx, host_vms: Array, except_uuid: &str) -> Rr<Map> {
        let except = super::uuid_arg(except_uuid)?;
        Ok(carried(&host_vms)
            .into_iter()
            .filter(|(_, uuid, _)| *uuid != except.as_str())
            .map(|(id, _, label)| (id.to_string().into(), Dynamic::from(label)))
            .collect())
    });
    host_fn!(api, ctx, "vgpu",
    /// What the pool record of `host_vm` (from `xe::vms` or `xe::vm`) says, checked with this
    /// host's pool key: `#{state, why, pool, priority, vm_id}` — `state` is `"valid"` (the
    /// values are the record's), `"unverified"` (`why` says why it is not believed) or
    /// `"none"` (no record).
    fn pool_claim(ctx, host_vm: Map) -> Rr<Map> {
        let uuid = host_vm.get("uuid").and_then(optional).unwrap_or_default();
        let record = pool_record_of(&host_vm);
        let key = ctx.pool_key(false)?;
        let mut m = Map::new();
        match crate::pool_record::read(&record, &uuid, key.as_deref()) {
            crate::pool_record::Claim::None => {
                m.insert("state".into(), "none".into());
            }
            crate::pool_record::Claim::Unverified(why) => {
                m.insert("state".into(), "unverified".into());
                m.insert("why".into(), why.into());
            }
            crate::pool_record::Claim::Valid(c) => {
                m.insert("state".into(), "valid".into());
                m.insert("pool".into(), c.pool.to_string().into());
                m.insert("priority".into(), c.priority.to_string().into());
                m.insert("vm_id".into(), rhai::INT::from(c.vm_id.get()).into());
            }
        }
        Ok(m)
    });
    host_fn!(api, ctx, "vgpu",
    /// The vm_ids that the vGPU devices of two or more of `host_vms` carry, as an array of
    /// `#{vm_id, vms}` (`vms`: the VMs carrying it): the mediator cannot tell such VMs apart.
    fn vm_id_clashes(_ctx, host_vms: Array) -> Rr<Array> {
        let mut by_id: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (id, _, label) in carried(&host_vms) {
            by_id.entry(id).or_default().push(label);
        }
        Ok(by_id
            .into_iter()
            .filter(|(_, vms)| vms.len() > 1)
            .map(|(id, vms)| {
                let mut m = Map::new();
                m.insert("vm_id".into(), rhai::INT::from(id).into());
                m.insert("vms".into(), vms.into_iter().map(Dynamic::from).collect::<Array>().into());
                Dynamic::from_map(m)
            })
            .collect())
    });
    host_fn!(api, ctx, "vgpu",
    /// The vGPU drivers (`"vgpu-stub"`, `"vgpu-cuda"`) this host's QEMU
    /// (`/usr/lib64/xen/bin/qemu-system-i386`) lists in `-device help`. An error when it cannot
    /// be run.
    fn qemu_drivers(ctx) -> Rr<Array> {
        qemu_drivers_at(ctx, crate::qemu::DEFAULT_QEMU)
    });
    host_fn!(api, ctx, "vgpu",
    /// Like `vgpu::qemu_drivers()`, asking the QEMU binary at `path` (an absolute path).
    fn qemu_drivers(ctx, path: &str) -> Rr<Array> {
        qemu_drivers_at(ctx, path)
    });
}

fn qemu_drivers_at(ctx: &Context, path: &str) -> Result<Array, Box<EvalAltResult>> {
    let drivers = ctx
        .waiting(|| crate::qemu::vgpu_drivers(std::path::Path::new(path)))
        .map_err(|e| HostError::failed(e.to_string()))?;
    Ok(drivers
        .into_iter()
        .map(|d| Dynamic::from(d.to_string()))
        .collect())
}

/// The entries of `vgpu::sync_states` (see there).
fn sync_states_of(
    ctx: &Context,
    host_vms: &Array,
    host_labels: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    struct OnHost {
        power: String,
        args: Option<String>,
        resident_on: Option<String>,
    }
    let mut on_host: HashMap<String, OnHost> = HashMap::new();
    for vm in host_vms {
        if let Some(m) = vm.read_lock::<Map>() {
            let get = |k: &str| m.get(k).and_then(optional);
            if let Some(uuid) = get("uuid") {
                on_host.insert(
                    uuid,
                    OnHost {
                        power: get("power_state").unwrap_or_default(),
                        args: get("device_model_args"),
                        resident_on: get("resident_on"),
                    },
                );
            }
        }
    }
    let mut out = Map::new();
    let entry = |power: &str,
                 sync: String,
                 pending: bool,
                 quarantined: bool,
                 resident_on: Option<&String>| {
        let mut e = Map::new();
        e.insert("power_state".into(), power.into());
        e.insert("sync_state".into(), sync.into());
        e.insert("restart_pending".into(), pending.into());
        e.insert(
            "pending_note".into(),
            format!(
                "{}{}",
                if pending { ", restart pending" } else { "" },
                if quarantined { ", QUARANTINED" } else { "" }
            )
            .into(),
        );
        e.insert(
            "resident_on".into(),
            resident_on.map_or(Dynamic::UNIT, |h| h.clone().into()),
        );
        let label = resident_on.and_then(|h| host_labels.get(h.as_str()).and_then(optional));
        e.insert(
            "host_note".into(),
            label.map_or(String::new(), |l| format!(" on {l}")).into(),
        );
        Dynamic::from_map(e)
    };
    ctx.store_for_script()?
        .for_each_vm(VmFilter::default(), |row| {
            if let Some(vm) = on_host.get(&row.vm_uuid) {
                let sync = match row.config() {
                    Some(config) => vgpu::sync(vm.args.as_deref(), &config).describe(),
                    None => "invalid database entry".to_string(),
                };
                let pending = row.restart_pending && vm.power != "halted";
                out.insert(
                    row.vm_uuid.as_str().into(),
                    entry(
                        &vm.power,
                        sync,
                        pending,
                        row.quarantined,
                        vm.resident_on.as_ref(),
                    ),
                );
            }
            Ok::<(), Box<EvalAltResult>>(())
        })?;
    out.insert(
        "*".into(),
        entry(
            "not on this host",
            "missing from host".to_string(),
            false,
            false,
            None,
        ),
    );
    Ok(out)
}
