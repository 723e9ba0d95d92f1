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

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::image::extlinux::Config;

/// Entries kept: more than the images a developer alternates between, few enough that the
/// directory stays small (a shim is the size of the image's kernels and initrds).
const KEEP: usize = 8;

/// The file inside an entry directory that QEMU attaches.
const DISK: &str = "boot.raw";

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

    /// The cached disk for `key`, if a complete entry exists.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        let disk = self.dir.join(key).join(DISK);
        disk.is_file().then_some(disk)
    }

    /// Puts the disk at `built` into the cache under `key` (a hard link where the cache is on the
    /// same filesystem, else a copy; `built` stays) and returns its cached path. Errors leave the
    /// cache as it was.
    pub fn put(&self, key: &str, built: &Path) -> io::Result<PathBuf> {
        crate::private::create_dir_all(&self.dir)?;
        let staging = tempfile::Builder::new().prefix(".new-").tempdir_in(&self.dir)?;
        let disk = staging.path().join(DISK);
        if fs::hard_link(built, &disk).is_err() {
            fs::copy(built, &disk)?;
        }
        let entry = self.dir.join(key);
        match fs::rename(staging.path(), &entry) {
            Ok(()) => {}
            // Another run put the same entry first; its disk is as good as ours.
            Err(_) if self.get(key).is_some() => {}
            Err(e) => return Err(e),
        }
        self.evict(key);
        Ok(entry.join(DISK))
    }

    /// Removes the oldest entries beyond [`KEEP`], never `keep`. Best effort: a run in progress
    /// holds its shim open through QEMU, and on Linux removing it does not disturb that run.
    fn evict(&self, keep: &str) {
        let Ok(read) = fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = read
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name != keep
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() < KEEP {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() + 1 - KEEP] {
            let _ = fs::remove_dir_all(path);
        }
    }
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
        assert_eq!(cache.get("k"), None);
        let built = dir.path().join("built.raw");
        fs::write(&built, b"shim").unwrap();
        let cached = cache.put("k", &built).unwrap();
        assert_eq!(cache.get("k"), Some(cached.clone()));
        assert_eq!(fs::read(&cached).unwrap(), b"shim");
        let other = dir.path().join("other.raw");
        fs::write(&other, b"again").unwrap();
        assert_eq!(cache.put("k", &other).unwrap(), cached);
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

    #[test]
    fn old_entries_beyond_the_limit_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ShimCache::new(dir.path());
        for i in 0..KEEP + 3 {
            let built = dir.path().join(format!("built-{i}.raw"));
            fs::write(&built, [i as u8]).unwrap();
            cache.put(&format!("k{i}"), &built).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let left = fs::read_dir(dir.path().join("shims")).unwrap().count();
        assert_eq!(left, KEEP);
        assert!(cache.get(&format!("k{}", KEEP + 2)).is_some());
        assert!(cache.get("k0").is_none());
    }
}
