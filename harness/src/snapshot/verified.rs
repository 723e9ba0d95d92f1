//! An entry's record of its last full check, kept in the entry as `verified.json`, so that an
//! entry is hashed and `qemu-img check`ed once per version of its disks rather than once per
//! process: under `cargo nextest run` every scenario is a process of its own, and hashing the
//! saved RAM costs a few tenths of a second each time.
//!
//! The record names the build checked, the seals it was checked against and each disk's
//! version (device, inode, size, mtime and ctime, [`FileVersion`]). A disk written in any way
//! since, even with its old mtime put back, has a new ctime, which no user can set, and so no
//! longer matches: it is checked in full again. A disk replaced by another file has another
//! inode.
//!
//! A version is recorded only once its ctime is [`SETTLED`] old. The kernel stamps ctime from a
//! coarse clock (a tick of 1–10 ms), so two writes within one tick can leave the same ctime;
//! a write after a file had been still for longer than a tick always changes it.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::seal::DiskSeal;
use super::trusted::FileVersion;

/// The record's file name in an entry.
const RECORD: &str = "verified.json";

/// The largest record read: a build id, a few seals and versions.
const RECORD_LIMIT: u64 = 64 * 1024;

/// How long a disk must have been unchanged (by its ctime) before its version is recorded.
pub(super) const SETTLED: Duration = Duration::from_secs(1);

/// What `verified.json` holds.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    build: String,
    seals: Vec<DiskSeal>,
    versions: Vec<FileVersion>,
}

/// Whether the entry in `entry`, build `build` with `seals`, passed every check with its
/// `disks` as they are now (a record of an earlier process says so).
pub(super) fn still(entry: &Path, build: &str, seals: &[DiskSeal], disks: &[String]) -> bool {
    let Some(record) = read(entry) else {
        return false;
    };
    let Ok(now) = super::trusted::versions(entry, disks) else {
        return false;
    };
    record.build == build && record.seals == seals && record.versions == now
}

/// Records that build `build` of the entry in `entry` passed every check against `seals` with
/// its `disks` at `versions` (taken before the check began), if they are still at those
/// versions and have been for [`SETTLED`] (compared with `now`). Best effort: a record that
/// cannot be written only costs the next process a check.
pub(super) fn remember(
    entry: &Path,
    build: &str,
    seals: &[DiskSeal],
    disks: &[String],
    versions: &[FileVersion],
    settled: Duration,
    now: SystemTime,
) {
    let Ok(still) = super::trusted::versions(entry, disks) else {
        return;
    };
    if still != versions || !versions.iter().all(|v| v.changed_before(now, settled)) {
        return;
    }
    let record = Record {
        build: build.to_owned(),
        seals: seals.to_vec(),
        versions: versions.to_vec(),
    };
    let json = serde_json::to_vec(&record).expect("a record serialises");
    let _ = write(entry, &json);
}

fn read(entry: &Path) -> Option<Record> {
    let file = std::fs::File::open(entry.join(RECORD)).ok()?;
    let mut text = Vec::new();
    file.take(RECORD_LIMIT + 1).read_to_end(&mut text).ok()?;
    if text.len() as u64 > RECORD_LIMIT {
        return None;
    }
    serde_json::from_slice(&text).ok()
}

/// Writes the record whole or not at all: a temporary file in the entry, renamed into place.
fn write(entry: &Path, json: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::Builder::new().prefix(".verified-").tempfile_in(entry)?;
    std::io::Write::write_all(&mut file, json)?;
    file.persist(entry.join(RECORD)).map_err(|e| e.error)?;
    Ok(())
}

/// Forgets the record of the entry in `entry` (its disks were found wanting).
pub(super) fn forget(entry: &Path) {
    let _ = std::fs::remove_file(entry.join(RECORD));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::seal::seal;
    use crate::snapshot::trusted::versions;

    fn entry() -> (tempfile::TempDir, Vec<String>, Vec<DiskSeal>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk0.qcow2"), "saved ram").unwrap();
        let disks = vec!["disk0.qcow2".to_owned()];
        let seals = seal(dir.path(), &disks).unwrap();
        (dir, disks, seals)
    }

    fn remember_now(dir: &Path, disks: &[String], seals: &[DiskSeal], settled: Duration) {
        let versions = versions(dir, disks).unwrap();
        remember(dir, "b1", seals, disks, &versions, settled, SystemTime::now());
    }

    #[test]
    fn a_recorded_entry_is_still_verified_for_the_same_build_seals_and_versions_only() {
        let (dir, disks, seals) = entry();
        assert!(!still(dir.path(), "b1", &seals, &disks));
        remember_now(dir.path(), &disks, &seals, Duration::ZERO);
        assert!(still(dir.path(), "b1", &seals, &disks));
        assert!(!still(dir.path(), "b2", &seals, &disks), "another build");
        let mut other = seals.clone();
        other[0].digest = "00".repeat(32);
        assert!(!still(dir.path(), "b1", &other, &disks), "other seals");
    }

    #[test]
    fn a_disk_written_just_now_is_not_recorded() {
        let (dir, disks, seals) = entry();
        remember_now(dir.path(), &disks, &seals, Duration::from_secs(3600));
        assert!(!dir.path().join(RECORD).exists());
        assert!(!still(dir.path(), "b1", &seals, &disks));
    }

    #[test]
    fn a_disk_changed_between_the_versions_taken_and_the_record_is_not_recorded() {
        let (dir, disks, seals) = entry();
        let before = versions(dir.path(), &disks).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("disk0.qcow2"), "saved rAm").unwrap();
        remember(
            dir.path(),
            "b1",
            &seals,
            &disks,
            &before,
            Duration::ZERO,
            SystemTime::now(),
        );
        assert!(!dir.path().join(RECORD).exists());
    }

    #[test]
    fn a_damaged_or_oversized_record_is_not_believed() {
        let (dir, disks, seals) = entry();
        remember_now(dir.path(), &disks, &seals, Duration::ZERO);
        let record = dir.path().join(RECORD);
        let good = std::fs::read(&record).unwrap();
        std::fs::write(&record, &good[..good.len() / 2]).unwrap();
        assert!(!still(dir.path(), "b1", &seals, &disks));
        let mut padded = good.clone();
        padded.extend(std::iter::repeat_n(b' ', RECORD_LIMIT as usize));
        std::fs::write(&record, padded).unwrap();
        assert!(!still(dir.path(), "b1", &seals, &disks));
    }
}
