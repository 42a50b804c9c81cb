//! The `ui::` module and global helpers: confirmation, tables, bulk formatting, warnings, and
//! `fail`, which ends a script with an exit status.

use super::api::{host_fn, ApiBuilder};
use super::context::Context;
use super::values::VmList;
use super::HostError;
use crate::exit::{Failure, Status};
use crate::output;
use crate::template::{Fields, Template};
use rhai::{Array, Dynamic, EvalAltResult, Map, INT};
use std::rc::Rc;

fn template_of(text: &str) -> Result<Template, Box<EvalAltResult>> {
    Template::parse(text).map_err(|e| HostError::failed(e.to_string()))
}

/// A row's fields, then the fields `extra` holds for the row's uuid (or under `"*"`).
struct Joined<'a> {
    row: &'a dyn Fields,
    extra: Option<&'a Map>,
}

impl Fields for Joined<'_> {
    fn field(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(v) = self.row.field(name) {
            return Some(v);
        }
        let extra = self.extra?;
        let uuid = self
            .row
            .field("vm_uuid")
            .or_else(|| self.row.field("uuid"))?;
        let entry = extra.get(uuid.as_ref()).or_else(|| extra.get("*"))?;
        let map = entry.read_lock::<Map>()?;
        map.field(name)
            .map(|v| std::borrow::Cow::Owned(v.into_owned()))
    }
}

/// Renders each row of `rows` (a `VmList` or an array of maps) with `template`, calling `emit`
/// with each rendered text. Fields missing from a row are looked up in `extra` by the row's uuid.
fn each_rendered(
    rows: &Dynamic,
    template: &Template,
    extra: Option<&Map>,
    mut emit: impl FnMut(&str) -> Result<(), Box<EvalAltResult>>,
) -> Result<(), Box<EvalAltResult>> {
    let mut buf = String::new();
    if let Some(list) = rows.read_lock::<VmList>() {
        return list.for_each(|vm| {
            buf.clear();
            template.render_into(&Joined { row: &vm, extra }, &mut buf);
            emit(&buf)
        });
    }
    if let Some(array) = rows.read_lock::<Array>() {
        for item in array.iter() {
            let map = item.read_lock::<Map>().ok_or_else(|| {
                HostError::failed(format!(
                    "expected a list of maps, found a {}",
                    item.type_name()
                ))
            })?;
            buf.clear();
            template.render_into(&Joined { row: &*map, extra }, &mut buf);
            emit(&buf)?;
        }
        return Ok(());
    }
    Err(HostError::failed(format!(
        "expected a VM list or an array of maps, found {}",
        rows.type_name()
    )))
}

fn print_rows(
    rows: &Dynamic,
    template: &str,
    separator: &str,
    extra: Option<&Map>,
) -> Result<INT, Box<EvalAltResult>> {
    let template = template_of(template)?;
    let mut out = output::Stdout::new();
    let mut count: INT = 0;
    each_rendered(rows, &template, extra, |text| {
        if count > 0 {
            out.write(separator);
        }
        out.write(text);
        out.write("\n");
        count += 1;
        Ok(())
    })?;
    out.flush();
    Ok(count)
}

