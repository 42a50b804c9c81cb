//! Parsing `xe` record output: `key ( RO): value` lines, padded, one blank-line-separated record
//! per object, maps printed as `k1: v1; k2: v2`.

use std::collections::BTreeMap;

/// One record: field name → raw value, in the order printed.
pub type Record = Vec<(String, String)>;

/// The access markers `xe` prints after a field name.
const MARKERS: [&str; 6] = ["( RO)", "( RW)", "(MRW)", "(MRO)", "(SRW)", "(SRO)"];

/// Splits a line into (field name, value) when it is a field line.
fn field_line(line: &str) -> Option<(String, String)> {
    for marker in MARKERS {
        if let Some(at) = line.find(marker) {
            let name = line[..at].trim();
            let rest = &line[at + marker.len()..];
            let colon = rest.find(':')?;
            if !rest[..colon].trim().is_empty() || name.is_empty() || name.contains(' ') {
                continue;
            }
            let value = rest[colon + 1..]
                .strip_prefix(' ')
                .unwrap_or(&rest[colon + 1..]);
            return Some((name.to_string(), value.to_string()));
        }
    }
    None
}

/// Parses record output into records. A line that is not a field line continues the value of
/// the field before it (a value that held a newline).
pub fn parse_records(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let mut current: Record = Vec::new();
    // Lines end at '\n' only: a '\r' belongs to the value (a name can end with one).
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        match field_line(line) {
            Some(field) => current.push(field),
            None => {
                if let Some(last) = current.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line);
                }
            }
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// Checks that `records` is exactly one well-formed record per uuid of `uuids` (a list read
/// from unambiguous `--minimal` output): each record has every field of `fields` once and no
/// other, and each uuid appears once. A name-label holding newlines that imitate fields or
/// records cannot pass: the real records are all still there, so any imitation adds a field or
/// a record. Returns why the check failed.
pub fn check_records(records: &[Record], uuids: &[String], fields: &[&str]) -> Result<(), String> {
    if records.len() != uuids.len() {
        return Err(format!("{} records for {} VMs", records.len(), uuids.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let well_formed = record.len() == fields.len()
            && fields
                .iter()
                .all(|f| record.iter().filter(|(name, _)| name == f).count() == 1);
        if !well_formed {
            return Err("a record with missing, repeated or unexpected fields".into());
        }
        let uuid = record
            .iter()
            .find(|(name, _)| name == "uuid")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !uuids.iter().any(|u| u == uuid) || !seen.insert(uuid) {
            return Err(format!(
                "a record for uuid '{}', which is not listed once",
                crate::model::shown(uuid)
            ));
        }
    }
    Ok(())
}

/// Parses a map value `k1: v1; k2: v2`. A `; ` splits entries only where a `key: ` follows, so
/// values holding `; ` survive when the next part does not look like a key.
pub fn parse_map(text: &str) -> BTreeMap<String, String> {
    parse_map_entries(text).into_iter().collect()
}

/// The entries of a map field as xe prints it, in order, repeated keys kept (see [`parse_map`]).
pub fn parse_map_entries(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return out;
    }
    let mut entries: Vec<String> = Vec::new();
    for part in text.split("; ") {
        if looks_like_entry(part) || entries.is_empty() {
            entries.push(part.to_string());
        } else if let Some(last) = entries.last_mut() {
            last.push_str("; ");
            last.push_str(part);
        }
    }
    for entry in entries {
        match entry.split_once(": ") {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => out.push((entry.trim_end_matches(':').to_string(), String::new())),
        };
    }
    out
}

fn looks_like_entry(part: &str) -> bool {
    let key = match part.split_once(':') {
        Some((k, _)) => k,
        None => return false,
    };
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses `--minimal` output: values joined by `,` with `\,` and `\\` escapes.
pub fn parse_minimal(text: &str) -> Vec<String> {
    let line = text.trim_end_matches('\n');
    if line.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "uuid ( RO)           : 7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8
     name-label ( RW): win10
    power-state ( RO): halted
       platform (MRW): device-model-args: -device vgpu-stub,pool_id=A,priority=high,vm_id=7; timeoffset: 0; device-model: qemu-upstream-compat


uuid ( RO)           : 11111111-2222-3333-4444-555555555555
     name-label ( RW): web: prod (RO) ; x
    power-state ( RO): running
       platform (MRW): 


";

    #[test]
    fn parses_padded_records_with_maps() {
        let records = parse_records(TWO);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0][0],
            ("uuid".into(), "7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8".into())
        );
        assert_eq!(
            records[1][1],
            ("name-label".into(), "web: prod (RO) ; x".into())
        );
        let platform = parse_map(&records[0][3].1);
        assert_eq!(
            platform.get("device-model-args").map(String::as_str),
            Some("-device vgpu-stub,pool_id=A,priority=high,vm_id=7")
        );
        assert_eq!(platform.get("timeoffset").map(String::as_str), Some("0"));
        assert!(parse_map(&records[1][3].1).is_empty());
    }

    #[test]
    fn map_values_with_semicolons_stay_whole() {
        let map = parse_map("device-model-args: -device a; -device b,x=1; timeoffset: 0");
        assert_eq!(map["device-model-args"], "-device a; -device b,x=1");
        assert_eq!(map["timeoffset"], "0");
    }

    #[test]
    fn a_name_imitating_another_record_fails_the_check() {
        let uuids = [
            "7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8".to_string(),
            "11111111-2222-3333-4444-555555555555".to_string(),
        ];
        let fields = ["uuid", "name-label", "power-state", "platform"];
        assert_eq!(check_records(&parse_records(TWO), &uuids, &fields), Ok(()));
        // VM 1's name ends its record early and starts a record claiming to be VM 2.
        let forged = TWO.replacen(
            "name-label ( RW): win10",
            "name-label ( RW): x\n power-state ( RO): halted\n platform (MRW): \n\n\nuuid ( RO): 11111111-2222-3333-4444-555555555555\n name-label ( RW): evil",
            1,
        );
        assert!(check_records(&parse_records(&forged), &uuids, &fields).is_err());
        // A repeated field within the VM's own record.
        let repeated = TWO.replacen(
            "name-label ( RW): win10",
            "name-label ( RW): win10\n power-state ( RO): running",
            1,
        );
        assert!(check_records(&parse_records(&repeated), &uuids, &fields).is_err());
        assert!(check_records(&parse_records(TWO), &uuids[..1], &fields).is_err());
    }

    #[test]
    fn no_records_is_empty() {
        assert!(parse_records("").is_empty());
    }

    #[test]
    fn minimal_output_unescapes_commas() {
        assert_eq!(parse_minimal("a\\,b,c\\\\d\n"), vec!["a,b", "c\\d"]);
        assert!(parse_minimal("\n").is_empty());
    }
}
