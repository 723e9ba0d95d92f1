//! Files from the ext4 filesystem of one partition of an image, read with ext4-view without
//! mounting anything: the superblock checked first, every call bounded and guarded.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ext4_view::{Ext4, Ext4Error, Ext4Read};

use super::budget::ReadBudget;
use super::error::ImageError;
use super::fs_kind::{FsKind, PROBE_LEN};
use super::guard::guarded;
use super::limits;
use super::partition::{Partition, Table};

/// File data copied at a time.
const CHUNK: usize = 1 << 20;

/// Reads the first bytes of a partition and tells its filesystem.
pub fn probe_filesystem(image: &Path, partition: &Partition) -> Result<FsKind, ImageError> {
    let file = ImageError::open_image(image)?;
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

/// Gives ext4-view the bytes of one partition, refusing reads outside it or beyond the
/// operation's budget.
struct PartitionReader {
    file: File,
    start: u64,
    len: u64,
    budget: ReadBudget,
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
        self.budget.spend(dst.len() as u64)?;
        self.file.read_exact_at(dst, self.start + start_byte)?;
        Ok(())
    }
}

/// What the superblock says, checked before ext4-view is given it: ext4-view allocates a
/// descriptor per block group and a cache sized by the block count without comparing either
/// with the partition.
fn check_superblock(image: &Path, file: &File, partition: &Partition) -> Result<(), ImageError> {
    let fail = |reason: String| ImageError::Filesystem {
        image: image.to_owned(),
        partition: partition.index,
        reason,
    };
    let mut sb = [0u8; 1024];
    file.read_exact_at(&mut sb, partition.offset() + 1024)
        .map_err(|error| ImageError::Read {
            image: image.to_owned(),
            what: format!("partition {}'s ext4 superblock", partition.index),
            error,
        })?;
    let le32 = |at: usize| u64::from(u32::from_le_bytes(sb[at..at + 4].try_into().expect("4 bytes")));
    let blocks = le32(0x150) << 32 | le32(0x4);
    let log_block_size = le32(0x18);
    let first_data_block = le32(0x14);
    let blocks_per_group = le32(0x20);
    if log_block_size > 6 {
        return Err(fail(format!(
            "the superblock's block size is 1024 << {log_block_size} (ext4 allows up to 64 KiB)"
        )));
    }
    let block_size = 1024u64 << log_block_size;
    let fs_len = u128::from(blocks) * u128::from(block_size);
    if fs_len > u128::from(partition.size()) {
        return Err(fail(format!(
            "the superblock says {blocks} blocks of {block_size} bytes ({fs_len} bytes), but the partition has \
             {} bytes",
            partition.size()
        )));
    }
    if blocks_per_group == 0 {
        return Err(fail("the superblock says 0 blocks per group".to_owned()));
    }
    let groups = blocks.saturating_sub(first_data_block).div_ceil(blocks_per_group);
    if groups > limits::EXT4_BLOCK_GROUPS {
        return Err(fail(format!(
            "the superblock says {groups} block groups ({blocks_per_group} blocks each); the limit is {}",
            limits::EXT4_BLOCK_GROUPS
        )));
    }
    Ok(())
}

