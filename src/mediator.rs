//! The GPU mediator's admin socket (`/var/vgpu/admin.sock`): one request per connection.
//!
//! Request, 16 bytes little-endian: `u32 magic = 0x56475055` ("VGPU"), `u32 command`,
//! `u32 param1`, `u32 param2`. Answer: `u32 magic`, `u32 status` (0 success), `u32 data_len`,
//! then `data_len` bytes of UTF-8 text; then the mediator closes the connection. A request it
//! does not accept is closed without an answer.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket's usual path.
pub const DEFAULT_SOCKET: &str = "/var/vgpu/admin.sock";
/// The protocol's magic number, "VGPU".
pub const MAGIC: u32 = 0x5647_5055;
/// How long one request may take, connecting to the last byte of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most text an answer may carry.
const MAX_ANSWER: u32 = 16 * 1024 * 1024;

/// The mediator's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// 0x10: metrics (param1 1: Prometheus text format).
    Metrics { prometheus: bool },
    /// 0x11: GPU health.
    Health,
    /// 0x12: re-read every VM's controls from the database.
    Reload,
    /// 0x15: active VM connections.
    Connections,
}

impl Command {
    fn code(self) -> (u32, u32) {
        match self {
            Command::Metrics { prometheus } => (0x10, u32::from(prometheus)),
            Command::Health => (0x11, 0),
            Command::Reload => (0x12, 0),
            Command::Connections => (0x15, 0),
        }
    }
}

/// Why a request got no useful answer.
#[derive(Debug, thiserror::Error)]
pub enum MediatorError {
    /// Nothing listens there (the mediator is not running).
    #[error(
        "cannot connect to the GPU mediator at {path}: {reason} (is the mediator daemon running?)"
    )]
    NotThere {
        /// The socket.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// It did not answer in time.
    #[error("the GPU mediator at {0} did not answer within 5 s")]
    Timeout(PathBuf),
    /// It answered with something that is not the protocol (or closed without answering).
    #[error("the GPU mediator at {path} gave no valid answer: {why}")]
    BadAnswer {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// It answered with an error status.
    #[error("the GPU mediator answered with status {status}: {text}")]
    Refused {
        /// Its status.
        status: u32,
        /// Its text.
        text: String,
    },
}

/// Sends `command` to the mediator at `socket` and returns its text.
pub fn request(socket: &Path, command: Command) -> Result<String, MediatorError> {
    let not_there = |e: std::io::Error| MediatorError::NotThere {
        path: socket.to_path_buf(),
        reason: e.to_string(),
    };
    let timed = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            MediatorError::Timeout(socket.to_path_buf())
        } else {
            MediatorError::BadAnswer {
                path: socket.to_path_buf(),
                why: e.to_string(),
            }
        }
    };
    let mut stream = UnixStream::connect(socket).map_err(not_there)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(timed)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(timed)?;
    let (code, param1) = command.code();
    let mut packet = Vec::with_capacity(16);
    for word in [MAGIC, code, param1, 0] {
        packet.extend_from_slice(&word.to_le_bytes());
    }
    stream.write_all(&packet).map_err(timed)?;
    let mut header = [0u8; 12];
    stream.read_exact(&mut header).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            MediatorError::BadAnswer {
                path: socket.to_path_buf(),
                why: "it closed the connection without answering".into(),
            }
        } else {
            timed(e)
        }
    })?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (magic, status, len) = (word(0), word(4), word(8));
    if magic != MAGIC {
        return Err(MediatorError::BadAnswer {
            path: socket.to_path_buf(),
            why: format!("magic {magic:#010x}, not {MAGIC:#010x}"),
        });
    }
    if len > MAX_ANSWER {
        return Err(MediatorError::BadAnswer {
            path: socket.to_path_buf(),
            why: format!("an answer of {len} bytes"),
        });
    }
    let mut data = vec![0u8; len as usize];
    stream.read_exact(&mut data).map_err(timed)?;
    let text = String::from_utf8_lossy(&data).trim_end().to_string();
    if status != 0 {
        return Err(MediatorError::Refused { status, text });
    }
    Ok(text)
}

/// The vm_ids of the VMs the mediator lists as connected, in its order, each once.
///
/// The connections text is a table for people, in sections: a line that does not begin with a
/// number is a heading ("Active VM connections: 2", "VM ID  FD ...", "Server sockets:"). A line
/// that begins with a number is a VM connection when the last heading speaks of VMs (its first
/// word is the vm_id); under any other heading (server sockets and their descriptors) it is not.
/// A `vm_id=N` or `vm=N` word names a VM anywhere. A vm_id outside `u32` is not one.
pub fn connected_vm_ids(text: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = Vec::new();
    let mut vm_section = false;
    for line in text.lines() {
        let tagged = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .find_map(|w| {
                let (key, value) = w.split_once('=')?;
                matches!(key, "vm_id" | "vm").then(|| value.parse::<u32>().ok())?
            });
        let first = line.split_whitespace().next().unwrap_or("");
        let numbered = first.chars().next().is_some_and(|c| c.is_ascii_digit());
        if !numbered && tagged.is_none() && !first.is_empty() {
            vm_section = line
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("vm"));
        }
        let row = (numbered && vm_section)
            .then(|| first.parse::<u32>().ok())
            .flatten();
        if let Some(id) = tagged.or(row) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::connected_vm_ids;

    #[test]
    fn connected_rows_begin_with_a_vm_id_or_tag_it() {
        let text = "Active VM connections: 3\nVM ID  Pool  Since\n7      A     01:00\n12     B     01:02\n\
                    7      A     01:03\n99999999999 too big\nServer sockets:\n  4  /var/vgpu/admin.sock\n\
                    9 /var/xen/qemu/root-3/tmp/vgpu.sock\nconn 4: vm_id=31, pool=B\nvm=5 fd=12\nvm_id=x\n";
        assert_eq!(connected_vm_ids(text), vec![7, 12, 31, 5]);
        // Rows under a heading that is not about VMs are not VMs.
        assert!(connected_vm_ids("Server sockets:\n4 admin\n5 qemu\n").is_empty());
        assert!(connected_vm_ids("No active connections\n").is_empty());
    }
}
