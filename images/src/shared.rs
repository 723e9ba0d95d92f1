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
    fn link_or_copy_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::write(&from, b"image").unwrap();
        let to = dir.path().join("to");
        link_or_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"image");
    }
}
