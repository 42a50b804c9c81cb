//! The command line: global options, the clap command tree built from the command scripts'
//! headers, and dispatch to the host. Built-in commands (`run`, `api`, `commands`) live here too.

use crate::engine::{Host, HostConfig};
use crate::exit::{Failure, Status};
use crate::output;
use crate::scripts::{self, Catalog, Command as ScriptCommand, Origin, Script};
use crate::store::DEFAULT_DB_PATH;
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The built-in commands that never need the command scripts: they run even when an admin's
/// command script is broken (the hook above all).
const WITHOUT_SCRIPTS: &[&str] = &["hook", "run", "api", "install", "uninstall"];

/// True when `name` is a built-in command (or `help`): no script can take it.
pub fn is_builtin(name: &str) -> bool {
    name == "help" || builtin_commands().iter().any(|c| c.get_name() == name)
}

/// Runs vgpu-admin with `args` (program name first) and returns the exit status.
pub fn run(args: Vec<OsString>) -> Status {
    match try_run(args) {
        Ok(()) => Status::Success,
        Err(failure) => {
            report(&failure);
            failure.status
        }
    }
}

/// Prints a failure on stderr: `error: <message>`, then its detail lines.
pub fn report(failure: &Failure) {
    if !failure.message.is_empty() {
        output::stderr_line(&format!("error: {}", failure.message));
    }
    if let Some(detail) = &failure.detail {
        output::stderr_line(detail);
    }
}

/// The admin scripts directory: `--scripts` (read before full parsing, since it decides which
/// commands exist), then `VGPU_SCRIPTS`, then the default.
fn scripts_dir(args: &[OsString]) -> PathBuf {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if let Some(dir) = text.strip_prefix("--scripts=") {
            return PathBuf::from(dir);
        }
        if text == "--scripts" {
            if let Some(dir) = iter.next() {
                return PathBuf::from(dir);
            }
        }
    }
    std::env::var_os("VGPU_SCRIPTS")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(scripts::DEFAULT_SCRIPTS_DIR),
            PathBuf::from,
        )
}

/// The commands scripts provide. A script that cannot be loaded, or that tries to take a
/// built-in name, is left out with a warning; `wanted` (the command being run) must not be one
/// of them.
fn script_commands(catalog: &Catalog, wanted: Option<&str>) -> Result<Vec<ScriptCommand>, Failure> {
    let (mut commands, broken) = catalog.commands();
    for (name, error) in broken {
        if wanted == Some(name.as_str()) {
            return Err(error.into());
        }
        output::stderr_line(&format!("warning: command '{name}' is left out: {error}"));
    }
    commands.retain(|c| {
        let builtin = is_builtin(&c.name);
        if builtin {
            output::stderr_line(&format!(
                "warning: ignoring {}: '{}' is a built-in command",
                c.script.source_name(),
                c.name
            ));
        }
        !builtin
    });
    Ok(commands)
}

/// The command word of `args` (program name first): the first word that is not a global
/// option or its value.
fn command_word(args: &[OsString]) -> Option<String> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_str()?;
        if text == "--" {
            return iter.next().and_then(|a| a.to_str()).map(str::to_string);
        }
        if let Some(long) = text.strip_prefix("--") {
            let takes_value = crate::options::global(long)
                .is_some_and(|o| o.takes != crate::options::Takes::Flag);
            if takes_value {
                iter.next();
            }
            continue;
        }
        if text.starts_with('-') {
            continue;
        }
        return Some(text.to_string());
    }
    None
}

/// One global option as a clap argument, its default taken from where it is defined.
fn global_arg(option: &crate::options::GlobalOption) -> Arg {
    use crate::options::Takes;
    let default = match option.name {
        "db" => Some(DEFAULT_DB_PATH.to_string()),
        "scripts" => Some(scripts::DEFAULT_SCRIPTS_DIR.to_string()),
        "xe" => Some("xe, looked up on PATH".to_string()),
        "xe-timeout" => Some(crate::xe::DEFAULT_TIMEOUT.as_secs().to_string()),
        "script-timeout" => Some(
            crate::engine::Limits::default()
                .max_time
                .as_secs()
                .to_string(),
        ),
        _ => None,
    };
    let help = match default {
        Some(d) => format!("{} [default: {d}]", option.help),
        None => option.help.to_string(),
    };
    let mut arg = Arg::new(option.name)
        .long(option.name)
        .global(true)
        .help(help);
    if let Some(short) = option.short {
        arg = arg.short(short);
    }
    if let Some(env) = option.env {
        arg = arg.env(env);
    }
    match option.takes {
        Takes::Flag => arg.action(ArgAction::SetTrue),
        Takes::Path => arg.value_name(option.value_name),
        Takes::Seconds => arg
            .value_name(option.value_name)
            .value_parser(clap::value_parser!(u64).range(1..=86_400)),
    }
}

