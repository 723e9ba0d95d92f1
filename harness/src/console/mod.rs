//! The console stream: ANSI-tolerant pattern matching over raw bytes, transcripts, where the
//! console is ([`ConsoleState`]) and the systemd units it said failed ([`FailedUnits`]).

pub mod ansi;
mod byte_stats;
mod event_line;
mod failed_units;
mod literal_search;
pub mod matcher;
pub mod pattern;
mod pattern_set;
pub mod redact;
mod required_literals;
mod state;
pub mod transcript;

pub use byte_stats::ByteStats;
pub use event_line::EventLine;
pub use failed_units::{FailedUnits, MAX_LISTED as MAX_FAILED_UNITS};
pub use matcher::{BufferSizes, Event, Expected, Matcher};
pub use pattern::Pattern;
pub use redact::{PromptedSecrets, Redactor};
pub use state::ConsoleState;
pub use transcript::{Transcript, TranscriptPaths};
