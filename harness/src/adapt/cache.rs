//! Reusing shim disks across runs of the same image.
//!
//! Building a shim copies the image's kernels and initrds into a new ext4 filesystem, which costs
//! about half a second: 5 % of a fixture's cold boot, paid by every run. A run of an image that
//! has not changed since the last run reuses that run's shim instead.
//!
//! "Not changed" is judged the way build tools judge it ([`file_identity`]). The key also covers
//! the adapted extlinux.conf and the harness version, so a different adaptation never reuses a
//! shim. Entries are kept as [`DiskCache`] keeps them; concurrent runs need no lock: the loser of
//! the rename race uses the winner's entry.

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::disk_cache::{file_identity, DiskCache, DiskInUse};

/// Entries kept: more than the images a developer alternates between, few enough that the
/// directory stays small (a shim is the size of the image's kernels and initrds).
const KEEP: usize = 8;

/// A shim disk held for a run: see [`DiskInUse`].
pub type ShimInUse = DiskInUse;

/// The shim cache in one directory.
#[derive(Debug, Clone)]
pub struct ShimCache {
    disks: DiskCache,
}

impl ShimCache {
    /// A cache in `dir`/shims (created when first written); see [`DiskCache::new`].
    pub fn new(dir: &Path) -> ShimCache {
        ShimCache {
            disks: DiskCache::new(&dir.join("shims"), KEEP),
        }
    }

    /// The key of the shim for `image` that [`super::Shim::shows`] `shows` (the adapted
    /// configuration and what was added to an initrd).
    pub fn key(image: &Path, shows: &str) -> io::Result<String> {
        let mut hash = Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
        hash.update(file_identity(image)?);
        hash.update(shows.as_bytes());
        Ok(crate::hex::lower_hex(&hash.finalize()[..16]))
    }

    /// The cached shim for `key`, if there is one, held for use.
    pub fn get(&self, key: &str) -> Option<ShimInUse> {
        self.disks.get(key)
    }

    /// Puts the shim at `built` into the cache under `key`; see [`DiskCache::put`].
    pub fn put(&self, key: &str, built: &Path) -> io::Result<ShimInUse> {
        self.disks.put(key, built)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn config(text: &str) -> String {
        crate::image::extlinux::Config::parse(text).unwrap().render()
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
        assert_eq!(cache.disks.dir(), expected);
        assert!(cache.disks.dir().is_absolute());
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
