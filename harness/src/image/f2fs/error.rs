//! What can go wrong reading an f2fs filesystem, each error saying what and where.

use std::io;

use crate::image::budget::BudgetExceeded;

/// An f2fs filesystem, or one of its files, that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum F2fsError {
    /// No f2fs superblock magic.
    #[error("no f2fs superblock (magic 0xf2f52010 at byte 1024)")]
    NotF2fs,
    /// A structure that contradicts the superblock, the partition or itself.
    #[error("corrupt f2fs: {0}")]
    Corrupt(String),
    /// Something f2fs allows that this reader does not read (compressed or encrypted files, a
    /// zoned or multi-device filesystem).
    #[error("{0}, which this f2fs reader cannot read")]
    Unsupported(String),
    /// No such file or directory.
    #[error("no such file")]
    NotFound,
    /// A path component that is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// More than [`super::reader::MAX_SYMLINK_HOPS`] symlinks followed.
    #[error("more than {0} symlinks followed (a loop?)")]
    SymlinkLoop(usize),
    /// The image could not be read.
    #[error("cannot read block {block}: {error}")]
    Io {
        /// The block (4 KiB, from the partition's start).
        block: u64,
        /// The I/O error.
        error: io::Error,
    },
    /// The copy of a file could not be written where it was asked.
    #[error("cannot write the copy: {0}")]
    Write(io::Error),
    /// The operation read more than it was allowed.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
}

impl F2fsError {
    /// [`F2fsError::Corrupt`] with a fixed message.
    pub(super) fn corrupt(what: &str) -> F2fsError {
        F2fsError::Corrupt(what.to_owned())
    }
}
