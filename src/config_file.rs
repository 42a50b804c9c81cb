//! The whole configuration as a file (TOML): `vgpu-admin export` writes it, `plan FILE` and
//! `apply FILE` read it. One `[[vm]]` table per VM, by uuid:
//!
//! ```toml
//! [[vm]]
//! uuid = "7d5a8c3e-92f1-4b6a-b0c2-000000000001"
//! name = "user-01"          # for the reader: the name-label is xapi's, never written
//! pool = "A"
//! priority = "high"         # or 0, 1, 2
//! vm_id = 1
//! weight = 50               # the GPU mediator's controls: left as they are when absent
//! max_jobs_per_sec = 0
//! max_queue_depth = 0
//! quarantined = false
//! ```
//!
//! A file is read whole and checked whole: every error is reported with its line, and a file
//! with any error is refused before anything is touched.

use crate::model::{Limit, Pool, Priority, VmId, VmUuid, Weight};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use toml::Spanned;

/// The largest file read (a pool of 100,000 VMs is about 25 MB).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One VM of a file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The line of its `[[vm]]`.
    pub line: usize,
    /// Its uuid.
    pub uuid: String,
    /// The name written with it (not applied).
    pub name: Option<String>,
    /// Its pool.
    pub pool: String,
    /// Its priority (word).
    pub priority: String,
    /// Its vm_id.
    pub vm_id: i64,
    /// The mediator's controls; `None`: left as they are.
    pub weight: Option<i64>,
    /// Jobs per second (0: unlimited).
    pub max_jobs_per_sec: Option<i64>,
    /// Queued jobs (0: unlimited).
    pub max_queue_depth: Option<i64>,
    /// Quarantined.
    pub quarantined: Option<bool>,
}

/// A VM as written to a file (the registered row's values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exported {
    /// Its uuid.
    pub uuid: String,
    /// Its stored name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its pool.
    pub pool: String,
    /// Its priority word.
    pub priority: String,
    /// Its vm_id.
    pub vm_id: i64,
    /// The mediator's controls.
    pub weight: i64,
    /// Jobs per second.
    pub max_jobs_per_sec: i64,
    /// Queued jobs.
    pub max_queue_depth: i64,
    /// Quarantined.
    pub quarantined: bool,
}

#[derive(Serialize)]
struct ExportFile<'a> {
    vm: &'a [Exported],
}

/// The file for these VMs, with a heading comment.
pub fn render(vms: &[Exported], heading: &str) -> Result<String, toml::ser::Error> {
    let body = toml::to_string(&ExportFile { vm: vms })?;
    let mut text = String::new();
    for line in heading.lines() {
        text.push_str(&format!("# {line}\n"));
    }
    text.push('\n');
    text.push_str(&body);
    Ok(text)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    vm: Vec<Spanned<RawVm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    uuid: Option<Spanned<toml::Value>>,
    name: Option<Spanned<toml::Value>>,
    pool: Option<Spanned<toml::Value>>,
    priority: Option<Spanned<toml::Value>>,
    vm_id: Option<Spanned<toml::Value>>,
    weight: Option<Spanned<toml::Value>>,
    max_jobs_per_sec: Option<Spanned<toml::Value>>,
    max_queue_depth: Option<Spanned<toml::Value>>,
    quarantined: Option<Spanned<toml::Value>>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// A value as the model's parsers take it: strings as they are, numbers and booleans written out.
fn as_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The TOML type a field must have.
#[derive(Clone, Copy)]
enum Kind {
    /// A string (`pool = "A"`).
    Text,
    /// A whole number, without quotes (`vm_id = 7`).
    Number,
    /// Either (`priority = "high"` or `priority = 2`).
    TextOrNumber,
}

/// The text of `value` when it has the type `kind` asks for.
fn typed(value: &toml::Value, name: &str, kind: Kind) -> Result<String, String> {
    match (kind, value) {
        (Kind::Text | Kind::TextOrNumber, toml::Value::String(_))
        | (Kind::Number | Kind::TextOrNumber, toml::Value::Integer(_)) => Ok(as_text(value)),
        (Kind::Text, other) => Err(format!(
            "invalid {name} {other}: expected a string in quotes"
        )),
        (_, other) => Err(format!(
            "invalid {name} {other}: expected a whole number, without quotes"
        )),
    }
}

/// Reads a file's text — TOML, or JSON as `vgpu-admin --json export` prints it (an array of VM
/// objects) — : its VMs, or every error found (`line N: ...`), in line order.
pub fn parse(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    // JSON's array of objects begins `[ {` (or is `[]`); a TOML table header `[[vm]]`, `[vm]`.
    let json = text
        .trim_start()
        .strip_prefix('[')
        .map(str::trim_start)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('{') || rest.starts_with(']'));
    if json {
        parse_json(text)
    } else {
        parse_toml(text)
    }
}

