//! The `mediator::` module: the GPU mediator's admin socket (`--mediator`, `VGPU_MEDIATOR`).

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::HostError;
use crate::exit::Failure;
use crate::mediator::{self, Command, MediatorError};
use rhai::Array;
use std::rc::Rc;

/// Asks the mediator; its errors as script errors of kind `mediator_unavailable` (nothing
/// listens), `mediator_refused` (an error status: the message is its text) or `mediator_error`.
fn ask(ctx: &Context, command: Command) -> Result<String, Box<rhai::EvalAltResult>> {
    let socket = ctx.config.mediator_socket.clone();
    ctx.waiting(|| mediator::request(&socket, command))
        .map_err(|e| {
            let kind = match &e {
                MediatorError::NotThere { .. } => "mediator_unavailable",
                MediatorError::Refused { .. } => "mediator_refused",
                _ => "mediator_error",
            };
            let message = match &e {
                MediatorError::Refused { text, .. } => text.clone(),
                other => other.to_string(),
            };
            HostError::boxed_kind(Failure::failed(message), kind)
        })
}

/// Registers `mediator::`.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "mediator",
    /// The mediator's metrics: a summary, or Prometheus' text format when `prometheus`.
    fn metrics(ctx, prometheus: bool) -> Rr<String> {
        ask(ctx, Command::Metrics { prometheus })
    });
    host_fn!(api, ctx, "mediator",
    /// The GPU's health as the mediator sees it (temperature, utilisation, memory, power, ECC,
    /// watchdog resets, queue length).
    fn health(ctx) -> Rr<String> {
        ask(ctx, Command::Health)
    });
    host_fn!(api, ctx, "mediator",
    /// The mediator's active VM connections and server sockets.
    fn connections(ctx) -> Rr<String> {
        ask(ctx, Command::Connections)
    });
    host_fn!(api, ctx, "mediator",
    /// The vm_ids of the VMs connected to the mediator now, read from its connections table
    /// (a row that begins with a vm_id, or carries `vm_id=N`); errors as `connections()`.
    fn connected(ctx) -> Rr<Array> {
        let text = ask(ctx, Command::Connections)?;
        Ok(mediator::connected_vm_ids(&text)
            .into_iter()
            .map(|id| rhai::Dynamic::from_int(i64::from(id)))
            .collect())
    });
    host_fn!(api, ctx, "mediator",
    /// Asks the mediator to re-read every VM's controls from the database; returns its answer
    /// (`Config reloaded: N VM(s) updated`). Under `--dry-run` it only says so.
    fn reload(ctx) -> Rr<String> {
        if ctx.config.dry_run {
            ctx.dry_run_note("ask the GPU mediator to reload its configuration");
            return Ok(String::new());
        }
        ask(ctx, Command::Reload)
    });
}
