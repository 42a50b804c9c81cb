//! The `vms::` functions for changes to many VMs at once: `select` (a selection of registered
//! VMs) and `apply_all` (their changes, restarts in parallel waves). The waves, the threads and
//! what a signal does live in `crate::change::batch`; this wires them to scripts.

use super::api::{host_fn, ApiBuilder};
use super::changes::change_of;
use super::context::Context;
use super::values::{to_map, vm_map};
use super::HostError;
use crate::change::batch::{self, Batch, Ending, Event, Outcome};
use crate::config_file::Exported;
use crate::exit::{Failure, Status};
use crate::output::Progress;
use crate::selection::Selection;
use crate::store::VmFilter;
use rhai::{Array, Dynamic, Map, INT};
use std::collections::HashMap;
use std::rc::Rc;

/// The selection a script's map describes (`OPTS.selection`: `vm_id`, `pool`, `priority`,
/// `name`, `all`), checked by the model.
fn selection_of(map: &Map) -> Result<Selection, Box<rhai::EvalAltResult>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in map {
        if value.is_unit() || value.as_bool() == Ok(false) {
            continue;
        }
        let text = if value.is_bool() {
            String::new()
        } else {
            value.to_string()
        };
        pairs.push((key.replace('_', "-"), text));
    }
    Selection::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(HostError::model)
}

