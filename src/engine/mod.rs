//! The Rhai engine: wires the host API (`vms::`, `pools::`, `ui::`) to scripts, with limits, the
//! stdlib module resolver, and error reporting. Workflow and wording live in the scripts.

pub mod api;
mod batch;
mod changes;
pub mod context;
mod diagnostic;
mod json;
mod mediator;
mod pools;
mod resolver;
mod settings;
mod ui;
pub mod values;
mod vgpu;
mod vms;
mod xe;

pub use api::ApiFunction;

/// The stack the run gets (see `main`): far more than the deepest nesting the limits allow.
pub const STACK_SIZE: usize = 64 * 1024 * 1024;
pub use context::{Context, HostConfig, Limits};

use crate::exit::{Failure, Status};
use crate::model::ModelError;
use crate::output;
use crate::scripts::{Catalog, OptionValue, Script};
use crate::store::StoreError;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position, Scope, AST};
use std::rc::Rc;
use values::VmList;

/// An error raised by a host function, carried through Rhai to the exit status. `kind` lets a
/// script tell errors apart in `catch` (`e.kind == "shutdown_refused"`).
#[derive(Debug, Clone)]
pub struct HostError(pub Failure, pub &'static str);

/// A uuid argument of a host function, checked (a malformed one is an exit-status-2 error).
pub(crate) fn uuid_arg(uuid: &str) -> Result<crate::model::VmUuid, Box<EvalAltResult>> {
    crate::model::VmUuid::parse(uuid).map_err(HostError::model)
}

impl HostError {
    /// Wraps `failure` as a Rhai run-time error of kind `error`.
    pub fn boxed(failure: Failure) -> Box<EvalAltResult> {
        Self::boxed_kind(failure, "error")
    }

    /// Wraps `failure` as a Rhai run-time error of the given kind.
    pub fn boxed_kind(failure: Failure, kind: &'static str) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from(HostError(failure, kind)),
            Position::NONE,
        ))
    }

    /// An `xe` failure (exit status 1), with a kind scripts can test: `xe_missing`,
    /// `no_such_vm`, `shutdown_refused`, `timeout` or `xe_failed`.
    pub fn xe(e: crate::xe::XeError) -> Box<EvalAltResult> {
        use crate::xe::XeError;
        let kind = match &e {
            XeError::NotFound { .. } => "xe_missing",
            XeError::Timeout { .. } => "timeout",
            _ if e.is_no_such_vm() => "no_such_vm",
            _ if e.is_clean_shutdown_refused() => "shutdown_refused",
            _ => "xe_failed",
        };
        Self::boxed_kind(Failure::failed(e.to_string()), kind)
    }

    /// Invalid input (exit status 2).
    pub fn usage(message: impl Into<String>) -> Box<EvalAltResult> {
        Self::boxed(Failure::usage(message))
    }

    /// A failed operation (exit status 1).
    pub fn failed(message: impl Into<String>) -> Box<EvalAltResult> {
        Self::boxed(Failure::failed(message))
    }

    /// A validation error (exit status 2).
    pub fn model(e: ModelError) -> Box<EvalAltResult> {
        Self::boxed(e.into())
    }

    /// A store error, with the exit status it implies.
    pub fn store(e: StoreError) -> Box<EvalAltResult> {
        Self::boxed(e.into())
    }

    /// The failure inside `error`, when it was raised by the host.
    pub fn from_eval(error: &EvalAltResult) -> Option<Failure> {
        match error {
            EvalAltResult::ErrorRuntime(value, _) => {
                value.read_lock::<HostError>().map(|h| h.0.clone())
            }
            _ => None,
        }
    }

    /// The message of any error, without position decorations.
    pub fn message_of(error: &EvalAltResult) -> String {
        Self::from_eval(error).map_or_else(|| error.to_string(), |f| f.message)
    }
}

/// The embeddable host: one Rhai engine with the vgpu-admin API, a script catalogue and the
/// shared context (database, settings).
pub struct Host {
    engine: Engine,
    ctx: Rc<Context>,
    catalog: Catalog,
    api: Vec<ApiFunction>,
}