/// The commands the host implements itself; scripts cannot take their names.
pub fn builtin_commands() -> Vec<Command> {
    vec![
        Command::new("run")
            .about("Run an admin's Rhai script with the full host API")
            .arg(
                Arg::new("file")
                    .value_name("FILE.rhai")
                    .required(true)
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(trailing_args("Passed to the script as the string array ARGS")),
        Command::new("hook")
            .about("Run a VM hook script, as xenopsd does: hook vm-pre-start -vmuuid U -reason R")
            .arg(Arg::new("name").value_name("HOOK").required(true))
            .arg(trailing_args(
                "-vmuuid <uuid> -reason <reason> [-vmdomid <id>], in any order",
            )),
        Command::new("install")
            .about("Install the binary, the database and the vm-pre-start hook (idempotent)")
            .long_about(
                "Install vgpu-admin: /usr/local/bin/vgpu-admin (and the link /etc/vgpu/vgpu-admin), \
                 the database /etc/vgpu/vgpu_config.db (created or migrated, rows kept), the hook \
                 wrapper /etc/xapi.d/vm-pre-start/50-vgpu-admin and /etc/vgpu/vgpu-vm-startup.sh; \
                 it asks the host's QEMU which vGPU driver it has. Running it again changes only \
                 what differs.",
            )
            .arg(root_arg()),
        Command::new("uninstall")
            .about("Remove the hook wrapper, the links and the binary; keep the database")
            .arg(root_arg())
            .arg(
                Arg::new("purge")
                    .long("purge")
                    .action(ArgAction::SetTrue)
                    .help("Remove the database too"),
            ),
        Command::new("shell")
            .about("Start the interactive admin shell (also: vgpu-admin alone, on a terminal)")
            .long_about(
                "Start the interactive admin shell. Each line is a command as on the command line \
                 or Rhai code with the host API; Tab completes commands, options, values, VMs and \
                 API names. With input from a pipe or file, each line runs as if typed, without \
                 prompts, and the shell stops at the first failing line with its exit status.",
            )
            .arg(
                Arg::new("keep-going")
                    .long("keep-going")
                    .action(ArgAction::SetTrue)
                    .help("With piped input, go on after a failing line (exit with the first failure's status)"),
            ),
        Command::new("completions")
            .about("Print a completion script for bash, zsh or fish (admin commands included)")
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(["bash", "zsh", "fish"]),
            ),
        Command::new("man").about("Print the man page (roff), admin commands included"),
        Command::new("api").about("Print the reference of the Rhai host API"),
        Command::new("commands").about("List every command and the script each comes from"),
    ]
}

/// Builds the whole clap tree: global options, built-ins and one subcommand per command script.
pub fn command_tree(commands: &[ScriptCommand]) -> Command {
    let mut root = Command::new("vgpu-admin")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Configure the vGPU stub device of the VMs on this XCP-ng host")
        .long_about(
            "Configure the vGPU stub device of the VMs on this XCP-ng host: which pool (A or B) \
             each VM belongs to, its scheduling priority and its vGPU vm_id. The classic commands \
             are Rhai scripts that can be read, overridden and extended in the scripts directory.",
        )
        .after_help(Status::help())
        .subcommand_required(true)
        .arg_required_else_help(true)
        .disable_help_subcommand(true);
    for option in crate::options::GLOBAL_OPTIONS {
        root = root.arg(global_arg(option));
    }
    for command in commands {
        root = root.subcommand(script_subcommand(command));
    }
    root.subcommands(builtin_commands())
}

/// Everything after the command's first argument, dashes and all, passed on as it is.
fn trailing_args(help: &'static str) -> Arg {
    Arg::new("args")
        .value_name("ARGS")
        .num_args(0..)
        .trailing_var_arg(true)
        .allow_hyphen_values(true)
        .help(help)
}