/// The text of the file at `path`, at most [`crate::config_file::MAX_BYTES`]; what keeps it from
/// being read is one clear error.
fn read_file(path: &str) -> Result<String, Box<rhai::EvalAltResult>> {
    use std::io::Read;
    let cannot = |why: String| HostError::usage(format!("cannot read {path}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(crate::config_file::MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > crate::config_file::MAX_BYTES {
        return Err(HostError::usage(format!(
            "{path} is larger than {} MiB: not a configuration file",
            crate::config_file::MAX_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        HostError::usage(format!(
            "{path} is not UTF-8 text: not a configuration file"
        ))
    })
}

/// One VM's outcome as a script sees it.
fn outcome_map(o: &Outcome) -> Map {
    let mut m = Map::new();
    m.insert("uuid".into(), o.uuid.clone().into());
    m.insert("label".into(), o.label.clone().into());
    let (outcome, step, message) = match &o.ending {
        Ending::Done => ("done", None, None),
        Ending::Failed { step, message } => ("failed", step.clone(), Some(message.clone())),
        Ending::NotStarted => ("not started", None, None),
    };
    m.insert("outcome".into(), outcome.into());
    m.insert("step".into(), step.map_or(Dynamic::UNIT, Dynamic::from));
    m.insert(
        "message".into(),
        message.map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("restart".into(), o.restart.into());
    m.insert(
        "vm".into(),
        o.row
            .as_ref()
            .map_or(Dynamic::UNIT, |r| Dynamic::from_map(vm_map(r))),
    );
    m
}

/// The table a run over many VMs ends with: each VM, how it ended, the step that failed; then
/// each failure's message.
fn outcome_table(outcomes: &[Outcome]) -> String {
    let mut rows = vec![vec![
        "VM".to_string(),
        "Outcome".into(),
        "Failed step".into(),
    ]];
    let mut failures = String::new();
    for o in outcomes {
        let (outcome, step) = match &o.ending {
            Ending::Done if o.restart => ("done, restarted".to_string(), String::new()),
            Ending::Done => ("done".to_string(), String::new()),
            Ending::Failed { step, message } => {
                failures.push_str(&format!("{}: {message}\n", o.label));
                ("FAILED".to_string(), step.clone().unwrap_or_default())
            }
            Ending::NotStarted => ("not started".to_string(), String::new()),
        };
        rows.push(vec![o.label.clone(), outcome, step]);
    }
    let mut text = crate::output::table(&rows);
    text.push_str(&failures);
    text
}

/// Registers the `vms::` functions for many VMs.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "vms",
    /// Every registered VM as a configuration file holds it, in vm_id order: `#{uuid, name,
    /// pool, priority, vm_id, weight, max_jobs_per_sec, max_queue_depth, quarantined}`.
    fn exported(ctx) -> Rr<Array> {
        let store = ctx.store_for_script()?;
        let rows = store.vms(VmFilter::default()).map_err(HostError::store)?;
        Ok(rows
            .iter()
            .map(|r| {
                Dynamic::from_map(to_map(&Exported {
                    uuid: r.vm_uuid.clone(),
                    name: r.vm_name.clone(),
                    pool: r.pool_id.clone(),
                    priority: r.priority.to_string(),
                    vm_id: r.vm_id,
                    weight: r.weight,
                    max_jobs_per_sec: r.max_jobs_per_sec,
                    max_queue_depth: r.max_queue_depth,
                    quarantined: r.quarantined,
                }))
            })
            .collect())
    });
    host_fn!(api, ctx, "vms",
    /// `vms` (from `vms::exported`) as a configuration file's text (TOML), the lines of
    /// `heading` as comments on top.
    fn config_text(_ctx, vms: Array, heading: &str) -> Rr<String> {
        let vms: Vec<Exported> = rhai::serde::from_dynamic(&Dynamic::from_array(vms))
            .map_err(|e| HostError::usage(format!("vms::config_text: {}", HostError::message_of(&e))))?;
        crate::config_file::render(&vms, heading).map_err(|e| HostError::failed(e.to_string()))
    });
    host_fn!(api, ctx, "vms",
    /// Reads the configuration file at `path` (TOML, see `vgpu-admin export`): its VMs as
    /// `#{line, uuid, name, pool, priority, vm_id, weight, max_jobs_per_sec, max_queue_depth,
    /// quarantined}` (a control not in the file is `()`). A file with errors is refused whole:
    /// each error is printed as `error: FILE:LINE: ...`, then the run ends with exit status 2.
    fn read_config(_ctx, path: &str) -> Rr<Array> {
        let text = read_file(path)?;
        match crate::config_file::parse(&text) {
            Ok(entries) => Ok(entries.iter().map(|e| Dynamic::from_map(to_map(e))).collect()),
            Err(errors) => {
                for e in &errors {
                    let (line, message) = e.split_once(": ").unwrap_or(("", e));
                    crate::output::stderr_line(&format!(
                        "error: {path}:{}: {message}",
                        line.trim_start_matches("line ")
                    ));
                }
                Err(HostError::usage(format!(
                    "{path}: {} error{} (above); the file was refused whole, nothing was changed",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                )))
            }
        }
    });
    host_fn!(api, ctx, "vms",
    /// The registered VMs a selection picks (`OPTS.selection`: `#{vm_id: "1-7,9", pool: "A",
    /// priority: "high", name: "web-*", all: true}`, every key given must match), in vm_id
    /// order. `host_vms` is the pool's listing (`xe::vms()`): each VM map gets `host`, its entry
    /// there (`()` when the pool does not list it), and `--name` matches the name-label listed
    /// there (the stored name for a VM not listed). Nothing selected: exit status 3, the
    /// selection echoed.
    fn select(ctx, selection: Map, host_vms: Array) -> Rr<Array> {
        let selection = selection_of(&selection)?;
        let mut listed: HashMap<String, Map> = HashMap::new();
        for vm in host_vms {
            if let Some(map) = vm.try_cast::<Map>() {
                let uuid = map.get("uuid").map(|u| u.to_string()).unwrap_or_default();
                listed.insert(uuid, map);
            }
        }
        let store = ctx.store_for_script()?;
        let rows = store.vms(VmFilter::default()).map_err(HostError::store)?;
        let mut picked = Array::new();
        for row in &rows {
            let host = listed.get(&row.vm_uuid);
            let name = host
                .and_then(|h| h.get("name_label"))
                .map(|n| n.to_string())
                .or_else(|| row.vm_name.clone());
            if selection.matches(row.vm_id, &row.pool_id, row.priority_level, name.as_deref()) {
                let mut map = vm_map(row);
                map.insert("host".into(), host.map_or(Dynamic::UNIT, |h| Dynamic::from_map(h.clone())));
                picked.push(Dynamic::from_map(map));
            }
        }
        if picked.is_empty() {
            return Err(HostError::boxed(Failure::new(
                Status::NotFound,
                format!("no registered VM matches the selection {}", selection.describe()),
            )));
        }
        Ok(picked)
    });
    host_fn!(api, ctx, "vms",
    /// Applies many changes, each as `vms::apply` would (`plans`: an array of its plan maps;
    /// every VM's lock held): first those without a restart, then the VMs to restart, stopped,
    /// changed and started in waves of at most `parallel` at a time. A VM that fails does not
    /// stop the others. On a terminal a progress bar shows VMs done and the wave. Ends with a
    /// table of each VM's outcome (on stderr under `--json`) and returns the outcomes:
    /// `#{uuid, label, outcome: "done"|"failed"|"not started", step, message, restart, vm}`.
    /// A signal lets the changes in hand finish and starts no further wave; the outcomes are
    /// returned as usual (the script finishes its work: tell the mediator...) and the command
    /// then ends with exit status 128 + signal, whatever `set_exit_status` says after.
    fn apply_all(ctx, plans: Array, parallel: INT) -> Rr<Array> {
        let mut changes = Vec::with_capacity(plans.len());
        for plan in &plans {
            let plan = plan.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                HostError::usage("vms::apply_all takes an array of plan maps (as vms::apply takes)")
            })?;
            let mut change = change_of(ctx, &plan)?;
            if !ctx.config.dry_run && !ctx.holds_lock(change.uuid.as_str()) {
                return Err(HostError::failed(format!(
                    "vms::apply_all needs every VM's lock: call vms::lock(\"{}\") before reading the VM",
                    change.uuid
                )));
            }
            change.batch = Some(ctx.command_name());
            changes.push(change);
        }
        ctx.check_outside_transaction()?;
        let xe = ctx.xe();
        let json = ctx.config.json;
        if ctx.config.dry_run {
            // Nothing is changed: each VM's dry run, one after the other.
            let store = ctx.store_for_script()?;
            let key = ctx.pool_key(false)?;
            let say = |t: &str| ctx.say(t);
            let io = crate::change::Io { store: &store, xe: &xe, say: &say, dry_run: true, spinner: false, pool_key: key.as_deref() };
            for change in &changes {
                crate::change::run(change, &io).map_err(HostError::boxed)?;
            }
            return Ok(Array::new());
        }
        let store = ctx.store_for_script_write()?;
        store.ensure_writable("recording a change").map_err(HostError::store)?;
        let key = ctx.pool_key(true)?;
        let parallel = usize::try_from(parallel.clamp(1, 64)).unwrap_or(1);
        let progress = Progress::start(changes.len(), !json);
        let say = |t: &str| progress.line(t, json);
        let event = |e: Event| match e {
            Event::Wave { wave, waves } => progress.wave(wave, waves),
            Event::Ended(_) => progress.inc(),
        };
        let run = Batch {
            db: &ctx.config.db_path,
            origin: ctx.origin(),
            xe: &xe,
            pool_key: key.as_deref(),
            parallel,
            say: &say,
            event: &event,
        };
        let _critical = crate::interrupt::Critical::enter();
        let outcomes = ctx.waiting(|| batch::run_all(&changes, &run));
        drop(progress);
        let table = outcome_table(&outcomes);
        for line in table.lines() {
            if json { crate::output::stderr_line(line) } else { crate::output::script_line(line) }
        }
        if let Some(signal) = crate::interrupt::pending() {
            // The script finishes what follows the changes (the mediator told, the controls
            // written), then the run ends with 128 + signal.
            let done = outcomes.iter().filter(|o| o.ending == Ending::Done).count();
            ctx.end_after_script(Failure::new(
                Status::Interrupted(signal),
                format!(
                    "interrupted by {}: {done} of {} VMs changed, the others untouched; run the same command again to finish",
                    crate::interrupt::name(signal),
                    outcomes.len()
                ),
            ));
        }
        Ok(outcomes.iter().map(|o| Dynamic::from_map(outcome_map(o))).collect())
    });
}
