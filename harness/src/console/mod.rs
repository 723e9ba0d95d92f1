//! The console stream: ANSI-tolerant pattern matching over raw bytes, and transcripts.

pub mod ansi;
pub mod matcher;
pub mod pattern;
pub mod transcript;

pub use matcher::{Event, Expected, Matcher};
pub use pattern::Pattern;
pub use transcript::Transcript;
