//! The header a command script declares itself with, read without running the script.
//!
//! ```text
//! //! List the registered VMs, optionally filtered by pool and priority.
//! //! More lines after the first become the long help.
//! //! @option --pool <pool>               Only VMs in this pool
//! //! @option --vm-uuid <uuid> required   The VM to show
//! //! @option --limit <int 1..300> default=10  Seconds
//! //! @flag   --no-restart                Apply at the next boot, stop nothing
//! //! @argument file <file> required      A positional argument (FILE), by its name
//! //! @one-of --vm-uuid --vm-name         Exactly one of these is given
//! //! @any-of --pool --priority           At least one of these is given
//! //! @changes                            It changes things: a missing database is created
//! //! @selects                            Many VMs at once: adds the selection options
//! //! @parallel                           Adds --parallel (VMs restarted at a time)
//! //! @example vgpu-admin list-vms --pool=A   An example for --help (the command line as typed)
//! ```
//!
//! Value kinds: `pool`, `priority`, `uuid`, `vm-id`, `vm-ids`, `name`, `glob`, `host`, `time`,
//! `weight`, `limit`,
//! `text`, `path`, `int LO..HI`, or a
//! list of choices like `<warn|enforce>`; `default=VALUE` (checked like a given value) is shown
//! in `--help` and handed to the script when the option is not given. The host checks every
//! value by its kind, and the groups, before the script runs; completion offers the values of a
//! closed kind.

use crate::model::{
    HostRef, Limit, ModelError, NameGlob, Pool, Priority, Since, VmId, VmIdSet, VmName, VmUuid,
    Weight,
};

/// The options `@selects` adds to a command (those it does not declare itself): a selection of
/// registered VMs instead of one, as `(header line after the tag)`.
pub const SELECTION: [&str; 5] = [
    "--vm-id <vm-ids>  The VMs with these vm_ids: 7, 1-7 or 1-7,9,12-14",
    "--pool <pool>  The VMs in this pool",
    "--priority <priority>  The VMs with this priority",
    "--name <glob>  The VMs whose name-label matches this pattern ('web-*': * any text, ? one character, [...] one of a set)",
    "--all  Every registered VM",
];

/// The option `@parallel` adds: how many VMs are stopped and started at a time.
pub const PARALLEL: &str =
    "--parallel <int 1..64> default=4  In a run over many VMs: how many are changed (and restarted) at a time";

/// What kind of value an option takes; the host validates it before the script runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// `A` or `B` (any case); the script gets `"A"`/`"B"`.
    Pool,
    /// `low|medium|high` or `0|1|2`; the script gets the word.
    Priority,
    /// A canonical VM uuid; the script gets it lowercase.
    Uuid,
    /// 1..=2147483647; the script gets an integer.
    VmId,
    /// A VM name-label (no control characters, at most 255 characters).
    Name,
    /// vm_ids and ranges (`1-7,9`); the script gets the text as given.
    VmIds,
    /// A name-label pattern (`web-*`); the script gets the text as given.
    Glob,
    /// A host of the pool: `this`, its uuid or its name-label.
    Host,
    /// A time (UTC): `YYYY-MM-DD[ HH:MM[:SS]]`; the script gets `YYYY-MM-DD HH:MM:SS`.
    Time,
    /// A scheduler weight, 1..100; the script gets an integer.
    Weight,
    /// A mediator limit, 0 (unlimited) to 4294967295; the script gets an integer.
    Limit,
    /// Any text without control characters.
    Text,
    /// An absolute file path (no control characters): what the host runs or reads is never
    /// looked up relative to where the admin happens to be.
    Path,
    /// A file the admin names (a configuration file to read or write), relative to the
    /// current directory or absolute; the script gets it absolute.
    File,
    /// A whole number from `min` to `max`; the script gets an integer.
    Int {
        /// The lowest allowed.
        min: i64,
        /// The highest allowed.
        max: i64,
    },
    /// One of these words (any case); the script gets the word as listed.
    Choice(Vec<String>),
}

