//! The command line as clap sees it: the global options (from `crate::options`), the built-in
//! commands, and one subcommand per command script, built from the scripts' headers — their
//! values checked by the model through [`KindParser`], their groups as clap groups.

use crate::engine::HostConfig;
use crate::exit::Failure;
use crate::exit::Status;
use crate::scripts::spec::GroupRule;
use crate::scripts::{self, Command as ScriptCommand, OptionValue, ValueKind};
use crate::store::DEFAULT_DB_PATH;
use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The built-in commands that never need the command scripts: they run even when an admin's
/// command script is broken (the hook above all).
pub const WITHOUT_SCRIPTS: &[&str] = &["hook", "run", "api", "install", "uninstall", "complete"];

/// True when `name` is a built-in command (or `help`): no script can take it.
pub fn is_builtin(name: &str) -> bool {
    name == "help" || builtin_commands().iter().any(|c| c.get_name() == name)
}

/// The admin scripts directory: `--scripts` (read before full parsing, since it decides which
/// commands exist), then `VGPU_SCRIPTS`, then the default.
pub fn scripts_dir(args: &[OsString]) -> PathBuf {
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

/// The command word of `args` (program name first): the first word that is not a global
/// option or its value.
pub fn command_word(args: &[OsString]) -> Option<String> {
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
        "inventory" => Some(crate::inventory::DEFAULT_INVENTORY.to_string()),
        "mediator" => Some(crate::mediator::DEFAULT_SOCKET.to_string()),
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
        .help_heading("Global options")
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
            .after_help(examples_help(&["vgpu-admin run report.rhai", "vgpu-admin run move-low.rhai A B"]))
            .about("Run an admin's Rhai script with the full host API")
            .arg(
                Arg::new("file")
                    .value_name("FILE.rhai")
                    .required(true)
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(trailing_args("Passed to the script as the string array ARGS")),
        Command::new("hook")
            .after_help(examples_help(&["vgpu-admin hook vm-pre-start -vmuuid 0b7c1b52-6f2e-4c4a-9d07-1a2b3c4d5e01 -reason manual"]))
            .about("Run a VM hook script, as xenopsd does: hook vm-pre-start -vmuuid U -reason R")
            .arg(Arg::new("name").value_name("HOOK").required(true))
            .arg(trailing_args(
                "-vmuuid <uuid> -reason <reason> [-vmdomid <id>], in any order",
            )),
        Command::new("install")
            .after_help(examples_help(&["vgpu-admin install", "vgpu-admin install --root ./stage --files-only"]))
            .about("Install the binary, the database and the vm-pre-start hook (idempotent)")
            .long_about(
                "Install vgpu-admin: /usr/local/bin/vgpu-admin (and the link /etc/vgpu/vgpu-admin), \
                 the database /etc/vgpu/vgpu_config.db (created or migrated, rows kept), the hook \
                 wrapper /etc/xapi.d/vm-pre-start/50-vgpu-admin and /etc/vgpu/vgpu-vm-startup.sh; \
                 it asks the host's QEMU which vGPU driver it has; the man pages and the bash, \
                 zsh and fish completions. Running it again changes only what differs. With \
                 --root DIR the files go under DIR but name their final paths (/usr/..., \
                 /etc/...), as a package's staging directory needs.",
            )
            .arg(root_arg())
            .arg(
                Arg::new("files-only")
                    .long("files-only")
                    .action(ArgAction::SetTrue)
                    .help("Write the files only: no database, no QEMU question (a package's %install)"),
            )
            .arg(
                Arg::new("database-only")
                    .long("database-only")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("files-only")
                    .help("Only create or migrate the database and ask QEMU for its driver (a package's %post)"),
            )
            .arg(
                Arg::new("relocated")
                    .long("relocated")
                    .action(ArgAction::SetTrue)
                    .hide(true)
                    .help("The hook wrapper and startup script name the paths under --root (tests)"),
            ),
        Command::new("uninstall")
            .after_help(examples_help(&["vgpu-admin uninstall", "vgpu-admin uninstall --purge"]))
            .about("Remove what install put in place; keep the database unless --purge")
            .long_about(
                "Remove the hook wrapper, the startup script, the links, the binary, the man pages \
                 and the completions that install put in place; the database is kept unless \
                 --purge.",
            )
            .arg(root_arg())
            .arg(
                Arg::new("purge")
                    .long("purge")
                    .action(ArgAction::SetTrue)
                    .help("Remove the database too"),
            ),
        Command::new("shell")
            .after_help(examples_help(&["vgpu-admin shell", "vgpu-admin shell --keep-going < commands.txt"]))
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
            .after_help(examples_help(&["vgpu-admin completions bash > /etc/bash_completion.d/vgpu-admin"]))
            .about("Print a completion script for bash, zsh or fish (admin commands included)")
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(["bash", "zsh", "fish"]),
            ),
        Command::new("man")
            .after_help(examples_help(&["vgpu-admin man set-pool | man -l -", "vgpu-admin man --dir /usr/share/man/man1"]))
            .about("Print a man page (roff), or write them all with --dir")
            .long_about(
                "Print the man page of vgpu-admin (which lists the commands), or of one command \
                 (vgpu-admin man set-pool: the page vgpu-admin-set-pool(1)); --dir DIR writes \
                 every page there as vgpu-admin.1 and vgpu-admin-<command>.1.",
            )
            .arg(Arg::new("command").value_name("COMMAND").help("The command whose page to print"))
            .arg(
                Arg::new("dir")
                    .long("dir")
                    .value_name("DIR")
                    .value_parser(clap::value_parser!(PathBuf))
                    .conflicts_with("command")
                    .help("Write every page into DIR"),
            ),
        Command::new("complete")
            .about("VM uuids or names for shell completion, one per line")
            .hide(true)
            .arg(
                Arg::new("option")
                    .required(true)
                    .value_parser(["vm-uuid", "vm-name"]),
            )
            .arg(Arg::new("prefix").default_value("").allow_hyphen_values(true))
            .arg(
                Arg::new("command")
                    .long("command")
                    .value_name("COMMAND")
                    .default_value("")
                    .help("The command being completed: register-vm and adopt offer unregistered VMs"),
            ),
        Command::new("api")
            .after_help(examples_help(&["vgpu-admin api | less"])).about("Print the reference of the Rhai host API"),
        Command::new("commands")
            .after_help(examples_help(&["vgpu-admin commands", "vgpu-admin --json commands"])).about("List every command and the script each comes from"),
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
        .help("Work under DIR instead of / (a package's staging directory)")
}

/// Checks a script option's value with the model, as clap parses it, and offers the values of
/// a closed kind to completion.
#[derive(Clone)]
pub struct KindParser {
    option: String,
    kind: ValueKind,
}

impl TypedValueParser for KindParser {
    type Value = OptionValue;

    fn parse_ref(
        &self,
        cmd: &Command,
        _arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<OptionValue, clap::Error> {
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                format!("invalid UTF-8 in the value of --{}\n", self.option),
            )
            .with_cmd(cmd)
        })?;
        self.kind.validate(&self.option, text).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
                .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let choices = self.kind.choices();
        (!choices.is_empty()).then(|| {
            Box::new(choices.into_iter().map(PossibleValue::new)) as Box<dyn Iterator<Item = _>>
        })
    }
}

