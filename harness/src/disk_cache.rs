//! Caches of disk files that runs attach, keyed by what they were made from: the shim disks
//! of adapted images ([`crate::adapt`]) and unpacked compressed images ([`crate::unpacked`]).
//!
//! An entry is a directory holding the disk and a lock file. Entries appear by renaming a
//! complete directory into place, so a reader never sees a half-written one. A run that uses
//! an entry holds a shared `flock` on its lock file, and eviction (least recently used first,
//! beyond the cache's size) takes it exclusively, so no run's disk is removed under it.

use std::fs::{self, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file inside an entry directory that QEMU attaches.
const DISK: &str = "disk.raw";

/// The file inside an entry directory that runs using the entry hold a shared `flock` on, and
/// whose modification time is the entry's last use.
const LOCK: &str = "in-use.lock";

/// How long [`DiskCache::get`] waits for an eviction of the entry in progress to finish.
const EVICTION_WAIT: Duration = Duration::from_secs(10);

/// The default cache directory: `$R2S_CACHE_DIR`, else `$XDG_CACHE_HOME/r2s-harness`, else
/// `~/.cache/r2s-harness`. `None` when none of these can be told (no HOME).
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("R2S_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("r2s-harness")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("r2s-harness")))
}

/// A cached disk and the shared lock that keeps it from eviction while this lives: a run
/// attaches the disk to every scenario's QEMU (an overlay names it as its backing file), and
/// other runs that put new entries meanwhile must not remove it.
#[derive(Debug)]
pub struct DiskInUse {
    /// The disk to attach.
    pub disk: PathBuf,
    _hold: fs::File,
}

/// One cache of disks in one directory.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
    keep: usize,
}

impl DiskCache {
    /// A cache in `dir` (created when first written) that keeps at most `keep` entries. A
    /// relative `dir` is made absolute against the current directory now: QEMU's overlays name
    /// the cached disk as their backing file, and qemu-img reads a relative backing path from
    /// the overlay's own directory.
    pub fn new(dir: &Path, keep: usize) -> DiskCache {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        DiskCache { dir, keep }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached disk for `key`, if a complete entry exists, held for use (see [`DiskInUse`])
    /// and marked as used now.
    pub fn get(&self, key: &str) -> Option<DiskInUse> {
        let entry = self.dir.join(key);
        let disk = entry.join(DISK);
        if !disk.is_file() {
            return None;
        }
        let hold = open_lock(&entry).ok()?;
        let give_up = Instant::now() + EVICTION_WAIT;
        loop {
            match hold.try_lock_shared() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => return None,
            }
        }
        // An eviction that held the lock before us removed the entry.
        if !disk.is_file() {
            return None;
        }
        let _ = hold.set_modified(SystemTime::now());
        Some(DiskInUse { disk, _hold: hold })
    }

    /// Puts the disk at `built` into the cache under `key` (a hard link where the cache is on the
    /// same filesystem, else a copy; `built` stays) and returns its cached path. Errors leave the
    /// cache as it was.
    pub fn put(&self, key: &str, built: &Path) -> io::Result<DiskInUse> {
        crate::private::create_dir_all(&self.dir)?;
        let staging = tempfile::Builder::new().prefix(".new-").tempdir_in(&self.dir)?;
        let disk = staging.path().join(DISK);
        if fs::hard_link(built, &disk).is_err() {
            fs::copy(built, &disk)?;
        }
        fs::File::create(staging.path().join(LOCK))?;
        let entry = self.dir.join(key);
        // When another run put the same entry first, the rename fails and its disk is as good
        // as ours; either way the entry is held like one found in the cache.
        let renamed = fs::rename(staging.path(), &entry);
        let held = self.get(key);
        self.evict(key);
        match (held, renamed) {
            (Some(held), _) => Ok(held),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(io::Error::other(format!(
                "{}: removed as soon as it was put",
                entry.display()
            ))),
        }
    }

