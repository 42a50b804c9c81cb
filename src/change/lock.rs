//! One lock per VM, so that changes to a VM run one after the other: a byte of the lock file
//! beside the database (`vgpu_config.db.lock`), chosen by the VM's uuid, locked with an
//! open-file-description lock. The kernel releases it when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file cannot be opened.
    #[error("cannot open the lock file {path}: {reason}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// Another process held it for longer than we wait.
    #[error("another vgpu-admin has been changing VM {uuid} for over {secs} s; nothing was changed (try again later)")]
    Timeout {
        /// The VM.
        uuid: String,
        /// How long we waited.
        secs: u64,
    },
}

/// A held VM lock; dropping it releases the lock.
#[derive(Debug)]
pub struct VmLock {
    file: File,
    offset: i64,
}

/// The lock file of the database at `db`.
pub fn lock_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The byte a VM's lock covers (FNV-1a of its uuid): distinct VMs practically never share one.
fn offset(uuid: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uuid.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 2) as i64
}

fn fcntl_lock(file: &File, offset: i64, kind: libc::c_short) -> std::io::Result<bool> {
    // SAFETY: a zeroed flock is a valid value; fcntl gets a pointer to it for this call only.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset;
    fl.l_len = 1;
    // SAFETY: the descriptor is open for the lifetime of `file`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

fn open(db: &Path) -> Result<File, LockError> {
    let path = lock_file(db);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| LockError::Open {
            path,
            reason: e.to_string(),
        })
}

/// Takes VM `uuid`'s lock if it is free.
pub fn try_lock(db: &Path, uuid: &str) -> Result<Option<VmLock>, LockError> {
    let file = open(db)?;
    let offset = offset(uuid);
    match fcntl_lock(&file, offset, libc::F_WRLCK as libc::c_short) {
        Ok(true) => Ok(Some(VmLock { file, offset })),
        Ok(false) => Ok(None),
        Err(e) => Err(LockError::Open {
            path: lock_file(db),
            reason: e.to_string(),
        }),
    }
}

/// Takes VM `uuid`'s lock, waiting up to `limit` for another process to release it;
/// `waiting` is called once if it has to wait.
pub fn lock(
    db: &Path,
    uuid: &str,
    limit: Duration,
    waiting: impl FnOnce(),
) -> Result<VmLock, LockError> {
    let start = Instant::now();
    let mut waiting = Some(waiting);
    loop {
        if let Some(lock) = try_lock(db, uuid)? {
            return Ok(lock);
        }
        if start.elapsed() >= limit {
            return Err(LockError::Timeout {
                uuid: uuid.to_string(),
                secs: limit.as_secs(),
            });
        }
        if let Some(say) = waiting.take() {
            say();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for VmLock {
    fn drop(&mut self) {
        let _ = fcntl_lock(&self.file, self.offset, libc::F_UNLCK as libc::c_short);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        let first = try_lock(&db, "a").unwrap().expect("free");
        // Another open file description (as another process would have) cannot take it.
        assert!(try_lock(&db, "a").unwrap().is_none());
        assert!(
            try_lock(&db, "b").unwrap().is_some(),
            "other VMs are independent"
        );
        let timed_out = lock(&db, "a", Duration::from_millis(50), || {});
        assert!(matches!(timed_out, Err(LockError::Timeout { .. })));
        drop(first);
        assert!(try_lock(&db, "a").unwrap().is_some());
    }
}
