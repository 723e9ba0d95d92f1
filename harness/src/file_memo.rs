//! What was read from a file, remembered for the rest of the process per version of the file
//! (device, inode, size, mtime, ctime: [`crate::disk_cache::file_identity`]). A run reads the
//! same image for several purposes (the adaptation, the root disk's bus, the root device, the
//! facts scenarios see), and a test process lists its trials from the image before it runs one;
//! each read unpacks the initrd or walks the root filesystem again.

use std::path::Path;
use std::sync::Mutex;

/// A few files' worth: a run reads one image, a test process a handful.
const REMEMBERED: usize = 16;

/// Values computed from files, each under the file's version and a detail of what was read.
pub struct FileMemo<V> {
    seen: Mutex<Vec<(Vec<u8>, String, V)>>,
}

impl<V: Clone> FileMemo<V> {
    /// An empty memo, for a `static`.
    pub const fn new() -> FileMemo<V> {
        FileMemo {
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The value remembered for this version of `file` and `detail`, else `compute`'s, which
    /// is remembered if it is `Ok` and the file is still the version it was computed from.
    pub fn get_or_try<E>(
        &self,
        file: &Path,
        detail: &str,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let Ok(identity) = crate::disk_cache::file_identity(file) else {
            return compute();
        };
        let lock = || self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, value)) = lock().iter().find(|(i, d, _)| *i == identity && d == detail) {
            return Ok(value.clone());
        }
        let value = compute()?;
        if crate::disk_cache::file_identity(file).is_ok_and(|now| now == identity) {
            let mut seen = lock();
            if seen.len() >= REMEMBERED {
                seen.remove(0);
            }
            seen.push((identity, detail.to_owned(), value.clone()));
        }
        Ok(value)
    }

    /// [`FileMemo::get_or_try`] for a computation that cannot fail.
    pub fn get_or(&self, file: &Path, detail: &str, compute: impl FnOnce() -> V) -> V {
        self.get_or_try(file, detail, || Ok::<V, std::convert::Infallible>(compute()))
            .unwrap_or_else(|never| match never {})
    }
}

impl<V: Clone> Default for FileMemo<V> {
    fn default() -> Self {
        FileMemo::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_file_version_is_read_once_and_a_rewritten_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image");
        std::fs::write(&file, b"one").unwrap();
        let memo = FileMemo::new();
        let reads = Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            std::fs::read(&file).unwrap()
        };
        assert_eq!(memo.get_or(&file, "all", read), b"one");
        assert_eq!(memo.get_or(&file, "all", read), b"one");
        assert_eq!(reads.get(), 1);
        // Another detail of the same file is another value.
        memo.get_or(&file, "other", read);
        assert_eq!(reads.get(), 2);
        // The same length written again: a new ctime, so a new version.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"two").unwrap();
        assert_eq!(memo.get_or(&file, "all", read), b"two");
        assert_eq!(reads.get(), 3);
    }

    #[test]
    fn a_failed_read_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image");
        std::fs::write(&file, b"x").unwrap();
        let memo: FileMemo<u8> = FileMemo::new();
        assert_eq!(memo.get_or_try(&file, "", || Err::<u8, &str>("no")), Err("no"));
        assert_eq!(memo.get_or_try(&file, "", || Ok::<u8, &str>(1)), Ok(1));
    }
}