fn root_arg() -> Arg {
    Arg::new("root")
        .long("root")
        .value_name("DIR")
        .default_value("/")
        .value_parser(clap::value_parser!(PathBuf))
        .help("Install under DIR instead of / (for tests and packaging)")
}

fn script_subcommand(command: &ScriptCommand) -> Command {
    let spec = &command.spec;
    let mut sub = Command::new(command.name.clone())
        .about(spec.about.clone())
        .after_help(format!("Script: {}", command.script.source_name()));
    if !spec.long_about.is_empty() {
        sub = sub.long_about(format!("{}\n\n{}", spec.about, spec.long_about.join("\n")));
    }
    for option in &spec.options {
        let mut arg = Arg::new(option.name.clone())
            .long(option.name.clone())
            .help(option.help.clone());
        arg = match &option.kind {
            Some(kind) => arg
                .value_name(kind.placeholder())
                .action(ArgAction::Set)
                .num_args(1)
                .allow_hyphen_values(true)
                .required(option.required),
            None => arg.action(ArgAction::SetTrue),
        };
        sub = sub.arg(arg);
    }
    sub
}

/// Turns a clap error into one line, naming the command's help.
fn usage_error(error: &clap::Error, command: Option<&str>) -> Failure {
    let rendered = error.render().to_string();
    let first_paragraph = rendered
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = first_paragraph
        .strip_prefix("error: ")
        .unwrap_or(&first_paragraph);
    let help = match command {
        Some(c) => format!("vgpu-admin {c} --help"),
        None => "vgpu-admin --help".to_string(),
    };
    Failure::usage(format!("{message} (see '{help}')"))
}

/// Parses `args` (program name first) and runs the command, returning its failure if any;
/// the shell runs each command line through it.
pub fn try_run(args: Vec<OsString>) -> Result<(), Failure> {
    let catalog = Catalog::new(Some(scripts_dir(&args)));
    // The hook, run, api, install and uninstall never load the command scripts: a broken admin
    // command cannot stop a VM start.
    let word = command_word(&args);
    let commands = match word.as_deref() {
        Some(w) if WITHOUT_SCRIPTS.contains(&w) => Vec::new(),
        _ => script_commands(&catalog, word.as_deref())?,
    };
    let mut tree = command_tree(&commands);
    if args.len() <= 1 && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // A bare vgpu-admin on a terminal starts the shell.
        let config = host_config(&tree.clone().get_matches_from(["vgpu-admin", "shell"]));
        let options = crate::repl::ShellOptions {
            keep_going: false,
            prefix: Vec::new(),
        };
        return match crate::repl::run(config, &commands, options) {
            Status::Success => Ok(()),
            status => Err(Failure::new(status, "")),
        };
    }
    if args.len() <= 1 {
        // No command and no terminal: show the usage.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            tree.render_help().to_string().as_bytes(),
        );
        return Err(Failure::new(Status::Usage, ""));
    }
    let matches = match tree.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    output::check(e.print());
                    Ok(())
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    Err(Failure::new(Status::Usage, ""))
                }
                _ => {
                    let named = args
                        .iter()
                        .skip(1)
                        .filter_map(|a| a.to_str())
                        .find(|a| commands.iter().any(|c| c.name == *a) || is_builtin(a));
                    Err(usage_error(&e, named))
                }
            };
        }
    };
    let config = host_config(&matches);
    let Some((name, sub)) = matches.subcommand() else {
        return Err(Failure::usage("no command given (see 'vgpu-admin --help')"));
    };
    match name {
        "api" => {
            let host = Host::new(config);
            print_api(&host)
        }
        "commands" => print_commands(&commands, config.json),
        "run" => run_file(config, sub),
        "shell" => {
            // The global options given before `shell` apply to every line.
            let at = args.iter().position(|a| a == "shell").unwrap_or(1);
            let options = crate::repl::ShellOptions {
                keep_going: sub.get_flag("keep-going"),
                prefix: args[1..at].to_vec(),
            };
            match crate::repl::run(config, &commands, options) {
                Status::Success => Ok(()),
                status => Err(Failure::new(status, "")),
            }
        }
        "completions" => {
            let shell = match sub.get_one::<String>("shell").map(String::as_str) {
                Some("zsh") => clap_complete::Shell::Zsh,
                Some("fish") => clap_complete::Shell::Fish,
                _ => clap_complete::Shell::Bash,
            };
            let mut tree = command_tree(&commands);
            let mut out = output::Stdout::new();
            clap_complete::generate(shell, &mut tree, "vgpu-admin", out.writer());
            out.flush();
            Ok(())
        }
        "man" => {
            let mut out = output::Stdout::new();
            let result = clap_mangen::Man::new(command_tree(&commands)).render(out.writer());
            output::check(result);
            out.flush();
            Ok(())
        }
        "install" | "uninstall" => {
            let root = sub
                .get_one::<PathBuf>("root")
                .cloned()
                .unwrap_or_else(|| PathBuf::from("/"));
            let layout = crate::install::Layout::new(root);
            if name == "install" {
                crate::install::install(&layout)
            } else {
                crate::install::uninstall(&layout, sub.get_flag("purge"))
            }
        }
        "hook" => {
            let name = sub.get_one::<String>("name").cloned().unwrap_or_default();
            let args: Vec<String> = sub
                .get_many::<String>("args")
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            match crate::hook::run(config, &name, &args) {
                crate::exit::HookExit::Go => Ok(()),
                exit => Err(Failure::new(Status::Hook(exit), "")),
            }
        }
        _ => {
            let command = commands
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| Failure::usage(format!("unknown command '{name}'")))?;
            let options = validated_options(command, sub)?;
            let mut config = config;
            config.create_db = command.spec.changes && !config.dry_run;
            let host = Host::new(config);
            host.context().set_command_name(&command.name);
            let result = host.run_command(&command.script, options);
            host.finish();
            result
        }
    }
}

