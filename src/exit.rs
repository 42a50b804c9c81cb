//! Exit statuses and the error that carries one to `main`.

/// The process exit status, as documented in `--help` (from [`Status::help`]) and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: success.
    Success,
    /// 1: the operation failed (xe, database, script error).
    Failed,
    /// 2: invalid usage or input (unknown option, bad value, vm-id taken).
    Usage,
    /// 3: not found (VM not registered, or not on this host).
    NotFound,
    /// 4: cancelled at the confirmation prompt.
    Cancelled,
    /// 5: done, and something needs attention: `check` found drift or clashes it did not fix,
    /// `adopt` skipped VMs, `status` could not read the host, `doctor` found problems.
    Attention,
    /// The vm-pre-start hook's answer to xenopsd.
    Hook(HookExit),
    /// 128 + the signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP): interrupted; the work in hand
    /// finished its step and put the VM's power state back first.
    Interrupted(i32),
}

/// What the vm-pre-start hook tells xenopsd: its exit status means exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookExit {
    /// 0: all is well (or the VM is not ours); the start goes on.
    Go,
    /// 1: xenopsd logs what the hook printed; the start goes on.
    Logged,
    /// 2 (any other status): xenopsd aborts the start and shows what the hook printed.
    Abort,
}

impl HookExit {
    /// The exit code xenopsd reads.
    pub fn code(self) -> u8 {
        match self {
            HookExit::Go => 0,
            HookExit::Logged => 1,
            HookExit::Abort => 2,
        }
    }
}

/// The documented statuses of a command, for `--help`.
const DOCUMENTED: &[(&str, &str)] = &[
    ("0", "success"),
    ("1", "the operation failed (database, xe, script error)"),
    ("2", "invalid usage or input (unknown option, bad pool/priority/uuid/vm-id, vm-id taken)"),
    ("3", "not found (VM not registered, or not on this host)"),
    ("4", "cancelled at the confirmation prompt (no, end of input, Ctrl-C there)"),
    ("5", "done, and something needs attention (check: drift; adopt: VMs skipped; status: host not read; doctor: problems)"),
    ("129/130/143", "interrupted by SIGHUP/SIGINT/SIGTERM: the step in hand finished, the VM's power state was put back"),
];

impl Status {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::NotFound => 3,
            Status::Cancelled => 4,
            Status::Attention => 5,
            Status::Hook(exit) => exit.code(),
            Status::Interrupted(signal) => u8::try_from(128 + signal).unwrap_or(1),
        }
    }

    /// The status for a numeric code a script asked for; unknown codes become [`Status::Failed`].
    pub fn from_code(code: i64) -> Status {
        match code {
            0 => Status::Success,
            2 => Status::Usage,
            3 => Status::NotFound,
            4 => Status::Cancelled,
            5 => Status::Attention,
            129..=159 => Status::Interrupted((code - 128) as i32),
            _ => Status::Failed,
        }
    }

    /// The exit statuses, as `--help` shows them.
    pub fn help() -> String {
        let mut out = String::from("Exit status:");
        for (code, meaning) in DOCUMENTED {
            out.push_str(&format!("\n  {code:<11}  {meaning}"));
        }
        out
    }
}

/// A failure with its exit status: `message` is one line for stderr; `detail` (optional) adds
/// context such as the offending script line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit status.
    pub status: Status,
    /// One clear sentence.
    pub message: String,
    /// Extra lines shown under the message.
    pub detail: Option<String>,
}

impl Failure {
    /// Prints the failure on stderr: `error: <message>`, then its detail lines.
    pub fn report(&self) {
        if !self.message.is_empty() {
            crate::output::stderr_line(&format!("error: {}", self.message));
        }
        if let Some(detail) = &self.detail {
            crate::output::stderr_line(detail);
        }
    }

    /// A failure with `status` and `message`.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            detail: None,
        }
    }

    /// Invalid usage or input (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Status::Usage, message)
    }

    /// The operation failed (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Status::Failed, message)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        let status = if e.is_invalid_input() {
            Status::Usage
        } else if e.is_not_found() {
            Status::NotFound
        } else {
            Status::Failed
        };
        Failure::new(status, e.to_string())
    }
}

impl From<crate::model::ModelError> for Failure {
    fn from(e: crate::model::ModelError) -> Self {
        Failure::usage(e.to_string())
    }
}

impl From<crate::scripts::ScriptError> for Failure {
    fn from(e: crate::scripts::ScriptError) -> Self {
        Failure::failed(e.to_string())
    }
}
