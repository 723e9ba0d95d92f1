//! What the harness's TOML files (scenario files and board profiles) share: reading one with a
//! size cap, turning byte offsets into `line:column`, the positioned [`Diagnostic`] every error
//! about such a file is, and the validated value types both file kinds use ([`Timeout`],
//! [`FileDuration`]), in the way nextest keeps one type per config element.

mod diagnostic;
mod duration;
mod location;
pub mod project;
mod read;
mod source;
mod table;

pub use diagnostic::{Diagnostic, Excerpt, EXCERPT_WIDTH};
pub use duration::{DurationError, FileDuration, Timeout, MAX_DURATION};
pub use location::Location;
pub(crate) use read::read_text;
pub use read::{ReadError, MAX_FILE_SIZE};
pub(crate) use source::SourceText;
pub(crate) use table::Table;
