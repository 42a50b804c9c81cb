//! The `xe::` module: the host's VMs through the `xe` CLI. Changing calls honour `--dry-run`
//! (they print the exact xe command and make none); power operations show a spinner on a
//! terminal.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::output::Spinner;
use crate::xe::{HostVm, Xe};
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::rc::Rc;

/// A host VM as a script sees it: `uuid`, `name`, `power_state`, `device_model_args` (or `()`),
/// `platform` (map).
pub fn host_vm_map(vm: &HostVm) -> Map {
    let mut m = Map::new();
    m.insert("uuid".into(), vm.uuid.clone().into());
    m.insert("name".into(), vm.name.clone().into());
    m.insert("power_state".into(), vm.power_state.clone().into());
    m.insert(
        "device_model_args".into(),
        vm.device_model_args()
            .map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string())),
    );
    let platform: Map = vm
        .platform
        .iter()
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
        .collect();
    m.insert("platform".into(), platform.into());
    m
}

/// Runs a changing `xe` call, or prints it under `--dry-run`.
fn change(
    ctx: &Context,
    args: Vec<String>,
    waiting: Option<String>,
) -> Result<(), Box<EvalAltResult>> {
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
    /// Every VM on this host except the control domain, as maps with `uuid`, `name`,
    /// `power_state`, `device_model_args` (or `()`) and `platform`: one `xe vm-list` call.
    fn vms(ctx) -> Rr<Array> {
        let vms = ctx.xe().vms().map_err(HostError::xe)?;
        Ok(vms.iter().map(|v| Dynamic::from_map(host_vm_map(v))).collect())
    });
    host_fn!(api, ctx, "xe",
    /// One VM of this host by uuid (see `xe::vms`), or `()` when the host has no such VM:
    /// one call.
    fn vm(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        let vm = ctx.xe().vm(uuid.as_str()).map_err(HostError::xe)?;
        Ok(vm.map_or(Dynamic::UNIT, |v| Dynamic::from_map(host_vm_map(&v))))
    });
    host_fn!(api, ctx, "xe",
    /// The VMs whose name-label is exactly `name` (see `xe::vms`): one call.
    fn vms_named(ctx, name: &str) -> Rr<Array> {
        let vms = ctx.xe().vms_named(name).map_err(HostError::xe)?;
        Ok(vms.iter().map(|v| Dynamic::from_map(host_vm_map(v))).collect())
    });
    host_fn!(api, ctx, "xe",
    /// The VM's `platform:device-model-args`, or `()` when it is not set: one
    /// `xe vm-param-get` call.
    fn device_model_args(ctx, uuid: &str) -> Rr<Dynamic> {
        let uuid = super::uuid_arg(uuid)?;
        let args = ctx.xe().device_model_args(uuid.as_str()).map_err(HostError::xe)?;
        Ok(args.map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "xe",
    /// Sets the VM's `platform:device-model-args` to `value` (takes effect at its next start).
    fn set_device_model_args(ctx, uuid: &str, value: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::set_device_model_args_call(uuid.as_str(), value), None)
    });
    host_fn!(api, ctx, "xe",
    /// Removes the key `device-model-args` from the VM's platform map.
    fn remove_device_model_args(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::remove_device_model_args_call(uuid.as_str()), None)
    });
    host_fn!(api, ctx, "xe",
    /// Starts the VM and returns when it is running (a spinner shows the wait on a terminal).
    fn start(ctx, uuid: &str) -> Rr<()> {
        let uuid = super::uuid_arg(uuid)?;
        change(ctx, Xe::start_call(uuid.as_str()), Some(format!("Starting VM {uuid}...")))
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
