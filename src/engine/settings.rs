//! The `settings::` module: site settings kept in the database (the hook's policy and time
//! limit).

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::model::validate_setting;
use rhai::Dynamic;
use std::rc::Rc;

/// Registers `settings::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "settings",
    /// A site setting, or `()` when it is not set: `hook_policy` (`"warn"` or `"enforce"`),
    /// `hook_time_limit` (seconds, as a string), `device_driver` (`"vgpu-stub"` or
    /// `"vgpu-cuda"`).
    fn get(ctx, key: &str) -> Rr<Dynamic> {
        let value = ctx.store_for_script()?.setting(key).map_err(HostError::store)?;
        Ok(value.map_or(Dynamic::UNIT, Dynamic::from))
    });
    host_fn!(api, ctx, "settings",
    /// Changes a site setting after checking the value (`hook_policy`: warn or enforce;
    /// `hook_time_limit`: 1 to 300 seconds). Returns the value stored. Under `--dry-run` it
    /// only says what it would store.
    fn set(ctx, key: &str, value: &str) -> Rr<String> {
        let value = validate_setting(key, value).map_err(HostError::model)?;
        if ctx.config.dry_run {
            ctx.dry_run_note(&format!("set {key} = {value}"));
            return Ok(value);
        }
        ctx.store_for_script_write()?.set_setting(key, &value).map_err(HostError::store)?;
        Ok(value)
    });
}