/// A validated option value, ready to hand to a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// A string value.
    Text(String),
    /// An integer value (vm-id).
    Int(i64),
    /// A flag that was given.
    Flag,
}

impl ValueKind {
    fn parse(word: &str) -> Option<ValueKind> {
        Some(match word {
            "pool" => ValueKind::Pool,
            "priority" => ValueKind::Priority,
            "uuid" => ValueKind::Uuid,
            "vm-id" => ValueKind::VmId,
            "name" => ValueKind::Name,
            "vm-ids" => ValueKind::VmIds,
            "glob" => ValueKind::Glob,
            "host" => ValueKind::Host,
            "time" => ValueKind::Time,
            "weight" => ValueKind::Weight,
            "limit" => ValueKind::Limit,
            "text" => ValueKind::Text,
            "path" => ValueKind::Path,
            "file" => ValueKind::File,
            range if range.starts_with("int ") => {
                let (lo, hi) = range["int ".len()..].trim().split_once("..")?;
                let (min, max) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
                if min > max {
                    return None;
                }
                ValueKind::Int { min, max }
            }
            list if list.contains('|') => ValueKind::Choice(
                list.split('|')
                    .map(str::to_string)
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => return None,
        })
    }

    /// The placeholder shown in help (`<A|B>`, `<uuid>`...).
    pub fn placeholder(&self) -> String {
        match self {
            ValueKind::Pool => "A|B".into(),
            ValueKind::Priority => "low|medium|high".into(),
            ValueKind::Uuid => "uuid".into(),
            ValueKind::VmId => "id".into(),
            ValueKind::Name => "name".into(),
            ValueKind::VmIds => "ids".into(),
            ValueKind::Glob => "pattern".into(),
            ValueKind::Host => "host".into(),
            ValueKind::Time => "time".into(),
            ValueKind::Weight => "1..100".into(),
            ValueKind::Limit => "0..4294967295".into(),
            ValueKind::Text => "text".into(),
            ValueKind::Path => "path".into(),
            ValueKind::File => "FILE".into(),
            ValueKind::Int { min, max } => format!("{min}..{max}"),
            ValueKind::Choice(words) => words.join("|"),
        }
    }

    /// The values offered for completion, when the set is closed.
    pub fn choices(&self) -> Vec<String> {
        match self {
            ValueKind::Pool => Pool::ALL.iter().map(|p| p.to_string()).collect(),
            ValueKind::Priority => Priority::ALL.iter().map(|p| p.to_string()).collect(),
            ValueKind::Choice(words) => words.clone(),
            _ => Vec::new(),
        }
    }

    /// Validates `input` and normalises it for the script.
    pub fn validate(&self, option: &str, input: &str) -> Result<OptionValue, String> {
        let model =
            |r: Result<String, ModelError>| r.map(OptionValue::Text).map_err(|e| e.to_string());
        match self {
            ValueKind::Pool => model(Pool::parse(input).map(|p| p.to_string())),
            ValueKind::Priority => model(Priority::parse(input).map(|p| p.to_string())),
            ValueKind::Uuid => model(VmUuid::parse(input).map(|u| u.to_string())),
            ValueKind::Name => model(VmName::parse(input).map(|n| n.to_string())),
            ValueKind::VmIds => model(VmIdSet::parse(input).map(|_| input.to_string())),
            ValueKind::Glob => model(NameGlob::parse(input).map(|_| input.to_string())),
            ValueKind::Host => model(HostRef::parse(input).map(|h| h.to_string())),
            ValueKind::Time => model(Since::parse(input).map(|t| t.to_string())),
            ValueKind::Weight => Weight::parse(input)
                .map(|w| OptionValue::Int(w.get()))
                .map_err(|e| e.to_string()),
            ValueKind::Limit => Limit::parse(input)
                .map(|l| OptionValue::Int(l.get()))
                .map_err(|e| e.to_string()),
            ValueKind::VmId => VmId::parse(input)
                .map(|id| OptionValue::Int(id.get()))
                .map_err(|e| e.to_string()),
            ValueKind::Text => {
                if input.chars().any(char::is_control) {
                    Err(format!(
                        "invalid value '{}' for --{option}: control characters are not allowed",
                        crate::model::shown(input)
                    ))
                } else {
                    Ok(OptionValue::Text(input.to_string()))
                }
            }
            ValueKind::Int { min, max } => input
                .parse::<i64>()
                .ok()
                .filter(|n| (*min..=*max).contains(n) && input.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
                .map(OptionValue::Int)
                .ok_or_else(|| {
                    format!(
                        "invalid value '{}' for --{option}: expected a whole number from {min} to {max}",
                        crate::model::shown(input)
                    )
                }),
            ValueKind::Path => {
                if input.chars().any(char::is_control)
                    || !input.starts_with('/')
                    || input.len() > 4096
                {
                    Err(format!(
                        "invalid value '{}' for --{option}: expected an absolute path (starting with /)",
                        crate::model::shown(input)
                    ))
                } else {
                    Ok(OptionValue::Text(input.to_string()))
                }
            }
            ValueKind::File => {
                if input.is_empty() || input.chars().any(char::is_control) || input.len() > 4096 {
                    return Err(format!(
                        "invalid file name '{}' for {option}: expected a file's path (no control characters)",
                        crate::model::shown(input)
                    ));
                }
                let path = std::path::Path::new(input);
                let absolute = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map_err(|e| format!("cannot tell the current directory for {option}: {e}"))?
                        .join(path)
                };
                Ok(OptionValue::Text(absolute.to_string_lossy().into_owned()))
            }
            ValueKind::Choice(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(input))
                .map(|w| OptionValue::Text(w.clone()))
                .ok_or_else(|| {
                    format!(
                        "invalid value '{}' for --{option}: expected one of {}",
                        crate::model::shown(input),
                        words.join(", ")
                    )
                }),
        }
    }
}

/// How the options of a group go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRule {
    /// `@one-of`: exactly one of them.
    OneOf,
    /// `@any-of`: at least one of them.
    AnyOf,
}

