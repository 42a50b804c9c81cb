//! What the host functions share: the settings of this run, the database (opened on first use)
//! and the sources of every script compiled, for error excerpts.

use super::HostError;
use crate::exit::Failure;
use crate::store::Store;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::rc::Rc;

/// Settings of one run of the host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The database file.
    pub db_path: PathBuf,
    /// The admin's scripts directory, searched before the bundled scripts.
    pub scripts_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    pub json: bool,
    /// Answer yes to every confirmation.
    pub yes: bool,
    /// Print the xe calls and database changes instead of making them.
    pub dry_run: bool,
    /// The `xe` program (a path, or a name looked up on PATH).
    pub xe_program: std::ffi::OsString,
    /// How long one `xe` call may take.
    pub xe_timeout: std::time::Duration,
    /// Limits that stop runaway scripts.
    pub limits: Limits,
}

impl HostConfig {
    /// Settings for `db_path` with everything else at its default.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        HostConfig {
            db_path: db_path.into(),
            scripts_dir: None,
            json: false,
            yes: false,
            dry_run: false,
            xe_program: "xe".into(),
            xe_timeout: crate::xe::DEFAULT_TIMEOUT,
            limits: Limits::default(),
        }
    }
}

/// Limits on what one script may do; a script that hits one stops with an error.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Operations (roughly: expressions evaluated) per run.
    pub max_operations: u64,
    /// Depth of nested function calls.
    pub max_call_levels: usize,
    /// Length of one string, in bytes.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Wall-clock time a script may run, not counting the time spent waiting for xe or for an
    /// answer at a prompt. Catches what the operation count cannot (operations that each take
    /// long, like growing a huge array).
    pub max_time: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 20_000_000,
            max_call_levels: 64,
            max_string_size: 16 * 1024 * 1024,
            max_array_size: 1_000_000,
            max_map_size: 100_000,
            max_time: std::time::Duration::from_secs(60),
        }
    }
}

/// The state host functions share.
pub struct Context {
    /// This run's settings.
    pub config: HostConfig,
    store: RefCell<Option<Rc<Store>>>,
    sources: RefCell<HashMap<String, Rc<str>>>,
    exit_status: std::cell::Cell<crate::exit::Status>,
    xe_timeout: std::cell::Cell<Option<std::time::Duration>>,
    clock: std::cell::Cell<Option<std::time::Instant>>,
    waited: std::cell::Cell<std::time::Duration>,
}

impl Context {
    /// A context for `config`; the database is opened on first use.
    pub fn new(config: HostConfig) -> Rc<Context> {
        Rc::new(Context {
            config,
            store: RefCell::new(None),
            sources: RefCell::new(HashMap::new()),
            exit_status: std::cell::Cell::new(crate::exit::Status::Success),
            xe_timeout: std::cell::Cell::new(None),
            clock: std::cell::Cell::new(None),
            waited: std::cell::Cell::new(std::time::Duration::ZERO),
        })
    }

    /// The database, opened (created, migrated) on first use.
    pub fn store(&self) -> Result<Rc<Store>, Failure> {
        if let Some(store) = self.store.borrow().as_ref() {
            return Ok(store.clone());
        }
        let store = Rc::new(Store::open(&self.config.db_path)?);
        if store.migration().adopted_legacy {
            eprintln!(
                "note: adopted the database of the earlier vgpu-admin at {} (schema version {} -> {}); every row was kept",
                self.config.db_path.display(),
                store.migration().from,
                store.migration().to
            );
        }
        *self.store.borrow_mut() = Some(store.clone());
        Ok(store)
    }

    /// The vGPU driver this site has chosen (the `device_driver` setting), if it has.
    pub fn site_driver(&self) -> Result<Option<crate::model::Driver>, Box<rhai::EvalAltResult>> {
        let value = self
            .store_for_script()?
            .setting("device_driver")
            .map_err(HostError::store)?;
        Ok(value.and_then(|v| crate::model::Driver::parse(&v).ok()))
    }

    /// Starts timing a script run (see [`Limits::max_time`]).
    pub fn start_clock(&self) {
        self.clock.set(Some(std::time::Instant::now()));
        self.waited.set(std::time::Duration::ZERO);
    }

    /// Time the current script has run, less the time it waited for xe or an answer.
    pub fn script_time(&self) -> std::time::Duration {
        self.clock.get().map_or(std::time::Duration::ZERO, |start| {
            start.elapsed().saturating_sub(self.waited.get())
        })
    }

    /// Runs `wait` (an xe call, a prompt) without counting its time against the script.
    pub fn waiting<T>(&self, wait: impl FnOnce() -> T) -> T {
        let start = std::time::Instant::now();
        let result = wait();
        self.waited.set(self.waited.get() + start.elapsed());
        result
    }

    /// Sets the exit status the run ends with when the script finishes normally.
    pub fn set_exit_status(&self, status: crate::exit::Status) {
        self.exit_status.set(status);
    }

    /// The exit status a script asked for with `set_exit_status`.
    pub fn exit_status(&self) -> crate::exit::Status {
        self.exit_status.get()
    }

    /// Closes the database if it was opened (checkpointing its WAL), once nothing else holds it.
    pub fn close_store(&self) {
        self.store.borrow_mut().take();
    }

    /// Like [`Context::store`], as a script error.
    pub fn store_for_script(&self) -> Result<Rc<Store>, Box<rhai::EvalAltResult>> {
        self.store().map_err(HostError::boxed)
    }

    /// The `xe` client.
    pub fn xe(&self) -> crate::xe::Xe {
        let timeout = self.xe_timeout.get().unwrap_or(self.config.xe_timeout);
        crate::xe::Xe::new(self.config.xe_program.clone(), timeout)
    }

    /// Shortens the time one `xe` call may take (the hook fits it inside its own limit).
    pub fn set_xe_timeout(&self, timeout: std::time::Duration) {
        self.xe_timeout.set(Some(timeout));
    }

    /// Prints what a dry run would do, marked as such (on stderr under `--json`).
    pub fn dry_run_note(&self, what: &str) {
        let line = format!("dry run: would {what}");
        if self.config.json {
            crate::output::stderr_line(&line);
        } else {
            crate::output::stdout_line(&line);
        }
    }

    /// Remembers a script's source text under `name`, for error excerpts.
    pub fn remember_source(&self, name: &str, text: &str) {
        self.sources
            .borrow_mut()
            .insert(name.to_string(), Rc::from(text));
    }

    /// The source text remembered under `name`.
    pub fn source(&self, name: &str) -> Option<Rc<str>> {
        self.sources.borrow().get(name).cloned()
    }

    /// Asks `question` on the terminal (or reads the answer from piped stdin): `yes`/`y` is yes,
    /// anything else or end of input is no. With `--yes`, answers yes without reading.
    pub fn confirm(&self, question: &str) -> bool {
        self.waiting(|| self.ask(question))
    }

    fn ask(&self, question: &str) -> bool {
        // With --json, stdout carries only the JSON document: the dialogue goes to stderr.
        let mut out: Box<dyn Write> = if self.config.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        let _ = write!(out, "{question}");
        if self.config.yes || self.config.dry_run {
            let why = if self.config.yes {
                "--yes"
            } else {
                "--dry-run"
            };
            let _ = writeln!(out, "yes ({why})");
            return true;
        }
        let _ = out.flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(0) | Err(_) => {
                let _ = writeln!(out);
                false
            }
            Ok(_) => {
                // A terminal echoed the answer; piped input did not: show it, for the log.
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    let _ = writeln!(out, "{}", answer.trim_end());
                }
                matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y")
            }
        }
    }
}
