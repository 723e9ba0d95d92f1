//! Everything that can go wrong reading a disk image, each message naming the image and what was
//! being read.

use std::io;
use std::path::{Path, PathBuf};

use super::extlinux;
use super::fs_kind::FsKind;

/// A disk image that could not be read as asked. Every message starts with the image's path
/// and says which part of it (partition table, partition N, a file) was being read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image file could not be opened.
    #[error("{}: cannot open image: {error}", image.display())]
    Open {
        /// The image file.
        image: PathBuf,
        /// Why it could not be opened.
        error: io::Error,
    },
    /// Reading the image failed below the filesystem level.
    #[error("{}: cannot read {what}: {error}", image.display())]
    Read {
        /// The image file.
        image: PathBuf,
        /// What was being read, e.g. "partition 2".
        what: String,
        /// The I/O error.
        error: io::Error,
    },
    /// The image ends before something its partition table says is there.
    #[error("{}: image is truncated: {what} needs {needed} bytes but the image has {len}", image.display())]
    Truncated {
        /// The image file.
        image: PathBuf,
        /// What does not fit, e.g. "partition 2 (sectors 1081344..=2097151)".
        what: String,
        /// How many bytes the image would need.
        needed: u64,
        /// How many bytes it has.
        len: u64,
    },
    /// Neither a GPT nor an MBR partition table.
    #[error(
        "{}: no partition table: neither a GPT header (\"EFI PART\" in sector 1) nor an MBR boot \
         signature (55 aa at byte 510)",
        image.display()
    )]
    NoPartitionTable {
        /// The image file.
        image: PathBuf,
    },
    /// A partition table that is present but inconsistent.
    #[error("{}: invalid partition table: {reason}", image.display())]
    BadPartitionTable {
        /// The image file.
        image: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A partition number the table does not have.
    #[error("{}: no partition {index} (the image has {})", image.display(), list_partitions(available))]
    NoSuchPartition {
        /// The image file.
        image: PathBuf,
        /// The partition asked for (1-based).
        index: u32,
        /// The partitions the table has.
        available: Vec<u32>,
    },
    /// Files were asked of a partition that does not hold ext4.
    #[error("{}: partition {partition} holds {found}, not ext4", image.display())]
    NotExt4 {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// What the partition holds.
        found: FsKind,
    },
    /// An ext4 filesystem that cannot be read (corrupt, or using features the reader lacks).
    #[error("{}: partition {partition}: cannot read the ext4 filesystem: {reason}", image.display())]
    Filesystem {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The reader's explanation.
        reason: String,
    },
    /// A FAT filesystem that cannot be read.
    #[error("{}: partition {partition}: cannot read the FAT filesystem: {reason}", image.display())]
    FatFilesystem {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The reader's explanation.
        reason: String,
    },
    /// An f2fs filesystem that cannot be read (corrupt, or using features the reader lacks).
    #[error("{}: partition {partition}: cannot read the f2fs filesystem: {reason}", image.display())]
    F2fsFilesystem {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The reader's explanation.
        reason: String,
    },
    /// Files were asked of a partition whose filesystem this harness has no reader for.
    #[error("{}: partition {partition} holds {found}, whose files this harness cannot read", image.display())]
    NoFileReader {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// What the partition holds.
        found: FsKind,
    },
    /// A file that is not in the filesystem.
    #[error("{}: partition {partition}: {path}: no such file", image.display())]
    FileNotFound {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path inside the partition.
        path: String,
    },
    /// A file that is there but cannot be read.
    #[error("{}: partition {partition}: cannot read {path}: {reason}", image.display())]
    ReadFile {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path inside the partition.
        path: String,
        /// The reader's explanation.
        reason: String,
    },
    /// A file the reader cannot read because it uses something the reader lacks (an f2fs file
    /// that is compressed or encrypted): not corrupt, not checked.
    #[error("{}: partition {partition}: cannot read {path}: {reason}", image.display())]
    Unsupported {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path inside the partition.
        path: String,
        /// What the reader lacks.
        reason: String,
    },
    /// A file larger than anything of its kind can be, refused before it is read.
    #[error(
        "{}: partition {partition}: {path} is {size} bytes, more than the {limit} bytes {what} may have",
        image.display()
    )]
    TooLarge {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path inside the partition.
        path: String,
        /// What the file is for, e.g. "an extlinux.conf".
        what: &'static str,
        /// The size the filesystem gives.
        size: u64,
        /// The limit (see [`super::limits`]).
        limit: u64,
    },
    /// A text file (extlinux.conf) that is not UTF-8.
    #[error(
        "{}: partition {partition}: {path}: line {line}, column {column} (byte {offset}): not UTF-8 (byte {byte:#04x})",
        image.display()
    )]
    NotUtf8 {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path inside the partition.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in bytes) of it.
        column: usize,
        /// Its offset from the start of the file.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// No extlinux.conf where U-Boot's distro boot looks.
    #[error(
        "{}: no extlinux.conf where U-Boot looks; searched {}",
        image.display(),
        searched.join("; ")
    )]
    NoBootConfig {
        /// The image file.
        image: PathBuf,
        /// What was searched, one entry per candidate partition.
        searched: Vec<String>,
    },
    /// An extlinux.conf that U-Boot would refuse ("Error parsing config file").
    #[error("{}: partition {partition}: {path}: {error}", image.display())]
    Extlinux {
        /// The image file.
        image: PathBuf,
        /// The partition (1-based).
        partition: u32,
        /// The path of the extlinux.conf inside the partition.
        path: String,
        /// What U-Boot would stumble on.
        error: extlinux::ParseError,
    },
}

