//! Writing to the terminal: buffered stdout that ends quietly when the reader goes away
//! (`vgpu-admin list-vms | head`), one-line stderr messages, and plain text tables.

use std::io::{self, BufWriter, StdoutLock, Write};

/// Buffered standard output. A closed pipe ends the process quietly with status 0, as a reader
/// that stopped reading (`head`) is not an error.
pub struct Stdout {
    out: BufWriter<StdoutLock<'static>>,
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Stdout {
    /// Locks stdout for buffered writing.
    pub fn new() -> Self {
        Stdout {
            out: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
        }
    }

    /// Writes `text`.
    pub fn write(&mut self, text: &str) {
        let result = self.out.write_all(text.as_bytes());
        check(result);
    }

    /// Writes `bytes` (generated files: roff, completion scripts).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let result = self.out.write_all(bytes);
        check(result);
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) {
        let result = self.out.flush();
        check(result);
    }

    /// The underlying writer, for serialisers.
    pub fn writer(&mut self) -> &mut impl Write {
        &mut self.out
    }
}

/// Ends the process quietly on a closed pipe; other write errors are reported once.
pub fn check(result: io::Result<()>) {
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        stderr_line(&format!("error: cannot write output: {e}"));
        std::process::exit(1);
    }
}

/// Prints one line (text and newline) on stdout, as Rhai's `print` does.
pub fn stdout_line(text: &str) {
    let mut out = io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    check(result);
}

/// Prints what a script prints: its lines as they are, but any other control character (an
/// escape sequence, a carriage return) or invisible formatting character (a bidi override)
/// escaped, so that text from outside cannot drive the terminal or reorder a line.
pub fn script_line(text: &str) {
    let harmful = |c: char| crate::model::unprintable(c) && c != '\n' && c != '\t';
    if text.chars().any(harmful) {
        let mut safe = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if harmful(c) {
                safe.extend(c.escape_default());
            } else {
                safe.push(c);
            }
        }
        stdout_line(&safe);
    } else {
        stdout_line(text);
    }
}

/// Prints one line on stderr; errors writing to stderr are ignored (there is nowhere to report).
pub fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Lays out `rows` (the first one is the heading) as left-aligned columns, two spaces apart,
/// measured in terminal columns (wide characters count double); on a terminal, long cells wrap
/// to its width.
pub fn table(rows: &[Vec<String>]) -> String {
    use comfy_table::{ContentArrangement, Table};
    let Some((heading, body)) = rows.split_first() else {
        return String::new();
    };
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(heading.clone());
    // Wrap to the terminal only when it has a sensible width (a pseudo-terminal may say 0).
    if table.width().is_some_and(|w| w >= 60) {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    for row in body {
        table.add_row(row.clone());
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A spinner with the elapsed time, shown while waiting for a VM to stop or start. It draws on
/// stderr, only when stderr is a terminal (and the caller wants it), so that it never mixes with
/// output that is read; it clears its line when dropped.
pub struct Spinner {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner saying `message`, if `enabled` and stderr is a terminal.
    pub fn start(message: &str, enabled: bool) -> Spinner {
        use std::io::IsTerminal;
        if !enabled || !io::stderr().is_terminal() {
            return Spinner {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let message = message.to_string();
        let thread = std::thread::spawn(move || {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let start = std::time::Instant::now();
            let mut frame = 0;
            loop {
                let line = format!(
                    "\r{} {message} {:.1}s",
                    FRAMES[frame % FRAMES.len()],
                    start.elapsed().as_secs_f64()
                );
                let mut out = io::stderr().lock();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
                drop(out);
                frame += 1;
                match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            let mut out = io::stderr().lock();
            let _ = out.write_all(b"\r\x1b[2K");
            let _ = out.flush();
        });
        Spinner {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A progress bar for a run over many VMs (VMs done of all, and the wave in hand), drawn on
/// stderr only when it is a terminal and the caller wants it. Lines said meanwhile are printed
/// above it.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar for `total` VMs, if `enabled` and stderr is a terminal.
    pub fn start(total: usize, enabled: bool) -> Progress {
        use std::io::IsTerminal;
        if !enabled || !io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} VMs  {msg}  {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    /// Says which wave is running.
    pub fn wave(&self, wave: usize, waves: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("wave {wave} of {waves}"));
        }
    }

    /// One more VM done.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints `line` (on stdout, or stderr when `to_stderr`) without breaking the bar.
    pub fn line(&self, line: &str, to_stderr: bool) {
        let print = || {
            if to_stderr {
                stderr_line(line);
            } else {
                script_line(line);
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["UUID".to_string(), "POOL".to_string()],
            vec!["ab".to_string(), "A".to_string()],
            vec!["abcdef".to_string(), "B".to_string()],
        ];
        assert_eq!(super::table(&rows), "UUID    POOL\nab      A\nabcdef  B\n");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let rows = vec![
            vec!["NAME".to_string(), "POOL".to_string()],
            vec!["名前".to_string(), "A".to_string()],
            vec!["web".to_string(), "B".to_string()],
        ];
        assert_eq!(super::table(&rows), "NAME  POOL\n名前  A\nweb   B\n");
    }
}