/// A group of options the command needs together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The rule.
    pub rule: GroupRule,
    /// The option names, without dashes.
    pub options: Vec<String>,
}

/// One declared option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// The long name, without dashes (`vm-uuid`).
    pub name: String,
    /// `None` for a flag (no value).
    pub kind: Option<ValueKind>,
    /// Whether the command refuses to run without it.
    pub required: bool,
    /// The value used when it is not given (checked like a given one).
    pub default: Option<String>,
    /// One line of help.
    pub help: String,
    /// `@argument`: given by its place on the command line (`apply FILE`), not as `--name`.
    pub positional: bool,
}

impl OptionSpec {
    /// The key the script reads it under in `OPTS` (`vm-uuid` → `vm_uuid`).
    pub fn script_key(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// What a command script declares about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandSpec {
    /// The one-line description.
    pub about: String,
    /// Further description lines.
    pub long_about: Vec<String>,
    /// The options, in declaration order.
    pub options: Vec<OptionSpec>,
    /// The groups of options (`@one-of`, `@any-of`).
    pub groups: Vec<Group>,
    /// `@changes`: the command changes things, so a missing database is created for it (a
    /// command without it only reads, and a missing database is an error).
    pub changes: bool,
    /// `@example` lines: command lines shown under "Examples:" in `--help` and the man page.
    pub examples: Vec<String>,
    /// `@selects`: the selection options it got (names, without dashes; empty: one VM only).
    /// The script finds those given in `OPTS.selection`.
    pub selection: Vec<String>,
}

/// A header that cannot be understood; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SpecError {
    /// The header line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads the `//!` header at the top of a command script.
pub fn parse(source: &str) -> Result<CommandSpec, SpecError> {
    let mut spec = CommandSpec::default();
    // `@selects` and `@parallel`, applied once every option of the command is known.
    let (mut selects, mut parallel) = (false, false);
    for (index, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || (line.starts_with("//") && !line.starts_with("//!")) {
            continue;
        }
        let Some(text) = line.strip_prefix("//!") else {
            break; // the first line of code ends the header
        };
        let text = text.trim();
        let err = |message: String| SpecError {
            line: index + 1,
            message,
        };
        let option = if let Some(rest) = text.strip_prefix("@option") {
            Some(parse_option(rest, true).map_err(err)?)
        } else if let Some(rest) = text.strip_prefix("@argument") {
            let rest = format!("--{}", rest.trim());
            let mut option = parse_option(&rest, true).map_err(err)?;
            option.positional = true;
            Some(option)
        } else if let Some(rest) = text.strip_prefix("@flag") {
            Some(parse_option(rest, false).map_err(err)?)
        } else {
            None
        };
        let group = [("@one-of", GroupRule::OneOf), ("@any-of", GroupRule::AnyOf)]
            .into_iter()
            .find_map(|(tag, rule)| text.strip_prefix(tag).map(|rest| (rule, rest)));
        if let Some(option) = option {
            if spec.options.iter().any(|o| o.name == option.name) {
                return Err(err(format!("option --{} is declared twice", option.name)));
            }
            spec.options.push(option);
        } else if let Some((rule, rest)) = group {
            let options: Vec<String> = rest
                .split_whitespace()
                .map(|w| w.strip_prefix("--").unwrap_or(w).to_string())
                .collect();
            if options.len() < 2 {
                return Err(err("a group names two options or more".into()));
            }
            if let Some(unknown) = options
                .iter()
                .find(|o| !spec.options.iter().any(|d| d.name == **o))
            {
                return Err(err(format!(
                    "the group names --{unknown}, which is not declared above it"
                )));
            }
            spec.groups.push(Group { rule, options });
        } else if text == "@changes" {
            spec.changes = true;
        } else if text == "@selects" {
            selects = true;
        } else if text == "@parallel" {
            parallel = true;
        } else if let Some(example) = text.strip_prefix("@example") {
            let example = example.trim();
            if !example.starts_with("vgpu-admin ") {
                return Err(err(format!(
                    "an example is a command line starting with 'vgpu-admin ', not '{example}'"
                )));
            }
            spec.examples.push(example.to_string());
        } else if text.starts_with('@') {
            return Err(err(format!(
                "unknown header tag in '{text}': expected @option, @flag, @argument, @one-of, @any-of, @changes, @selects, @parallel or @example"
            )));
        } else if spec.about.is_empty() {
            spec.about = text.to_string();
        } else {
            spec.long_about.push(text.to_string());
        }
    }
    let lines = SELECTION
        .iter()
        .filter(|_| selects)
        .chain(Some(&PARALLEL).filter(|_| parallel));
    for line in lines {
        let option = parse_option(line, line.contains('<'))
            .map_err(|message| SpecError { line: 0, message })?;
        if spec.options.iter().any(|o| o.name == option.name) {
            continue; // the command's own option (set-pool's --pool is the new pool)
        }
        if option.name != "parallel" {
            spec.selection.push(option.name.clone());
        }
        spec.options.push(option);
    }
    Ok(spec)
}

fn parse_option(rest: &str, takes_value: bool) -> Result<OptionSpec, String> {
    let mut words = rest.split_whitespace().peekable();
    let name = words
        .next()
        .and_then(|w| w.strip_prefix("--"))
        .ok_or("expected --name after the tag")?
        .to_string();
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_name {
        return Err(format!(
            "option name '--{name}' must be lowercase letters, digits and dashes"
        ));
    }
    if crate::options::reserved(&name) {
        return Err(format!(
            "--{name} is a global option and cannot be redeclared"
        ));
    }
    let kind = if takes_value {
        let rest: String = words.clone().collect::<Vec<_>>().join(" ");
        let inner = rest
            .strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .map(|(inner, _)| inner.to_string())
            .ok_or_else(|| format!("expected a value kind like <uuid> after --{name}"))?;
        // The kind may hold spaces (`<int 1..100>`): skip its words.
        for _ in 0..inner.split_whitespace().count().max(1) {
            words.next();
        }
        Some(ValueKind::parse(&inner).ok_or_else(|| {
            format!(
                "unknown value kind <{inner}> for --{name}: expected pool, priority, uuid, \
                 vm-id, name, text, path, int LO..HI or a list like <a|b>"
            )
        })?)
    } else {
        None
    };
    let mut required = false;
    let mut default = None;
    while let Some(word) = words.peek().copied() {
        if word == "required" && takes_value {
            required = true;
        } else if let (Some(value), Some(kind)) = (word.strip_prefix("default="), &kind) {
            kind.validate(&name, value)
                .map_err(|e| format!("default of --{name}: {e}"))?;
            default = Some(value.to_string());
        } else {
            break;
        }
        words.next();
    }
    let help = words.collect::<Vec<_>>().join(" ");
    Ok(OptionSpec {
        name,
        kind,
        required,
        default,
        help,
        positional: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_about_options_and_flags() {
        let spec = parse(
            "// a plain comment\n//! Show one VM.\n//! It reads the database only.\n\
             //! @option --vm-uuid <uuid> required  The VM to show\n\
             //! @option --mode <warn|enforce> What to do\n//! @flag --no-restart Do not restart\n\
             let x = 1;\n//! @option --ignored <text> after code\n",
        )
        .unwrap();
        assert_eq!(spec.about, "Show one VM.");
        assert_eq!(spec.long_about, vec!["It reads the database only."]);
        assert_eq!(spec.options.len(), 3);
        assert!(spec.options[0].required);
        assert_eq!(spec.options[0].kind, Some(ValueKind::Uuid));
        assert_eq!(spec.options[0].help, "The VM to show");
        assert_eq!(
            spec.options[1].kind,
            Some(ValueKind::Choice(vec!["warn".into(), "enforce".into()]))
        );
        assert_eq!(spec.options[2].kind, None);
        assert_eq!(spec.options[2].script_key(), "no_restart");
    }

    #[test]
    fn rejects_bad_headers_with_line_numbers() {
        let err = parse("//! x\n//! @option --pool <colour>\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("<colour>"));
        assert!(parse("//! @option --db <text>\n").is_err());
        assert!(parse("//! @option --Pool <pool>\n").is_err());
        assert!(parse("//! @thing\n").is_err());
        assert!(parse("//! @option --a <text>\n//! @one-of --a --b\n").is_err());
        assert!(parse("//! @option --n <int 5..1>\n").is_err());
    }

    #[test]
    fn reads_ranges_defaults_and_groups() {
        let spec = parse(
            "//! x\n//! @option --limit <int 1..300> default=10 required  Seconds\n\
             //! @option --a <uuid>\n//! @option --b <name>\n//! @one-of --a --b\n",
        )
        .unwrap();
        assert_eq!(
            spec.options[0].kind,
            Some(ValueKind::Int { min: 1, max: 300 })
        );
        assert_eq!(spec.options[0].default.as_deref(), Some("10"));
        assert!(spec.options[0].required);
        assert_eq!(spec.options[0].help, "Seconds");
        assert_eq!(spec.groups[0].rule, GroupRule::OneOf);
        assert_eq!(
            ValueKind::Int { min: 1, max: 300 }
                .validate("limit", "0")
                .unwrap_err(),
            "invalid value '0' for --limit: expected a whole number from 1 to 300"
        );
        assert!(parse("//! @option --n <int 1..3> default=9\n").is_err());
    }

    #[test]
    fn validates_values_by_kind() {
        assert_eq!(
            ValueKind::Priority.validate("priority", "HIGH"),
            Ok(OptionValue::Text("high".into()))
        );
        assert_eq!(
            ValueKind::VmId.validate("vm-id", "42"),
            Ok(OptionValue::Int(42))
        );
        assert!(ValueKind::Pool.validate("pool", "C").is_err());
        let choice = ValueKind::Choice(vec!["warn".into(), "enforce".into()]);
        assert_eq!(
            choice.validate("mode", "WARN"),
            Ok(OptionValue::Text("warn".into()))
        );
        assert!(choice
            .validate("mode", "loud")
            .unwrap_err()
            .contains("warn, enforce"));
    }
}
