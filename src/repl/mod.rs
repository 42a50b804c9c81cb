//! `vgpu-admin shell`: the interactive admin shell. Each line is either a classic command, run
//! exactly as on the command line (same parser, scripts and confirmations), or Rhai code with
//! the host API, whose variables and functions stay for the rest of the session.
//!
//! On a terminal it edits lines with rustyline (completion, hints, history); with piped input it
//! runs each line as if typed, without prompts, and stops at the first failing line unless
//! `--keep-going`.

pub mod complete;
mod helper;
pub mod words;

use crate::engine::{Host, HostConfig};
use crate::exit::{Failure, Status};
use crate::output;
use complete::{CommandInfo, Completions};
use rhai::{Scope, AST};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::rc::Rc;

/// The most lines the history file keeps.
pub const HISTORY_SIZE: usize = 1000;

/// Runs one command line (program name first), as the command line would.
pub type Execute = Box<dyn Fn(Vec<OsString>) -> Result<(), Failure>>;

/// How the shell was started.
pub struct ShellOptions {
    /// Go on after a failing line (piped input).
    pub keep_going: bool,
    /// The global options the shell was started with, put in front of every command line.
    pub prefix: Vec<OsString>,
    /// The commands a line can name (script commands and built-ins), for completion and `help`.
    pub commands: Vec<CommandInfo>,
    /// Runs a command line: the same path as the command line's.
    pub execute: Execute,
}

/// True when `input` is a classic command line rather than Rhai code: its first word names a
/// command, and what follows is not Rhai (`status = 1` is an assignment, `status` a command).
pub fn is_command_line(input: &str, completions: &Completions) -> bool {
    let trimmed = input.trim_start();
    let first = trimmed.split_whitespace().next().unwrap_or_default();
    if completions.command(first).is_none() {
        return false;
    }
    let rest = trimmed[first.len()..].trim_start();
    !rest.starts_with([
        '=', '.', '(', '[', ';', '+', '*', '/', '%', '<', '>', '!', '&', '|', '^', ':',
    ])
}

/// Where the history lives: `$XDG_STATE_HOME/vgpu-admin/history`, else
/// `~/.local/state/vgpu-admin/history`.
pub fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join("vgpu-admin").join("history"))
}

/// One session: the host with its persistent scope and functions, and completion data.
struct Session {
    host: Rc<Host>,
    completions: Rc<Completions>,
    scope: Scope<'static>,
    functions: AST,
    prefix: Vec<OsString>,
    inputs: usize,
    execute: Execute,
}

/// What handling a line led to.
enum Outcome {
    Done,
    Failed(Status),
    Quit,
}

impl Session {
    fn new(config: HostConfig, options: ShellOptions) -> Session {
        let host = Rc::new(Host::new(config));
        let api = host
            .api()
            .iter()
            .filter(|f| !f.module.is_empty())
            .map(|f| format!("{}::{}", f.module, f.name))
            .collect();
        let xe = host.context().xe();
        let loader = Box::new(move || {
            // One xe call, the first time a VM is completed; no host, no host VMs.
            // Names with control characters cannot be typed: they are not offered.
            xe.vms()
                .map(|listing| {
                    listing
                        .vms
                        .into_iter()
                        .filter(|v| !v.name.chars().any(char::is_control))
                        .map(|v| (v.uuid, v.name))
                        .collect()
                })
                .unwrap_or_default()
        });
        let completions = Rc::new(Completions::new(options.commands, api, loader));
        let scope = host.new_scope();
        let session = Session {
            host,
            completions,
            scope,
            functions: AST::empty(),
            prefix: options.prefix,
            inputs: 0,
            execute: options.execute,
        };
        session.refresh_vms();
        session
    }

    /// Reloads the registered VMs for completion (one query; none when there is no database).
    fn refresh_vms(&self) {
        if !self.host.context().config.db_path.exists() {
            return;
        }
        if let Ok(store) = self.host.context().store() {
            if let Ok(vms) = store.vms(Default::default()) {
                self.completions
                    .set_registered(vms.into_iter().map(|v| (v.vm_uuid, v.vm_name)).collect());
            }
        }
    }

    fn help(&self) {
        let mut rows = vec![vec!["COMMAND".to_string(), "DESCRIPTION".to_string()]];
        for c in self.completions.commands() {
            rows.push(vec![c.name.clone(), c.about.clone()]);
        }
        output::stdout_line(&output::table(&rows));
        output::stdout_line(
            "Type a command as on the command line (list-vms --pool=A), or Rhai code with the host \
             API (vms::list().len()). 'help <command>' shows its options, 'api' the Rhai API; Tab \
             completes; 'exit', 'quit' or Ctrl-D leave.",
        );
    }

