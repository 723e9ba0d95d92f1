//! Reading a scenario file or board profile: bounded in size, and UTF-8 checked with the place
//! of the first byte that is not.

use std::io::{self, Read};
use std::path::Path;

use super::{Diagnostic, SourceText};

/// The largest file read (16 MiB): a scenario of 100,000 steps is about 3 MiB. A larger file,
/// or an endless one (`/dev/zero`), is refused before it fills memory.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Why a file's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("the file is larger than {} MiB", MAX_FILE_SIZE / 1024 / 1024)]
    TooLarge,
    /// The file is not UTF-8 text; the diagnostic's position is the first bad byte.
    #[error("not UTF-8 text: byte 0x{byte:02x} cannot be read as a character here")]
    NotUtf8 {
        /// The first byte that is not UTF-8.
        byte: u8,
    },
}

/// The text of `path`; a problem becomes a diagnostic of kind `kind(problem)`, placed at the
/// first byte that is not UTF-8 when that is the problem.
pub(crate) fn read_text<K>(path: &Path, kind: fn(ReadError) -> K) -> Result<String, Diagnostic<K>> {
    let fail = |problem| Diagnostic::new(path, kind(problem));
    let file = std::fs::File::open(path).map_err(|e| fail(e.into()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.into()))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(fail(ReadError::TooLarge));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let byte = e.as_bytes()[offset];
        let text = String::from_utf8_lossy(e.as_bytes());
        // The valid prefix is the same in the lossy text, so the offset places the bad byte.
        SourceText::new(&text, path).error(Some(offset..offset + 1), kind(ReadError::NotUtf8 { byte }))
    })
}