fn host_config(matches: &ArgMatches) -> HostConfig {
    let db = matches
        .get_one::<String>("db")
        .map_or_else(|| PathBuf::from(DEFAULT_DB_PATH), PathBuf::from);
    let mut config = HostConfig::new(db);
    config.scripts_dir = matches
        .get_one::<String>("scripts")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(scripts::DEFAULT_SCRIPTS_DIR)));
    config.json = matches.get_flag("json");
    config.dry_run = matches.get_flag("dry-run");
    if let Some(xe) = matches.get_one::<String>("xe") {
        config.xe_program = xe.into();
    }
    if let Some(secs) = matches.get_one::<u64>("script-timeout") {
        config.limits.max_time = std::time::Duration::from_secs(*secs);
    }
    if let Some(secs) = matches.get_one::<u64>("xe-timeout") {
        config.xe_timeout = std::time::Duration::from_secs(*secs);
    }
    config.yes = matches.get_flag("yes");
    config
}

/// Checks every option value by its declared kind, before the script runs.
fn validated_options(
    command: &ScriptCommand,
    matches: &ArgMatches,
) -> Result<Vec<(String, Option<crate::scripts::OptionValue>)>, Failure> {
    let mut out = Vec::new();
    for option in &command.spec.options {
        let value = match &option.kind {
            None => matches
                .get_flag(&option.name)
                .then_some(crate::scripts::OptionValue::Flag),
            Some(kind) => match matches.get_one::<String>(&option.name) {
                None => None,
                Some(raw) => Some(kind.validate(&option.name, raw).map_err(Failure::usage)?),
            },
        };
        out.push((option.script_key(), value));
    }
    Ok(out)
}