/// An ext4 filesystem in one partition of an image, opened for reading.
pub struct Ext4Volume {
    image: PathBuf,
    partition: u32,
    fs: Ext4,
    budget: ReadBudget,
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
        let file = ImageError::open_image(image)?;
        check_superblock(image, &file, partition)?;
        let budget = ReadBudget::new(limits::METADATA_READ);
        let reader = PartitionReader {
            file,
            start: partition.offset(),
            len: partition.size(),
            budget: budget.clone(),
        };
        let fail = |reason: String| ImageError::Filesystem {
            image: image.to_owned(),
            partition: partition.index,
            reason,
        };
        let fs = guarded(|| Ext4::load(Box::new(reader)))
            .map_err(|panic| fail(format!("the ext4 reader {panic}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Ext4Volume {
            image: image.to_owned(),
            partition: partition.index,
            fs,
            budget,
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

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The volume name from the superblock, if set.
    pub fn label(&self) -> Option<String> {
        let label = self.fs.label().to_str().ok()?.to_owned();
        (!label.is_empty()).then_some(label)
    }

    /// Runs one ext4-view call about `path` that may read `data` bytes of file contents plus
    /// the metadata allowance, with a panic reported as an unreadable file.
    fn op<R>(
        &self,
        path: &str,
        data: u64,
        call: impl FnOnce(&Ext4) -> Result<R, Ext4Error>,
    ) -> Result<R, ImageError> {
        self.budget.allow(limits::METADATA_READ.saturating_add(data));
        match guarded(|| call(&self.fs)) {
            Ok(result) => result.map_err(|e| self.file_error(path, e)),
            Err(panic) => Err(ImageError::ReadFile {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
                reason: format!("the ext4 reader {panic}"),
            }),
        }
    }

    /// The size of a regular file, refused with [`ImageError::TooLarge`] above `limit`.
    fn checked_size(&self, path: &str, limit: u64, what: &'static str) -> Result<u64, ImageError> {
        let size = self.op(path, 0, |fs| fs.metadata(path).map(|m| m.len()))?;
        limits::check_file_size(&self.image, self.partition, path, what, size, limit)?;
        Ok(size)
    }

    /// Streams a file of at most `limit` bytes (`what` it is, for the error) into `out`, in
    /// bounded chunks; returns its size. `path` is absolute within the partition; symlinks are
    /// followed inside the partition.
    pub fn copy_to(
        &self,
        path: &str,
        limit: u64,
        what: &'static str,
        out: &mut dyn Write,
    ) -> Result<u64, ImageError> {
        let size = self.checked_size(path, limit, what)?;
        let mut file = self.op(path, size, |fs| fs.open(path))?;
        let mut chunk = vec![0u8; CHUNK.min(size as usize).max(1)];
        let mut copied = 0u64;
        loop {
            let n = self.op(path, size, |_| file.read_bytes(&mut chunk))?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            if copied > size {
                return Err(self.file_error(path, Ext4Error::FileTooLarge));
            }
            out.write_all(&chunk[..n]).map_err(|e| ImageError::ReadFile {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
                reason: format!("cannot write the copy: {e}"),
            })?;
        }
        Ok(copied)
    }

    /// The contents of a file of at most `limit` bytes (`what` it is, for the error).
    pub fn read_limited(&self, path: &str, limit: u64, what: &'static str) -> Result<Vec<u8>, ImageError> {
        let mut bytes = Vec::new();
        self.copy_to(path, limit, what, &mut bytes)?;
        Ok(bytes)
    }

    /// The contents of a file of at most [`limits::BOOT_FILE`] bytes.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ImageError> {
        self.read_limited(path, limits::BOOT_FILE, "a file read whole")
    }

    /// The size of a file and its first `len` bytes (fewer if the file is shorter), without
    /// reading the rest: enough to judge a kernel by its header without loading tens of MiB.
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        let mut file = self.op(path, 0, |fs| fs.open(path))?;
        let size = file.metadata().len();
        let mut head = vec![0u8; len.min(usize::try_from(size).unwrap_or(usize::MAX))];
        let mut filled = 0;
        while filled < head.len() {
            match self.op(path, head.len() as u64, |_| file.read_bytes(&mut head[filled..]))? {
                0 => break,
                n => filled += n,
            }
        }
        head.truncate(filled);
        Ok((size, head))
    }

    /// Whether `path` exists (a dangling symlink does not).
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        self.op(path, 0, |fs| fs.exists(path))
    }

    /// Whether `path` is a regular file (or a symlink to one).
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        self.op(path, 0, |fs| match fs.metadata(path) {
            Ok(metadata) => Ok(metadata.file_type().is_regular_file()),
            Err(Ext4Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// The names in a directory, sorted, without `.` and `..`.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, ImageError> {
        let mut names = self.op(path, 0, |fs| {
            let mut names = Vec::new();
            for entry in fs.read_dir(path)? {
                let name = entry?.file_name().display().to_string();
                if name != "." && name != ".." {
                    names.push(name);
                }
            }
            Ok(names)
        })?;
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as stored.
    pub fn read_link(&self, path: &str) -> Result<String, ImageError> {
        self.op(path, 0, |fs| fs.read_link(path).map(|t| t.display().to_string()))
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

/// Reads one file (at most [`limits::BOOT_FILE`] bytes) from the ext4 filesystem of partition
/// `partition` (1-based) of an image.
pub fn read_file(image: &Path, partition: u32, path: &str) -> Result<Vec<u8>, ImageError> {
    Ext4Volume::open_index(image, partition)?.read(path)
}

/// Whether a file exists in the ext4 filesystem of partition `partition` (1-based) of an image.
pub fn exists(image: &Path, partition: u32, path: &str) -> Result<bool, ImageError> {
    Ext4Volume::open_index(image, partition)?.exists(path)
}
