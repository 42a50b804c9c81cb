//! What the host functions share: the settings of this run, the database (opened on first use)
//! and the sources of every script compiled, for error excerpts.

use super::HostError;
use crate::exit::Failure;
use crate::store::Store;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
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
    /// The command changes things: a missing database is created (reads alone never do).
    pub create_db: bool,
    /// The host's inventory file (which host of the pool this is).
    pub inventory: PathBuf,
    /// The GPU mediator's admin socket.
    pub mediator_socket: PathBuf,
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
            create_db: false,
            inventory: PathBuf::from(crate::inventory::DEFAULT_INVENTORY),
            mediator_socket: PathBuf::from(crate::mediator::DEFAULT_SOCKET),
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
    /// Bytes the process may have allocated while a script runs; checked at every operation,
    /// and one operation adds at most one value within the size limits above, so the process
    /// stays under this plus that.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 20_000_000,
            max_call_levels: 64,
            max_string_size: 16 * 1024 * 1024,
            max_array_size: 1_000_000,
            max_map_size: 100_000,
            max_time: std::time::Duration::from_secs(4),
            max_memory: 160 * 1024 * 1024,
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
    locks: RefCell<HashMap<String, crate::change::lock::VmLock>>,
    command: RefCell<Option<String>>,
    /// The pool key, once read (`Some(None)`: there is none).
    pool_key: RefCell<Option<Option<Rc<crate::pool_record::PoolKey>>>>,
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
            locks: RefCell::new(HashMap::new()),
            command: RefCell::new(None),
            pool_key: RefCell::new(None),
        })
    }

    /// The database, opened (and migrated) on first use; created only by a command that
    /// changes things (a read never creates a file: a mistyped `--db` is an error).
    pub fn store(&self) -> Result<Rc<Store>, Failure> {
        self.open_store(self.config.create_db)
    }

    /// The database for a change: created when it does not exist yet.
    pub fn store_for_write(&self) -> Result<Rc<Store>, Failure> {
        self.open_store(true)
    }

    fn open_store(&self, create: bool) -> Result<Rc<Store>, Failure> {
        if let Some(store) = self.store.borrow().as_ref() {
            return Ok(store.clone());
        }
        let store = Rc::new(Store::open(&self.config.db_path, create)?);
        store.set_origin(self.origin());
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

    /// Says which recorded changes were interrupted (their process is gone: their VM's lock
    /// is free) and how to finish them; at the end of a run, so that a change this run finished
    /// itself is not mentioned.
    pub fn report_unfinished(&self) {
        let Some(store) = self.store.borrow().clone() else {
            return;
        };
        if self.command.borrow().as_deref() == Some("recover") {
            return; // it is about to finish them
        }
        let Ok(entries) = store.journal() else { return };
        for entry in entries {
            let free = crate::change::lock::try_lock(&self.config.db_path, &entry.vm_uuid)
                .ok()
                .flatten()
                .is_some();
            if free {
                crate::output::stderr_line(&format!(
                    "warning: an interrupted {} of VM {} (started {}, reached '{}') is unfinished: 'vgpu-admin recover' (or the next change to that VM) completes or undoes it",
                    entry.command, entry.vm_uuid, entry.started_at, entry.step
                ));
            }
        }
    }

    /// Prints a line of the dialogue: on stdout, or on stderr under `--json` (where stdout
    /// carries only the JSON document).
    pub fn say(&self, text: &str) {
        if self.config.json {
            crate::output::stderr_line(text);
        } else {
            crate::output::script_line(text);
        }
    }

    /// Takes VM `uuid`'s lock for the rest of the run (waiting for another vgpu-admin changing
    /// it), then finishes an interrupted change of that VM recorded in the journal. Returns
    /// true when the VM may have changed since it was last read: the lock had to be waited
    /// for, or an interrupted change was finished.
    pub fn lock_vm(&self, uuid: &str) -> Result<bool, Failure> {
        if self.locks.borrow().contains_key(uuid) {
            return Ok(false);
        }
        let limit = self.config.xe_timeout;
        let waited = std::cell::Cell::new(false);
        let lock = self.waiting(|| {
            crate::change::lock::lock(&self.config.db_path, uuid, limit, || {
                waited.set(true);
                self.say(&format!(
                    "Waiting for another vgpu-admin that is changing VM {uuid}..."
                ))
            })
        });
        let lock = lock.map_err(|e| Failure::failed(e.to_string()))?;
        self.locks.borrow_mut().insert(uuid.to_string(), lock);
        let recovered = self.recover_vm(uuid, false)?;
        if let Some(done) = &recovered {
            self.say(&format!("Recovered {done}."));
        }
        Ok(waited.get() || recovered.is_some())
    }

    /// Takes VM `uuid`'s lock only if it is free now; true when taken (or held already).
    pub fn try_lock_vm(&self, uuid: &str) -> Result<bool, Failure> {
        if self.locks.borrow().contains_key(uuid) {
            return Ok(true);
        }
        match crate::change::lock::try_lock(&self.config.db_path, uuid) {
            Ok(Some(lock)) => {
                self.locks.borrow_mut().insert(uuid.to_string(), lock);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(Failure::failed(e.to_string())),
        }
    }

    /// True when this run holds VM `uuid`'s lock.
    pub fn holds_lock(&self, uuid: &str) -> bool {
        self.locks.borrow().contains_key(uuid)
    }

    /// The command being run (for the change journal), `script` outside a command.
    pub fn command_name(&self) -> String {
        self.command
            .borrow()
            .clone()
            .unwrap_or_else(|| "script".to_string())
    }

    /// Names the command being run (also in the history rows it writes).
    pub fn set_command_name(&self, name: &str) {
        *self.command.borrow_mut() = Some(name.to_string());
        if let Some(store) = self.store.borrow().as_ref() {
            store.set_origin(self.origin());
        }
    }

    /// The command, user and host the history rows of this run name.
    pub fn origin(&self) -> crate::store::Origin {
        crate::store::Origin {
            command: self.command_name(),
            user: crate::origin::user(),
            host: crate::origin::host(),
        }
    }

    /// Releases VM `uuid`'s lock.
    pub fn unlock_vm(&self, uuid: &str) {
        self.locks.borrow_mut().remove(uuid);
    }

    /// Releases every VM lock (the end of a command in the shell).
    pub fn release_locks(&self) {
        self.locks.borrow_mut().clear();
    }

    /// Finishes the interrupted change of VM `uuid` recorded in the journal, if there is one
    /// (the VM's lock is held); returns what was done. `starting`: the VM is being started.
    pub fn recover_vm(&self, uuid: &str, starting: bool) -> Result<Option<String>, Failure> {
        let store = match self.store() {
            Ok(store) => store,
            Err(_) => return Ok(None), // no database: nothing recorded
        };
        let Some(entry) = store.journal_entry(uuid)? else {
            return Ok(None);
        };
        let xe = self.xe();
        let say = |t: &str| self.say(t);
        let key = self
            .pool_key(false)
            .map_err(|e| Failure::failed(HostError::message_of(&e)))?;
        let io = crate::change::Io {
            store: &store,
            xe: &xe,
            say: &say,
            dry_run: false,
            spinner: !self.config.json,
            pool_key: key.as_deref(),
        };
        let _critical = crate::interrupt::Critical::enter();
        let done = self.waiting(|| crate::change::recover(&entry, &io, starting))?;
        Ok(Some(done))
    }

    /// Refuses an xe call inside `vms::transaction`: the database's write lock would be held
    /// while xe runs, and the GPU mediator, which writes without waiting, would fail.
    pub fn check_outside_transaction(&self) -> Result<(), Box<rhai::EvalAltResult>> {
        let open = self
            .store
            .borrow()
            .as_ref()
            .is_some_and(|s| s.in_transaction());
        if open {
            return Err(HostError::failed(
                "xe cannot be called inside vms::transaction: the database would stay locked while xe runs (the GPU mediator's writes would fail); call xe before or after the transaction",
            ));
        }
        Ok(())
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

    /// Sets the exit status the run ends with when the script finishes normally. A signal's
    /// status, once set, stays: the run was interrupted, whatever else it found.
    pub fn set_exit_status(&self, status: crate::exit::Status) {
        if !matches!(self.exit_status.get(), crate::exit::Status::Interrupted(_)) {
            self.exit_status.set(status);
        }
    }

    /// A signal that came while changes went through: `failure` (its status 128 + signal) is
    /// said now, the signal is taken (a second one ends the process at once), and the run ends
    /// with that status once the script has finished what follows the changes.
    pub fn end_after_script(&self, failure: Failure) {
        failure.report();
        crate::interrupt::clear();
        self.set_exit_status(failure.status);
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

    /// Like [`Context::store_for_write`], as a script error.
    pub fn store_for_script_write(&self) -> Result<Rc<Store>, Box<rhai::EvalAltResult>> {
        self.store_for_write().map_err(HostError::boxed)
    }

    /// The pool's signing key (`pool.key` beside the database), read once per run; `None` when
    /// there is none. With `make` it is made when there is none yet (not under `--dry-run`).
    pub fn pool_key(
        &self,
        make: bool,
    ) -> Result<Option<Rc<crate::pool_record::PoolKey>>, Box<rhai::EvalAltResult>> {
        let known = self.pool_key.borrow().clone();
        match known {
            Some(Some(key)) => return Ok(Some(key)),
            Some(None) if !make || self.config.dry_run => return Ok(None),
            _ => {}
        }
        let path = crate::pool_record::key_path(&self.config.db_path);
        let key = if make && !self.config.dry_run {
            crate::pool_record::PoolKey::load_or_create(&path).map(Some)
        } else {
            crate::pool_record::PoolKey::load(&path)
        }
        .map_err(HostError::failed)?
        .map(Rc::new);
        *self.pool_key.borrow_mut() = Some(key.clone());
        Ok(key)
    }

    /// The uuid of the host this runs on, if its inventory says.
    pub fn this_host(&self) -> Option<String> {
        crate::inventory::installation_uuid(&self.config.inventory)
    }

    /// The `xe` boundary with this run's program and timeout.
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
    /// anything else, end of input, or a signal (Ctrl-C) while waiting, is no. With `--yes`,
    /// answers yes without reading.
    pub fn confirm(&self, question: &str) -> bool {
        let _critical = crate::interrupt::Critical::enter();
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
        match crate::input::read_line() {
            crate::input::Line::End => {
                let _ = writeln!(out);
                false
            }
            crate::input::Line::Interrupted(signal) => {
                let _ = writeln!(out);
                let _ = writeln!(
                    out,
                    "({} at the prompt: no)",
                    crate::interrupt::name(signal)
                );
                // Answered: the signal is handled, the command is cancelled.
                crate::interrupt::clear();
                false
            }
            crate::input::Line::Text(answer) => {
                // A terminal echoed the answer; piped input did not: show it, for the log.
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    let _ = writeln!(out, "{}", answer.trim_end());
                }
                matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y")
            }
        }
    }
}
