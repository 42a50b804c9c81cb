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

    #[test]
    fn picks_fields_of_a_serialisable_struct() {
        #[derive(serde::Serialize)]
        struct Vm {
            name: &'static str,
            vm_id: i64,
            pending: bool,
            invalid: Option<String>,
            note: Option<&'static str>,
        }
        let vm = Vm {
            name: "web \u{e9}",
            vm_id: -7,
            pending: false,
            invalid: None,
            note: Some("x"),
        };
        assert_eq!(field_of(&vm, "name").as_deref(), Some("web \u{e9}"));
        assert_eq!(field_of(&vm, "vm_id").as_deref(), Some("-7"));
        assert_eq!(field_of(&vm, "pending"), None);
        assert_eq!(field_of(&vm, "invalid"), None);
        assert_eq!(field_of(&vm, "note").as_deref(), Some("x"));
        assert_eq!(field_of(&vm, "missing"), None);
        let set = Vm {
            pending: true,
            ..vm
        };
        assert_eq!(field_of(&set, "pending").as_deref(), Some("true"));
        assert_eq!(field_of(&5, "name"), None);
    }
}

/// The field `name` of any serialisable struct, as a template shows it: text as it is, numbers
/// in decimal, `true` for a set flag; `None` for a missing, empty (`None`) or false field. The
/// struct's `Serialize` is the one list of its fields, for templates as for JSON.
pub fn field_of<T: serde::Serialize + ?Sized>(value: &T, name: &str) -> Option<String> {
    let mut picker = picker::Picker { name, found: None };
    value.serialize(&mut picker).ok()?;
    match picker.found? {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(set) => set.then(|| "true".to_string()),
        _ => None,
    }
}

mod picker {
    //! A serde serializer that walks a struct's fields and keeps the one asked for (as a JSON
    //! value: only that field is converted, so picking a field of a big record stays cheap).

    use serde::ser::{self, Impossible, Serialize};
    use std::fmt;

    /// Not a struct: the picker only looks into structs.
    #[derive(Debug)]
    pub struct Skip;

    impl fmt::Display for Skip {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("not a struct")
        }
    }

    impl std::error::Error for Skip {}

    impl ser::Error for Skip {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Skip
        }
    }

    /// Looks for the field `name`; `found` holds its value once seen.
    pub struct Picker<'a> {
        pub name: &'a str,
        pub found: Option<serde_json::Value>,
    }

    impl ser::SerializeStruct for &mut Picker<'_> {
        type Ok = ();
        type Error = Skip;

        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Skip> {
            if self.found.is_none() && key == self.name {
                self.found = serde_json::to_value(value).ok();
            }
            Ok(())
        }

        fn end(self) -> Result<(), Skip> {
            Ok(())
        }
    }

    /// Methods for what is not a struct: each refuses.
    macro_rules! refuse {
        ($($m:ident($($t:ty),*)),* $(,)?) => {$(
            fn $m(self, $(_: $t),*) -> Result<(), Skip> {
                Err(Skip)
            }
        )*};
    }

    impl ser::Serializer for &mut Picker<'_> {
        type Ok = ();
        type Error = Skip;
        type SerializeSeq = Impossible<(), Skip>;
        type SerializeTuple = Impossible<(), Skip>;
        type SerializeTupleStruct = Impossible<(), Skip>;
        type SerializeTupleVariant = Impossible<(), Skip>;
        type SerializeMap = Impossible<(), Skip>;
        type SerializeStruct = Self;
        type SerializeStructVariant = Impossible<(), Skip>;

        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Skip> {
            Ok(self)
        }

        refuse!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );

        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Skip> {
            Err(Skip)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Skip> {
            Err(Skip)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Skip> {
            Err(Skip)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Skip> {
            Err(Skip)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Skip> {
            Err(Skip)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Skip> {
            Err(Skip)
        }
    }
}