/// Registers `ui::` and the global helpers.
pub fn register(api: &mut ApiBuilder, ctx: &Rc<Context>) {
    host_fn!(api, ctx, "ui",
    /// Prints `question` and reads the answer from standard input: `yes` or `y` (any case)
    /// returns true; anything else, or end of input, returns false. With `--yes` it returns
    /// true without reading.
    fn confirm(ctx, question: &str) -> Rr<bool> {
        Ok(ctx.confirm(question))
    });
    host_fn!(api, ctx, "ui",
    /// True when the run was asked for `--json` output: the script should then return its
    /// data instead of printing it.
    fn json(ctx) -> Rr<bool> {
        Ok(ctx.config.json)
    });
    host_fn!(api, ctx, "ui",
    /// True when the run was asked for `--dry-run`: changing host functions only say what
    /// they would do (functions of a module cannot see the `DRY_RUN` constant; this they can).
    fn dry_run(ctx) -> Rr<bool> {
        Ok(ctx.config.dry_run)
    });
    host_fn!(api, ctx, "ui",
    /// Formats `rows` (array of maps, or a VM list) as a text table with the given `columns`
    /// (array of field names, used as headings in capitals). Returns the table as a string.
    fn table(_ctx, rows: Dynamic, columns: Array) -> Rr<String> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut cells: Vec<Vec<String>> = vec![columns.iter().map(|c| c.to_uppercase()).collect()];
        let template = template_of(&columns.iter().map(|c| format!("{{{c}}}")).collect::<Vec<_>>().join("\u{1f}"))?;
        each_rendered(&rows, &template, None, |line| {
            cells.push(line.split('\u{1f}').map(str::to_string).collect());
            Ok(())
        })?;
        Ok(output::table(&cells))
    });
    host_fn!(api, ctx, "ui",
    /// Renders one map with a template: `{field}` is replaced by the field, `{a|b}` by the
    /// first that is set, and a line starting with `{?field}` is kept only when it is set.
    fn format(_ctx, row: Map, template: &str) -> Rr<String> {
        Ok(template_of(template)?.render(&row))
    });
    host_fn!(api, ctx, "ui",
    /// Prints every row of `rows` (a VM list or an array of maps) with `template` (see
    /// `ui::format`), `separator` between rows. Runs in the host, streaming a VM list, so
    /// 100,000 VMs print quickly in little memory. Returns the number of rows printed.
    fn print_each(_ctx, rows: Dynamic, template: &str, separator: &str) -> Rr<INT> {
        print_rows(&rows, template, separator, None)
    });
    host_fn!(api, ctx, "ui",
    /// Like `ui::print_each`, and fields a row lacks are taken from `extra[uuid]` (or
    /// `extra["*"]`), e.g. the power and sync states from `vgpu::sync_states`.
    fn print_each(_ctx, rows: Dynamic, template: &str, separator: &str, extra: Map) -> Rr<INT> {
        print_rows(&rows, template, separator, Some(&extra))
    });
    host_fn!(api, ctx, "ui",
    /// Prints `value` as one JSON document (what `--json` prints for a returned value), for a
    /// script that must also choose its exit status.
    fn print_json(_ctx, value: Dynamic) -> Rr<()> {
        super::print_json(&value)
    });
    host_fn!(api, ctx, "ui",
    /// `text` with every control character (newline, escape, ...) written as an escape
    /// (`\n`, `\u{1b}`): for showing text that came from outside, such as a VM's
    /// device-model-args, on one line.
    fn printable(_ctx, text: &str) -> Rr<String> {
        Ok(crate::model::printable(text).into_owned())
    });
    host_fn!(api, ctx, "ui",
    /// Prints `message` on standard error (for warnings that must not mix with output).
    fn warn(_ctx, message: &str) -> Rr<()> {
        output::stderr_line(message);
        Ok(())
    });
    host_fn!(api, ctx, "",
    /// Sets the exit status the command ends with once the script has finished normally
    /// (e.g. 5 when `check` found drift). Nothing is printed.
    fn set_exit_status(ctx, status: INT) -> Rr<()> {
        ctx.set_exit_status(Status::from_code(status));
        Ok(())
    });
    host_fn!(api, ctx, "",
    /// Ends the script with exit status `status` (2 invalid input, 3 not found, 4 cancelled,
    /// 5 needs attention, 129-159 interrupted; anything else 1) after printing `message` on
    /// standard error.
    fn fail(_ctx, status: INT, message: &str) -> Rr<()> {
        let status = match Status::from_code(status) {
            Status::Success => Status::Failed,
            other => other,
        };
        Err(HostError::boxed(Failure::new(status, message)))
    });
}
