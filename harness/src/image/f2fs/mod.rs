//! Files from the f2fs filesystem of one partition of an image, read without mounting by a
//! small read-only reader of the harness's own ([`reader`]): NixOS configurations with an f2fs
//! root exist, and inspect needs their `init=` and `/etc/fstab`. Compressed and encrypted
//! files, zoned and multi-device filesystems are refused with that reason.

pub mod error;
pub mod layout;
pub mod reader;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use error::F2fsError;
pub use reader::{F2fs, Inode};

use super::budget::ReadBudget;
use super::error::ImageError;
use super::limits;
use super::partition::Partition;

/// An f2fs filesystem in one partition of an image, opened for reading.
#[derive(Debug)]
pub struct F2fsVolume {
    image: PathBuf,
    partition: u32,
    fs: F2fs<File>,
}

impl F2fsVolume {
    /// Opens the f2fs filesystem of a partition: its superblock and current checkpoint.
    pub fn open(image: &Path, partition: &Partition) -> Result<F2fsVolume, ImageError> {
        let file = ImageError::open_image(image)?;
        let budget = ReadBudget::new(limits::METADATA_READ);
        let fs = F2fs::open(file, partition.offset(), partition.size(), budget).map_err(|e| {
            ImageError::F2fsFilesystem {
                image: image.to_owned(),
                partition: partition.index,
                reason: e.to_string(),
            }
        })?;
        Ok(F2fsVolume {
            image: image.to_owned(),
            partition: partition.index,
            fs,
        })
    }

    /// The partition's number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// Runs one operation about `path` that may read `data` bytes of file contents plus the
    /// metadata allowance.
    fn op<T>(
        &self,
        path: &str,
        data: u64,
        call: impl FnOnce(&F2fs<File>) -> Result<T, F2fsError>,
    ) -> Result<T, ImageError> {
        self.fs.budget().allow(limits::METADATA_READ.saturating_add(data));
        call(&self.fs).map_err(|e| self.file_error(path, e))
    }

    /// Whether `path` exists (a dangling symlink does not).
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        self.op(path, 0, |fs| match fs.resolve(path, true) {
            Ok(_) => Ok(true),
            Err(F2fsError::NotFound | F2fsError::NotADirectory(_)) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// Whether `path` is a regular file (or a symlink to one).
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        self.op(path, 0, |fs| match fs.resolve(path, true) {
            Ok(inode) => Ok(inode.is_file()),
            Err(F2fsError::NotFound | F2fsError::NotADirectory(_)) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// The size of a file and its first `len` bytes (fewer if the file is shorter).
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        self.op(path, len as u64, |fs| {
            let inode = fs.resolve(path, true)?;
            let mut head = Vec::new();
            fs.copy_to(&inode, len as u64, &mut head)?;
            Ok((inode.size, head))
        })
    }

    /// Streams a file of at most `limit` bytes (`what` it is, for the error) into `out`, a
    /// block at a time; returns its size. Symlinks are followed inside the partition.
    pub fn copy_to(
        &self,
        path: &str,
        limit: u64,
        what: &'static str,
        out: &mut dyn Write,
    ) -> Result<u64, ImageError> {
        let inode = self.op(path, 0, |fs| fs.resolve(path, true))?;
        if inode.is_dir() {
            return Err(self.file_error(path, F2fsError::corrupt("it is a directory")));
        }
        limits::check_file_size(&self.image, self.partition, path, what, inode.size, limit)?;
        self.op(path, inode.size, |fs| fs.copy_to(&inode, inode.size, out))
    }

    /// The contents of a file of at most `limit` bytes (`what` it is, for the error).
    pub fn read_limited(&self, path: &str, limit: u64, what: &'static str) -> Result<Vec<u8>, ImageError> {
        let mut bytes = Vec::new();
        self.copy_to(path, limit, what, &mut bytes)?;
        Ok(bytes)
    }

    /// The names in a directory, sorted, without `.` and `..`.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, ImageError> {
        let mut names = self.op(path, 0, |fs| fs.list(&fs.resolve(path, true)?))?;
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as stored.
    pub fn read_link(&self, path: &str) -> Result<String, ImageError> {
        self.op(path, 0, |fs| {
            let inode = fs.resolve(path, false)?;
            if !inode.is_symlink() {
                return Err(F2fsError::Corrupt("it is not a symlink".to_owned()));
            }
            Ok(String::from_utf8_lossy(&fs.read_link(&inode)?).into_owned())
        })
    }

    fn file_error(&self, path: &str, error: F2fsError) -> ImageError {
        match error {
            F2fsError::NotFound => ImageError::FileNotFound {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
            },
            F2fsError::Unsupported(_) => ImageError::Unsupported {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
                reason: error.to_string(),
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