/// The JSON form: each object is checked as the `[[vm]]` table it stands for; an error names
/// the line where its VM's object begins.
fn parse_json(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    let shape = |line: usize| {
        vec![format!(
            "line {line}: a JSON configuration is an array of VM objects, as 'vgpu-admin --json export' prints it"
        )]
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| vec![format!("line {}: {e}", e.line().max(1))])?;
    let serde_json::Value::Array(vms) = value else {
        return Err(shape(1));
    };
    let starts = object_lines(text);
    let mut tables = Vec::with_capacity(vms.len());
    for (i, vm) in vms.into_iter().enumerate() {
        let serde_json::Value::Object(fields) = vm else {
            return Err(shape(starts.get(i).copied().unwrap_or(1)));
        };
        let mut table = toml::Table::new();
        for (key, value) in fields {
            let value = match value {
                serde_json::Value::Null => continue, // as if not given
                serde_json::Value::String(s) => toml::Value::String(s),
                serde_json::Value::Bool(b) => toml::Value::Boolean(b),
                serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => toml::Value::Integer(i),
                    (None, Some(f)) if n.is_f64() => toml::Value::Float(f),
                    _ => toml::Value::String(n.to_string()),
                },
                other => toml::Value::String(other.to_string()),
            };
            table.insert(key, value);
        }
        tables.push(toml::Value::Table(table));
    }
    let mut file = toml::Table::new();
    file.insert("vm".into(), toml::Value::Array(tables));
    let generated = toml::to_string(&file).map_err(|e| vec![format!("line 1: {e}")])?;
    // A line of the generated TOML → the JSON line of the VM it belongs to.
    let headers: Vec<usize> = generated
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[vm]]")
        .map(|(i, _)| i + 1)
        .collect();
    let json_line = |line: usize| {
        let index = headers.iter().take_while(|h| **h <= line).count();
        index
            .checked_sub(1)
            .and_then(|i| starts.get(i).copied())
            .unwrap_or(1)
    };
    let relined = |message: &str| -> String {
        let mut out = String::new();
        let mut rest = message;
        while let Some(at) = rest.find("line ") {
            out.push_str(&rest[..at + 5]);
            rest = &rest[at + 5..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<usize>() {
                out.push_str(&json_line(n).to_string());
                rest = &rest[digits.len()..];
            }
        }
        out.push_str(rest);
        out
    };
    match parse_toml(&generated) {
        Ok(mut entries) => {
            for e in &mut entries {
                e.line = json_line(e.line);
            }
            Ok(entries)
        }
        Err(errors) => Err(errors.iter().map(|e| relined(e)).collect()),
    }
}

/// The line each element of a JSON document's top-level array begins on.
fn object_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped, mut expect) = (false, false, false);
    let mut starts = Vec::new();
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        // The first character after `[` or `,` of the top-level array begins an element.
        if depth == 1 && expect && !c.is_whitespace() {
            if c != ']' {
                starts.push(line);
            }
            expect = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                expect = depth == 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect = true,
            _ => {}
        }
    }
    starts
}

