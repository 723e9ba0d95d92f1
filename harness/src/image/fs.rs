//! Filesystems inside partitions: telling ext4, vfat and f2fs apart by their superblocks, and
//! reading files from ext4 without mounting anything.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ext4_view::{Ext4, Ext4Error, Ext4Read};

use super::error::ImageError;
use super::partition::{Partition, Table};

/// What a partition holds, as told by its superblock magic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// ext2, ext3 or ext4 (one magic, 0xEF53; U-Boot's ext4 driver reads all three).
    Ext4 {
        /// The volume name (`mke2fs -L`), if set.
        label: Option<String>,
    },
    /// FAT12, FAT16 or FAT32.
    Vfat {
        /// The boot sector's volume label, if set (not "NO NAME").
        label: Option<String>,
    },
    /// F2FS (U-Boot cannot read it).
    F2fs {
        /// The volume name, if set.
        label: Option<String>,
    },
    /// None of the above.
    Unknown,
}

/// How many bytes from the start of a partition [`FsKind::probe`] wants to see.
pub const PROBE_LEN: usize = 4096;

const EXT_SUPERBLOCK: usize = 1024;
const EXT_MAGIC: [u8; 2] = [0x53, 0xef];
const EXT_MAGIC_OFFSET: usize = EXT_SUPERBLOCK + 0x38;
const EXT_LABEL_OFFSET: usize = EXT_SUPERBLOCK + 0x78;
const F2FS_SUPERBLOCK: usize = 1024;
const F2FS_MAGIC: [u8; 4] = 0xf2f5_2010u32.to_le_bytes();
const F2FS_LABEL_OFFSET: usize = F2FS_SUPERBLOCK + 0x7c;
const F2FS_LABEL_UNITS: usize = 512;

impl FsKind {
    /// Tells the filesystem from the first bytes of a partition (pass [`PROBE_LEN`] bytes, or
    /// all of a smaller partition). Superblock magics are checked before the FAT boot sector
    /// because `mke2fs` leaves the first kilobyte alone, so a reformatted partition can keep
    /// an old FAT boot sector.
    pub fn probe(head: &[u8]) -> FsKind {
        if head.get(EXT_MAGIC_OFFSET..EXT_MAGIC_OFFSET + 2) == Some(&EXT_MAGIC) {
            let label = head
                .get(EXT_LABEL_OFFSET..EXT_LABEL_OFFSET + 16)
                .and_then(nul_terminated);
            return FsKind::Ext4 { label };
        }
        if head.get(F2FS_SUPERBLOCK..F2FS_SUPERBLOCK + 4) == Some(&F2FS_MAGIC) {
            let end = (F2FS_LABEL_OFFSET + 2 * F2FS_LABEL_UNITS).min(head.len());
            let label = head.get(F2FS_LABEL_OFFSET..end).and_then(utf16_nul_terminated);
            return FsKind::F2fs { label };
        }
        if let Some(label) = fat_label(head) {
            return FsKind::Vfat { label };
        }
        FsKind::Unknown
    }

    /// The label, whatever the filesystem.
    pub fn label(&self) -> Option<&str> {
        match self {
            FsKind::Ext4 { label } | FsKind::Vfat { label } | FsKind::F2fs { label } => label.as_deref(),
            FsKind::Unknown => None,
        }
    }
}

impl fmt::Display for FsKind {
    /// `ext4 labelled "NIXOS_BOOT"`, `vfat`, `no known filesystem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FsKind::Ext4 { .. } => "ext4",
            FsKind::Vfat { .. } => "vfat",
            FsKind::F2fs { .. } => "f2fs",
            FsKind::Unknown => return f.write_str("no known filesystem"),
        };
        match self.label() {
            Some(label) => write!(f, "{name} labelled {label:?}"),
            None => f.write_str(name),
        }
    }
}

fn nul_terminated(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    (!text.is_empty()).then_some(text)
}

fn utf16_nul_terminated(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    let text = String::from_utf16_lossy(&units);
    (!text.is_empty()).then_some(text)
}

/// `Some(label)` if `head` starts with a FAT boot sector.
fn fat_label(head: &[u8]) -> Option<Option<String>> {
    let sector = head.get(..512)?;
    let jump = sector[0] == 0xeb || sector[0] == 0xe9;
    let bytes_per_sector = u16::from_le_bytes([sector[11], sector[12]]);
    if !jump || sector[510..] != [0x55, 0xaa] || ![512, 1024, 2048, 4096].contains(&bytes_per_sector) {
        return None;
    }
    // FAT32 keeps its extended BPB (and so the label) further in than FAT12/16.
    let label_at = if &sector[0x52..0x5a] == b"FAT32   " {
        0x47
    } else if sector[0x36..0x3e].starts_with(b"FAT") {
        0x2b
    } else {
        return None;
    };
    let label = String::from_utf8_lossy(&sector[label_at..label_at + 11])
        .trim_end()
        .to_owned();
    Some((!label.is_empty() && label != "NO NAME").then_some(label))
}

/// Reads the first bytes of a partition and tells its filesystem.
pub fn probe_filesystem(image: &Path, partition: &Partition) -> Result<FsKind, ImageError> {
    let file = File::open(image).map_err(|error| ImageError::Open {
        image: image.to_owned(),
        error,
    })?;
    let len = partition.size().min(PROBE_LEN as u64) as usize;
    let mut head = vec![0u8; len];
    file.read_exact_at(&mut head, partition.offset())
        .map_err(|error| ImageError::Read {
            image: image.to_owned(),
            what: format!("partition {}", partition.index),
            error,
        })?;
    Ok(FsKind::probe(&head))
}

