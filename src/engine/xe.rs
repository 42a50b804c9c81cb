//! The `xe::` module: the host's VMs through the `xe` CLI. Changing calls honour `--dry-run`
//! (they print the exact xe command and make none); power operations show a spinner on a
//! terminal.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::model::printable;
use crate::output::Spinner;
use crate::xe::{HostVm, Xe};
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::rc::Rc;

/// A host VM as a script sees it: `uuid`, `name` (the name-label with control characters
/// escaped: safe to print), `name_label` (exactly as xe has it), `power_state`,
/// `device_model_args` (or `()`), `resident_on` (the uuid of the host it runs on, or `()`),
/// `pool_record` (its `vgpu-admin:` other-config keys: the pool database's record of its
/// configuration, as a map; empty when none).
pub fn host_vm_map(vm: &HostVm) -> Map {
    let mut m = Map::new();
    m.insert("uuid".into(), vm.uuid.clone().into());
    m.insert("name".into(), printable(&vm.name).into_owned().into());
    m.insert("name_label".into(), vm.name.clone().into());
    m.insert(
        "power_state".into(),
        printable(&vm.power_state).into_owned().into(),
    );
    m.insert(
        "device_model_args".into(),
        vm.device_model_args()
            .map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string())),
    );
    m.insert(
        "resident_on".into(),
        vm.resident_on.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert(
        "pool_record".into(),
        Dynamic::from_map(
            vm.pool_record
                .iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                .collect(),
        ),
    );
    m
}

/// Runs a changing `xe` call, or prints it under `--dry-run`.
fn change(
    ctx: &Context,
    args: Vec<String>,
    waiting: Option<String>,
) -> Result<(), Box<EvalAltResult>> {
    ctx.check_outside_transaction()?;
    if ctx.config.dry_run {
        ctx.dry_run_note(&format!("run: {}", Xe::display_call(&args)));
        return Ok(());
    }
    let _spinner = waiting.map(|m| Spinner::start(&m, !ctx.config.json));
    ctx.waiting(|| ctx.xe().call(&args)).map_err(HostError::xe)
}

