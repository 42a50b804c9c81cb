//! The built-in commands the host runs itself: `run`, `commands`, `api`, `completions`, `man`.

use super::args::builtin_commands;
use super::generated;
use crate::engine::{Host, HostConfig};
use crate::exit::Failure;
use crate::output;
use crate::scripts::{Command as ScriptCommand, Origin, Script};
use clap::ArgMatches;
use std::path::PathBuf;

/// `run FILE.rhai ARGS...`: an admin's script with the full host API.
pub fn run_file(config: HostConfig, matches: &ArgMatches) -> Result<(), Failure> {
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
    host.context()
        .set_command_name(&format!("run {}", path.display()));
    let result = host.run_script(&script, args);
    host.finish();
    result
}

/// `commands`: every command, with the script it comes from, and the built-ins.
pub fn print_commands(commands: &[ScriptCommand], json: bool) -> Result<(), Failure> {
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
        list.extend(
            builtin_commands()
                .iter()
                .filter(|b| !b.is_hide_set())
                .map(|b| {
                    serde_json::json!({
                        "name": b.get_name(),
                        "about": b.get_about().map(|a| a.to_string()).unwrap_or_default(),
                        "source": "built-in",
                        "bundled": true,
                        "overrides_bundled": false,
                    })
                }),
        );
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
    for builtin in builtin_commands().into_iter().filter(|b| !b.is_hide_set()) {
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

/// `api`: the host API with each function's documentation.
pub fn print_api(host: &Host) -> Result<(), Failure> {
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

/// `completions SHELL`: the completion script, admin commands included.
pub fn completions(commands: &[ScriptCommand], sub: &ArgMatches) -> Result<(), Failure> {
    let shell = sub
        .get_one::<String>("shell")
        .map_or("bash", String::as_str);
    let mut out = output::Stdout::new();
    out.write_bytes(&generated::completion_script(commands, shell));
    out.flush();
    Ok(())
}

/// `complete OPTION PREFIX --command C`: VM uuids or names starting with PREFIX, one per line,
/// for the shells' completion. The registered VMs, from the database; for `register-vm` and
/// `adopt`, or when nothing is registered, the host's VMs that are not registered (one xe call).
/// Names holding control characters cannot be typed and are not offered. Never fails.
pub fn complete(config: HostConfig, sub: &ArgMatches) -> Result<(), Failure> {
    let want_names = sub
        .get_one::<String>("option")
        .is_some_and(|o| o == "vm-name");
    let prefix = sub.get_one::<String>("prefix").cloned().unwrap_or_default();
    let command = sub
        .get_one::<String>("command")
        .cloned()
        .unwrap_or_default();
    let has_db = config.db_path.exists();
    let host = Host::new(config);
    let registered: Vec<(String, Option<String>)> = if has_db {
        host.context()
            .store()
            .ok()
            .and_then(|s| s.vms(Default::default()).ok())
            .map(|vms| vms.into_iter().map(|v| (v.vm_uuid, v.vm_name)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let unregistered_wanted = matches!(command.as_str(), "register-vm" | "adopt");
    let vms: Vec<(String, Option<String>)> = if unregistered_wanted || registered.is_empty() {
        host.context()
            .xe()
            .vms()
            .map(|listing| listing.vms)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !registered.iter().any(|(u, _)| *u == v.uuid))
            .map(|v| (v.uuid, Some(v.name)))
            .collect()
    } else {
        registered
    };
    let mut words: Vec<String> = vms
        .into_iter()
        .filter_map(|(uuid, name)| if want_names { name } else { Some(uuid) })
        .filter(|w| !w.is_empty() && !w.chars().any(char::is_control))
        .filter(|w| w.starts_with(&prefix))
        .collect();
    words.sort();
    words.dedup();
    let mut out = output::Stdout::new();
    for word in words {
        out.write(&word);
        out.write("\n");
    }
    out.flush();
    Ok(())
}

/// `man [COMMAND] [--dir DIR]`: one man page (roff) on stdout, or every page written to DIR.
pub fn man(commands: &[ScriptCommand], sub: &ArgMatches) -> Result<(), Failure> {
    if let Some(dir) = sub.get_one::<PathBuf>("dir") {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
        for (file, roff) in generated::man_pages(commands) {
            let path = dir.join(&file);
            std::fs::write(&path, roff)
                .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
            output::stdout_line(&path.display().to_string());
        }
        return Ok(());
    }
    let command = sub.get_one::<String>("command").map(String::as_str);
    let roff = generated::man_page(commands, command).ok_or_else(|| {
        Failure::usage(format!(
            "no man page for '{}' (see 'vgpu-admin commands')",
            command.unwrap_or_default()
        ))
    })?;
    let mut out = output::Stdout::new();
    out.write_bytes(&roff);
    out.flush();
    Ok(())
}

/// `install` / `uninstall` under `--root`. The man pages and completions installed are those
/// of the bundled commands (an admin's own commands are not part of an installation).
pub fn install(name: &str, sub: &ArgMatches) -> Result<(), Failure> {
    let root = sub
        .get_one::<PathBuf>("root")
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"));
    let relocated = name == "install" && sub.get_flag("relocated");
    let layout = crate::install::Layout::new(root, relocated);
    let (bundled, _) = crate::scripts::Catalog::new(None).commands();
    let mut docs: Vec<(PathBuf, Vec<u8>)> = generated::man_pages(&bundled)
        .into_iter()
        .map(|(file, roff)| (PathBuf::from("usr/share/man/man1").join(file), roff))
        .collect();
    for (shell, path) in generated::SHELLS {
        docs.push((
            PathBuf::from(path),
            generated::completion_script(&bundled, shell),
        ));
    }
    if name == "install" {
        let parts = crate::install::Parts {
            files: !sub.get_flag("database-only"),
            database: !sub.get_flag("files-only"),
        };
        crate::install::install(&layout, &docs, parts)
    } else {
        crate::install::uninstall(&layout, &docs, sub.get_flag("purge"))
    }
}

/// `hook NAME -vmuuid U -reason R`: the exit status is the hook's answer to xenopsd.
pub fn hook(config: HostConfig, sub: &ArgMatches) -> Result<(), Failure> {
    let name = sub.get_one::<String>("name").cloned().unwrap_or_default();
    let args: Vec<String> = sub
        .get_many::<String>("args")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    match crate::hook::run(config, &name, &args) {
        crate::exit::HookExit::Go => Ok(()),
        exit => Err(Failure::new(crate::exit::Status::Hook(exit), "")),
    }
}