/// Gives ext4-view the bytes of one partition, refusing reads outside it.
struct PartitionReader {
    file: File,
    start: u64,
    len: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the filesystem asks for bytes {start}..{end}, past the end of its partition ({len} bytes)")]
struct OutsidePartition {
    start: u64,
    end: u64,
    len: u64,
}

impl Ext4Read for PartitionReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let end = start_byte.saturating_add(dst.len() as u64);
        if end > self.len {
            return Err(Box::new(OutsidePartition {
                start: start_byte,
                end,
                len: self.len,
            }));
        }
        self.file.read_exact_at(dst, self.start + start_byte)?;
        Ok(())
    }
}

/// An ext4 filesystem in one partition of an image, opened for reading.
pub struct Ext4Volume {
    image: PathBuf,
    partition: u32,
    fs: Ext4,
}

impl fmt::Debug for Ext4Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ext4Volume")
            .field("image", &self.image)
            .field("partition", &self.partition)
            .finish()
    }
}

impl Ext4Volume {
    /// Opens the ext4 filesystem of a partition; fails with [`ImageError::NotExt4`] if the
    /// partition holds something else.
    pub fn open(image: &Path, partition: &Partition) -> Result<Ext4Volume, ImageError> {
        let found = probe_filesystem(image, partition)?;
        if !matches!(found, FsKind::Ext4 { .. }) {
            return Err(ImageError::NotExt4 {
                image: image.to_owned(),
                partition: partition.index,
                found,
            });
        }
        let file = File::open(image).map_err(|error| ImageError::Open {
            image: image.to_owned(),
            error,
        })?;
        let reader = PartitionReader {
            file,
            start: partition.offset(),
            len: partition.size(),
        };
        let fs = Ext4::load(Box::new(reader)).map_err(|e| ImageError::Filesystem {
            image: image.to_owned(),
            partition: partition.index,
            reason: e.to_string(),
        })?;
        Ok(Ext4Volume {
            image: image.to_owned(),
            partition: partition.index,
            fs,
        })
    }

    /// Opens the ext4 filesystem of partition `index` (1-based) of an image.
    pub fn open_index(image: &Path, index: u32) -> Result<Ext4Volume, ImageError> {
        let table = Table::read(image)?;
        Ext4Volume::open(image, table.partition(index)?)
    }

    /// The partition's number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The volume name from the superblock, if set.
    pub fn label(&self) -> Option<String> {
        let label = self.fs.label().to_str().ok()?.to_owned();
        (!label.is_empty()).then_some(label)
    }

    /// The contents of a file; `path` is absolute within the partition. Symlinks are followed
    /// inside the partition.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ImageError> {
        self.fs.read(path).map_err(|e| self.file_error(path, e))
    }

    /// The size of a file and its first `len` bytes (fewer if the file is shorter), without
    /// reading the rest: enough to judge a kernel by its header without loading tens of MiB.
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        let mut file = self.fs.open(path).map_err(|e| self.file_error(path, e))?;
        let size = file.metadata().len();
        let mut head = vec![0u8; len.min(usize::try_from(size).unwrap_or(usize::MAX))];
        let mut filled = 0;
        while filled < head.len() {
            match file.read_bytes(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(self.file_error(path, e)),
            }
        }
        head.truncate(filled);
        Ok((size, head))
    }

    /// The contents of a file as UTF-8 text.
    pub fn read_to_string(&self, path: &str) -> Result<String, ImageError> {
        let bytes = self.read(path)?;
        String::from_utf8(bytes).map_err(|_| self.file_error(path, Ext4Error::NotUtf8))
    }

    /// Whether `path` exists (a dangling symlink does not).
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        self.fs.exists(path).map_err(|e| self.file_error(path, e))
    }

    /// Whether `path` is a regular file (or a symlink to one).
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        match self.fs.metadata(path) {
            Ok(metadata) => Ok(metadata.file_type().is_regular_file()),
            Err(Ext4Error::NotFound) => Ok(false),
            Err(e) => Err(self.file_error(path, e)),
        }
    }

    /// The names in a directory, sorted, without `.` and `..`.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, ImageError> {
        let mut names = Vec::new();
        for entry in self.fs.read_dir(path).map_err(|e| self.file_error(path, e))? {
            let entry = entry.map_err(|e| self.file_error(path, e))?;
            let name = entry.file_name().display().to_string();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as stored.
    pub fn read_link(&self, path: &str) -> Result<String, ImageError> {
        let target = self.fs.read_link(path).map_err(|e| self.file_error(path, e))?;
        Ok(target.display().to_string())
    }

    fn file_error(&self, path: &str, error: Ext4Error) -> ImageError {
        match error {
            Ext4Error::NotFound => ImageError::FileNotFound {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
            },
            other => ImageError::ReadFile {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// Reads one file from the ext4 filesystem of partition `partition` (1-based) of an image.
pub fn read_file(image: &Path, partition: u32, path: &str) -> Result<Vec<u8>, ImageError> {
    Ext4Volume::open_index(image, partition)?.read(path)
}

/// Whether a file exists in the ext4 filesystem of partition `partition` (1-based) of an image.
pub fn exists(image: &Path, partition: u32, path: &str) -> Result<bool, ImageError> {
    Ext4Volume::open_index(image, partition)?.exists(path)
}
