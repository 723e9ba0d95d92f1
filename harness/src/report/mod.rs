//! Reports of scenario results: the human text the CLI prints, JUnit XML for CI, and stage
//! timings as JSON with their comparison against a baseline. Each report is a
//! [`crate::suite::Reporter`] of the suite's events.

pub mod baseline;
pub mod escape;
pub mod html;
pub mod junit;
pub mod text;
pub mod timings;

use std::path::PathBuf;

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Timings(#[from] timings::TimingsError),
    #[error("cannot write HTML report {path}: {source}")]
    Html {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write JUnit report {path}: {source}")]
    Junit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
