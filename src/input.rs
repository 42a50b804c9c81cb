//! Reading lines from standard input without a buffer of our own, so that a confirmation and
//! the shell's piped commands read the same stream in turn, and a signal ends the wait: a read
//! interrupted by SIGINT, SIGTERM or SIGHUP returns that signal instead of going on.

/// What a read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its newline.
    Text(String),
    /// End of input.
    End,
    /// A signal arrived while waiting.
    Interrupted(i32),
}

/// Reads one line from standard input, a byte at a time.
pub fn read_line() -> Line {
    let mut bytes = Vec::new();
    loop {
        if let Some(signal) = crate::interrupt::pending() {
            return Line::Interrupted(signal);
        }
        // Wait in short slices: a signal may be delivered to another thread of the process, and
        // would not cut this wait short.
        let mut fd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        if unsafe { libc::poll(&mut fd, 1, 100) } == 0 {
            continue;
        }
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a live, writable byte.
        let n = unsafe { libc::read(0, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 if byte == b'\n' => break,
            1 => bytes.push(byte),
            0 if bytes.is_empty() => return Line::End,
            0 => break,
            _ => {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue; // the loop's first line tells a signal of ours from another
                }
                if bytes.is_empty() {
                    return Line::End;
                }
                break;
            }
        }
    }
    Line::Text(String::from_utf8_lossy(&bytes).into_owned())
}
