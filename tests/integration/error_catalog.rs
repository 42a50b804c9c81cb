//! `docs/troubleshooting.md` explains every error and warning vgpu-admin can print. This test
//! keeps it complete: it reads the source, extracts every user-facing message, and checks that
//! the guide quotes each one.
//!
//! What counts as a message (the "sinks"):
//!
//! - Rust (`src/**/*.rs`, leaving out comments and `#[cfg(test)]` modules): the first argument
//!   that is a string literal (directly, or as the format string of `format!`, after `&`, a
//!   closure header or a brace) of a call to `Failure::usage/failed/new`,
//!   `HostError::usage/failed`, `stderr_line`, `eprintln!`, `println!`, `say` (the dialogue of a
//!   change and the hook's one line), `Err`/`err`, `.ok_or`, `.ok_or_else`, `.map_err`,
//!   `.context`, `anyhow!`, `Error::new`, `Error::raw`, `ErrorSystem`, `TemplateError`, the
//!   `Sync::Differs` reasons and the `push`es of reasons (`done`, `problems`, `differs`,
//!   `refused`, `why`); a `reason:` or `message:` field; every `#[error("...")]`; and any literal
//!   at all that starts with `error: `, `warning: `, `note: `, `vgpu-admin: `,
//!   `script stopped: ` or `script error: `.
//! - Rhai (`scripts/**/*.rhai`, `stdlib/*.rhai`): the message of `fail(N, ...)`, `ui::warn(...)`
//!   and `throw ...`; a problem `findings.add(check, false, ...)` of `doctor`; a `print` whose
//!   text starts with a lowercase word and a colon (`differs: `, `skipped: `, the hook's
//!   `vgpu-admin: `); and any literal that starts with `error: `, `warning: `, `note: ` or
//!   `vgpu-admin: `.
//!
//! A message's constant parts are the text between its interpolations (`{...}` in a Rust format
//! string, `${...}` in a Rhai template, and line breaks), trimmed. A message whose constant parts
//! add up to fewer than [`MIN_CONSTANT`] characters says nothing by itself (`{what}: {text}`) and
//! is not checked. For every other one the guide must have a line holding all its constant
//! parts, in order: the message as it is printed, with `<placeholders>`.
//!
//! `ERROR_CATALOG_LIST=1 cargo test --test integration error_catalog -- --nocapture` lists every
//! message found, with its file and line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Messages whose constant text is shorter than this are pure formatting.
const MIN_CONSTANT: usize = 12;

/// The source holds at least this many messages (a realistic floor, so that a broken
/// extraction cannot pass by finding nothing).
const AT_LEAST: usize = 150;

/// One string literal of a source file.
#[derive(Debug, Clone)]
struct Lit {
    /// Byte offset of its first character (a prefix like `b`/`r` included).
    start: usize,
    /// 1-based line.
    line: usize,
    /// Its constant parts (the text between interpolations and line breaks), unescaped, not
    /// yet trimmed, in order.
    parts: Vec<String>,
    /// The text up to the first interpolation (for the prefix rules).
    head: String,
    /// The message as shown in a failure report, placeholders as `<...>`. (While a Rust file is
    /// lexed it holds the unescaped text, split once the literal's kind is known.)
    shown: String,
}

