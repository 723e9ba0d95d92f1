//! The cache directory a run uses when none is given: the default one if it can be written,
//! else a per-run one under the temporary directory. In a Nix build sandbox `HOME` is
//! `/homeless-shelter`, which cannot be created; the run still works, said once, and leaves
//! nothing behind.

use std::path::{Path, PathBuf};

use r2s_harness::adapt::default_cache_dir;
use tempfile::TempDir;

/// Where this run caches: `dir`, and the per-run directory behind it when the default could
/// not be used (removed when this is dropped, at the run's end).
#[derive(Debug)]
pub struct RunCache {
    pub dir: PathBuf,
    _per_run: Option<TempDir>,
}

/// The cache a run without `--cache-dir` uses: the default cache directory when it can be
/// created and written, else a per-run directory under `$TMPDIR` (saying why, once). `None`
/// when not even that can be made.
pub fn usable_default() -> Option<RunCache> {
    let unusable = match default_cache_dir() {
        Some(dir) => match writable(&dir) {
            Ok(()) => return Some(RunCache { dir, _per_run: None }),
            Err(e) => format!("cannot use the cache {}: {e}", dir.display()),
        },
        None => "no cache directory: neither R2S_CACHE_DIR, XDG_CACHE_HOME nor HOME is set".to_owned(),
    };
    match r2s_harness::scratch::dir("cache") {
        Ok(per_run) => {
            super::say(format!(
                "{unusable}; using a per-run cache in {}, removed when the run ends",
                per_run.path().display()
            ));
            Some(RunCache {
                dir: per_run.path().to_owned(),
                _per_run: Some(per_run),
            })
        }
        Err(e) => {
            super::say(format!("{unusable}; and no per-run cache either: {e}"));
            None
        }
    }
}

/// The cache opening `image` needs: none for a raw image, which is read where it is; for a
/// compressed one, [`usable_default`] (where it is unpacked).
pub fn for_image(image: &Path) -> Option<RunCache> {
    // An image that cannot be read is said so by whatever opens it next.
    match r2s_harness::image::packed::packing_of(image) {
        Ok(Some(_)) => usable_default(),
        _ => None,
    }
}

/// Whether `dir` can be created and written: a probe file is made in it and removed.
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(".r2s-probe-")
        .tempfile_in(dir)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_cannot_be_created_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(writable(&file.join("cache")).is_err());
        assert!(writable(&dir.path().join("cache")).is_ok());
        assert!(dir.path().join("cache").is_dir());
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            0,
            "the probe is removed"
        );
    }
}
