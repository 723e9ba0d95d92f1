//! A filesystem whose files can be read, whichever of the readable kinds it is.

use std::path::Path;

use super::error::ImageError;
use super::f2fs::F2fsVolume;
use super::fs::probe_filesystem;
use super::fs::Ext4Volume;
use super::fs_kind::FsKind;
use super::partition::{Partition, Table};
use super::vfat::FatVolume;

/// An ext4, FAT or f2fs filesystem in one partition of an image, opened for reading.
#[derive(Debug)]
pub enum Volume {
    /// ext2/3/4, read with ext4-view.
    Ext4(Ext4Volume),
    /// FAT12/16/32, read with fatfs.
    Vfat(Box<FatVolume>),
    /// f2fs, read with the harness's own reader.
    F2fs(F2fsVolume),
}

impl Volume {
    /// Opens the filesystem of a partition that holds `kind`; `Ok(None)` for kinds this harness
    /// cannot read files from (unknown).
    pub fn open(image: &Path, partition: &Partition, kind: &FsKind) -> Result<Option<Volume>, ImageError> {
        Ok(match kind {
            FsKind::Ext4 { .. } => Some(Volume::Ext4(Ext4Volume::open(image, partition)?)),
            FsKind::Vfat { .. } => Some(Volume::Vfat(Box::new(FatVolume::open(image, partition)?))),
            FsKind::F2fs { .. } => Some(Volume::F2fs(F2fsVolume::open(image, partition)?)),
            FsKind::Unknown => None,
        })
    }

    /// Opens the filesystem of partition `index` of `image` (its `table`), whichever readable
    /// kind it holds; an error names the partition when the table has none so numbered, or
    /// when its files cannot be read.
    pub fn open_index(image: &Path, table: &Table, index: u32) -> Result<Volume, ImageError> {
        let partition = table.partition(index)?;
        let kind = probe_filesystem(image, partition)?;
        Volume::open(image, partition, &kind)?.ok_or_else(|| ImageError::NoFileReader {
            image: image.to_owned(),
            partition: index,
            found: kind,
        })
    }

    /// Whether `path` (absolute within the partition) is a regular file.
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        match self {
            Volume::Ext4(v) => v.is_file(path),
            Volume::Vfat(v) => v.is_file(path),
            Volume::F2fs(v) => v.is_file(path),
        }
    }

    /// Whether `path` exists (ext4 and f2fs follow symlinks inside the partition).
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        match self {
            Volume::Ext4(v) => v.exists(path),
            Volume::Vfat(v) => v.exists(path),
            Volume::F2fs(v) => v.exists(path),
        }
    }

    /// The size of a file and its first `len` bytes.
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        match self {
            Volume::Ext4(v) => v.read_head(path, len),
            Volume::Vfat(v) => v.read_head(path, len),
            Volume::F2fs(v) => v.read_head(path, len),
        }
    }

    /// Streams a file of at most `limit` bytes (`what` it is, for the error) into `out`;
    /// returns its size.
    pub fn copy_to(
        &self,
        path: &str,
        limit: u64,
        what: &'static str,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ImageError> {
        match self {
            Volume::Ext4(v) => v.copy_to(path, limit, what, out),
            Volume::Vfat(v) => v.copy_to(path, limit, what, out),
            Volume::F2fs(v) => v.copy_to(path, limit, what, out),
        }
    }

    /// The contents of a file of at most `limit` bytes (`what` it is, for the error).
    pub fn read_limited(&self, path: &str, limit: u64, what: &'static str) -> Result<Vec<u8>, ImageError> {
        match self {
            Volume::Ext4(v) => v.read_limited(path, limit, what),
            Volume::Vfat(v) => v.read_limited(path, limit, what),
            Volume::F2fs(v) => v.read_limited(path, limit, what),
        }
    }

    /// The contents of a text file of at most `limit` bytes; invalid UTF-8 is
    /// [`ImageError::NotUtf8`], saying where.
    pub fn read_text(&self, path: &str, limit: u64, what: &'static str) -> Result<String, ImageError> {
        let bytes = self.read_limited(path, limit, what)?;
        String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let offset = e.utf8_error().valid_up_to();
            let before = &bytes[..offset];
            let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            ImageError::NotUtf8 {
                image: self.image().to_owned(),
                partition: self.partition(),
                path: path.to_owned(),
                line: before.iter().filter(|b| **b == b'\n').count() + 1,
                column: offset - line_start + 1,
                offset,
                byte: bytes[offset],
            }
        })
    }

    /// The names in a directory, sorted, without `.` and `..` (ext4 and f2fs; FAT holds no
    /// directory this harness lists).
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, ImageError> {
        match self {
            Volume::Ext4(v) => v.list_dir(path),
            Volume::F2fs(v) => v.list_dir(path),
            Volume::Vfat(v) => Err(ImageError::ReadFile {
                image: v.image().to_owned(),
                partition: v.partition(),
                path: path.to_owned(),
                reason: "directories of a FAT filesystem are not listed".to_owned(),
            }),
        }
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        match self {
            Volume::Ext4(v) => v.image(),
            Volume::Vfat(v) => v.image(),
            Volume::F2fs(v) => v.image(),
        }
    }

    /// The partition's number.
    pub fn partition(&self) -> u32 {
        match self {
            Volume::Ext4(v) => v.partition(),
            Volume::Vfat(v) => v.partition(),
            Volume::F2fs(v) => v.partition(),
        }
    }
}