impl Host {
    /// Builds the engine for `config`. Nothing is opened until a script needs the database.
    pub fn new(config: HostConfig) -> Host {
        let catalog = Catalog::new(config.scripts_dir.clone());
        let limits = config.limits;
        // A single operation that asks for too much ends the run, cleanly (see `memory`).
        crate::memory::set_hard_limit(crate::memory::HARD_LIMIT_BYTES, 2, 1);
        let ctx = Context::new(config);
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_expr_depths(128, 64)
            .set_max_modules(64)
            .on_print(output::script_line)
            .on_debug(|text, _, _| output::stderr_line(text));
        engine.set_module_resolver(resolver::StdlibResolver::new(catalog.clone(), ctx.clone()));
        // `eval` would compile and run code out of the reach of the nesting limits.
        engine.disable_symbol("eval");
        let clock = ctx.clone();
        engine.on_progress(move |operations| {
            if crate::memory::allocated() > limits.max_memory {
                return Some(Dynamic::from("memory limit"));
            }
            if let Some(signal) = crate::interrupt::pending() {
                return Some(Dynamic::from(crate::interrupt::name(signal)));
            }
            // Every 8 operations (one may be slow: copying a large string): time used up?
            if operations % 8 == 0 && clock.script_time() > limits.max_time {
                Some(Dynamic::from("time limit"))
            } else {
                None
            }
        });
        register_types(&mut engine);

        let mut builder = api::ApiBuilder::default();
        vms::register(&mut builder, &ctx);
        changes::register(&mut builder, &ctx);
        batch::register(&mut builder, &ctx);
        pools::register(&mut builder, &ctx);
        ui::register(&mut builder, &ctx);
        xe::register(&mut builder, &ctx);
        vgpu::register(&mut builder, &ctx);
        settings::register(&mut builder, &ctx);
        mediator::register(&mut builder, &ctx);
        let api = builder.install(&mut engine);
        Host {
            engine,
            ctx,
            catalog,
            api,
        }
    }

    /// Ends the run: releases the VM locks, closes the database cleanly, then lets the process
    /// go on without freeing the interpreter's function tables one by one (that alone costs a
    /// seventh of a short command's run time).
    pub fn finish(self) {
        self.ctx.report_unfinished();
        self.ctx.release_locks();
        self.ctx.close_store();
        std::mem::forget(self);
    }

    /// The script catalogue (bundled scripts and the admin's directory).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The shared context.
    pub fn context(&self) -> &Rc<Context> {
        &self.ctx
    }

    /// The documented host functions, sorted by module and name.
    pub fn api(&self) -> &[ApiFunction] {
        &self.api
    }

    /// Compiles `script`, remembering its text for error excerpts.
    pub fn compile(&self, script: &Script) -> Result<AST, Failure> {
        let name = script.source_name();
        self.ctx.remember_source(&name, &script.text);
        let mut ast = self
            .engine
            .compile(&*script.text)
            .map_err(|e| diagnostic::parse(&self.ctx, &e, &name))?;
        ast.set_source(name.as_str());
        Ok(ast)
    }

    /// Runs a command script with its validated options (`OPTS`), and prints its result as JSON
    /// when `--json` was asked for. The options named in `selection` that were given are also
    /// in `OPTS.selection` (a map; `()` when none was: the command is about one VM).
    pub fn run_command(
        &self,
        script: &Script,
        options: Vec<(String, Option<OptionValue>)>,
        selection: &[String],
    ) -> Result<(), Failure> {
        let mut opts = Map::new();
        let mut selected = Map::new();
        for (key, value) in options {
            let value = match value {
                None => Dynamic::UNIT,
                Some(OptionValue::Text(s)) => s.into(),
                Some(OptionValue::Int(n)) => n.into(),
                Some(OptionValue::Flag) => true.into(),
            };
            if !value.is_unit() && selection.iter().any(|s| s.replace('-', "_") == key) {
                selected.insert(key.as_str().into(), value.clone());
            }
            opts.insert(key.into(), value);
        }
        if !selection.is_empty() {
            let selected = if selected.is_empty() {
                Dynamic::UNIT
            } else {
                selected.into()
            };
            opts.insert("selection".into(), selected);
        }
        let mut scope = self.base_scope();
        scope.push_constant("OPTS", opts);
        self.run(script, scope)
    }

    /// Runs an admin's script file with `args` as the string array `ARGS`.
    pub fn run_script(&self, script: &Script, args: Vec<String>) -> Result<(), Failure> {
        let mut scope = self.base_scope();
        let args: Array = args.into_iter().map(Dynamic::from).collect();
        scope.push_constant("ARGS", args);
        self.run(script, scope)
    }

