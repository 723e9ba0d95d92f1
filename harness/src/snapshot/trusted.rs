//! Entries this process has checked. A scenario restores from an entry only after its seal and
//! `qemu-img check` pass, which costs a fraction of a second per scenario; in a run of many
//! scenarios from one entry, an entry whose files have not changed since this process checked
//! them is not read again. A file's version is its device, inode, size, mtime and ctime: a
//! write changes ctime, which no user can set back, so a changed byte shows as a new version.
//! `entry.json` is not among the files (each use touches its mtime, for eviction); the build
//! it names must be the one checked.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file's version: device, inode, size, mtime and ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(super) struct FileVersion(u64, u64, u64, i64, i64, i64, i64);

impl FileVersion {
    pub fn of(meta: &std::fs::Metadata) -> FileVersion {
        FileVersion(
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        )
    }

    /// Whether the file's last change (its ctime) was at least `settled` before `now`.
    pub fn changed_before(&self, now: SystemTime, settled: Duration) -> bool {
        let (secs, nanos) = (self.5, self.6);
        let Ok(secs) = u64::try_from(secs) else {
            return true;
        };
        let changed = UNIX_EPOCH + Duration::new(secs, nanos.clamp(0, 999_999_999) as u32);
        now.duration_since(changed).is_ok_and(|age| age >= settled)
    }
}

/// Entries checked by this process: the build checked and the versions of its disks then.
#[derive(Debug, Default)]
pub(super) struct Trusted(Mutex<HashMap<PathBuf, (String, Vec<FileVersion>)>>);

impl Trusted {
    /// Whether build `build` of `entry` was checked by this process and none of its `disks`
    /// changed since.
    pub fn still(&self, entry: &Path, build: &str, disks: &[String]) -> bool {
        let Ok(now) = versions(entry, disks) else {
            return false;
        };
        let checked = self.0.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .get(entry)
            .is_some_and(|(checked_build, then)| checked_build == build && *then == now)
    }

    /// Records that build `build` of `entry` passed every check with its disks as they are now.
    pub fn remember(&self, entry: &Path, build: &str, disks: &[String]) {
        if let Ok(now) = versions(entry, disks) {
            let mut checked = self.0.lock().unwrap_or_else(|p| p.into_inner());
            checked.insert(entry.to_owned(), (build.to_owned(), now));
        }
    }

    /// Forgets `entry` (it is being removed or rebuilt).
    pub fn forget(&self, entry: &Path) {
        let mut checked = self.0.lock().unwrap_or_else(|p| p.into_inner());
        checked.remove(entry);
    }
}

/// The versions of `disks` in `entry`, in order.
pub(super) fn versions(entry: &Path, disks: &[String]) -> io::Result<Vec<FileVersion>> {
    disks
        .iter()
        .map(|name| std::fs::metadata(entry.join(name)).map(|meta| FileVersion::of(&meta)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_until_one_of_its_files_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let disks = vec!["disk0.qcow2".to_owned()];
        std::fs::write(dir.path().join("disk0.qcow2"), "state").unwrap();
        let trusted = Trusted::default();
        assert!(!trusted.still(dir.path(), "b1", &disks));
        trusted.remember(dir.path(), "b1", &disks);
        assert!(trusted.still(dir.path(), "b1", &disks));
        // Same size: only the version tells.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(dir.path().join("disk0.qcow2"), "stAte").unwrap();
        assert!(!trusted.still(dir.path(), "b1", &disks));
    }

    #[test]
    fn another_build_under_the_same_name_is_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let disks = vec!["disk0.qcow2".to_owned()];
        std::fs::write(dir.path().join("disk0.qcow2"), "state").unwrap();
        let trusted = Trusted::default();
        trusted.remember(dir.path(), "b1", &disks);
        assert!(!trusted.still(dir.path(), "b2", &disks));
    }

    #[test]
    fn a_forgotten_entry_is_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = Trusted::default();
        trusted.remember(dir.path(), "b1", &[]);
        trusted.forget(dir.path());
        assert!(!trusted.still(dir.path(), "b1", &[]));
    }
}
