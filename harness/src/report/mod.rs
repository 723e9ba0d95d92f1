//! Reports of scenario results: the human text the CLI prints, JUnit XML for CI, and stage
//! timings as JSON with their comparison against a baseline. Each report is a
//! [`crate::suite::Reporter`] of the suite's events.

pub mod baseline;
pub mod html;
pub mod json;
pub mod junit;
pub mod text;
pub mod timings;