    /// A scope with the constants every script sees (`JSON`, `YES`, `DRY_RUN`), for a session
    /// that keeps its variables across inputs.
    pub fn new_scope(&self) -> Scope<'static> {
        self.base_scope()
    }

    /// Evaluates one input of an interactive session: `scope` keeps the variables and
    /// `functions` the functions defined by earlier inputs. Errors point into the input, named
    /// `source` (e.g. `<input 3>`).
    pub fn eval_input(
        &self,
        input: &str,
        source: &str,
        scope: &mut Scope<'static>,
        functions: &mut AST,
    ) -> Result<Dynamic, Failure> {
        self.ctx.remember_source(source, input);
        let mut ast = self
            .engine
            .compile_with_scope(scope, input)
            .map_err(|e| diagnostic::parse(&self.ctx, &e, source))?;
        ast.set_source(source);
        let combined = functions.merge(&ast);
        self.ctx.start_clock();
        let value = self
            .engine
            .eval_ast_with_scope::<Dynamic>(scope, &combined)
            .map_err(|e| diagnostic::runtime(&self.ctx, &e, source))?;
        *functions = functions.merge(&ast.clone_functions_only());
        Ok(value)
    }

    /// True when `input` is Rhai code that is not finished yet (an open brace or an
    /// unterminated string): the shell then reads another line.
    pub fn is_incomplete(&self, input: &str) -> bool {
        match self.engine.compile(input) {
            Ok(_) => false,
            Err(e) => matches!(*e.0, rhai::ParseErrorType::UnexpectedEOF) || unbalanced(input),
        }
    }

    fn base_scope(&self) -> Scope<'static> {
        let mut scope = Scope::new();
        scope.push_constant("JSON", self.ctx.config.json);
        scope.push_constant("YES", self.ctx.config.yes);
        scope.push_constant("DRY_RUN", self.ctx.config.dry_run);
        scope
    }

    /// Runs a script with extra constants in scope and returns its value, or the value given
    /// to `exit(value)` (used by the hook, whose script returns its exit status).
    pub fn run_with_constants(
        &self,
        script: &Script,
        constants: Vec<(&'static str, Dynamic)>,
    ) -> Result<Dynamic, Failure> {
        let mut scope = self.base_scope();
        for (name, value) in constants {
            scope.push_constant(name, value);
        }
        let ast = self.compile(script)?;
        self.ctx.start_clock();
        match self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast) {
            Ok(value) => Ok(value),
            Err(e) => match *e {
                EvalAltResult::Exit(value, _) => Ok(value),
                _ => Err(diagnostic::runtime(&self.ctx, &e, &script.source_name())),
            },
        }
    }

    fn run(&self, script: &Script, mut scope: Scope) -> Result<(), Failure> {
        let ast = self.compile(script)?;
        self.ctx.start_clock();
        let name = script.source_name();
        let value = match self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast) {
            Ok(value) => value,
            Err(e) => return self.finish_error(diagnostic::runtime(&self.ctx, &e, &name)),
        };
        if self.ctx.config.json && !value.is_unit() {
            print_json(&value).map_err(|e| {
                HostError::from_eval(&e).unwrap_or_else(|| Failure::failed(e.to_string()))
            })?;
        }
        match self.ctx.exit_status() {
            Status::Success => Ok(()),
            status => Err(Failure::new(status, "")),
        }
    }

    /// A script that ended through `exit(0)` succeeded.
    fn finish_error(&self, failure: Failure) -> Result<(), Failure> {
        if failure.status == Status::Success {
            Ok(())
        } else {
            Err(failure)
        }
    }
}

/// True when `input` has more opening than closing brackets, or an open string, outside
/// comments: the signs of Rhai input that goes on on the next line.
fn unbalanced(input: &str) -> bool {
    let mut depth: i64 = 0;
    let mut chars = input.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' && q != '`' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '`' => quote = Some(c),
                '\'' => {
                    // a character literal: skip to its end
                    for d in chars.by_ref() {
                        if d == '\'' {
                            break;
                        }
                    }
                }
                '/' if chars.peek() == Some(&'/') => {
                    for d in chars.by_ref() {
                        if d == '\n' {
                            break;
                        }
                    }
                }
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => depth -= 1,
                _ => {}
            },
        }
    }
    depth > 0 || quote.is_some()
}

/// Prints `value` as one pretty JSON document on stdout.
fn print_json(value: &Dynamic) -> Result<(), Box<EvalAltResult>> {
    let mut out = output::Stdout::new();
    match serde_json::to_writer_pretty(out.writer(), &json::Json(value)) {
        Err(e) if e.is_io() => output::check(Err(e.into())),
        Err(e) => return Err(HostError::failed(format!("cannot write JSON: {e}"))),
        Ok(()) => {}
    }
    out.write("\n");
    out.flush();
    Ok(())
}

/// Makes host types usable in scripts: `VmList` (iterate, index, `len`, `to_array`) and
/// `HostError` (what `catch` receives from a host function: `message`, `status`).
fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<VmList>("VmList")
        .register_iterator_result::<VmList, Dynamic>()
        .register_fn("len", |l: &mut VmList| l.count())
        .register_fn("is_empty", |l: &mut VmList| l.count().map(|n| n == 0))
        .register_fn("to_array", |l: &mut VmList| l.to_array())
        .register_indexer_get(
            |l: &mut VmList, i: rhai::INT| -> Result<Dynamic, Box<EvalAltResult>> {
                let rows = l.to_array()?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| rows.get(i).cloned())
                    .ok_or_else(|| {
                        HostError::failed(format!(
                            "index {i} is out of bounds ({} VMs)",
                            rows.len()
                        ))
                    })
            },
        )
        .register_fn("to_string", |l: &mut VmList| match l.count() {
            Ok(n) => format!("<{n} VMs>"),
            Err(_) => "<VM list>".to_string(),
        })
        .register_type_with_name::<HostError>("HostError")
        .register_get("message", |e: &mut HostError| e.0.message.clone())
        .register_get("status", |e: &mut HostError| e.0.status.code() as rhai::INT)
        .register_get("kind", |e: &mut HostError| e.1.to_string())
        .register_fn("to_string", |e: &mut HostError| e.0.message.clone());
}
