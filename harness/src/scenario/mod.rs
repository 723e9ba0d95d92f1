//! Scenario files: TOML that says what to expect on the console and what to type, read and
//! validated into a [`Scenario`] the runner walks.
//!
//! Every problem in a file is reported as `path:line:column: message`, pointing at the
//! offending key or value.

mod error;
mod model;
mod parse;
mod raw;

#[cfg(test)]
mod tests;

pub use error::{ScenarioError, ScenarioErrorKind};
pub use model::{Action, Location, LoginRecipe, MenuChoice, Password, Scenario, Secret, Start, Step};
pub(crate) use parse::SourceText;
pub use parse::{load, load_all, parse, DEFAULT_TIMEOUT};
