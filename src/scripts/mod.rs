//! Where scripts come from: the ones bundled in the binary, and the admin's directory
//! (`--scripts DIR`, env `VGPU_SCRIPTS`, default `/etc/vgpu/scripts`), which is searched first.
//!
//! Paths are relative: `commands/<name>.rhai`, `hooks/<name>.rhai`, `stdlib/<module>.rhai`.

pub mod spec;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use spec::{CommandSpec, OptionSpec, OptionValue, ValueKind};

/// The default admin scripts directory.
pub const DEFAULT_SCRIPTS_DIR: &str = "/etc/vgpu/scripts";

/// The scripts compiled into the binary: (relative path, text).
const BUNDLED: &[(&str, &str)] = &[
    (
        "commands/list-pools.rhai",
        include_str!("../../scripts/commands/list-pools.rhai"),
    ),
    (
        "commands/list-vms.rhai",
        include_str!("../../scripts/commands/list-vms.rhai"),
    ),
    (
        "commands/show-pool.rhai",
        include_str!("../../scripts/commands/show-pool.rhai"),
    ),
    (
        "commands/show-vm.rhai",
        include_str!("../../scripts/commands/show-vm.rhai"),
    ),
    (
        "commands/status.rhai",
        include_str!("../../scripts/commands/status.rhai"),
    ),
    (
        "stdlib/format.rhai",
        include_str!("../../stdlib/format.rhai"),
    ),
];

/// Where a script was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    Bundled,
    /// A file in the admin's directory.
    Admin(PathBuf),
}

/// A script's text and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    /// The relative path (`commands/list-vms.rhai`).
    pub rel: String,
    /// Where it was found.
    pub origin: Origin,
    /// Its source text.
    pub text: Cow<'static, str>,
}

impl Script {
    /// The name used in error messages: the file's path, or `bundled:<rel>`.
    pub fn source_name(&self) -> String {
        match &self.origin {
            Origin::Bundled => format!("bundled:{}", self.rel),
            Origin::Admin(path) => path.display().to_string(),
        }
    }
}

/// A command known to the host: its name, script and declared options.
#[derive(Debug, Clone)]
pub struct Command {
    /// The command name (`list-vms`).
    pub name: String,
    /// Its script.
    pub script: Script,
    /// What its header declares.
    pub spec: CommandSpec,
    /// True when an admin script replaces a bundled one of the same name.
    pub overrides_bundled: bool,
}

/// Something wrong with a script file.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The command header is malformed.
    #[error("command script {source_name} has a bad header, {error}")]
    Header {
        /// The script's source name.
        source_name: String,
        /// What is wrong.
        error: spec::SpecError,
    },
}

/// The bundled scripts plus the admin's directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    admin_dir: Option<PathBuf>,
}

impl Catalog {
    /// A catalogue searching `admin_dir` (when given) before the bundled scripts.
    pub fn new(admin_dir: Option<PathBuf>) -> Self {
        Catalog { admin_dir }
    }

    /// The admin directory, if any.
    pub fn admin_dir(&self) -> Option<&Path> {
        self.admin_dir.as_deref()
    }

    /// Finds `rel` (e.g. `stdlib/format.rhai`): the admin's copy first, then the bundled one.
    pub fn find(&self, rel: &str) -> Result<Option<Script>, ScriptError> {
        if let Some(path) = self.admin_dir.as_ref().map(|d| d.join(rel)) {
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|source| ScriptError::Read {
                    path: path.clone(),
                    source,
                })?;
                return Ok(Some(Script {
                    rel: rel.to_string(),
                    origin: Origin::Admin(path),
                    text: Cow::Owned(text),
                }));
            }
        }
        Ok(bundled(rel).map(|text| Script {
            rel: rel.to_string(),
            origin: Origin::Bundled,
            text: Cow::Borrowed(text),
        }))
    }

    /// Every command, bundled and the admin's, sorted by name; an admin script replaces the
    /// bundled command of the same name.
    pub fn commands(&self) -> Result<Vec<Command>, ScriptError> {
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        for (rel, _) in BUNDLED {
            if let Some(name) = command_name(rel) {
                names.insert(name.to_string(), ());
            }
        }
        if let Some(dir) = self.admin_dir.as_ref().map(|d| d.join("commands")) {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let file = entry.file_name();
                    let file = file.to_string_lossy();
                    if let Some(name) = file.strip_suffix(".rhai") {
                        if is_command_name(name) {
                            names.insert(name.to_string(), ());
                        }
                    }
                }
            }
        }
        let mut commands = Vec::with_capacity(names.len());
        for name in names.into_keys() {
            if let Some(command) = self.command(&name)? {
                commands.push(command);
            }
        }
        Ok(commands)
    }

    /// One command by name, with its header parsed.
    pub fn command(&self, name: &str) -> Result<Option<Command>, ScriptError> {
        if !is_command_name(name) {
            return Ok(None);
        }
        let rel = format!("commands/{name}.rhai");
        let Some(script) = self.find(&rel)? else {
            return Ok(None);
        };
        let spec = spec::parse(&script.text).map_err(|error| ScriptError::Header {
            source_name: script.source_name(),
            error,
        })?;
        let overrides_bundled =
            matches!(script.origin, Origin::Admin(_)) && bundled(&rel).is_some();
        Ok(Some(Command {
            name: name.to_string(),
            script,
            spec,
            overrides_bundled,
        }))
    }
}

/// The bundled text of `rel`, if there is one.
pub fn bundled(rel: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|(r, _)| *r == rel).map(|(_, t)| *t)
}

fn command_name(rel: &str) -> Option<&str> {
    rel.strip_prefix("commands/")?.strip_suffix(".rhai")
}

/// Command names are lowercase words joined by dashes, like `list-vms`.
pub fn is_command_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