fn script_subcommand(command: &ScriptCommand) -> Command {
    let spec = &command.spec;
    let mut after = examples_help(&spec.examples);
    after.push_str(&format!("Script: {}", command.script.source_name()));
    let mut sub = Command::new(command.name.clone())
        .about(spec.about.clone())
        .after_help(after);
    if !spec.long_about.is_empty() {
        sub = sub.long_about(format!("{}\n\n{}", spec.about, spec.long_about.join("\n")));
    }
    let mut position = 0;
    for option in &spec.options {
        if option.positional {
            position += 1;
            let kind = option.kind.clone().unwrap_or(ValueKind::Text);
            sub = sub.arg(
                Arg::new(option.name.clone())
                    .index(position)
                    .value_name(option.name.to_uppercase())
                    .help(option.help.clone())
                    .required(option.required)
                    .value_parser(KindParser {
                        option: option.name.to_uppercase(),
                        kind,
                    }),
            );
            continue;
        }
        let mut arg = Arg::new(option.name.clone())
            .long(option.name.clone())
            .help(option.help.clone());
        arg = match &option.kind {
            Some(kind) => {
                let mut arg = arg
                    .value_name(kind.placeholder())
                    .action(ArgAction::Set)
                    .num_args(1)
                    .allow_hyphen_values(true)
                    .required(option.required)
                    .hide_possible_values(true)
                    .value_parser(KindParser {
                        option: option.name.clone(),
                        kind: kind.clone(),
                    });
                if let Some(default) = &option.default {
                    arg = arg.default_value(default.clone());
                }
                arg
            }
            None => arg.action(ArgAction::SetTrue),
        };
        sub = sub.arg(arg);
    }
    for (i, group) in spec.groups.iter().enumerate() {
        let one_vm = group.rule == GroupRule::OneOf && group.options.iter().any(|o| o == "vm-uuid");
        if one_vm && !spec.selection.is_empty() {
            // One VM (--vm-uuid or --vm-name) or a selection, never both.
            let mut args = group.options.clone();
            args.extend(spec.selection.iter().cloned());
            sub = sub.group(
                ArgGroup::new(format!("group-{i}"))
                    .args(args)
                    .required(true)
                    .multiple(true),
            );
            for one in &group.options {
                let others = group
                    .options
                    .iter()
                    .filter(|o| *o != one)
                    .chain(&spec.selection);
                sub = sub.mut_arg(one, |a| {
                    a.conflicts_with_all(others.cloned().collect::<Vec<_>>())
                });
            }
            continue;
        }
        sub = sub.group(
            ArgGroup::new(format!("group-{i}"))
                .args(group.options.clone())
                .required(true)
                .multiple(group.rule == GroupRule::AnyOf),
        );
    }
    if spec.selection.iter().any(|o| o == "all") {
        // --all is every VM: no other selection option narrows it.
        let others: Vec<String> = spec
            .selection
            .iter()
            .filter(|o| *o != "all")
            .cloned()
            .collect();
        sub = sub.mut_arg("all", |a| a.conflicts_with_all(others));
    }
    sub
}

