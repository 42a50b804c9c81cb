//! What Tab completes in the shell: command names, the options of the command being typed,
//! option values (pools, priorities, choices), VM uuids and names, and host API names after
//! `vms::`, `pools::`, `xe::`, `vgpu::`, `ui::`, `settings::`. Everything is in memory: no xe
//! call and no query per keystroke.

use crate::scripts::{OptionSpec, ValueKind};
use std::cell::RefCell;

/// A completion candidate: what is shown, and what replaces the word being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Shown in the list.
    pub display: String,
    /// Inserted.
    pub replacement: String,
}

/// A command the shell knows: its name, options and one-line description.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    /// `list-vms`.
    pub name: String,
    /// Its declared options.
    pub options: Vec<OptionSpec>,
    /// Its description.
    pub about: String,
    /// Groups of options that exclude each other: once one option of a group is given, the
    /// options of the other groups are not offered (`--vm-uuid` or a selection, `--all` or
    /// the other selection options).
    pub exclusive: Vec<(Vec<String>, Vec<String>)>,
}

impl From<&crate::scripts::Command> for CommandInfo {
    fn from(c: &crate::scripts::Command) -> Self {
        CommandInfo {
            name: c.name.clone(),
            options: c
                .spec
                .options
                .iter()
                .filter(|o| !o.positional)
                .cloned()
                .collect(),
            about: c.spec.about.clone(),
            exclusive: exclusive_options(&c.spec),
        }
    }
}

/// What excludes what in a command that takes a selection: one VM (`--vm-uuid`, `--vm-name`)
/// or a selection; `--all` or the other selection options.
fn exclusive_options(spec: &crate::scripts::spec::CommandSpec) -> Vec<(Vec<String>, Vec<String>)> {
    if spec.selection.is_empty() {
        return Vec::new();
    }
    let one_vm: Vec<String> = ["vm-uuid", "vm-name"]
        .iter()
        .filter(|o| spec.options.iter().any(|d| d.name == **o))
        .map(|o| o.to_string())
        .collect();
    let narrowing: Vec<String> = spec
        .selection
        .iter()
        .filter(|o| *o != "all")
        .cloned()
        .collect();
    vec![
        (one_vm.clone(), spec.selection.clone()),
        (spec.selection.clone(), one_vm),
        (vec!["all".to_string()], narrowing.clone()),
        (narrowing, vec!["all".to_string()]),
    ]
}

/// The global flags, usable on any command line (`--json`, `--dry-run`, `--yes`).
fn global_flags() -> impl Iterator<Item = String> {
    crate::options::GLOBAL_OPTIONS
        .iter()
        .filter(|o| o.takes == crate::options::Takes::Flag)
        .map(|o| format!("--{}", o.name))
}

/// Words the shell itself understands.
pub const SHELL_WORDS: &[&str] = &["help", "exit", "quit"];

/// Everything completion needs, loaded once (VMs refreshed after each command).
pub struct Completions {
    commands: Vec<CommandInfo>,
    api: Vec<String>,
    /// Registered VMs: (uuid, name).
    registered: RefCell<Vec<(String, Option<String>)>>,
    /// The host's VMs, from one xe call made the first time a VM is completed.
    host: RefCell<Option<Vec<(String, String)>>>,
    host_loader: Box<dyn Fn() -> Vec<(String, String)>>,
}

fn candidate(word: &str, suffix: &str) -> Candidate {
    Candidate {
        display: word.to_string(),
        replacement: format!("{word}{suffix}"),
    }
}

impl Completions {
    /// Completion over `commands` and the `api` names (`vms::list`...). `host_loader` lists
    /// the host's VMs (uuid, name) and is called at most once.
    pub fn new(
        commands: Vec<CommandInfo>,
        api: Vec<String>,
        host_loader: Box<dyn Fn() -> Vec<(String, String)>>,
    ) -> Self {
        Completions {
            commands,
            api,
            registered: RefCell::new(Vec::new()),
            host: RefCell::new(None),
            host_loader,
        }
    }

    /// Replaces the list of registered VMs (uuid, name).
    pub fn set_registered(&self, vms: Vec<(String, Option<String>)>) {
        *self.registered.borrow_mut() = vms;
    }

    /// The commands known.
    pub fn commands(&self) -> &[CommandInfo] {
        &self.commands
    }

    /// The command named `name`.
    pub fn command(&self, name: &str) -> Option<&CommandInfo> {
        self.commands.iter().find(|c| c.name == name)
    }

    fn host_vms(&self) -> Vec<(String, String)> {
        if self.host.borrow().is_none() {
            let loaded = (self.host_loader)();
            *self.host.borrow_mut() = Some(loaded);
        }
        self.host.borrow().clone().unwrap_or_default()
    }

    fn vm_uuids(&self, prefix: &str) -> Vec<Candidate> {
        let prefix = prefix.to_ascii_lowercase();
        let mut out: Vec<String> = self
            .registered
            .borrow()
            .iter()
            .map(|(u, _)| u.clone())
            .filter(|u| u.starts_with(&prefix))
            .collect();
        out.extend(
            self.host_vms()
                .into_iter()
                .map(|(u, _)| u)
                .filter(|u| u.starts_with(&prefix)),
        );
        out.sort();
        out.dedup();
        out.iter().map(|u| candidate(u, " ")).collect()
    }

