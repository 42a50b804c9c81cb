//! Running a helper program (xe, the host's QEMU) as a child process: an argv array, never a
//! shell; stdin closed; its own process group; stdout and stderr collected; killed when it
//! outlives its time limit.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// What a finished program printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

/// Why a program gave no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The program is not there.
    #[error("{program} was not found")]
    NotFound {
        /// The program looked for.
        program: String,
    },
    /// It could not be started, or waited for, for another reason.
    #[error("cannot run {program}: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// It did not finish in time and was killed.
    #[error("{program} did not finish within {secs} s and was stopped")]
    Timeout {
        /// The program.
        program: String,
        /// The limit, in seconds.
        secs: u64,
    },
}

/// Runs `program` with `args` and waits at most `limit` for it.
pub fn run(
    program: &OsStr,
    args: &[impl AsRef<OsStr>],
    limit: Duration,
) -> Result<Output, ProcessError> {
    let name = program.to_string_lossy().into_owned();
    let spawn_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ProcessError::NotFound {
            program: name.clone(),
        },
        _ => ProcessError::Spawn {
            program: name.clone(),
            reason: e.to_string(),
        },
    };
    let mut child = Command::new(program)
        .args(args)
        // Its own process group: a Ctrl-C or a dropped SSH session signals vgpu-admin, which
        // lets the call in hand finish, instead of killing xe in the middle of an operation.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    // Both pipes are drained while waiting, so a large output never blocks the child.
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status = match child.wait_timeout(limit).map_err(spawn_error)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProcessError::Timeout {
                program: name,
                secs: limit.as_secs(),
            });
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