/// A lexed source file: its literals, and the code with comments and literal contents blanked
/// (same byte offsets), in which sinks and brackets are looked for.
struct Lexed {
    lits: Vec<Lit>,
    code: Vec<u8>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn line_of(src: &[u8], at: usize) -> usize {
    src[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

fn blank(code: &mut [u8], range: std::ops::Range<usize>) {
    for b in &mut code[range] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

/// Splits a Rust string's text into constant parts when it is a format string (`{{`/`}}` are
/// braces, `{...}` an interpolation); line breaks also separate parts.
fn rust_parts(text: &str, format: bool) -> (Vec<String>, String, String) {
    let mut parts = vec![String::new()];
    let mut shown = String::new();
    let mut head: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if format && chars.peek() == Some(&'{') => {
                chars.next();
                parts.last_mut().unwrap().push('{');
                shown.push('{');
            }
            '}' if format && chars.peek() == Some(&'}') => {
                chars.next();
                parts.last_mut().unwrap().push('}');
                shown.push('}');
            }
            '{' if format => {
                let mut name = String::new();
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                    name.push(d);
                }
                head.get_or_insert_with(|| parts.concat());
                let name = name.split(':').next().unwrap_or("").to_string();
                shown.push_str(&format!(
                    "<{}>",
                    if name.is_empty() { "..." } else { &name }
                ));
                parts.push(String::new());
            }
            '\n' => {
                head.get_or_insert_with(|| parts.concat());
                parts.push(String::new());
                shown.push_str("\\n");
            }
            c => {
                parts.last_mut().unwrap().push(c);
                shown.push(c);
            }
        }
    }
    let head = head.unwrap_or_else(|| parts.concat());
    (parts, head, shown)
}

/// Unescapes the inside of a normal Rust string literal.
fn rust_unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                if let Ok(n) = u8::from_str_radix(&hex, 16) {
                    out.push(char::from(n));
                }
            }
            Some('u') => {
                let mut hex = String::new();
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                    if d != '{' {
                        hex.push(d);
                    }
                }
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            // A line continuation: the newline and the next line's leading whitespace go.
            Some('\n') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Lexes Rust source: string literals (normal, byte, raw), char literals, comments.
