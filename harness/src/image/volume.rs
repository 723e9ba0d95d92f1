//! A filesystem whose files can be read, whichever of the readable kinds it is.

use std::path::Path;

use super::error::ImageError;
use super::fs::{Ext4Volume, FsKind};
use super::partition::Partition;
use super::vfat::FatVolume;

/// An ext4 or FAT filesystem in one partition of an image, opened for reading.
#[derive(Debug)]
pub enum Volume {
    /// ext2/3/4, read with ext4-view.
    Ext4(Ext4Volume),
    /// FAT12/16/32, read with fatfs.
    Vfat(FatVolume),
}

impl Volume {
    /// Opens the filesystem of a partition that holds `kind`; `Ok(None)` for kinds this harness
    /// cannot read files from (f2fs, unknown).
    pub fn open(image: &Path, partition: &Partition, kind: &FsKind) -> Result<Option<Volume>, ImageError> {
        Ok(match kind {
            FsKind::Ext4 { .. } => Some(Volume::Ext4(Ext4Volume::open(image, partition)?)),
            FsKind::Vfat { .. } => Some(Volume::Vfat(FatVolume::open(image, partition)?)),
            FsKind::F2fs { .. } | FsKind::Unknown => None,
        })
    }

    /// Whether `path` (absolute within the partition) is a regular file.
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        match self {
            Volume::Ext4(v) => v.is_file(path),
            Volume::Vfat(v) => v.is_file(path),
        }
    }

    /// Whether `path` exists (ext4 follows symlinks inside the partition).
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        match self {
            Volume::Ext4(v) => v.exists(path),
            Volume::Vfat(v) => v.exists(path),
        }
    }

    /// The size of a file and its first `len` bytes.
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        match self {
            Volume::Ext4(v) => v.read_head(path, len),
            Volume::Vfat(v) => v.read_head(path, len),
        }
    }

    /// The contents of a file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ImageError> {
        match self {
            Volume::Ext4(v) => v.read(path),
            Volume::Vfat(v) => v.read(path),
        }
    }

    /// The contents of a file as UTF-8 text.
    pub fn read_to_string(&self, path: &str) -> Result<String, ImageError> {
        match self {
            Volume::Ext4(v) => v.read_to_string(path),
            Volume::Vfat(v) => String::from_utf8(v.read(path)?).map_err(|_| ImageError::ReadFile {
                image: v.image().to_owned(),
                partition: v.partition(),
                path: path.to_owned(),
                reason: "not UTF-8 text".to_owned(),
            }),
        }
    }
}