    fn vm_names(&self, prefix: &str) -> Vec<Candidate> {
        let bare = prefix.trim_start_matches(['\'', '"']);
        let mut names: Vec<String> = self
            .registered
            .borrow()
            .iter()
            .filter_map(|(_, n)| n.clone())
            .collect();
        names.extend(self.host_vms().into_iter().map(|(_, n)| n));
        names.retain(|n| !n.is_empty() && n.starts_with(bare));
        names.sort();
        names.dedup();
        names
            .iter()
            .map(|n| Candidate {
                display: n.clone(),
                replacement: format!("{} ", super::words::quote(n)),
            })
            .collect()
    }

    fn values(&self, kind: &ValueKind, prefix: &str) -> Vec<Candidate> {
        match kind {
            ValueKind::Uuid => self.vm_uuids(prefix),
            ValueKind::Name => self.vm_names(prefix),
            other => other
                .choices()
                .into_iter()
                .filter(|c| c.to_lowercase().starts_with(&prefix.to_lowercase()))
                .map(|c| candidate(&c, " "))
                .collect(),
        }
    }

    fn api_names(&self, prefix: &str) -> Vec<Candidate> {
        let mut names: Vec<&String> = self.api.iter().filter(|n| n.starts_with(prefix)).collect();
        names.dedup();
        names.into_iter().map(|n| candidate(n, "(")).collect()
    }

    /// The start of the word to replace at `pos` in `line`, and the candidates for it.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<Candidate>) {
        let pos = pos.min(line.len());
        let before = &line[..pos];
        let start = before.rfind([' ', '\t', '(', ',']).map_or(0, |i| i + 1);
        let current = &before[start..];
        let previous: Vec<&str> = before[..start].split_whitespace().collect();

        if current.contains("::") {
            return (start, self.api_names(current));
        }
        let Some(first) = previous.first() else {
            // The first word: a command, a shell word, or a host API module.
            let mut out: Vec<Candidate> = self
                .commands
                .iter()
                .map(|c| c.name.as_str())
                .chain(SHELL_WORDS.iter().copied())
                .filter(|n| n.starts_with(current))
                .map(|n| candidate(n, " "))
                .collect();
            let mut modules: Vec<&str> = self
                .api
                .iter()
                .filter_map(|n| n.split_once("::").map(|(m, _)| m))
                .filter(|m| m.starts_with(current))
                .collect();
            modules.dedup();
            out.extend(
                modules
                    .into_iter()
                    .map(|m| candidate(&format!("{m}::"), "")),
            );
            out.sort_by(|a, b| a.display.cmp(&b.display));
            return (start, out);
        };
        if *first == "help" {
            let out = self
                .commands
                .iter()
                .filter(|c| c.name.starts_with(current))
                .map(|c| candidate(&c.name, " "))
                .collect();
            return (start, out);
        }
        let Some(command) = self.command(first) else {
            return (start, Vec::new());
        };
        // `--option=value`: complete the value after the `=`.
        if let Some((name, value)) = current.strip_prefix("--").and_then(|c| c.split_once('=')) {
            let at = start + 2 + name.len() + 1;
            let kind = command
                .options
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.kind.as_ref());
            return (at, kind.map_or_else(Vec::new, |k| self.values(k, value)));
        }
        // `--option value`: complete the value.
        if let Some(name) = previous.last().and_then(|w| w.strip_prefix("--")) {
            if let Some(kind) = command
                .options
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.kind.as_ref())
            {
                return (start, self.values(kind, current));
            }
        }
        // An option: the ones not given yet, then the global flags.
        let used: Vec<&str> = previous
            .iter()
            .filter_map(|w| w.strip_prefix("--"))
            .map(|w| w.split('=').next().unwrap_or(w))
            .collect();
        let excluded: Vec<&str> = command
            .exclusive
            .iter()
            .filter(|(given, _)| given.iter().any(|g| used.contains(&g.as_str())))
            .flat_map(|(_, others)| others.iter().map(String::as_str))
            .collect();
        let mut out: Vec<Candidate> = command
            .options
            .iter()
            .filter(|o| !used.contains(&o.name.as_str()) && !excluded.contains(&o.name.as_str()))
            .map(|o| {
                let word = format!("--{}", o.name);
                candidate(&word, if o.kind.is_some() { "=" } else { " " })
            })
            .filter(|c| c.display.starts_with(current))
            .collect();
        out.extend(
            global_flags()
                .filter(|f| f.starts_with(current) && !previous.contains(&f.as_str()))
                .map(|f| candidate(&f, " ")),
        );
        (start, out)
    }

    /// A hint for a line that is just a command name: its options, greyed by the shell.
    pub fn hint(&self, line: &str, pos: usize) -> Option<String> {
        if pos != line.len() {
            return None;
        }
        let name = line.trim_end();
        if name.contains(char::is_whitespace) || name.is_empty() {
            return None;
        }
        let command = self.command(name)?;
        if command.options.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for o in &command.options {
            let text = match &o.kind {
                Some(k) => format!("--{} <{}>", o.name, k.placeholder()),
                None => format!("--{}", o.name),
            };
            parts.push(if o.required {
                text
            } else {
                format!("[{text}]")
            });
        }
        let lead = if line.ends_with(' ') { "" } else { " " };
        Some(format!("{lead}{}", parts.join(" ")))
    }
}
