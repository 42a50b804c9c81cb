//! The global options, in one place: the command line is built from this table, and no command
//! script may declare an option of the same name.

/// What a global option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Nothing: a flag.
    Flag,
    /// A path or a program.
    Path,
    /// A number of seconds, 1 to 86,400.
    Seconds,
}

/// One global option.
#[derive(Debug, Clone, Copy)]
pub struct GlobalOption {
    /// Its long name (`db` for `--db`).
    pub name: &'static str,
    /// Its short form, if any.
    pub short: Option<char>,
    /// What it takes.
    pub takes: Takes,
    /// The placeholder of its value in help.
    pub value_name: &'static str,
    /// The environment variable that sets it too.
    pub env: Option<&'static str>,
    /// One line of help (without the default, which the command line adds).
    pub help: &'static str,
}

/// Every global option.
pub const GLOBAL_OPTIONS: &[GlobalOption] = &[
    GlobalOption {
        name: "db",
        short: None,
        takes: Takes::Path,
        value_name: "PATH",
        env: Some("VGPU_DB"),
        help: "Database file",
    },
    GlobalOption {
        name: "scripts",
        short: None,
        takes: Takes::Path,
        value_name: "DIR",
        env: Some("VGPU_SCRIPTS"),
        help: "Admin scripts directory (commands/, hooks/, stdlib/), searched before the bundled scripts",
    },
    GlobalOption {
        name: "json",
        short: None,
        takes: Takes::Flag,
        value_name: "",
        env: None,
        help: "Print one JSON document instead of text",
    },
    GlobalOption {
        name: "xe",
        short: None,
        takes: Takes::Path,
        value_name: "PATH",
        env: Some("VGPU_XE"),
        help: "The xe command",
    },
    GlobalOption {
        name: "inventory",
        short: None,
        takes: Takes::Path,
        value_name: "PATH",
        env: Some("VGPU_INVENTORY"),
        help: "The host's xensource-inventory, whose INSTALLATION_UUID names this host of the pool",
    },
    GlobalOption {
        name: "mediator",
        short: None,
        takes: Takes::Path,
        value_name: "PATH",
        env: Some("VGPU_MEDIATOR"),
        help: "The GPU mediator's admin socket",
    },
    GlobalOption {
        name: "xe-timeout",
        short: None,
        takes: Takes::Seconds,
        value_name: "SECONDS",
        env: Some("VGPU_XE_TIMEOUT"),
        help: "How long one xe call may take before it is stopped",
    },
    GlobalOption {
        name: "script-timeout",
        short: None,
        takes: Takes::Seconds,
        value_name: "SECONDS",
        env: Some("VGPU_SCRIPT_TIMEOUT"),
        help: "How long a script may compute, waits for xe and answers not counted",
    },
    GlobalOption {
        name: "dry-run",
        short: None,
        takes: Takes::Flag,
        value_name: "",
        env: None,
        help: "Print the xe calls and database changes a command would make; make none",
    },
    GlobalOption {
        name: "yes",
        short: Some('y'),
        takes: Takes::Flag,
        value_name: "",
        env: None,
        help: "Answer yes to confirmations",
    },
];

/// Option names no command script may declare: the global options, `help` and `version`.
pub fn reserved(name: &str) -> bool {
    name == "help" || name == "version" || GLOBAL_OPTIONS.iter().any(|o| o.name == name)
}

/// The option `--name`, when it is a global one.
pub fn global(name: &str) -> Option<&'static GlobalOption> {
    GLOBAL_OPTIONS.iter().find(|o| o.name == name)
}
