//! Content digests kept beside the snapshot cache, so that an image is hashed once per version
//! rather than once per process: under `cargo nextest run` every scenario is a process of its
//! own, and hashing a real NixOS image (2–4 GB) costs seconds each time.
//!
//! A record is named by the file's identity (device, inode, size, mtime and ctime, as the shim
//! cache keys an image): a file changed in any way, even rewritten in place with its old mtime
//! put back, has a new ctime and so a new identity, and is hashed again. Concurrent first runs
//! hash it once: the others wait on the record's lock and read what the first wrote.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::key::content_digest;
use crate::disk_cache::{file_identity, DiskCache};
use crate::hex::lower_hex;

/// How long a process waits for another that is hashing the same file version.
const HASHING_WAIT: Duration = Duration::from_secs(15 * 60);

/// Digests of file versions, kept in a directory.
#[derive(Debug, Clone)]
pub struct DigestStore {
    dir: PathBuf,
}

impl DigestStore {
    /// A store in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> DigestStore {
        DigestStore { dir }
    }

    /// The content digest of `path` ([`content_digest`]), from the store when this version of
    /// the file was hashed before, else hashed now and recorded. A store that cannot be read
    /// or written only costs the hashing.
    pub fn digest(&self, path: &Path) -> io::Result<[u8; 32]> {
        let identity = file_identity(path)?;
        let name = lower_hex(&Sha256::digest(&identity))[..32].to_owned();
        let record = self.dir.join(format!("{name}.blake3"));
        if let Some(digest) = read_record(&record) {
            return Ok(digest);
        }
        // One process hashes; the others wait and read its record.
        let lock = DiskCache::new(&self.dir, 0).build_lock(&name, HASHING_WAIT).ok();
        if let Some(digest) = read_record(&record) {
            return Ok(digest);
        }
        let digest = content_digest(path)?;
        // Recorded only if the file is still the version hashed.
        if lock.is_some() && file_identity(path)? == identity {
            let _ = write_record(&record, &digest);
        }
        Ok(digest)
    }
}

/// A record's digest: 64 lowercase hex digits, nothing else.
fn read_record(record: &Path) -> Option<[u8; 32]> {
    let text = std::fs::read(record).ok()?;
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        if pair.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        digest[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(digest)
}

/// Writes a record whole or not at all: a temporary file beside it, renamed into place.
fn write_record(record: &Path, digest: &[u8; 32]) -> io::Result<()> {
    let dir = record.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".digest-").tempfile_in(dir)?;
    io::Write::write_all(&mut file, lower_hex(digest).as_bytes())?;
    file.persist(record).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_version_is_hashed_once_and_its_record_read_after() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image");
        std::fs::write(&file, b"the image's bytes").unwrap();
        let store = DigestStore::new(dir.path().join("digests"));
        let first = store.digest(&file).unwrap();
        assert_eq!(first, content_digest(&file).unwrap());
        let records: Vec<_> = std::fs::read_dir(dir.path().join("digests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "blake3"))
            .collect();
        assert_eq!(records.len(), 1);
        // A record is what later processes read: one that says otherwise is believed, which
        // shows that the file was not hashed again.
        std::fs::write(&records[0], "ab".repeat(32)).unwrap();
        assert_eq!(store.digest(&file).unwrap(), [0xab; 32]);
    }

    #[test]
    fn a_changed_file_is_a_new_version_and_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image");
        std::fs::write(&file, b"one").unwrap();
        let store = DigestStore::new(dir.path().join("digests"));
        let before = store.digest(&file).unwrap();
        // Same size, same mtime put back: only the ctime tells.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let after = store.digest(&file).unwrap();
        assert_ne!(before, after);
        assert_eq!(after, content_digest(&file).unwrap());
    }

    #[test]
    fn a_damaged_record_is_not_believed() {
        for text in ["", "zz", &"AB".repeat(32), &"ab".repeat(33)] {
            let dir = tempfile::tempdir().unwrap();
            let record = dir.path().join("r.blake3");
            std::fs::write(&record, text).unwrap();
            assert_eq!(read_record(&record), None, "{text:?}");
        }
    }
}
