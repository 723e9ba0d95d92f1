//! An exclusive `flock` on a cache entry's lock file, so that of several processes (nextest runs
//! each test in its own) only one boots to build the entry while the others wait for it.
//!
//! The holder of a lock may remove its file ([`EntryLock::remove`], when the entry goes), so a
//! lock counts only if it is on the file at the path when it is taken: a process that opened
//! the file before it was removed locks a file nobody else will open, and tries again on the
//! path's new one.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
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
        let give_up = Instant::now() + limit;
        let timed_out = || SnapshotError::LockTimeout {
            path: PathBuf::from(path),
            waited: limit,
        };
        'open: loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(io_err)?;
            loop {
                match file.try_lock() {
                    Ok(()) if is_at(&file, path).map_err(io_err)? => return Ok(EntryLock { _file: file }),
                    // Removed by the holder before us: this file is nobody's lock any more.
                    Ok(()) if Instant::now() < give_up => continue 'open,
                    Ok(()) => return Err(timed_out()),
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(error)) if error.kind() == ErrorKind::Interrupted => {}
                    Err(TryLockError::Error(error)) => return Err(io_err(error)),
                }
                if Instant::now() >= give_up {
                    return Err(timed_out());
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Removes the lock file at `path` (this lock's) and lets the lock go: for an entry that is
    /// gone, so that its lock file does not stay behind. A process waiting on the old file
    /// then takes the lock on a new one (see the module's comment).
    pub fn remove(self, path: &Path) -> Result<(), SnapshotError> {
        let removed = std::fs::remove_file(path);
        drop(self);
        match removed {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(SnapshotError::Io {
                path: path.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Whether `file` is the file at `path` now.
fn is_at(file: &File, path: &Path) -> std::io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(at_path) => Ok(open.dev() == at_path.dev() && open.ino() == at_path.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
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

    #[tokio::test]
    async fn a_process_waiting_on_a_removed_lock_file_waits_for_the_new_ones_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry.lock");
        let evicting = EntryLock::acquire(&path, Duration::ZERO).await.unwrap();
        let waiting = tokio::spawn({
            let path = path.clone();
            async move { EntryLock::acquire(&path, Duration::from_secs(1)).await }
        });
        // Let the waiter open the file the holder is about to remove.
        tokio::time::sleep(POLL * 2).await;
        evicting.remove(&path).unwrap();
        assert!(!path.exists());
        // A newcomer creates the file again and takes the lock on it.
        let building = EntryLock::acquire(&path, Duration::ZERO).await.unwrap();
        // The waiter's file is gone from the path: holding it would make two holders.
        let waited = waiting.await.unwrap();
        assert!(
            matches!(&waited, Err(SnapshotError::LockTimeout { .. })),
            "{waited:?}"
        );
        drop(building);
        EntryLock::acquire(&path, Duration::ZERO).await.unwrap();
    }
}
