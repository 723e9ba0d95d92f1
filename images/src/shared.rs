//! The cache outside the checkout: fixtures that take minutes to make (the systemd ones) are kept
//! where every checkout and CI run on the machine finds them, and handed to a checkout's own
//! cache by a hard link (or a sparse copy across filesystems).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::BuildError;

/// The shared cache: `$R2S_CACHE_DIR/fixtures`, else `$XDG_CACHE_HOME/r2s-harness/fixtures`, else
/// `~/.cache/r2s-harness/fixtures`; `None` when none of the variables is set.
pub fn dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("R2S_CACHE_DIR")
        .map(|d| d.join("fixtures"))
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("r2s-harness/fixtures")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/r2s-harness/fixtures")))
}

/// Makes `to` (which must not exist) a hard link to `from`, or where that cannot be (another
/// filesystem), a copy that keeps `from`'s holes. Images are never written after they are
/// finished, so a link shares nothing that changes.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    sparse_copy(from, to)
}

/// The directory `<prefix><key's first 32 characters>` in `shared` (the shared cache, whose lock
/// the caller holds): returned when it exists, else made by `make` and renamed into place, so
/// that it appears whole or not at all. `make` gets the path to create (which does not exist
/// yet) and a work directory beside it, removed afterwards. What killed builds left
/// (`.<prefix>*`) and the directories of other keys are removed: each is large, and no key but
/// the current one is asked for again by this checkout (another checkout's is remade if needed).
pub fn ensure_keyed_dir(
    shared: &Path,
    prefix: &str,
    key: &str,
    make: impl FnOnce(&Path, &Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    let dir = shared.join(format!("{prefix}{}", &key[..32]));
    if dir.is_dir() {
        return Ok(dir);
    }
    let work_prefix = format!(".{prefix}");
    remove_dirs_named(shared, &work_prefix, None);
    let work = tempfile::Builder::new()
        .prefix(&work_prefix)
        .tempdir_in(shared)
        .map_err(BuildError::io("creating a temporary directory in", shared))?;
    let staged = work.path().join("made");
    make(&staged, work.path())?;
    std::fs::rename(&staged, &dir).map_err(BuildError::io("renaming into", &dir))?;
    remove_dirs_named(shared, prefix, Some(&dir));
    Ok(dir)
}

/// Removes the directories in `dir` whose names start with `prefix`, except `keep`: what killed
/// builds left, or what was made for another key. Failures are ignored: a directory that cannot
/// be removed now is tried again by the next build.
pub fn remove_dirs_named(dir: &Path, prefix: &str, keep: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named = entry.file_name().to_string_lossy().starts_with(prefix);
        if named && Some(path.as_path()) != keep && path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Copies `from` to `to` block by block, seeking over blocks of zeros so the copy stays sparse.
fn sparse_copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    const BLOCK: usize = 1 << 16;
    let mut source = File::open(from).map_err(BuildError::io("opening", from))?;
    let mut dest = File::create(to).map_err(BuildError::io("creating", to))?;
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    loop {
        let n = source.read(&mut buf).map_err(BuildError::io("reading", from))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            dest.seek(SeekFrom::Current(n as i64))
                .map_err(BuildError::io("seeking in", to))?;
        } else {
            dest.write_all(&buf[..n]).map_err(BuildError::io("writing", to))?;
        }
        len += n as u64;
    }
    dest.set_len(len)
        .map_err(BuildError::io("setting the length of", to))?;
    dest.sync_all().map_err(BuildError::io("syncing", to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_copy_keeps_contents_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let mut bytes = vec![0u8; 4 << 20];
        bytes[..5].copy_from_slice(b"start");
        let end = bytes.len() - 3;
        bytes[end..].copy_from_slice(b"end");
        std::fs::write(&from, &bytes).unwrap();
        let to = dir.path().join("to");
        sparse_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        let allocated = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(allocated < 1 << 20, "{allocated} bytes allocated");
    }

    #[test]
    fn remove_dirs_named_keeps_the_named_one_and_others() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["tree-a", "tree-b", "other"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("tree-file"), b"").unwrap();
        remove_dirs_named(dir.path(), "tree-", Some(&dir.path().join("tree-b")));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "tree-b", "tree-file"]);
    }

    #[test]
    fn keyed_dir_is_made_once_and_replaces_other_keys() {
        let shared = tempfile::tempdir().unwrap();
        let make = |text: &'static [u8]| {
            move |dir: &Path, work: &Path| {
                assert!(work.is_dir() && !dir.exists());
                std::fs::create_dir(dir).unwrap();
                std::fs::write(dir.join("file"), text).unwrap();
                Ok(())
            }
        };
        let key_a = "a".repeat(64);
        let a = ensure_keyed_dir(shared.path(), "thing-", &key_a, make(b"a")).unwrap();
        assert_eq!(a, shared.path().join(format!("thing-{}", &key_a[..32])));
        let again = ensure_keyed_dir(shared.path(), "thing-", &key_a, |_, _| panic!("made twice")).unwrap();
        assert_eq!(again, a);
        let b = ensure_keyed_dir(shared.path(), "thing-", &"b".repeat(64), make(b"b")).unwrap();
        assert_eq!(std::fs::read(b.join("file")).unwrap(), b"b");
        let left: Vec<_> = std::fs::read_dir(shared.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [b]);
    }

    #[test]
    fn link_or_copy_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::write(&from, b"image").unwrap();
        let to = dir.path().join("to");
        link_or_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"image");
    }
}
