//! Bundles every script: writes `$OUT_DIR/bundled.rs`, the list of (relative path, text) of the
//! files in `scripts/commands`, `scripts/hooks` and `stdlib`, so a new script file is compiled
//! into the binary without touching the code.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = Path::new(&root);
    let mut entries = Vec::new();
    for (dir, prefix) in [
        ("scripts/commands", "commands"),
        ("scripts/hooks", "hooks"),
        ("stdlib", "stdlib"),
    ] {
        let path = root.join(dir);
        println!("cargo:rerun-if-changed={}", path.display());
        let Ok(read) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".rhai") {
                entries.push((format!("{prefix}/{name}"), entry.path()));
            }
        }
    }
    entries.sort();
    let mut out = String::from("&[\n");
    for (rel, path) in entries {
        writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write");
    }
    out.push_str("]\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("bundled.rs");
    std::fs::write(dest, out).expect("write bundled.rs");
}
