//! Everything that can be wrong with a scenario file, said as `path:line:column: message`.

use std::path::PathBuf;

use super::name::NameError;
use super::step_kind::StepKind;
use crate::config::{Diagnostic, ReadError};

/// A scenario file that could not be read or is not a valid scenario.
///
/// Displays as `path:line:column: message` and the offending line with a caret when the
/// problem has a place in the file (every TOML and validation error does), else as
/// `path: message`.
pub type ScenarioError = Diagnostic<ScenarioErrorKind>;

/// What is wrong with a scenario file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioErrorKind {
    /// The file could not be read, is too large or is not UTF-8.
    #[error("cannot read scenario file: {0}")]
    Read(ReadError),
    /// A directory given to [`load_all`](super::load_all) could not be listed.
    #[error("cannot list scenario directory: {0}")]
    ReadDir(std::io::Error),
    /// Not valid TOML.
    #[error("{message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// Valid TOML that does not fit the scenario schema: an unknown key, a wrong type, a
    /// missing field, an invalid duration or regex.
    #[error("{message}")]
    Schema {
        /// What does not fit, e.g. ``unknown field `expct`, expected one of …``.
        message: String,
    },
    /// The file has no `[[steps]]`.
    #[error("scenario has no steps: add at least one [[steps]] table")]
    NoSteps,
    /// A step without an action key.
    #[error("step has no action: give one of {}", StepKind::key_list())]
    NoAction,
    /// A step with more than one action key.
    #[error("step has two actions, `{first}` and `{second}`: split them into two [[steps]]")]
    TwoActions {
        /// The action key that comes first in the file.
        first: &'static str,
        /// The action key that comes second (where the error points).
        second: &'static str,
    },
    /// A key that only some actions take, on a step with another action.
    #[error("`{key}` applies only to {applies_to} steps, not to `{action}`")]
    MisplacedKey {
        /// The misplaced key, e.g. `status`.
        key: &'static str,
        /// The step's action key.
        action: &'static str,
        /// The actions that take the key, e.g. "`run`, `host` and `lan`".
        applies_to: String,
    },
    /// A step that only a booting target can perform, in a scenario that starts at a shell.
    #[error(
        "`{action}` needs the boot, but this scenario starts at a shell (start = \"login\"): \
         start it at \"power-on\" or drop the step"
    )]
    StepNeedsBoot {
        /// The step's action key.
        action: &'static str,
    },
    /// A top-level `login` (the login recipe) in a scenario that does not start at login.
    #[error(
        "a top-level `login` is the login recipe of start = \"login\", and this scenario starts at \
         power-on: add start = \"login\", or log in with a `login` step"
    )]
    RecipeWithoutLoginStart,
    /// A value that has the right type but cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A `name` that cannot name transcript files.
    #[error("{0}")]
    Name(NameError),
    /// Two scenarios given to one [`load_all`](super::load_all) share a name, or have names
    /// that differ only in case or in characters a file name cannot hold, so their transcript
    /// files would overwrite each other.
    #[error("{}", duplicate_message(name, first, first_name))]
    DuplicateName {
        /// This file's name.
        name: String,
        /// The file that used it first.
        first: PathBuf,
        /// The name in that file.
        first_name: String,
    },
}

fn duplicate_message(name: &str, first: &std::path::Path, first_name: &str) -> String {
    if name == first_name {
        format!("scenario name {name:?} is already used by {}", first.display())
    } else {
        format!(
            "scenario name {name:?} gives the same transcript file names as {first_name:?} in {}: \
             names that differ only in case or in characters other than letters, digits, `-`, `_` \
             and `.` share their files; rename one",
            first.display()
        )
    }
}
