//! Everything that can be wrong with a board profile, said as `path:line:column: message`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::scenario::Location;

/// A board profile that could not be found, read or understood.
#[derive(Debug, thiserror::Error)]
pub struct BoardError {
    /// The profile file, or `<built-in NAME>`.
    pub path: PathBuf,
    /// Where in the file, when the problem has a place (every TOML and validation error does).
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: BoardErrorKind,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.kind),
            None => write!(f, "{}: {}", self.path.display(), self.kind),
        }
    }
}

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
    /// The file could not be read.
    #[error("cannot read board profile: {0}")]
    Read(io::Error),
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