impl ImageError {
    /// Opens the image file for reading; [`ImageError::Open`] if it cannot be.
    pub fn open_image(image: &Path) -> Result<std::fs::File, ImageError> {
        std::fs::File::open(image).map_err(|error| ImageError::Open {
            image: image.to_owned(),
            error,
        })
    }

    /// The image file the error is about.
    pub fn image(&self) -> &Path {
        match self {
            ImageError::Open { image, .. }
            | ImageError::Read { image, .. }
            | ImageError::Truncated { image, .. }
            | ImageError::NoPartitionTable { image, .. }
            | ImageError::BadPartitionTable { image, .. }
            | ImageError::NoSuchPartition { image, .. }
            | ImageError::NotExt4 { image, .. }
            | ImageError::Filesystem { image, .. }
            | ImageError::FatFilesystem { image, .. }
            | ImageError::F2fsFilesystem { image, .. }
            | ImageError::NoFileReader { image, .. }
            | ImageError::FileNotFound { image, .. }
            | ImageError::ReadFile { image, .. }
            | ImageError::Unsupported { image, .. }
            | ImageError::TooLarge { image, .. }
            | ImageError::NotUtf8 { image, .. }
            | ImageError::NoBootConfig { image, .. }
            | ImageError::Extlinux { image, .. } => image,
        }
    }

    /// The message without its leading `<image>: `, for reports that name the image already.
    pub fn detail(&self) -> String {
        let message = self.to_string();
        let prefix = format!("{}: ", self.image().display());
        match message.strip_prefix(&prefix) {
            Some(rest) => rest.to_owned(),
            None => message,
        }
    }
}

fn list_partitions(available: &[u32]) -> String {
    match available {
        [] => "no partitions".to_owned(),
        _ => {
            let numbers: Vec<String> = available.iter().map(u32::to_string).collect();
            format!("partitions {}", numbers.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_the_message_without_the_image() {
        let error = ImageError::NoSuchPartition {
            image: "/tmp/r2s.img".into(),
            index: 3,
            available: vec![1, 2],
        };
        assert_eq!(error.image(), Path::new("/tmp/r2s.img"));
        assert_eq!(
            error.to_string(),
            "/tmp/r2s.img: no partition 3 (the image has partitions 1, 2)"
        );
        assert_eq!(error.detail(), "no partition 3 (the image has partitions 1, 2)");
    }
}
