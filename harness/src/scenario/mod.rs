//! Scenario files: TOML that says what to expect on the console and what to type, read and
//! validated into a [`Scenario`] the runner walks.
//!
//! Every problem in a file is reported as `path:line:column: message`, pointing at the
//! offending key or value, with the line and a caret under it.

mod default_login;
mod error;
pub mod filter;
pub mod health;
pub mod image_variables;
pub mod lg_env;
mod model;
mod name;
pub mod network;
mod parse;
mod raw;
pub mod requires;
pub mod shipped;
mod step_kind;
mod step_table;

#[cfg(test)]
mod tests;

pub use crate::config::Location;
pub use error::{ScenarioError, ScenarioErrorKind};
pub use model::{
    LoginRecipe, MenuChoice, Password, PromptRegex, SavedRecipe, SavedStart, Scenario, Secret, Start, Step,
};
pub use name::{check_name, transcript_stem, NameError, MAX_NAME_CHARS};
pub use network::{CommandCheck, CopyTo, Forward, HostCommand, Link, NetworkSpec, Nic, Protocol};
pub use parse::{
    load, load_all, load_all_for, load_each_for, parse, parse_for, resolve_saved_starts, Loaded,
    DEFAULT_TIMEOUT,
};
pub use requires::Requirement;
pub use step_kind::{Action, StepKind};
pub use step_table::CountdownNeed;
#[cfg(test)]
mod start_tests;
