//! A cache entry's seal: the size and digest of each of its files (the disks and the saved
//! machine state), recorded when the entry is built and checked before it is restored.
//!
//! `qemu-img check` sees a broken qcow2 structure but nothing of the saved RAM: QEMU would
//! restore a changed byte of it and the scenario would run on that machine.
//!
//! The digest is of the content alone, read as the bytes are: a BLAKE3 of each 4 KiB block
//! that is not all zeros, with its offset. The state file is mostly holes (QEMU writes each RAM
//! page at its own offset of a file as large as the RAM; a 1 GiB guest uses 80 MB of it), so
//! only the data extents are read (`SEEK_DATA`); and where a filesystem puts holes changes once
//! a file is written back, so a hole and a block of zeros count alike.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hex::lower_hex;

/// One disk's size and digest, as `entry.json` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DiskSeal {
    /// The disk's file name in the entry.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content's digest (see the module's comment), in hex.
    pub digest: String,
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

/// Seals the files `names` of the entry in `dir`.
pub(super) fn seal(dir: &Path, names: &[String]) -> Result<Vec<DiskSeal>, SealBroken> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let (size, digest) = measure(&path)?;
            Ok(DiskSeal {
                name: name.clone(),
                size,
                digest: lower_hex(&digest),
            })
        })
        .collect()
}

/// Checks the files `names` of the entry in `dir` against `seals`: sizes first (free), then
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
        if lower_hex(&digest) != seal.digest {
            return Err(SealBroken::Digest { path });
        }
    }
    Ok(())
}

/// A block of the content digest: all zeros, it counts as a hole.
const BLOCK: usize = 4096;

fn measure(path: &Path) -> Result<(u64, [u8; 32]), SealBroken> {
    let read = |source| SealBroken::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read)?;
    let size = file.metadata().map_err(read)?.len();
    let mut hash = blake3::Hasher::new();
    hash.update(&size.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let Some((start, end)) = super::key::data_extent(&file, pos).map_err(read)? else {
            break;
        };
        // Whole blocks from the block the extent starts in.
        let mut at = start - start % BLOCK as u64;
        while at < end {
            let want = buf.len().min((end - at) as usize);
            let n = match file.read_at(&mut buf[..want], at) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other.map_err(read)?,
            };
            if n == 0 {
                break;
            }
            for (i, block) in buf[..n].chunks(BLOCK).enumerate() {
                if block.iter().any(|&b| b != 0) {
                    hash.update(&(at + (i * BLOCK) as u64).to_le_bytes());
                    hash.update(block);
                }
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok((size, *hash.finalize().as_bytes()))
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
    fn holes_and_written_zeros_seal_alike_and_a_byte_in_a_hole_breaks_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["state".to_owned()];
        let path = dir.path().join("state");
        // Sparse: a page of data 1 MiB in, holes around it, 4 MiB long.
        let file = File::create(&path).unwrap();
        file.set_len(4 << 20).unwrap();
        file.write_all_at(&[7u8; 4096], 1 << 20).unwrap();
        let seals = seal(dir.path(), &names).unwrap();
        // Dense: the same bytes, zeros written out.
        let mut dense = vec![0u8; 4 << 20];
        dense[1 << 20..(1 << 20) + 4096].fill(7);
        std::fs::write(&path, &dense).unwrap();
        verify(dir.path(), &names, &seals).unwrap();
        // One byte where the sparse file had a hole.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[1], 3 << 20)
            .unwrap();
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
