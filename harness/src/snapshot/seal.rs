//! A cache entry's seal: the size and SHA-256 of each of its disks, recorded when the entry is
//! built and checked before it is restored.
//!
//! `qemu-img check` sees a broken qcow2 structure but not a changed byte of the saved RAM: QEMU
//! would restore that machine and the scenario would run on it. Hashing the disks (about
//! 120 MiB for a 1 GiB guest, most of it the saved RAM) costs a fraction of a restore: SHA-256
//! runs at the CPU's SHA extensions' speed, and the dev profile builds `sha2` optimised.
//!
//! The digest is of the bytes alone, read start to end. Where a filesystem puts holes in a
//! file QEMU just wrote changes once it has written the file back, so a digest of the data
//! extents (as the cache key's image digest is) would refuse a sound entry.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex::lower_hex;

/// One disk's size and digest, as `entry.json` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DiskSeal {
    /// The disk's file name in the entry.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
}

/// Why an entry's disks do not match its seal.
#[derive(Debug, thiserror::Error)]
pub enum SealBroken {
    #[error("entry.json records no size and digest of {name} (an entry from an older harness)")]
    Unsealed { name: String },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is {found} bytes, sealed at {sealed}", path.display())]
    Size { path: PathBuf, sealed: u64, found: u64 },
    #[error("{} does not match the digest recorded when the entry was built", path.display())]
    Digest { path: PathBuf },
}

/// Seals the disks `names` of the entry in `dir`.
pub(super) fn seal(dir: &Path, names: &[String]) -> Result<Vec<DiskSeal>, SealBroken> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let (size, digest) = measure(&path)?;
            Ok(DiskSeal {
                name: name.clone(),
                size,
                sha256: lower_hex(&digest),
            })
        })
        .collect()
}

/// Checks the disks `names` of the entry in `dir` against `seals`: sizes first (free), then
/// digests.
pub(super) fn verify(dir: &Path, names: &[String], seals: &[DiskSeal]) -> Result<(), SealBroken> {
    let sealed = |name: &String| {
        seals
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| SealBroken::Unsealed { name: name.clone() })
    };
    for name in names {
        let seal = sealed(name)?;
        let path = dir.join(name);
        let found = std::fs::metadata(&path)
            .map_err(|source| SealBroken::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if found != seal.size {
            return Err(SealBroken::Size {
                path,
                sealed: seal.size,
                found,
            });
        }
    }
    for name in names {
        let seal = sealed(name)?;
        let path = dir.join(name);
        let (_, digest) = measure(&path)?;
        if lower_hex(&digest) != seal.sha256 {
            return Err(SealBroken::Digest { path });
        }
    }
    Ok(())
}

fn measure(path: &Path) -> Result<(u64, [u8; 32]), SealBroken> {
    let read = |source| SealBroken::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => other.map_err(read)?,
        };
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hash.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_with(contents: &[u8]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk0.qcow2"), contents).unwrap();
        (dir, vec!["disk0.qcow2".to_owned()])
    }

    #[test]
    fn an_unchanged_entry_matches_its_seal() {
        let (dir, names) = entry_with(b"saved ram");
        let seals = seal(dir.path(), &names).unwrap();
        assert_eq!(seals[0].size, 9);
        verify(dir.path(), &names, &seals).unwrap();
    }

    #[test]
    fn one_changed_byte_breaks_the_seal() {
        let (dir, names) = entry_with(b"saved ram");
        let seals = seal(dir.path(), &names).unwrap();
        std::fs::write(dir.path().join("disk0.qcow2"), b"saved rAm").unwrap();
        let broken = verify(dir.path(), &names, &seals).unwrap_err();
        assert!(matches!(broken, SealBroken::Digest { .. }), "{broken}");
    }

    #[test]
    fn a_grown_disk_or_one_without_a_seal_is_refused() {
        let (dir, names) = entry_with(b"saved ram");
        let seals = seal(dir.path(), &names).unwrap();
        std::fs::write(dir.path().join("disk0.qcow2"), b"saved ram!").unwrap();
        assert!(matches!(
            verify(dir.path(), &names, &seals),
            Err(SealBroken::Size {
                sealed: 9,
                found: 10,
                ..
            })
        ));
        assert!(matches!(
            verify(dir.path(), &names, &[]),
            Err(SealBroken::Unsealed { .. })
        ));
    }
}
