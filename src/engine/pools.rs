//! The `pools::` module: the two vGPU pools.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::values::pool_map;
use super::HostError;
use crate::model::Pool;
use rhai::{Array, Dynamic, Map};
use std::rc::Rc;

/// Registers `pools::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "pools",
    /// Both pools, A first, as maps with `pool_id`, `pool_name`, `description` (or `()`),
    /// `enabled`, `vm_count`, `created_at` and `updated_at`.
    fn list(ctx) -> Rr<Array> {
        let pools = ctx.store_for_script()?.pools().map_err(HostError::store)?;
        Ok(pools.iter().map(|p| Dynamic::from_map(pool_map(p))).collect())
    });
    host_fn!(api, ctx, "pools",
    /// The pool ids, in display order: `["A", "B"]`.
    fn ids(_ctx) -> Rr<Array> {
        Ok(Pool::ALL.iter().map(|p| Dynamic::from(p.to_string())).collect())
    });
    host_fn!(api, ctx, "pools",
    /// The priorities, highest first: `["high", "medium", "low"]`.
    fn priorities(_ctx) -> Rr<Array> {
        Ok(crate::model::Priority::ALL.iter().rev().map(|p| Dynamic::from(p.to_string())).collect())
    });
    host_fn!(api, ctx, "pools",
    /// One pool by id (`"A"` or `"B"`, any case), as a map (see `pools::list`).
    /// Any other id is an error (exit status 2).
    fn get(ctx, pool_id: &str) -> Rr<Map> {
        let pool = Pool::parse(pool_id).map_err(HostError::model)?;
        let row = ctx.store_for_script()?.pool(pool).map_err(HostError::store)?;
        row.map(|p| pool_map(&p)).ok_or_else(|| {
            HostError::failed(format!("pool {pool} is missing from the database"))
        })
    });
}
