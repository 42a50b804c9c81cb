//! Splitting a shell line into words the way a POSIX shell would for simple cases: spaces
//! separate words, `'...'` and `"..."` quote, a backslash escapes the next character. Nothing
//! is expanded or executed.

/// A line that cannot be split (an open quote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unterminated {0} quote")]
pub struct OpenQuote(pub &'static str);

/// Splits `line` into words.
pub fn split(line: &str) -> Result<Vec<String>, OpenQuote> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(d) => word.push(d),
                        None => return Err(OpenQuote("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(d) => word.push(d),
                            None => return Err(OpenQuote("double")),
                        },
                        Some(d) => word.push(d),
                        None => return Err(OpenQuote("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(d) = chars.next() {
                    word.push(d);
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Quotes `word` for a shell line when it needs it (for completions of names with spaces).
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.,:/=@+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(
            split(r#"register-vm --vm-name="web, prod"  --pool 'A' a\ b"#).unwrap(),
            vec!["register-vm", "--vm-name=web, prod", "--pool", "A", "a b"]
        );
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("x ''").unwrap(), vec!["x", ""]);
        assert!(split("say 'oops").is_err());
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("web01"), "web01");
        assert_eq!(quote("my vm"), "'my vm'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(split(&quote("it's a $(x)")).unwrap(), vec!["it's a $(x)"]);
    }
}
