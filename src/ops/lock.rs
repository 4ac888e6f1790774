//! The node lock: `<data_dir>/lapor-node.lock`, an advisory `flock(2)` lock (through rustix: std's `File::try_lock` needs Rust 1.89, above this crate's MSRV) held by `serve` for
//! as long as it runs, so that commands that must not run beside a live node (`keys rotate`,
//! `restore` into the directory) can tell, and so that one SQLite data directory is never
//! served twice.
//!
//! - `serve` on SQLite takes it **exclusively**: a second `serve` on the same directory is
//!   refused naming the first one's pid.
//! - `serve` on PostgreSQL takes it **shared**: several processes of one node may run from one
//!   directory (README, "Several processes on one database").
//! - `keys rotate` takes it exclusively for its duration: refused while any `serve` holds it.
//!
//! The lock goes with the process (the kernel releases it on exit, crash included); the pid
//! written in the file is only for the message.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "lapor-node.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A running node holds it.
    #[error("the node is running (pid {pid}); stop it first")]
    Running {
        /// The holder's pid as it wrote it (`?` when unreadable).
        pid: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {cause}")]
    Io {
        /// The lock file.
        path: String,
        /// The error.
        cause: std::io::Error,
    },
}

/// How the lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Alone: no other holder of any kind.
    Exclusive,
    /// Beside other shared holders (several `serve` processes on one PostgreSQL database).
    Shared,
}

/// A held node lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
    path: PathBuf,
}

impl NodeLock {
    /// Takes the lock of the node whose data directory is `data_dir` (created 0700 if missing),
    /// without waiting, and writes this process's pid into it.
    pub fn acquire(data_dir: &Path, mode: Mode) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |cause| LockError::Io {
            path: path.display().to_string(),
            cause,
        };
        crate::crypto::keys::private_dir(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let op = match mode {
            Mode::Exclusive => rustix::fs::FlockOperation::NonBlockingLockExclusive,
            Mode::Shared => rustix::fs::FlockOperation::NonBlockingLockShared,
        };
        match rustix::fs::flock(&file, op) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Running {
                    pid: if pid.is_empty() {
                        "?".into()
                    } else {
                        pid.to_owned()
                    },
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        if mode == Mode::Exclusive {
            file.set_len(0).map_err(io)?;
        }
        file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_refuses_any_other_holder_shared_admits_shared() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeLock::acquire(dir.path(), Mode::Exclusive).unwrap();
        let again = NodeLock::acquire(dir.path(), Mode::Exclusive).unwrap_err();
        assert!(
            again
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{again}"
        );
        assert!(NodeLock::acquire(dir.path(), Mode::Shared).is_err());
        drop(first);
        let a = NodeLock::acquire(dir.path(), Mode::Shared).unwrap();
        let _b = NodeLock::acquire(dir.path(), Mode::Shared).unwrap();
        assert!(NodeLock::acquire(dir.path(), Mode::Exclusive).is_err());
        drop(a);
    }
}
