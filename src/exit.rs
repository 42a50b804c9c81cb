//! Exit statuses and the error that carries one to `main`.

/// The process exit status, as documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 128 + the signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP): interrupted; the work in hand
    /// finished its step and put the VM's power state back first.
    Interrupted(i32),
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
}

impl Status {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Interrupted(signal) => u8::try_from(128 + signal).unwrap_or(1),
            Status::Success => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::NotFound => 3,
            Status::Cancelled => 4,
        }
    }

    /// The status for a numeric code a script asked for; unknown codes become [`Status::Failed`].
    pub fn from_code(code: i64) -> Status {
        match code {
            0 => Status::Success,
            2 => Status::Usage,
            3 => Status::NotFound,
            4 => Status::Cancelled,
            129..=159 => Status::Interrupted((code - 128) as i32),
            _ => Status::Failed,
        }
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
