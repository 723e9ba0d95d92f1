//! Reports of scenario results: the human text the CLI prints, JUnit XML for CI, and stage
//! timings as JSON with their comparison against a baseline.

pub mod baseline;
pub mod escape;
pub mod junit;
pub mod text;
pub mod timings;
