//! The console stream: ANSI-tolerant pattern matching over raw bytes, and transcripts.

pub mod ansi;
mod byte_stats;
mod event_line;
mod literal_search;
pub mod matcher;
pub mod pattern;
mod pattern_set;
pub mod redact;
mod required_literals;
pub mod transcript;

pub use byte_stats::ByteStats;
pub use event_line::EventLine;
pub use matcher::{BufferSizes, Event, Expected, Matcher};
pub use pattern::Pattern;
pub use redact::{PromptedSecrets, Redactor};
pub use transcript::{Transcript, TranscriptPaths};
