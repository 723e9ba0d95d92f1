//! Reports of scenario results: the human text the CLI prints, and JUnit XML for CI.

pub mod junit;
pub mod text;
