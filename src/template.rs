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

/// The field `name` of any serialisable struct, as a template shows it: text as it is, numbers
/// in decimal, `true` for a set flag; `None` for a missing, empty (`None`) or false field. The
/// struct's `Serialize` is the one list of its fields, for templates as for JSON.
pub fn field_of<T: serde::Serialize + ?Sized>(value: &T, name: &str) -> Option<String> {
    let mut picker = picker::Picker { name, found: None };
    value.serialize(&mut picker).ok()?;
    picker.found.flatten()
}

mod picker {
    //! A serde serializer that looks for one field of a struct and renders it as text.

    use serde::ser::{self, Impossible, Serialize};
    use std::fmt;

    /// Nothing to report: the picker never fails, it only finds or does not find.
    #[derive(Debug)]
    pub struct Skip;

    impl fmt::Display for Skip {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("not a plain value")
        }
    }

    impl std::error::Error for Skip {}

    impl ser::Error for Skip {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Skip
        }
    }

    pub struct Picker<'a> {
        pub name: &'a str,
        pub found: Option<Option<String>>,
    }

    /// Renders one plain value as text (`None`: unset).
    pub struct Text;

    macro_rules! plain {
        ($($m:ident($t:ty)),*) => {$(
            fn $m(self, v: $t) -> Result<Self::Ok, Skip> {
                Ok(Some(v.to_string()))
            }
        )*};
    }

    impl ser::Serializer for Text {
        type Ok = Option<String>;
        type Error = Skip;
        type SerializeSeq = Impossible<Self::Ok, Skip>;
        type SerializeTuple = Impossible<Self::Ok, Skip>;
        type SerializeTupleStruct = Impossible<Self::Ok, Skip>;
        type SerializeTupleVariant = Impossible<Self::Ok, Skip>;
        type SerializeMap = Impossible<Self::Ok, Skip>;
        type SerializeStruct = Impossible<Self::Ok, Skip>;
        type SerializeStructVariant = Impossible<Self::Ok, Skip>;

        plain!(
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
            serialize_str(&str)
        );

        fn serialize_bool(self, v: bool) -> Result<Self::Ok, Skip> {
            Ok(v.then(|| "true".to_string()))
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok, Skip> {
            Err(Skip)
        }
        fn serialize_none(self) -> Result<Self::Ok, Skip> {
            Ok(None)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Self::Ok, Skip> {
            v.serialize(Text)
        }
        fn serialize_unit(self) -> Result<Self::Ok, Skip> {
            Ok(None)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<Self::Ok, Skip> {
            Ok(None)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<Self::Ok, Skip> {
            Ok(Some(variant.to_string()))
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<Self::Ok, Skip> {
            v.serialize(Text)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Skip> {
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
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Skip> {
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

    impl ser::SerializeStruct for &mut Picker<'_> {
        type Ok = ();
        type Error = Skip;

        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Skip> {
            if self.found.is_none() && key == self.name {
                self.found = Some(value.serialize(Text).unwrap_or(None));
            }
            Ok(())
        }

        fn end(self) -> Result<(), Skip> {
            Ok(())
        }
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

        fn serialize_bool(self, _: bool) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_i8(self, _: i8) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_i16(self, _: i16) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_i32(self, _: i32) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_i64(self, _: i64) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_u8(self, _: u8) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_u16(self, _: u16) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_u32(self, _: u32) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_u64(self, _: u64) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_f32(self, _: f32) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_f64(self, _: f64) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_char(self, _: char) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_str(self, _: &str) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_none(self) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_unit(self) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), Skip> {
            Err(Skip)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
        ) -> Result<(), Skip> {
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