/// The "Examples:" paragraph of a command's help (empty when it has none).
fn examples_help(examples: &[impl AsRef<str>]) -> String {
    if examples.is_empty() {
        return String::new();
    }
    let mut text = String::from("Examples:\n");
    for example in examples {
        text.push_str(&format!("  {}\n", example.as_ref()));
    }
    text.push('\n');
    text
}

/// Turns a clap error into one line, naming the command's help.
pub fn usage_error(error: &clap::Error, command: Option<&str>) -> Failure {
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

/// The host settings the global options give.
pub fn host_config(matches: &ArgMatches) -> HostConfig {
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
    if let Some(inventory) = matches.get_one::<String>("inventory") {
        config.inventory = PathBuf::from(inventory);
    }
    if let Some(socket) = matches.get_one::<String>("mediator") {
        config.mediator_socket = PathBuf::from(socket);
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

/// The options a script gets in `OPTS`, checked (by clap, through [`KindParser`]).
pub fn script_options(
    command: &ScriptCommand,
    matches: &ArgMatches,
) -> Vec<(String, Option<OptionValue>)> {
    command
        .spec
        .options
        .iter()
        .map(|option| {
            let value = match option.kind {
                None => matches.get_flag(&option.name).then_some(OptionValue::Flag),
                Some(_) => matches.get_one::<OptionValue>(&option.name).cloned(),
            };
            (option.script_key(), value)
        })
        .collect()
}