    /// Takes the lock that makes one run at a time build the entry for `key`, waiting at most
    /// `wait` for a run building it now; the lock is let go, and its file removed, when the
    /// [`BuildLock`] is dropped. A run that gets it looks the entry up again before building:
    /// the one it waited for may have put it.
    pub fn build_lock(&self, key: &str, wait: Duration) -> io::Result<BuildLock> {
        crate::private::create_dir_all(&self.dir)?;
        let path = self.build_lock_path(key);
        let open = || {
            fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        };
        let mut file = open()?;
        let give_up = Instant::now() + wait;
        loop {
            match file.try_lock() {
                // The holder before us removed the file it held: ours may be that one, no
                // longer the path's, and another run may hold the path's new file. Only the
                // file the path names now is the lock.
                Ok(()) if !names(&path, &file) => file = open()?,
                Ok(()) => return Ok(BuildLock { path, _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{}: another run held it for more than {wait:?}", path.display()),
                    ))
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    fn build_lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!(".{key}.building.lock"))
    }

    /// Removes the least recently used entries beyond [`self.keep`], never `keep` and never one a
    /// run holds (see [`DiskInUse`]): those are skipped, and the cache may stay larger until
    /// they are let go.
    fn evict(&self, keep: &str) {
        let Ok(read) = fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(SystemTime, PathBuf)> = read
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name != keep
            })
            .filter_map(|e| Some((last_use(&e.path())?, e.path())))
            .collect();
        if entries.len() < self.keep {
            return;
        }
        entries.sort();
        let mut excess = entries.len() + 1 - self.keep;
        for (_, path) in &entries {
            if excess == 0 {
                break;
            }
            let Ok(lock) = open_lock(path) else {
                continue;
            };
            // Held exclusively while removing, so that a run looking the entry up waits and
            // then finds it gone, instead of taking a disk that is being removed.
            if lock.try_lock().is_ok() {
                let _ = fs::remove_dir_all(path);
                excess -= 1;
            }
        }
    }
}

/// The lock of one entry's build ([`DiskCache::build_lock`]). Its file is removed when this
/// is dropped, while still held, so that the cache does not fill with lock files of builds
/// long done or failed; a run that waited on the removed file takes the lock on a new one.
#[derive(Debug)]
pub struct BuildLock {
    path: PathBuf,
    /// Held open (and locked) until dropped.
    _file: fs::File,
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        // Removed before the file is closed (after this), which lets the lock go.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether `path` names the open `file` (the same device and inode).
fn names(path: &Path, file: &fs::File) -> bool {
    match (fs::metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
        _ => false,
    }
}

/// How a file is told unchanged, the way build tools tell it: its device, inode, size, and
/// modification and status-change times (nanoseconds). Rewriting the file in place changes its
/// times; replacing it (as `nix build` and the fixture builder do) changes its inode.
pub fn file_identity(path: &Path) -> io::Result<Vec<u8>> {
    let meta = fs::metadata(path)?;
    let fields = [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
        meta.ctime() as u64,
        meta.ctime_nsec() as u64,
    ];
    Ok(fields.iter().flat_map(|n| n.to_le_bytes()).collect())
}

/// The lock file of `entry`, created if missing (entries of older harnesses have none); fails
/// once the entry is gone.
fn open_lock(entry: &Path) -> io::Result<fs::File> {
    fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(entry.join(LOCK))
}

/// When an entry was last used: its lock file's modification time, else (an entry of an older
/// harness) the directory's.
fn last_use(entry: &Path) -> Option<SystemTime> {
    fs::metadata(entry.join(LOCK))
        .or_else(|_| fs::metadata(entry))
        .ok()?
        .modified()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(300);

    #[test]
    fn a_build_lock_is_held_by_one_run_at_a_time_and_its_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path(), 2);
        let first = cache.build_lock("k", SHORT).unwrap();
        let path = dir.path().join(".k.building.lock");
        assert!(path.exists());
        let busy = cache.build_lock("k", SHORT).unwrap_err();
        assert_eq!(busy.kind(), io::ErrorKind::TimedOut);
        drop(first);
        assert!(!path.exists(), "the lock file is left behind");
        let again = cache.build_lock("k", SHORT).unwrap();
        assert!(cache.build_lock("k", SHORT).is_err(), "two runs hold it");
        drop(again);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_run_waiting_on_a_removed_lock_file_takes_the_path_s_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path(), 2);
        let first = cache.build_lock("k", SHORT).unwrap();
        let waiter = std::thread::spawn({
            let cache = DiskCache::new(dir.path(), 2);
            move || cache.build_lock("k", Duration::from_secs(10))
        });
        // The waiter has the first file open, waiting on it.
        std::thread::sleep(Duration::from_millis(250));
        drop(first);
        let waited = waiter.join().unwrap().unwrap();
        let path = dir.path().join(".k.building.lock");
        assert!(path.exists(), "the waiter holds a file the path names");
        assert!(cache.build_lock("k", SHORT).is_err(), "a third run took it too");
        drop(waited);
        assert!(!path.exists());
    }
}
