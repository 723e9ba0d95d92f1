//! Everything that can be wrong with a board profile, said as `path:line:column: message`.

use crate::config::{Diagnostic, ReadError};

/// A board profile that could not be found, read or understood. Its `path` is the profile
/// file, or `<built-in NAME>`; it displays as `path:line:column: message` and the line with a
/// caret when the problem has a place (every TOML and validation error does).
pub type BoardError = Diagnostic<BoardErrorKind>;

/// What is wrong with a board profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoardErrorKind {
    /// Neither a file nor a built-in profile goes by this name.
    #[error("no such board profile file, and no built-in board of that name (built-in: {builtin})")]
    Unknown {
        /// The built-in names, comma-separated.
        builtin: String,
    },
    /// The file could not be read, is too large or is not UTF-8.
    #[error("cannot read board profile: {0}")]
    Read(ReadError),
    /// Not valid TOML, or TOML that does not fit the profile schema (an unknown key, a wrong type,
    /// a missing key).
    #[error("{message}")]
    Schema {
        /// The TOML parser's message.
        message: String,
    },
    /// A value of the right type that cannot be used.
    #[error("{0}")]
    Invalid(String),
}