    fn handle(&mut self, input: &str) -> Outcome {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Outcome::Done;
        }
        match trimmed {
            "exit" | "quit" => return Outcome::Quit,
            "help" => {
                self.help();
                return Outcome::Done;
            }
            _ => {}
        }
        if let Some(command) = trimmed.strip_prefix("help ") {
            return self.command(&[command.trim().to_string(), "--help".to_string()]);
        }
        // `shell` typed in the shell (it is not one of its commands, but not Rhai either).
        if let Some(rest) = trimmed.strip_prefix("shell") {
            if rest.is_empty() || rest.starts_with([' ', '\t']) && rest.trim().starts_with('-') {
                return report(&Failure::usage("already in the shell"));
            }
        }
        if is_command_line(trimmed, &self.completions) {
            return match words::split(trimmed) {
                Ok(words) => self.command(&words),
                Err(e) => report(&Failure::usage(e.to_string())),
            };
        }
        self.inputs += 1;
        let source = format!("<input {}>", self.inputs);
        match self
            .host
            .eval_input(input, &source, &mut self.scope, &mut self.functions)
        {
            Ok(value) => {
                if !value.is_unit() {
                    output::stdout_line(&value.to_string());
                }
                Outcome::Done
            }
            Err(failure) => report(&failure),
        }
    }

    fn command(&self, words: &[String]) -> Outcome {
        if words.first().is_some_and(|w| w == "shell") {
            return report(&Failure::usage("already in the shell"));
        }
        let mut argv: Vec<OsString> = vec!["vgpu-admin".into()];
        argv.extend(self.prefix.iter().cloned());
        argv.extend(words.iter().map(OsString::from));
        let result = (self.execute)(argv);
        self.refresh_vms();
        match result {
            Ok(()) => Outcome::Done,
            Err(failure) => report(&failure),
        }
    }
}

/// Prints a failure the way the command line does, and passes its status on.
fn report(failure: &Failure) -> Outcome {
    failure.report();
    Outcome::Failed(failure.status)
}

/// Runs the shell; returns the exit status (piped input: the first failure's).
pub fn run(config: HostConfig, options: ShellOptions) -> Status {
    // A signal ends the command in hand (or cancels its prompt), not the session.
    let _critical = crate::interrupt::Critical::enter();
    let keep_going = options.keep_going;
    let mut session = Session::new(config, options);
    if std::io::stdin().is_terminal() {
        interactive(&mut session)
    } else {
        piped(&mut session, keep_going)
    }
}

/// Reads one more line until `input` is complete Rhai.
fn needs_more(session: &Session, input: &str) -> bool {
    !is_command_line(input, &session.completions) && session.host.is_incomplete(input)
}

fn piped(session: &mut Session, keep_going: bool) -> Status {
    use crate::input::Line;
    let mut first_failure = Status::Success;
    loop {
        let mut input = String::new();
        loop {
            // Unbuffered: a confirmation asked by a command reads the next line itself.
            match crate::input::read_line() {
                Line::End if input.is_empty() => return first_failure,
                Line::End => break,
                Line::Interrupted(signal) => return Status::Interrupted(signal),
                Line::Text(line) => {
                    input.push_str(&line);
                    input.push('\n');
                }
            }
            if !needs_more(session, &input) {
                break;
            }
        }
        let outcome = session.handle(&input);
        crate::interrupt::clear();
        match outcome {
            Outcome::Done => {}
            Outcome::Quit => return first_failure,
            Outcome::Failed(status) => {
                if !keep_going {
                    return status;
                }
                if first_failure == Status::Success {
                    first_failure = status;
                }
            }
        }
    }
}

fn interactive(session: &mut Session) -> Status {
    use rustyline::error::ReadlineError;
    use rustyline::history::DefaultHistory;
    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_SIZE)
        .map(|b| b.auto_add_history(false))
        .map(|b| b.completion_type(rustyline::CompletionType::List))
        .map(|b| b.build());
    let editor =
        config.and_then(rustyline::Editor::<helper::ShellHelper, DefaultHistory>::with_config);
    let mut editor = match editor {
        Ok(e) => e,
        Err(e) => {
            Failure::failed(format!("cannot start the line editor: {e}")).report();
            return Status::Failed;
        }
    };
    editor.set_helper(Some(helper::ShellHelper {
        completions: session.completions.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    output::stdout_line(
        "vgpu-admin shell: type 'help' for commands, Tab to complete, 'exit' to leave.",
    );
    let mut history_warned = false;
    loop {
        let mut input = match editor.readline("vgpu> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C drops the line
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                Failure::failed(format!("cannot read input: {e}")).report();
                break;
            }
        };
        // Unfinished Rhai (an open brace or string) goes on on a `...> ` line.
        while needs_more(session, &input) {
            match editor.readline("...> ") {
                Ok(more) => {
                    input.push('\n');
                    input.push_str(&more);
                }
                Err(ReadlineError::Interrupted) => {
                    input.clear();
                    break;
                }
                Err(_) => break,
            }
        }
        if !input.trim().is_empty() {
            let _ = editor.add_history_entry(input.as_str());
            // Saved at once: a session that ends badly keeps what was typed.
            save_history(&mut editor, history.as_deref(), &mut history_warned);
        }
        let outcome = session.handle(&input);
        // A signal that ended the command is handled: the session goes on.
        crate::interrupt::clear();
        if let Outcome::Quit = outcome {
            break;
        }
    }
    Status::Success
}

/// Writes the history file (after every line); a failure is said once per session.
fn save_history(
    editor: &mut rustyline::Editor<helper::ShellHelper, rustyline::history::DefaultHistory>,
    path: Option<&std::path::Path>,
    warned: &mut bool,
) {
    let Some(path) = path else { return };
    let saved = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|e| e.to_string())
        .and_then(|_| editor.save_history(path).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        if !*warned {
            output::stderr_line(&format!(
                "warning: cannot save the shell history to {}: {e}",
                path.display()
            ));
            *warned = true;
        }
    }
}
