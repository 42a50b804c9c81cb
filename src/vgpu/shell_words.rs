//! Splitting `platform:device-model-args` into words exactly as the site's qemu-wrapper does:
//! Python's `shlex.split(value)` (POSIX mode, no comments). Each word keeps the byte range it
//! came from, so that an edit can replace one word and re-emit every other byte as it was.
//!
//! The rules, as Python's `shlex` applies them:
//! - space, tab, carriage return and newline separate words (no other whitespace does);
//! - `'...'` groups everything literally; `"..."` groups too, and inside it a backslash escapes
//!   only `"` and `\` (before anything else it stays a backslash);
//! - outside quotes a backslash takes the next character literally (a newline too);
//! - quotes and escapes may appear in the middle of a word (`a"b c"d` is `ab cd`);
//! - `''` is an empty word; `#` is an ordinary character;
//! - an unclosed quote, or a backslash at the very end, makes the whole value unsplittable.

use std::borrow::Cow;
use std::ops::Range;

/// One word of a value: its text after quote removal and the bytes it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as the program receives it.
    pub value: String,
    /// Where it was written in the original value (quotes and escapes included).
    pub span: Range<usize>,
}

/// Why a value cannot be split (Python raises `ValueError` with these texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A quote was opened and never closed.
    #[error("no closing quotation")]
    NoClosingQuotation,
    /// The value ends with a backslash.
    #[error("no escaped character")]
    NoEscapedCharacter,
}

/// The characters that separate words.
pub fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `text` into words, as `shlex.split(text)` does.
pub fn split(text: &str) -> Result<Vec<Word>, SplitError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Between,
        Word,
        Quote(char),
        /// After a backslash; the state to return to.
        Escape(Option<char>),
    }
    let mut words = Vec::new();
    let mut state = State::Between;
    let mut value = String::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match state {
            State::Between => {
                if is_separator(c) {
                    continue;
                }
                start = at;
                value.clear();
                state = match c {
                    '\\' => State::Escape(None),
                    '\'' | '"' => State::Quote(c),
                    _ => {
                        value.push(c);
                        State::Word
                    }
                };
            }
            State::Word => match c {
                _ if is_separator(c) => {
                    words.push(Word {
                        value: std::mem::take(&mut value),
                        span: start..at,
                    });
                    state = State::Between;
                }
                '\\' => state = State::Escape(None),
                '\'' | '"' => state = State::Quote(c),
                _ => value.push(c),
            },
            State::Quote(q) => match c {
                _ if c == q => state = State::Word,
                '\\' if q == '"' => state = State::Escape(Some(q)),
                _ => value.push(c),
            },
            State::Escape(inside) => {
                // Inside double quotes only `"` and `\` are escaped; the backslash stays
                // before anything else.
                if inside.is_some() && c != '"' && c != '\\' {
                    value.push('\\');
                }
                value.push(c);
                state = match inside {
                    Some(q) => State::Quote(q),
                    None => State::Word,
                };
            }
        }
    }
    match state {
        State::Between => {}
        State::Word => words.push(Word {
            value,
            span: start..text.len(),
        }),
        State::Quote(_) => return Err(SplitError::NoClosingQuotation),
        State::Escape(_) => return Err(SplitError::NoEscapedCharacter),
    }
    Ok(words)
}

/// `word` written so that [`split`] reads it back as one word: as it is when it holds nothing
/// special, else in single quotes (a `'` inside becomes `'"'"'`).
pub fn quote(word: &str) -> Cow<'_, str> {
    let special = |c: char| is_separator(c) || matches!(c, '\'' | '"' | '\\');
    if !word.is_empty() && !word.chars().any(special) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', "'\"'\"'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        split(text).unwrap().into_iter().map(|w| w.value).collect()
    }

    #[test]
    fn splits_like_python_shlex() {
        assert_eq!(
            values("  -device  e1000 \t-usb\n"),
            ["-device", "e1000", "-usb"]
        );
        assert_eq!(
            values(r#"-smbios "type=1,product=My  VM" -x 'a b'"#),
            ["-smbios", "type=1,product=My  VM", "-x", "a b"]
        );
        assert_eq!(values(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(values(r#"'' "" x"#), ["", "", "x"]);
        assert_eq!(values(r"a\ b \'c"), ["a b", "'c"]);
        assert_eq!(values(r#""a\$b\"c\\d""#), [r#"a\$b"c\d"#]);
        assert_eq!(values(r"'a\b'"), [r"a\b"]);
        assert_eq!(values("#x y"), ["#x", "y"]);
        assert_eq!(
            values("a\u{b}b"),
            ["a\u{b}b"],
            "vertical tab is not a separator"
        );
        assert!(values(" \t ").is_empty());
    }

    #[test]
    fn spans_cover_the_written_word() {
        let text = r#"-a  "b c"d  e"#;
        let words = split(text).unwrap();
        let raw: Vec<&str> = words.iter().map(|w| &text[w.span.clone()]).collect();
        assert_eq!(raw, ["-a", r#""b c"d"#, "e"]);
    }

    #[test]
    fn unclosed_quotes_and_trailing_backslashes_do_not_split() {
        assert_eq!(split("a 'b"), Err(SplitError::NoClosingQuotation));
        assert_eq!(split(r#"a "b\""#), Err(SplitError::NoClosingQuotation));
        assert_eq!(split("a\\"), Err(SplitError::NoEscapedCharacter));
    }

    #[test]
    fn quoting_round_trips() {
        for word in [
            "plain",
            "",
            "a b",
            "it's",
            r#"say "hi""#,
            r"back\slash",
            "tab\there",
        ] {
            let quoted = quote(word);
            assert_eq!(values(&quoted), [word], "{quoted}");
        }
        assert_eq!(quote("vgpu-cuda,pool_id=A"), "vgpu-cuda,pool_id=A");
    }
}