/// Registers `xe::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "xe",
    /// Every VM of the pool except the control domains, as maps (see `xe::vm`; here
    /// `device_model_args` comes from the listing: read it again with `xe::vm` before writing
    /// anything derived from it). One `xe vm-list` call, checked against a second call that
    /// lists only uuids; when a VM's name imitates records, every VM is read one by one and a
    /// warning says so.
    fn vms(ctx) -> Rr<Array> {
        ctx.check_outside_transaction()?;
        let listing = ctx.waiting(|| ctx.xe().vms()).map_err(HostError::xe)?;
        if let Some(why) = listing.read_one_by_one {
            crate::output::stderr_line(&format!(
                "warning: the xe VM listing did not check out ({why}; a VM name with a line break?): read {} VMs one by one",
                listing.vms.len()
            ));
        }
        Ok(listing.vms.iter().map(|v| Dynamic::from_map(host_vm_map(v))).collect())
    });
    host_fn!(api, ctx, "xe",
    /// One VM of the pool by uuid as a map with `uuid`, `name` (safe to print), `name_label`
    /// (exact), `power_state` and `device_model_args` (or `()`, read exactly with
    /// `vm-param-get`), or `()` when there is no such VM: two calls.
    fn vm(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        ctx.check_outside_transaction()?;
        let vm = ctx.waiting(|| ctx.xe().vm(uuid.as_str())).map_err(HostError::xe)?;
        Ok(vm.map_or(Dynamic::UNIT, |v| Dynamic::from_map(host_vm_map(&v))))
    });
    host_fn!(api, ctx, "xe",
    /// The uuids of the VMs whose name-label is exactly `name`: one call.
    fn uuids_named(ctx, name: &str) -> Rr<Array> {
        ctx.check_outside_transaction()?;
        let uuids = ctx.waiting(|| ctx.xe().uuids_named(name)).map_err(HostError::xe)?;
        Ok(uuids.into_iter().map(Dynamic::from).collect())
    });
    host_fn!(api, ctx, "xe",
    /// The VM's `platform:device-model-args`, or `()` when it is not set: one
    /// `xe vm-param-get` call.
    fn device_model_args(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        ctx.check_outside_transaction()?;
        let args = ctx.waiting(|| ctx.xe().device_model_args(uuid.as_str())).map_err(HostError::xe)?;
        Ok(args.map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "xe",
    /// The `platform:device-model-args` of each VM of `uuids` (a map: uuid → args, or `()`
    /// when not set), each read on its own (one `xe vm-param-get` per VM), up to 8 at a time.
    /// A VM gone from the pool meanwhile is left out of the map; any other failure is an error.
    fn device_model_args_each(ctx, uuids: Array) -> Rr<Map> {
        let mut list = Vec::with_capacity(uuids.len());
        for u in &uuids {
            list.push(super::uuid_arg(&u.to_string())?.to_string());
        }
        ctx.check_outside_transaction()?;
        let xe = ctx.xe();
        let read = ctx.waiting(|| {
            let mut found = Vec::with_capacity(list.len());
            for chunk in list.chunks(8) {
                let results: Vec<_> = std::thread::scope(|scope| {
                    let handles: Vec<_> = chunk
                        .iter()
                        .map(|u| {
                            let xe = &xe;
                            scope.spawn(move || (u.clone(), xe.device_model_args(u)))
                        })
                        .collect();
                    handles.into_iter().filter_map(|h| h.join().ok()).collect()
                });
                found.extend(results);
            }
            found
        });
        let mut map = Map::new();
        for (uuid, args) in read {
            match args {
                Ok(args) => {
                    map.insert(uuid.into(), args.map_or(Dynamic::UNIT, Dynamic::from));
                }
                Err(e) if e.is_no_such_vm() => {}
                Err(e) => return Err(HostError::xe(e)),
            }
        }
        Ok(map)
    });
    host_fn!(api, ctx, "xe",
    /// Sets the VM's `platform:device-model-args` to `value` (takes effect at its next start).
    /// For a registered VM the same call writes its pool record (signed `vgpu-admin:` keys of
    /// `other-config`) with the configuration the database holds.
    fn set_device_model_args(ctx, uuid: &str, value: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        // No database, or no row: the args alone.
        let config = ctx.store().ok().and_then(|s| s.vm(uuid.as_str()).ok().flatten()).and_then(|r| r.config());
        let call = match (config, ctx.pool_key(true)?) {
            (Some(config), Some(key)) => Xe::set_vm_config_call(
                uuid.as_str(),
                value,
                &crate::pool_record::entries(&key, uuid.as_str(), &config),
            ),
            _ => Xe::set_device_model_args_call(uuid.as_str(), value),
        };
        change(ctx, call, None)
    });
    host_fn!(api, ctx, "xe",
    /// Removes the key `device-model-args` from the VM's platform map.
    fn remove_device_model_args(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::remove_device_model_args_call(uuid.as_str()), None)
    });
    host_fn!(api, ctx, "xe",
    /// Starts the VM where the pool master places it and returns when it is running (a spinner
    /// shows the wait on a terminal).
    fn start(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::start_call(uuid.as_str(), None), Some(format!("Starting VM {uuid}...")))
    });
    host_fn!(api, ctx, "xe",
    /// Starts the VM on host `on` (a host uuid, e.g. the `resident_on` it had) and returns when
    /// it is running; a host that cannot take it is an error, never another host.
    fn start(ctx, uuid: &str, on: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        let on = super::uuid_arg(on)?;
        change(ctx, Xe::start_call(uuid.as_str(), Some(on.as_str())), Some(format!("Starting VM {uuid}...")))
    });
    host_fn!(api, ctx, "xe",
    /// The pool's hosts as maps `#{uuid, name, here}` (`name` with control characters escaped),
    /// one call; `here` is true for the host vgpu-admin runs on.
    fn hosts(ctx) -> Rr<Array> {
        let this = ctx.this_host();
        let hosts = ctx.xe().hosts().map_err(HostError::xe)?;
        Ok(hosts
            .into_iter()
            .map(|h| {
                let mut m = Map::new();
                m.insert("here".into(), (Some(&h.uuid) == this.as_ref()).into());
                m.insert("uuid".into(), h.uuid.into());
                m.insert("name".into(), printable(&h.name).into_owned().into());
                Dynamic::from_map(m)
            })
            .collect())
    });
    host_fn!(api, ctx, "xe",
    /// The uuid of the host vgpu-admin runs on (`INSTALLATION_UUID` of the host's
    /// xensource-inventory, `--inventory`), or `()` when it cannot be read.
    fn this_host(ctx) -> Rr<Dynamic> {
        Ok(ctx.this_host().map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "xe",
    /// Shuts the VM down cleanly and returns when it is halted. When the guest cannot do a
    /// clean shutdown the error's `kind` is `"shutdown_refused"`.
    fn shutdown(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::shutdown_call(uuid.as_str(), false), Some(format!("Stopping VM {uuid}...")))
    });
    host_fn!(api, ctx, "xe",
    /// Shuts the VM down, forced (`force = true`, like pulling the plug) or cleanly.
    fn shutdown(ctx, uuid: &str, force: bool) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        let what = if force { "Forcing VM" } else { "Stopping VM" };
        change(ctx, Xe::shutdown_call(uuid.as_str(), force), Some(format!("{what} {uuid} off...")))
    });
}
