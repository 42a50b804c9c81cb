//! The device-model-args splitter against the real thing: Python's `shlex.split`, which the
//! site's qemu-wrapper uses. Thousands of generated values (quotes, escapes, every separator,
//! `#`, non-ASCII) must split into the same words, or fail the same way.

use std::io::Write;
use std::process::{Command, Stdio};
use vgpu_admin::vgpu::shell_words::{quote, split, SplitError};

/// Python's verdict for each value: `["ok", words]` or `["error", message]`.
fn python_split(values: &[String]) -> Vec<serde_json::Value> {
    let program = r#"
import json, shlex, sys
for line in sys.stdin:
    value = json.loads(line)
    try:
        print(json.dumps(["ok", shlex.split(value)]))
    except ValueError as e:
        print(json.dumps(["error", str(e)]))
"#;
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is part of the build machine)");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = values
        .iter()
        .map(|v| format!("{}\n", serde_json::to_string(v).expect("json")))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python3 output");
    writer.join().expect("writer").expect("write");
    assert!(output.status.success(), "python3 failed");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("python json"))
        .collect()
}

/// Values made of the characters that matter to the splitter, from a fixed seed.
fn generated(count: usize) -> Vec<String> {
    const ALPHABET: &[char] = &[
        'a', 'b', ' ', ' ', '\t', '\n', '\r', '\'', '"', '\\', ',', '=', '#', '$', 'é', '\u{b}',
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 14) as usize;
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn ours(value: &str) -> serde_json::Value {
    match split(value) {
        Ok(words) => {
            serde_json::json!(["ok", words.into_iter().map(|w| w.value).collect::<Vec<_>>()])
        }
        Err(SplitError::NoClosingQuotation) => serde_json::json!(["error", "No closing quotation"]),
        Err(SplitError::NoEscapedCharacter) => serde_json::json!(["error", "No escaped character"]),
    }
}

#[test]
fn splits_exactly_like_python_shlex() {
    let mut values = generated(20_000);
    values.extend(
        [
            r#"-smbios "type=1,product=My  VM" -device vgpu-cuda,pool_id=A"#,
            r#"-device 'vgpu-stub,id=it'"'"'s' -usb"#,
            r#"a"b c"d e\ f "g\"h\\i\j" '\'"#,
            "-device vgpu-stub,pool_id=A #not-a-comment",
            "",
            "   ",
        ]
        .map(String::from),
    );
    let expected = python_split(&values);
    assert_eq!(expected.len(), values.len());
    let mut mismatches = Vec::new();
    for (value, want) in values.iter().zip(&expected) {
        let got = ours(value);
        if &got != want {
            mismatches.push(format!("{value:?}: python {want}, ours {got}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} values split differently, e.g.:\n{}",
        mismatches.len(),
        values.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
}

#[test]
fn quoted_words_read_back_the_same_in_python() {
    let words: Vec<String> = generated(2_000)
        .into_iter()
        .chain(["vgpu-cuda,id=x y,vm_id=3".to_string(), "it's".to_string()])
        .collect();
    let quoted: Vec<String> = words.iter().map(|w| quote(w).into_owned()).collect();
    let back = python_split(&quoted);
    for ((word, q), got) in words.iter().zip(&quoted).zip(&back) {
        assert_eq!(
            got,
            &serde_json::json!(["ok", [word]]),
            "{word:?} quoted as {q:?}"
        );
    }
}