fn lex_rust(src: &str) -> Lexed {
    let s = src.as_bytes();
    let mut code = s.to_vec();
    let mut lits = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let prev_ident = i > 0 && is_ident(s[i - 1]);
        match s[i] {
            b'/' if s.get(i + 1) == Some(&b'/') => {
                let end = s[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(s.len(), |p| i + p);
                blank(&mut code, i..end);
                i = end;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                let mut j = i;
                while j < s.len() {
                    if s[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if s[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut code, i..j);
                i = j;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1b}', 'é') or a lifetime ('a).
                let rest = &src[i + 1..];
                let len = if rest.starts_with('\\') {
                    rest.find('\'').map(|p| {
                        // '\'' : the quote right after the backslash is escaped.
                        if p == 1 {
                            rest[2..].find('\'').map_or(p, |q| q + 2)
                        } else {
                            p
                        }
                    })
                } else {
                    rest.chars()
                        .next()
                        .map(char::len_utf8)
                        .filter(|&n| rest[n..].starts_with('\''))
                };
                match len {
                    Some(n) => {
                        blank(&mut code, i + 1..i + 1 + n);
                        i += n + 2;
                    }
                    None => i += 1,
                }
            }
            b'b' | b'r' if !prev_ident => {
                // b"..", r"..", r#".."#, br"..": a literal prefix, or just an identifier.
                let mut j = i + 1;
                if s[i] == b'b' && s.get(j) == Some(&b'r') {
                    j += 1;
                }
                let raw = s[i + 1..j.max(i + 1)].contains(&b'r') || s[i] == b'r';
                let hashes = s[j..].iter().take_while(|&&b| b == b'#').count();
                if s.get(j + hashes) == Some(&b'"') && (raw || hashes == 0) {
                    let (lit, end) = rust_string(src, i, j + hashes, raw, hashes);
                    blank(&mut code, i..end);
                    code[i] = b'"';
                    lits.push(lit);
                    i = end;
                } else {
                    while i < s.len() && is_ident(s[i]) {
                        i += 1;
                    }
                }
            }
            b'"' => {
                let (lit, end) = rust_string(src, i, i, false, 0);
                blank(&mut code, i..end);
                code[i] = b'"';
                lits.push(lit);
                i = end;
            }
            b if is_ident(b) => {
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    // Format strings are the literals that directly follow a formatting macro.
    for lit in &mut lits {
        let before = String::from_utf8_lossy(&code[..lit.start]);
        let before = before.trim_end();
        let format = [
            "format!(",
            "println!(",
            "eprintln!(",
            "anyhow!(",
            "#[error(",
        ]
        .iter()
        .any(|m| before.ends_with(m));
        let (parts, head, shown) = rust_parts(&lit.shown, format);
        lit.parts = parts;
        lit.head = head;
        lit.shown = shown;
    }
    let mut lexed = Lexed { lits, code };
    drop_test_modules(&mut lexed);
    lexed
}

/// Reads the string literal whose opening quote is at `quote` (its prefix starts at `start`).
/// The unescaped text is left in `shown`, to be split once its kind is known.
fn rust_string(src: &str, start: usize, quote: usize, raw: bool, hashes: usize) -> (Lit, usize) {
    let s = src.as_bytes();
    let mut j = quote + 1;
    let end_of_text;
    loop {
        if j >= s.len() {
            end_of_text = s.len();
            break;
        }
        if !raw && s[j] == b'\\' {
            j += 2;
            continue;
        }
        if s[j] == b'"'
            && s[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&b| b == b'#')
                .count()
                == hashes
        {
            end_of_text = j;
            break;
        }
        j += 1;
    }
    let inner = &src[quote + 1..end_of_text];
    let text = if raw {
        inner.to_string()
    } else {
        rust_unescape(inner)
    };
    let lit = Lit {
        start,
        line: line_of(s, start),
        parts: Vec::new(),
        head: String::new(),
        shown: text,
    };
    (lit, (end_of_text + 1 + hashes).min(s.len()))
}

/// Leaves out `#[cfg(test)]` items: their literals are not the tool's messages.
fn drop_test_modules(lexed: &mut Lexed) {
    let marker = b"#[cfg(test)]";
    let mut from = 0;
    while let Some(p) = find(&lexed.code, marker, from) {
        let Some(open) = lexed.code[p..]
            .iter()
            .position(|&b| b == b'{')
            .map(|o| p + o)
        else {
            break;
        };
        let close = matching(&lexed.code, open).unwrap_or(lexed.code.len() - 1);
        lexed.lits.retain(|l| l.start < p || l.start > close);
        blank(&mut lexed.code, p..close + 1);
        from = close + 1;
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..hay.len().saturating_sub(needle.len() - 1)).find(|&i| hay[i..].starts_with(needle))
}

/// The index of the bracket closing the one at `open`.
fn matching(code: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Lexes Rhai source: `"..."` strings, `` `...${expr}...` `` templates, chars, comments.
fn lex_rhai(src: &str) -> Lexed {
    let s = src.as_bytes();
    let mut code = s.to_vec();
    let mut lits = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'/' if s.get(i + 1) == Some(&b'/') => {
                let end = s[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(s.len(), |p| i + p);
                blank(&mut code, i..end);
                i = end;
            }
            b'"' | b'`' | b'\'' => {
                let (end, parts, shown) = rhai_string(s, i);
                blank(&mut code, i..end);
                code[i] = b'"';
                if s[i] != b'\'' {
                    let head = parts.first().cloned().unwrap_or_default();
                    lits.push(Lit {
                        start: i,
                        line: line_of(s, i),
                        parts,
                        head,
                        shown,
                    });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Lexed { lits, code }
}

/// Reads the Rhai string, template or char starting at `at`; returns its end, constant parts
/// and shown text. A template's `${...}` may hold code with strings and templates of its own.
fn rhai_string(s: &[u8], at: usize) -> (usize, Vec<String>, String) {
    let quote = s[at];
    let mut parts = vec![Vec::<u8>::new()];
    let mut shown = Vec::new();
    let mut j = at + 1;
    while j < s.len() {
        let b = s[j];
        if b == quote {
            j += 1;
            break;
        }
        if quote != b'`' && b == b'\\' && j + 1 < s.len() {
            let c = match s[j + 1] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                other => other,
            };
            parts.last_mut().unwrap().push(c);
            shown.push(c);
            j += 2;
            continue;
        }
        if quote == b'`' && b == b'$' && s.get(j + 1) == Some(&b'{') {
            // Skip the expression: brackets, strings and templates nested in it.
            let mut depth = 0;
            let mut k = j + 1;
            while k < s.len() {
                match s[k] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b'"' | b'`' | b'\'' => {
                        k = rhai_string(s, k).0;
                        continue;
                    }
                    _ => {}
                }
                k += 1;
            }
            parts.push(Vec::new());
            shown.extend_from_slice(b"<...>");
            j = k + 1;
            continue;
        }
        if b == b'\n' {
            parts.push(Vec::new());
            shown.extend_from_slice(b"\\n");
            j += 1;
            continue;
        }
        parts.last_mut().unwrap().push(b);
        shown.push(b);
        j += 1;
    }
    let parts = parts
        .into_iter()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .collect();
    (j, parts, String::from_utf8_lossy(&shown).into_owned())
}

/// How a sink names its message among the arguments that follow it.
#[derive(Clone, Copy)]
enum Pick {
    /// The first argument that is a literal (or `format!` of one).
    FirstLiteral,
    /// The expression right after the sink (a field value, `throw`).
    Value,
    /// `findings.add(check, false, detail)`: the detail of a problem.
    Problem,
}

/// A sink: text in the code that is followed by a message.
struct Sink {
    head: &'static str,
    pick: Pick,
}

const RUST_SINKS: &[Sink] = &[
    Sink {
        head: "Failure::usage(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Failure::failed(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Failure::new(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "HostError::usage(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "HostError::failed(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "#[error(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "stderr_line(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "eprintln!(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "println!(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "say(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Err(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "err(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: ".ok_or(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: ".ok_or_else(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: ".map_err(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: ".context(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "anyhow!(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Error::new(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Error::raw(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "ErrorSystem(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "TemplateError(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "Differs(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "done.push(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "problems.push(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "differs.push(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "refused.push(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "why.push(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "reason:",
        pick: Pick::Value,
    },
    Sink {
        head: "message:",
        pick: Pick::Value,
    },
];

const RHAI_SINKS: &[Sink] = &[
    Sink {
        head: "fail(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "ui::warn(",
        pick: Pick::FirstLiteral,
    },
    Sink {
        head: "throw ",
        pick: Pick::Value,
    },
    Sink {
        head: "findings.add(",
        pick: Pick::Problem,
    },
];

/// Any literal starting so is a message, wherever it is.
const RUST_PREFIXES: &[&str] = &[
    "error: ",
    "warning: ",
    "note: ",
    "vgpu-admin: ",
    "script stopped: ",
    "script error: ",
];
const RHAI_PREFIXES: &[&str] = &["error: ", "warning: ", "note: ", "vgpu-admin: "];

/// The argument spans of the call whose `(` is at `open`, up to its `)`.
fn arguments(code: &[u8], open: usize) -> Vec<(usize, usize)> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut start = open + 1;
    for (i, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    args.push((start, i));
                    return args;
                }
            }
            b',' if depth == 1 => {
                args.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    args
}

/// The expression starting at `at`, up to a `,`, `;` or closing bracket at its level.
fn value_span(code: &[u8], at: usize) -> (usize, usize) {
    let mut depth = 0i32;
    for (i, &b) in code.iter().enumerate().skip(at) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return (at, i),
            b')' | b']' | b'}' => depth -= 1,
            b',' | b';' if depth == 0 => return (at, i),
            _ => {}
        }
    }
    (at, code.len())
}

/// The literal an argument is: itself, or the format string of `format!(...)`, after `&`, a
/// closure header `|e|`, `move` or an opening brace.
fn literal_of(lexed: &Lexed, (start, end): (usize, usize)) -> Option<&Lit> {
    let code = &lexed.code;
    let mut i = start;
    loop {
        while i < end && code[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &code[i..end];
        if rest.starts_with(b"&") || rest.starts_with(b"{") {
            i += 1;
        } else if rest.starts_with(b"move ") {
            i += 5;
        } else if rest.starts_with(b"|") {
            i += 1 + rest[1..].iter().position(|&b| b == b'|')? + 1;
        } else if let Some(m) = [&b"format!("[..], b"anyhow!("]
            .iter()
            .find(|m| rest.starts_with(m))
        {
            i += m.len();
        } else {
            break;
        }
    }
    if i < end && code[i] == b'"' {
        lexed.lits.iter().find(|l| l.start == i)
    } else {
        None
    }
}

/// Where each message was found.
#[derive(Debug, Clone)]
struct Message {
    file: String,
    line: usize,
    parts: Vec<String>,
    shown: String,
}

impl Message {
    /// The constant parts that must appear, trimmed.
    fn needles(&self) -> Vec<&str> {
        self.parts
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect()
    }

    fn constant_len(&self) -> usize {
        self.needles().iter().map(|p| p.chars().count()).sum()
    }
}

/// The messages of one lexed file.
fn messages_of(
    file: &str,
    lexed: &Lexed,
    sinks: &[Sink],
    prefixes: &[&str],
    rhai: bool,
) -> Vec<Message> {
    let mut found: Vec<&Lit> = Vec::new();
    for sink in sinks {
        let head = sink.head.as_bytes();
        let mut from = 0;
        while let Some(p) = find(&lexed.code, head, from) {
            from = p + 1;
            let first = head[0];
            if is_ident(first) && p > 0 && is_ident(lexed.code[p - 1]) {
                continue; // part of a longer name: `map_err(` is not `err(`
            }
            let after = p + head.len();
            let picked = match sink.pick {
                Pick::FirstLiteral => arguments(&lexed.code, after - 1)
                    .into_iter()
                    .find_map(|a| literal_of(lexed, a)),
                Pick::Value => literal_of(lexed, value_span(&lexed.code, after)),
                Pick::Problem => {
                    let args = arguments(&lexed.code, after - 1);
                    let is_problem = args.get(1).is_some_and(|&(a, b)| {
                        String::from_utf8_lossy(&lexed.code[a..b]).trim() == "false"
                    });
                    args.get(2)
                        .filter(|_| is_problem)
                        .and_then(|&a| literal_of(lexed, a))
                }
            };
            found.extend(picked);
        }
    }
    for lit in &lexed.lits {
        if prefixes.iter().any(|p| lit.head.starts_with(p)) {
            found.push(lit);
        }
    }
    if rhai {
        // A report line: `print(`word: ...`)`.
        let mut from = 0;
        while let Some(p) = find(&lexed.code, b"print(", from) {
            from = p + 1;
            if p > 0 && is_ident(lexed.code[p - 1]) {
                continue;
            }
            let args = arguments(&lexed.code, p + 5);
            if let Some(lit) = args.first().and_then(|&a| literal_of(lexed, a)) {
                let word: String = lit
                    .head
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                if !word.is_empty() && lit.head[word.len()..].starts_with(": ") {
                    found.push(lit);
                }
            }
        }
    }
    found.sort_by_key(|l| l.start);
    found.dedup_by_key(|l| l.start);
    found
        .into_iter()
        .map(|l| Message {
            file: file.to_string(),
            line: l.line,
            parts: l.parts.clone(),
            shown: l.shown.clone(),
        })
        .collect()
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every message of the source, in file order.
fn source_messages() -> Vec<Message> {
    let root = root();
    let mut rust = Vec::new();
    files(&root.join("src"), "rs", &mut rust);
    let mut rhai = Vec::new();
    files(&root.join("scripts"), "rhai", &mut rhai);
    files(&root.join("stdlib"), "rhai", &mut rhai);
    rust.sort();
    rhai.sort();
    let mut out = Vec::new();
    for (paths, is_rhai) in [(rust, false), (rhai, true)] {
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("source file");
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let lexed = if is_rhai {
                lex_rhai(&text)
            } else {
                lex_rust(&text)
            };
            let (sinks, prefixes) = if is_rhai {
                (RHAI_SINKS, RHAI_PREFIXES)
            } else {
                (RUST_SINKS, RUST_PREFIXES)
            };
            out.extend(messages_of(&name, &lexed, sinks, prefixes, is_rhai));
        }
    }
    out
}

/// True when one line of `guide` holds every needle, in order.
fn quoted(guide: &str, needles: &[&str]) -> bool {
    guide.lines().any(|line| {
        let mut rest = line;
        needles.iter().all(|n| match rest.find(n) {
            Some(at) => {
                rest = &rest[at + n.len()..];
                true
            }
            None => false,
        })
    })
}

fn guide() -> String {
    std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap_or_default()
}

#[test]
fn every_message_of_the_source_is_in_the_troubleshooting_guide() {
    let messages = source_messages();
    let checked: Vec<&Message> = messages
        .iter()
        .filter(|m| m.constant_len() >= MIN_CONSTANT)
        .collect();
    if std::env::var_os("ERROR_CATALOG_LIST").is_some() {
        for m in &messages {
            eprintln!("{}:{}: {}", m.file, m.line, m.shown);
        }
        eprintln!(
            "{} messages, {} checked (the others are shorter than {MIN_CONSTANT} characters)",
            messages.len(),
            checked.len()
        );
    }
    assert!(
        checked.len() >= AT_LEAST,
        "only {} messages found in the source (at least {AT_LEAST} expected): the extraction is broken",
        checked.len()
    );
    let guide = guide();
    let mut missing = String::new();
    for m in &checked {
        if !quoted(&guide, &m.needles()) {
            let _ = writeln!(missing, "  {}:{}: {}", m.file, m.line, m.shown);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md does not quote these messages (each needs a line holding its \
         text, placeholders as <...>):\n{missing}"
    );
}

#[test]
fn the_extraction_reads_the_source_as_written() {
    let rust = r####"
fn a() -> Result<(), Failure> {
    let c = '"'; let d = '\''; let e = '{'; let f = 'é';
    fn g<'a>(x: &'a str) -> &'a str { x }
    // Failure::usage("in a comment")
    let w = b"error: a byte string\n";
    Err(Failure::new(
        Status::Usage,
        format!("value {{literal}} of {name:?} and {}: \
                 continued", x),
    ))?;
    self.say(&format!("progress of VM {}...", label));
    say(fail, &format!("hook {name}: cannot read the database: {e}"));
    Failure::failed(e.to_string());
    x.map_err(|e| format!("default of --{name}: {e}"));
    Err(match y { _ => 1 });
    let r = r#"raw "quoted" text"#;
}
#[error("no database at {path}: nothing is registered")]
struct S;
#[cfg(test)]
mod tests {
    fn t() { Failure::usage("a test message, not the tool's"); }
}
"####;
    let lexed = lex_rust(rust);
    let found = messages_of("x.rs", &lexed, RUST_SINKS, RUST_PREFIXES, false);
    let shown: Vec<&str> = found.iter().map(|m| m.shown.as_str()).collect();
    assert_eq!(
        shown,
        [
            "error: a byte string\\n",
            "value {literal} of <name> and <...>: continued",
            "progress of VM <...>...",
            "hook <name>: cannot read the database: <e>",
            "default of --<name>: <e>",
            "no database at <path>: nothing is registered",
        ]
    );
    assert_eq!(found[1].line, 9);
    assert_eq!(
        found[1].needles(),
        ["value {literal} of", "and", ": continued"]
    );
    assert!(lexed.lits.iter().any(|l| l.shown == "raw \"quoted\" text"));

    let rhai = r#"
// fail(2, "a comment")
fail(2, `VM ${label(host)} is ${if a { "x}" } else { `y${z}` }}: nothing was changed`);
ui::warn(`note: stored as '${name}'`);
throw "it was registered meanwhile";
findings.add("qemu", false, "this host's QEMU has no vGPU driver");
findings.add("xe", true, `xe lists ${n} VMs`);
print(`skipped: ${label}: ${reason}`);
print(`Total: ${n} VMs`);
"#;
    let lexed = lex_rhai(rhai);
    let found = messages_of("x.rhai", &lexed, RHAI_SINKS, RHAI_PREFIXES, true);
    let shown: Vec<&str> = found.iter().map(|m| m.shown.as_str()).collect();
    assert_eq!(
        shown,
        [
            "VM <...> is <...>: nothing was changed",
            "note: stored as '<...>'",
            "it was registered meanwhile",
            "this host's QEMU has no vGPU driver",
            "skipped: <...>: <...>",
        ]
    );
    assert_eq!(found[0].needles(), ["VM", "is", ": nothing was changed"]);
}

#[test]
fn a_message_is_found_only_on_one_line_with_its_parts_in_order() {
    let guide = "`VM <uuid> is not registered`\n`is not` and `VM`";
    assert!(quoted(guide, &["VM", "is not registered"]));
    assert!(!quoted(guide, &["is not", "VM", "registered"]));
    assert!(!quoted(guide, &["VM", "gone"]));
}