fn run_file(config: HostConfig, matches: &ArgMatches) -> Result<(), Failure> {
    let path = matches
        .get_one::<PathBuf>("file")
        .ok_or_else(|| Failure::usage("run needs a script file"))?;
    if path.exists() {
        // The same rule as for the scripts directory: nobody else may be able to change it.
        crate::scripts::check_safe(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::scripts::check_safe(dir)?;
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::failed(format!("cannot read script {}: {e}", path.display())))?;
    let args: Vec<String> = matches
        .get_many::<String>("args")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let script = Script {
        rel: path.display().to_string(),
        origin: Origin::Admin(path.clone()),
        text: text.into(),
    };
    // An admin's script may change things: the database is created for it if need be.
    let mut config = config;
    config.create_db = !config.dry_run;
    let host = Host::new(config);
    let result = host.run_script(&script, args);
    host.finish();
    result
}

fn print_commands(commands: &[ScriptCommand], json: bool) -> Result<(), Failure> {
    if json {
        let mut list: Vec<serde_json::Value> = commands
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "about": c.spec.about,
                    "source": c.script.source_name(),
                    "bundled": c.script.origin == Origin::Bundled,
                    "overrides_bundled": c.overrides_bundled,
                })
            })
            .collect();
        list.extend(builtin_commands().iter().map(|b| {
            serde_json::json!({
                "name": b.get_name(),
                "about": b.get_about().map(|a| a.to_string()).unwrap_or_default(),
                "source": "built-in",
                "bundled": true,
                "overrides_bundled": false,
            })
        }));
        let text =
            serde_json::to_string_pretty(&list).map_err(|e| Failure::failed(e.to_string()))?;
        output::stdout_line(&text);
        return Ok(());
    }
    let mut rows = vec![vec![
        "COMMAND".to_string(),
        "SOURCE".to_string(),
        "DESCRIPTION".to_string(),
    ]];
    for c in commands {
        let source = match (&c.script.origin, c.overrides_bundled) {
            (Origin::Bundled, _) => "bundled".to_string(),
            (Origin::Admin(p), true) => format!("{} (overrides bundled)", p.display()),
            (Origin::Admin(p), false) => p.display().to_string(),
        };
        rows.push(vec![c.name.clone(), source, c.spec.about.clone()]);
    }
    for builtin in builtin_commands() {
        let about = builtin
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default();
        rows.push(vec![
            builtin.get_name().to_string(),
            "built-in".into(),
            about,
        ]);
    }
    let mut out = output::Stdout::new();
    out.write(&output::table(&rows));
    out.flush();
    Ok(())
}

/// What every script can use besides the host functions.
const SCRIPT_ENVIRONMENT: &str = "\
Constants
  OPTS     map     a command script's options, keyed with underscores (OPTS.vm_uuid); unset
                   options are (), flags are true or ()
  ARGS     array   the arguments of `vgpu-admin run FILE.rhai ARGS...`, as strings
  JSON     bool    --json was given: return data instead of printing it
  YES      bool    --yes was given

Types
  VmList   returned by vms::list: `for vm in list`, list[i], list.len(), list.is_empty(),
           list.to_array(); ui::print_each and --json stream it row by row
  HostError  what `catch (e)` receives from a host function: e.message, e.status, e.kind
             (e.g. \"shutdown_refused\", \"unsplittable\", \"no_such_vm\", \"timeout\")

Modules
  import \"format\" as fmt;   loads stdlib/format.rhai from the scripts directory, else the
                            bundled one

Limits
  A script stops with an error after 20,000,000 operations, 64 nested calls, a 16 MiB string,
  an array of 1,000,000 items, a map of 100,000 entries, 160 MiB of memory, or 4 s of run time
  (--script-timeout; waits for xe and for answers do not count); `eval` is not available.

Other constants
  DRY_RUN  bool    --dry-run was given: changing host functions only say what they would do
                   (functions in modules, which cannot see constants, ask ui::dry_run())
  In hooks: VM_UUID, REASON, DOM_ID, POLICY (warn or enforce); the value the hook script returns
  is the hook's exit status.";

fn print_api(host: &Host) -> Result<(), Failure> {
    if host.context().config.json {
        let text =
            serde_json::to_string_pretty(host.api()).map_err(|e| Failure::failed(e.to_string()))?;
        output::stdout_line(&text);
        return Ok(());
    }
    let mut out = output::Stdout::new();
    out.write("vgpu-admin Rhai host API\n\n");
    let mut module = None;
    for f in host.api() {
        if module != Some(f.module) {
            module = Some(f.module);
            let heading = if f.module.is_empty() {
                "Global functions".to_string()
            } else {
                format!("Module {}::", f.module)
            };
            out.write(&format!("{heading}\n\n"));
        }
        out.write(&format!("  {}\n", f.signature()));
        for line in &f.doc {
            out.write(&format!("      {line}\n"));
        }
        out.write("\n");
    }
    out.write(SCRIPT_ENVIRONMENT);
    out.write("\n");
    out.flush();
    Ok(())
}
