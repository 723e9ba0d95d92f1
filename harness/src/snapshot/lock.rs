//! An exclusive `flock` on a cache entry's lock file, so that of several processes (nextest runs
//! each test in its own) only one boots to build the entry while the others wait for it.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::SnapshotError;

/// How often a waiting process retries the lock.
const POLL: Duration = Duration::from_millis(100);

/// A held lock; released on drop, or when the process dies (the kernel drops `flock` locks with
/// the last descriptor), so a killed run never leaves an entry locked.
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
}

impl EntryLock {
    /// Waits up to `limit` for the lock on `path`, creating the file if needed.
    ///
    /// Polls a non-blocking lock ([`File::try_lock`], an `flock` on Linux) rather than blocking
    /// in it: a blocked thread could not be given a timeout, and the runtime's one thread must
    /// keep serving other scenarios.
    pub async fn acquire(path: &Path, limit: Duration) -> Result<EntryLock, SnapshotError> {
        let io_err = |source| SnapshotError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        let give_up = Instant::now() + limit;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(EntryLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(error)) if error.kind() == ErrorKind::Interrupted => {}
                Err(TryLockError::Error(error)) => return Err(io_err(error)),
            }
            if Instant::now() >= give_up {
                return Err(SnapshotError::LockTimeout {
                    path: PathBuf::from(path),
                    waited: limit,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lock_makes_another_wait_and_then_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry.lock");
        let held = EntryLock::acquire(&path, Duration::from_secs(1)).await.unwrap();
        // A second open file description conflicts even within one process, as in another.
        let waited = EntryLock::acquire(&path, Duration::from_millis(300)).await;
        assert!(
            matches!(&waited, Err(SnapshotError::LockTimeout { path: p, .. }) if *p == path),
            "{waited:?}"
        );
        drop(held);
        EntryLock::acquire(&path, Duration::from_millis(300))
            .await
            .unwrap();
    }
}
