//! Reusing shim disks across runs of the same image.
//!
//! Building a shim copies the image's kernels and initrds into a new ext4 filesystem, which costs
//! about half a second: 5 % of a fixture's cold boot, paid by every run. A run of an image that
//! has not changed since the last run reuses that run's shim instead.
//!
//! "Not changed" is judged the way build tools judge it: the image file's device, inode, size,
//! modification and status-change times (nanoseconds). Rewriting the file in place changes its
//! times; replacing it (as `nix build` and the fixture builder do) changes its inode. The key also
//! covers the adapted extlinux.conf and the harness version, so a different adaptation never
//! reuses a shim. Entries appear by renaming a complete directory into place, so a reader never
//! sees a half-written one, and concurrent runs need no lock: the loser of the rename race uses
//! the winner's entry.

use std::fs::{self, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::image::extlinux::Config;

/// Entries kept: more than the images a developer alternates between, few enough that the
/// directory stays small (a shim is the size of the image's kernels and initrds).
const KEEP: usize = 8;

/// The file inside an entry directory that QEMU attaches.
const DISK: &str = "boot.raw";

/// The file inside an entry directory that runs using the entry hold a shared `flock` on, and
/// whose modification time is the entry's last use.
const LOCK: &str = "in-use.lock";

/// How long [`ShimCache::get`] waits for an eviction of the entry in progress to finish.
const EVICTION_WAIT: Duration = Duration::from_secs(10);

/// A cached shim disk and the shared lock that keeps it from eviction while this lives: a run
/// attaches the disk to every scenario's QEMU (an overlay names it as its backing file), and
/// other runs that put new shims meanwhile must not remove it.
#[derive(Debug)]
pub struct ShimInUse {
    /// The disk to attach.
    pub disk: PathBuf,
    _hold: fs::File,
}

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

/// The shim cache in one directory.
#[derive(Debug, Clone)]
pub struct ShimCache {
    dir: PathBuf,
}

impl ShimCache {
    /// A cache in `dir`/shims (created when first written). A relative `dir` is made absolute
    /// against the current directory now: QEMU's overlays name the cached disk as their backing
    /// file, and qemu-img reads a relative backing path from the overlay's own directory.
    pub fn new(dir: &Path) -> ShimCache {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        ShimCache {
            dir: dir.join("shims"),
        }
    }

    /// The key of the shim for `image` showing `adapted` to U-Boot.
    pub fn key(image: &Path, adapted: &Config) -> io::Result<String> {
        let meta = fs::metadata(image)?;
        let mut hash = Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
        for n in [
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ] {
            hash.update(n.to_le_bytes());
        }
        hash.update(adapted.render().as_bytes());
        Ok(crate::hex::lower_hex(&hash.finalize()[..16]))
    }

    /// The cached disk for `key`, if a complete entry exists, held for use (see [`ShimInUse`])
    /// and marked as used now.
    pub fn get(&self, key: &str) -> Option<ShimInUse> {
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
        Some(ShimInUse { disk, _hold: hold })
    }

    /// Puts the disk at `built` into the cache under `key` (a hard link where the cache is on the
    /// same filesystem, else a copy; `built` stays) and returns its cached path. Errors leave the
    /// cache as it was.
    pub fn put(&self, key: &str, built: &Path) -> io::Result<ShimInUse> {
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

    /// Removes the least recently used entries beyond [`KEEP`], never `keep` and never one a
    /// run holds (see [`ShimInUse`]): those are skipped, and the cache may stay larger until
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
        if entries.len() < KEEP {
            return;
        }
        entries.sort();
        let mut excess = entries.len() + 1 - KEEP;
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

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn key_changes_when_the_image_is_rewritten_or_the_config_differs() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        fs::write(&image, b"one").unwrap();
        let a = config("LABEL a\n  LINUX /Image\n");
        let first = ShimCache::key(&image, &a).unwrap();
        assert_eq!(ShimCache::key(&image, &a).unwrap(), first);
        assert_ne!(
            ShimCache::key(&image, &config("LABEL b\n  LINUX /Image\n")).unwrap(),
            first
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&image, b"two").unwrap();
        assert_ne!(ShimCache::key(&image, &a).unwrap(), first);
    }

    #[test]
    fn put_then_get_returns_the_disk_and_a_second_put_of_the_same_key_keeps_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ShimCache::new(dir.path());
        assert!(cache.get("k").is_none());
        let built = dir.path().join("built.raw");
        fs::write(&built, b"shim").unwrap();
        let cached = cache.put("k", &built).unwrap().disk;
        assert_eq!(cache.get("k").map(|held| held.disk), Some(cached.clone()));
        assert_eq!(fs::read(&cached).unwrap(), b"shim");
        let other = dir.path().join("other.raw");
        fs::write(&other, b"again").unwrap();
        assert_eq!(cache.put("k", &other).unwrap().disk, cached);
        assert_eq!(fs::read(&cached).unwrap(), b"shim");
    }

    #[test]
    fn a_relative_cache_directory_gives_absolute_disk_paths() {
        let cache = ShimCache::new(Path::new("relative-cache"));
        let expected = std::env::current_dir()
            .unwrap()
            .join("relative-cache")
            .join("shims");
        assert_eq!(cache.dir, expected);
        assert!(cache.dir.is_absolute());
    }

    /// Puts `count` entries `k0`, `k1`, … in order, each used a little later than the one
    /// before, and lets go of them unless `hold` names them; returns the ones held.
    fn put_entries(cache: &ShimCache, dir: &Path, count: usize, hold: &[usize]) -> Vec<ShimInUse> {
        let mut held = Vec::new();
        for i in 0..count {
            let built = dir.join(format!("built-{i}.raw"));
            fs::write(&built, [i as u8]).unwrap();
            let entry = cache.put(&format!("k{i}"), &built).unwrap();
            if hold.contains(&i) {
                held.push(entry);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        held
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir.join("shims")).unwrap().count()
    }

    #[test]
    fn the_least_recently_used_entries_beyond_the_limit_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ShimCache::new(dir.path());
        put_entries(&cache, dir.path(), KEEP, &[]);
        // Used again: now the most recent, so k1 and k2 go first.
        drop(cache.get("k0").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(10));
        for i in KEEP..KEEP + 2 {
            let built = dir.path().join(format!("built-{i}.raw"));
            fs::write(&built, [i as u8]).unwrap();
            drop(cache.put(&format!("k{i}"), &built).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(entries(dir.path()), KEEP);
        assert!(cache.get("k0").is_some());
        assert!(cache.get("k1").is_none() && cache.get("k2").is_none());
        assert!(cache.get(&format!("k{}", KEEP + 1)).is_some());
    }

    #[test]
    fn an_entry_a_run_holds_is_not_removed_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ShimCache::new(dir.path());
        let held = put_entries(&cache, dir.path(), KEEP + 3, &[0]);
        assert!(held[0].disk.is_file(), "the oldest entry, held, was removed");
        assert_eq!(entries(dir.path()), KEEP);
        assert!(cache.get("k1").is_none());
        // Let go, it is the oldest again and the next put removes it.
        drop(held);
        let built = dir.path().join("built-last.raw");
        fs::write(&built, b"x").unwrap();
        drop(cache.put("last", &built).unwrap());
        assert!(cache.get("k0").is_none());
        assert_eq!(entries(dir.path()), KEEP);
    }
}
