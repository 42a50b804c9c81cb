//! Line templates for bulk output: the wording stays in the scripts, the loop runs in Rust.
//!
//! `{field}` is replaced by the field's value; `{a|b}` by the first of `a`, `b` that is set;
//! a line starting with `{?field}` is printed only when that field is set (not unit, not empty);
//! `{{` and `}}` stand for literal braces. Control characters in field values are escaped, so a
//! field never adds a line or drives the terminal.

use std::borrow::Cow;

/// Something whose fields a template can read.
pub trait Fields {
    /// The field's text, or `None` when it is missing or unset.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    condition: Option<String>,
    segments: Vec<Segment>,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    lines: Vec<Line>,
}

/// A malformed template (an unclosed `{`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad template: {0}")]
pub struct TemplateError(String);

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut lines = Vec::new();
        for raw in text.split('\n') {
            let (condition, rest) = match raw.strip_prefix("{?") {
                Some(after) => {
                    let end = after
                        .find('}')
                        .ok_or_else(|| TemplateError(format!("unclosed '{{?' in {raw:?}")))?;
                    (Some(after[..end].trim().to_string()), &after[end + 1..])
                }
                None => (None, raw),
            };
            lines.push(Line {
                condition,
                segments: parse_segments(rest)?,
            });
        }
        Ok(Template { lines })
    }

    /// Renders one item, appending to `out`. Lines are joined with `\n`; no newline is added at
    /// the end.
    pub fn render_into(&self, item: &dyn Fields, out: &mut String) {
        let mut first = true;
        for line in &self.lines {
            if let Some(cond) = &line.condition {
                if item.field(cond).is_none_or(|v| v.is_empty()) {
                    continue;
                }
            }
            if !first {
                out.push('\n');
            }
            first = false;
            for segment in &line.segments {
                match segment {
                    Segment::Text(t) => out.push_str(t),
                    Segment::Field(names) => {
                        if let Some(v) = names
                            .iter()
                            .filter_map(|n| item.field(n))
                            .find(|v| !v.is_empty())
                        {
                            // A field is one value on its line: a control character in it
                            // (a name the earlier tool stored raw) is shown escaped.
                            out.push_str(&crate::model::printable(&v));
                        }
                    }
                }
            }
        }
    }

    /// Renders one item to a new string.
    pub fn render(&self, item: &dyn Fields) -> String {
        let mut out = String::new();
        self.render_into(item, &mut out);
        out
    }
}

fn parse_segments(line: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let rest = &line[i + 1..];
                let end = rest
                    .find('}')
                    .ok_or_else(|| TemplateError(format!("unclosed '{{' in {line:?}")))?;
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                }
                let names = rest[..end]
                    .split('|')
                    .map(|n| n.trim().to_string())
                    .collect();
                segments.push(Segment::Field(names));
                for _ in 0..end + 1 {
                    chars.next();
                }
            }
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Row(HashMap<&'static str, &'static str>);
    impl Fields for Row {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            self.0.get(name).map(|v| Cow::Borrowed(*v))
        }
    }

    #[test]
    fn substitutes_fields_fallbacks_and_conditional_lines() {
        let t = Template::parse("VM:\n{?name}  Name: {name}\n  - {name|uuid} {{x}}").unwrap();
        let named = Row(HashMap::from([("name", "web"), ("uuid", "u1")]));
        assert_eq!(t.render(&named), "VM:\n  Name: web\n  - web {x}");
        let unnamed = Row(HashMap::from([("uuid", "u1"), ("name", "")]));
        assert_eq!(t.render(&unnamed), "VM:\n  - u1 {x}");
    }

    #[test]
    fn keeps_unicode_and_rejects_unclosed_braces() {
        let t = Template::parse("é{name}ü").unwrap();
        assert_eq!(t.render(&Row(HashMap::from([("name", "ß")]))), "éßü");
        assert!(Template::parse("{oops").is_err());
    }
}
