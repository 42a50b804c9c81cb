//! The command line, one way: [`execute`] parses argv (`args`), runs a built-in (`builtins`) or
//! a command script through the host, and returns its failure; [`run`] reports it and gives the
//! exit status. `main` and every line of the shell go through `execute`.

mod args;
mod builtins;
mod generated;

pub use args::{builtin_commands, command_tree, is_builtin};

use crate::engine::Host;
use crate::exit::{Failure, Status};
use crate::output;
use crate::scripts::{Catalog, Command as ScriptCommand};
use clap::error::ErrorKind;
use std::ffi::OsString;

/// Runs vgpu-admin with `args` (program name first) and returns the exit status.
pub fn run(args: Vec<OsString>) -> Status {
    match execute(args) {
        Ok(()) => Status::Success,
        Err(failure) => {
            failure.report();
            failure.status
        }
    }
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

/// The shell for `commands`, each of its lines run through [`execute`].
fn shell(
    config: crate::engine::HostConfig,
    commands: &[ScriptCommand],
    keep_going: bool,
    prefix: Vec<OsString>,
) -> Result<(), Failure> {
    let mut infos: Vec<crate::repl::complete::CommandInfo> =
        commands.iter().map(Into::into).collect();
    // The built-ins (but the shell itself), as the command line has them.
    infos.extend(
        builtin_commands()
            .iter()
            .filter(|b| b.get_name() != "shell" && !b.is_hide_set())
            .map(|b| crate::repl::complete::CommandInfo {
                name: b.get_name().to_string(),
                options: Vec::new(),
                about: b.get_about().map(|a| a.to_string()).unwrap_or_default(),
                exclusive: Vec::new(),
            }),
    );
    let options = crate::repl::ShellOptions {
        keep_going,
        prefix,
        commands: infos,
        execute: Box::new(execute),
    };
    match crate::repl::run(config, options) {
        Status::Success => Ok(()),
        status => Err(Failure::new(status, "")),
    }
}

/// Parses `args` (program name first) and runs the command; returns its failure, if any.
pub fn execute(args: Vec<OsString>) -> Result<(), Failure> {
    let catalog = Catalog::new(Some(args::scripts_dir(&args)));
    // The hook, run, api, install and uninstall never load the command scripts: a broken admin
    // command cannot stop a VM start.
    let word = args::command_word(&args);
    let commands = match word.as_deref() {
        Some(w) if args::WITHOUT_SCRIPTS.contains(&w) => Vec::new(),
        _ => script_commands(&catalog, word.as_deref())?,
    };
    let mut tree = command_tree(&commands);
    if args.len() <= 1 {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // A bare vgpu-admin on a terminal starts the shell.
            let config = args::host_config(&tree.get_matches_from(["vgpu-admin", "shell"]));
            return shell(config, &commands, false, Vec::new());
        }
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
                    Err(args::usage_error(&e, named))
                }
            };
        }
    };
    let config = args::host_config(&matches);
    let Some((name, sub)) = matches.subcommand() else {
        return Err(Failure::usage("no command given (see 'vgpu-admin --help')"));
    };
    match name {
        "api" => builtins::print_api(&Host::new(config)),
        "commands" => builtins::print_commands(&commands, config.json),
        "run" => builtins::run_file(config, sub),
        "completions" => builtins::completions(&commands, sub),
        "complete" => builtins::complete(config, sub),
        "man" => builtins::man(&commands, sub),
        "install" | "uninstall" => builtins::install(name, sub),
        "hook" => builtins::hook(config, sub),
        "shell" => {
            // The global options given before `shell` apply to every line.
            let at = args.iter().position(|a| a == "shell").unwrap_or(1);
            shell(
                config,
                &commands,
                sub.get_flag("keep-going"),
                args[1..at].to_vec(),
            )
        }
        _ => {
            let command = commands
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| Failure::usage(format!("unknown command '{name}'")))?;
            let options = args::script_options(command, sub);
            let mut config = config;
            config.create_db = command.spec.changes && !config.dry_run;
            let host = Host::new(config);
            host.context().set_command_name(&command.name);
            let result = host.run_command(&command.script, options, &command.spec.selection);
            host.finish();
            result
        }
    }
}