/// The TOML form (see the module documentation).
fn parse_toml(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        vec![format!("line {line}: {}", e.message())]
    })?;
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut entries = Vec::new();
    let mut uuids: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    for vm in &raw.vm {
        let line = line_of(text, vm.span().start);
        let vm = vm.get_ref();
        let mut bad = |at: Option<&Spanned<toml::Value>>, message: String| {
            errors.push((at.map_or(line, |v| line_of(text, v.span().start)), message));
        };
        // A field, of the TOML type it must have, read by the model's parser; `required`: the
        // VM has no configuration without it.
        macro_rules! field {
            ($name:ident, $kind:expr, $parse:expr, $required:expr) => {
                match &vm.$name {
                    None => {
                        if $required {
                            bad(None, format!("the VM has no {}", stringify!($name)));
                        }
                        None
                    }
                    Some(v) => match typed(v.get_ref(), stringify!($name), $kind)
                        .and_then(|text| $parse(&text).map_err(|e| e.to_string()))
                    {
                        Ok(x) => Some(x),
                        Err(e) => {
                            bad(Some(v), e);
                            None
                        }
                    },
                }
            };
        }
        let uuid = field!(uuid, Kind::Text, VmUuid::parse, true);
        let pool = field!(pool, Kind::Text, Pool::parse, true);
        let priority = field!(priority, Kind::TextOrNumber, Priority::parse, true);
        let vm_id = field!(vm_id, Kind::Number, VmId::parse, true);
        let weight = field!(weight, Kind::Number, Weight::parse, false);
        let rate = field!(max_jobs_per_sec, Kind::Number, Limit::parse, false);
        let depth = field!(max_queue_depth, Kind::Number, Limit::parse, false);
        let quarantined = match &vm.quarantined {
            None => None,
            Some(v) => match v.get_ref() {
                toml::Value::Boolean(b) => Some(*b),
                other => {
                    bad(
                        Some(v),
                        format!("invalid quarantined '{other}': expected true or false"),
                    );
                    None
                }
            },
        };
        let name = vm.name.as_ref().map(|n| as_text(n.get_ref()));
        if let Some(u) = &uuid {
            if let Some(first) = uuids.insert(u.to_string(), line) {
                bad(
                    vm.uuid.as_ref(),
                    format!("VM {u} is in the file twice (also line {first})"),
                );
            }
        }
        if let Some(id) = vm_id {
            if let Some(first) = ids.insert(id.get(), line) {
                bad(
                    vm.vm_id.as_ref(),
                    format!("vm_id {id} is given twice (also line {first})"),
                );
            }
        }
        if let (Some(uuid), Some(pool), Some(priority), Some(vm_id)) = (uuid, pool, priority, vm_id)
        {
            entries.push(Entry {
                line,
                uuid: uuid.to_string(),
                name,
                pool: pool.to_string(),
                priority: priority.to_string(),
                vm_id: vm_id.get(),
                weight: weight.map(Weight::get),
                max_jobs_per_sec: rate.map(Limit::get),
                max_queue_depth: depth.map(Limit::get),
                quarantined,
            });
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        errors.sort();
        Err(errors
            .into_iter()
            .map(|(line, message)| format!("line {line}: {message}"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "7d5a8c3e-92f1-4b6a-b0c2-000000000001";
    const U2: &str = "7d5a8c3e-92f1-4b6a-b0c2-000000000002";

    #[test]
    fn an_exported_file_reads_back_as_written() {
        let vms = vec![Exported {
            uuid: U1.into(),
            name: Some("db, \"main\" $(x)\n".into()),
            pool: "B".into(),
            priority: "high".into(),
            vm_id: 7,
            weight: 80,
            max_jobs_per_sec: 50,
            max_queue_depth: 0,
            quarantined: true,
        }];
        let text = render(&vms, "exported\nby a test").unwrap();
        assert!(
            text.starts_with("# exported\n# by a test\n\n[[vm]]\n"),
            "{text}"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].uuid, U1);
        assert_eq!(back[0].name.as_deref(), Some("db, \"main\" $(x)\n"));
        assert_eq!(
            (
                back[0].pool.as_str(),
                back[0].priority.as_str(),
                back[0].vm_id
            ),
            ("B", "high", 7)
        );
        assert_eq!(back[0].weight, Some(80));
        assert_eq!(back[0].quarantined, Some(true));
    }

    #[test]
    fn a_json_file_reads_as_its_toml_would_and_errors_name_the_vms_line() {
        let json = format!(
            "[\n  {{\n    \"uuid\": \"{U1}\",\n    \"name\": \"a \\\"b\\\" [c]\",\n    \"pool\": \"B\",\n    \"priority\": \"high\",\n    \"vm_id\": 7,\n    \"weight\": 80,\n    \"quarantined\": true\n  }},\n  {{ \"uuid\": \"{U2}\", \"pool\": \"A\", \"priority\": 0, \"vm_id\": 8, \"weight\": null }}\n]\n"
        );
        let entries = parse(&json).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].line, entries[1].line), (2, 11));
        assert_eq!(entries[0].name.as_deref(), Some("a \"b\" [c]"));
        assert_eq!(
            (entries[0].weight, entries[0].quarantined),
            (Some(80), Some(true))
        );
        assert_eq!(
            (entries[1].priority.as_str(), entries[1].weight),
            ("low", None)
        );

        let bad = format!(
            "[\n  {{ \"uuid\": \"{U1}\", \"pool\": \"C\", \"priority\": 0, \"vm_id\": 7 }},\n  {{ \"uuid\": \"{U2}\", \"pool\": \"A\", \"priority\": 0, \"vm_id\": 7.5, \"colour\": 1 }},\n  {{ \"uuid\": \"{U2}\", \"pool\": \"A\", \"priority\": 0, \"vm_id\": 7 }}\n]"
        );
        let errors = parse(&bad).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}"); // the unknown key stops the reading
        assert!(
            errors[0].starts_with("line 3: unknown field `colour`"),
            "{errors:?}"
        );
        let bad = bad.replace(", \"colour\": 1", "");
        assert_eq!(
            parse(&bad).unwrap_err(),
            vec![
                "line 2: invalid pool 'C': expected A or B",
                "line 3: invalid vm_id 7.5: expected a whole number, without quotes",
                &format!("line 4: VM {U2} is in the file twice (also line 3)"),
                "line 4: vm_id 7 is given twice (also line 2)",
            ]
        );
        assert_eq!(parse("[{\"uuid\": \"x\"},\n2]").unwrap_err()[0], "line 2: a JSON configuration is an array of VM objects, as 'vgpu-admin --json export' prints it");
        assert!(parse("[{\"uuid\": }]").unwrap_err()[0].starts_with("line 1: "));
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = format!(
            "[[vm]]\nuuid = \"{U1}\"\npool = \"C\"\npriority = 2\nvm_id = 7\n\n\
             [[vm]]\nuuid = \"{U1}\"\npool = \"A\"\npriority = \"urgent\"\nvm_id = 7\nweight = 0\nmax_jobs_per_sec = \"5\"\n\n\
             [[vm]]\nuuid = \"{U2}\"\npool = \"A\"\n"
        );
        let errors = parse(&text).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "line 3: invalid pool 'C': expected A or B",
                &format!("line 8: VM {U1} is in the file twice (also line 1)"),
                "line 10: invalid priority 'urgent': expected low, medium or high (or 0, 1, 2)",
                "line 11: vm_id 7 is given twice (also line 1)",
                "line 12: invalid weight '0': expected a whole number from 1 to 100",
                "line 13: invalid max_jobs_per_sec \"5\": expected a whole number, without quotes",
                "line 15: the VM has no priority",
                "line 15: the VM has no vm_id",
            ]
        );
        let syntax = parse("[[vm]]\nuuid = \"x\"\npool = A\n").unwrap_err();
        assert_eq!(syntax.len(), 1);
        assert!(syntax[0].starts_with("line 3: "), "{syntax:?}");
        let unknown = parse(&format!("[[vm]]\nuuid = \"{U1}\"\ncolour = \"red\"\n")).unwrap_err();
        assert!(
            unknown[0].starts_with("line 3: unknown field `colour`"),
            "{unknown:?}"
        );
    }
}
