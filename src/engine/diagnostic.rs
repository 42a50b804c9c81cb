//! Turning a Rhai error into what the admin reads: the message, the file, line and column, and
//! the offending line with a caret under the column.

use super::context::Context;
use super::HostError;
use crate::exit::{Failure, Status};
use rhai::{EvalAltResult, ParseError, Position};

/// Where an error happened and the underlying error.
struct Located<'a> {
    error: &'a EvalAltResult,
    source: Option<String>,
    pos: Position,
}

/// Follows function-call and module wrappers down to the error that started it all.
fn innermost<'a>(error: &'a EvalAltResult, source: Option<String>) -> Located<'a> {
    match error {
        EvalAltResult::ErrorInFunctionCall(_, src, inner, pos) => {
            let src = if src.is_empty() {
                source.clone()
            } else {
                Some(src.clone())
            };
            let located = innermost(inner, src);
            if located.pos.is_none() {
                Located {
                    pos: *pos,
                    source,
                    ..located
                }
            } else {
                located
            }
        }
        EvalAltResult::ErrorInModule(path, inner, pos) => {
            let located = innermost(inner, Some(path.clone()));
            if located.pos.is_none() {
                Located {
                    pos: *pos,
                    source,
                    ..located
                }
            } else {
                located
            }
        }
        other => Located {
            error: other,
            source,
            pos: other.position(),
        },
    }
}

/// The excerpt: `  --> file:line:column`, the line, and a caret under the column.
fn excerpt(ctx: &Context, source: Option<&str>, pos: Position) -> Option<String> {
    let source = source?;
    let line_no = pos.line()?;
    let mut out = format!("  --> {source}:{line_no}:{}", pos.position().unwrap_or(1));
    if let Some(text) = ctx.source(source) {
        if let Some(line) = text.lines().nth(line_no - 1) {
            let gutter = line_no.to_string();
            let column = pos.position().unwrap_or(1);
            let caret_pad: String = line
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n{blank} |\n{gutter} | {line}\n{blank} | {caret_pad}^",
                blank = " ".repeat(gutter.len())
            ));
        }
    }
    Some(out)
}

/// The message for errors that come from the engine's limits or the script itself.
fn describe(error: &EvalAltResult, ctx: &Context) -> String {
    match error {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "script stopped: it ran more than {} operations (a runaway loop?)",
            ctx.config.limits.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "script stopped: functions nested deeper than {} calls (runaway recursion?)",
            ctx.config.limits.max_call_levels
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            format!("script stopped: {what} grew beyond its limit")
        }
        EvalAltResult::ErrorTerminated(why, _) => match why.to_string().as_str() {
            "memory limit" => format!(
                "script stopped: it took more than {} MiB of memory",
                ctx.config.limits.max_memory / (1024 * 1024)
            ),
            "time limit" => format!(
                "script stopped: it ran longer than {} s (not counting waits for xe or answers; see --script-timeout)",
                ctx.config.limits.max_time.as_secs()
            ),
            signal => format!("script stopped: interrupted by {signal}"),
        },
        EvalAltResult::ErrorRuntime(value, _) => format!("script error: {value}"),
        other => {
            // Rhai's own text ends with " (line x, position y)": the excerpt says that better.
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            };
            format!("script error: {text}")
        }
    }
}

/// Converts a run-time error of a script (compiled from `source`) into a [`Failure`].
pub fn runtime(ctx: &Context, error: &EvalAltResult, source: &str) -> Failure {
    let located = innermost(error, Some(source.to_string()));
    if let Some(host) = HostError::from_eval(located.error) {
        // Errors raised by the host API are the admin's errors: one clear line.
        return host;
    }
    let status = match (located.error, crate::interrupt::pending()) {
        (EvalAltResult::ErrorTerminated(..), Some(signal)) => Status::Interrupted(signal),
        _ => Status::Failed,
    };
    Failure {
        status,
        message: describe(located.error, ctx),
        detail: excerpt(ctx, located.source.as_deref(), located.pos),
    }
}

/// Converts a syntax error in `source` into a [`Failure`].
pub fn parse(ctx: &Context, error: &ParseError, source: &str) -> Failure {
    let text = error.0.to_string();
    Failure {
        status: Status::Failed,
        message: format!("syntax error in {source}: {text}"),
        detail: excerpt(ctx, Some(source), error.1),
    }
}
