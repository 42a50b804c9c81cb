//! The `vgpu::` module: the stub device in `platform:device-model-args`.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::model::{Pool, Priority, VmConfig, VmId};
use crate::store::VmFilter;
use crate::vgpu;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::collections::HashMap;
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

/// Registers `vgpu::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "vgpu",
    /// The stub device for a VM map (`pool_id`, `priority`, `vm_id`):
    /// `-device vgpu-stub,pool_id=A,priority=high,vm_id=7`.
    fn device_args(_ctx, vm: Map) -> Rr<String> {
        Ok(vgpu::device_args(&config_of(&vm)?))
    });
    host_fn!(api, ctx, "vgpu",
    /// `existing` device-model-args (a string or `()`) with the stub device for `vm` in place
    /// of any stub it had; every other word is kept, in order.
    fn merge(_ctx, existing: Dynamic, vm: Map) -> Rr<String> {
        Ok(vgpu::merge(&optional(&existing).unwrap_or_default(), &config_of(&vm)?))
    });
    host_fn!(api, ctx, "vgpu",
    /// `existing` device-model-args without the stub device, or `()` when nothing else is
    /// left (then remove the key rather than set it empty).
    fn strip(_ctx, existing: Dynamic) -> Rr<Dynamic> {
        let stripped = optional(&existing).and_then(|v| vgpu::strip(&v));
        Ok(stripped.map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "vgpu",
    /// The stub device found in `value` as `#{pool_id, priority, vm_id, problem}` (values as
    /// written; `problem` is `()` when they form a valid configuration), or `()` when there
    /// is none.
    fn parse(_ctx, value: Dynamic) -> Rr<Dynamic> {
        let Some(found) = optional(&value).and_then(|v| vgpu::parse(&v)) else {
            return Ok(Dynamic::UNIT);
        };
        let text = |v: &Option<String>| v.clone().map_or(Dynamic::UNIT, Dynamic::from);
        let mut m = Map::new();
        m.insert("pool_id".into(), text(&found.pool_id));
        m.insert("priority".into(), text(&found.priority));
        m.insert("vm_id".into(), text(&found.vm_id));
        m.insert("problem".into(), found.config().err().map_or(Dynamic::UNIT, Dynamic::from));
        Ok(Dynamic::from_map(m))
    });
    host_fn!(api, ctx, "vgpu",
    /// Compares device-model-args `value` (string or `()`) with a VM map: `"in sync"` or
    /// `"differs: ..."` saying what differs.
    fn sync_state(_ctx, value: Dynamic, vm: Map) -> Rr<String> {
        Ok(vgpu::describe_sync(optional(&value).as_deref(), &config_of(&vm)?))
    });
    host_fn!(api, ctx, "vgpu",
    /// For the VMs of `host_vms` (from `xe::vms`) that are registered: a map from uuid to
    /// `#{power_state, sync_state}`, plus the entry `"*"` for registered VMs the host does not
    /// have. Made in one pass over the database, for `ui::print_each`'s `extra` argument.
    fn sync_states(ctx, host_vms: Array) -> Rr<Map> {
        let mut on_host: HashMap<String, (String, Option<String>)> = HashMap::new();
        for vm in &host_vms {
            if let Some(m) = vm.read_lock::<Map>() {
                let get = |k: &str| m.get(k).and_then(optional);
                if let Some(uuid) = get("uuid") {
                    on_host.insert(uuid, (get("power_state").unwrap_or_default(), get("device_model_args")));
                }
            }
        }
        let mut out = Map::new();
        let entry = |power: &str, sync: String| {
            let mut e = Map::new();
            e.insert("power_state".into(), power.into());
            e.insert("sync_state".into(), sync.into());
            Dynamic::from_map(e)
        };
        ctx.store_for_script()?.for_each_vm(VmFilter::default(), |row| {
            if let Some((power, args)) = on_host.get(&row.vm_uuid) {
                let sync = match row.config() {
                    Some(config) => vgpu::describe_sync(args.as_deref(), &config),
                    None => "invalid database entry".to_string(),
                };
                out.insert(row.vm_uuid.as_str().into(), entry(power, sync));
            }
            Ok::<(), Box<EvalAltResult>>(())
        })?;
        out.insert("*".into(), entry("not on this host", "missing from host".to_string()));
        Ok(out)
    });
}
