//! The validated scenario: what the runner walks, with every value already checked.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::network::NetworkSpec;
use super::requires::Requirement;
use super::step_kind::Action;
use crate::config::Location;
use crate::console::Pattern;

/// A scenario file, parsed and validated.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The scenario's name, as reports show it; unique within one [`load_all`](super::load_all).
    pub name: String,
    /// What the scenario checks, in words.
    pub description: Option<String>,
    /// Budget for the whole scenario (the file's `timeout`, 10 minutes when absent).
    pub timeout: Duration,
    /// Where the first step finds the target (the file's `start`, power-on when absent).
    pub start: Start,
    /// Wait out the boot's countdowns even where the harness would skip them (the file's
    /// `real_time_boot`).
    pub real_time_boot: bool,
    /// Fatal patterns the file adds (`fatal` literals, then `fatal_regex` regexes). The built-in
    /// fatal patterns are not included: the runner adds those.
    pub fatal: Vec<Pattern>,
    /// The steps, in file order; never empty.
    pub steps: Vec<Step>,
    /// The file's `[network]` table: NICs attached, and these guest ports forwarded.
    pub network: Option<NetworkSpec>,
    /// Shell commands run, each bounded, when a step fails while a shell is reachable; their
    /// output is saved beside the transcript.
    pub on_failure: Vec<String>,
    /// What the scenario needs of an image (the file's `requires`).
    pub requires: Vec<Requirement>,
    /// Why the scenario does not apply to the image it was read for (an unmet requirement, or
    /// an `${IMAGE_…}` value the image does not tell): it is skipped, not run.
    pub skip: Option<String>,
    /// The file the scenario was read from.
    pub source: PathBuf,
}

impl Scenario {
    /// The index of the scenario's `save_state` step and the state's name, if it has one.
    pub fn save_state_step(&self) -> Option<(usize, &str)> {
        self.steps
            .iter()
            .enumerate()
            .find_map(|(i, step)| match &step.action {
                Action::SaveState(name) => Some((i, name.as_str())),
                _ => None,
            })
    }

    /// How the state this scenario saves is reached, if it saves one: its start and its steps
    /// before the `save_state` step.
    pub fn saved_recipe(&self) -> Option<SavedRecipe> {
        let (index, name) = self.save_state_step()?;
        Some(SavedRecipe {
            name: name.to_owned(),
            scenario: self.name.clone(),
            source: self.source.clone(),
            base: self.start.clone(),
            steps: self.steps[..index].to_vec(),
            fatal: self.fatal.clone(),
            network: self.network.clone(),
        })
    }
}

/// Where a scenario's first step finds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Power-on: the steps see the whole boot (`start = "power-on"`, the default).
    PowerOn,
    /// A shell on the booted system, reached by this recipe (`start = "login"`).
    Login(LoginRecipe),
    /// U-Boot's command prompt, autoboot stopped (`start = "uboot"`).
    Uboot,
    /// The state another scenario's `save_state` step names (`start = "<name>"`).
    Saved(SavedStart),
}

impl Start {
    /// Whether QEMU starts such a scenario from a snapshot (every start but power-on).
    pub fn from_snapshot(&self) -> bool {
        !matches!(self, Start::PowerOn)
    }

    /// The saved states reaching this start goes through: this start's own recipe, then the
    /// one its saving scenario starts from, and so on. Empty for a built-in start or a name no
    /// loaded scenario saves.
    pub fn saved_chain(&self) -> Vec<&SavedRecipe> {
        let mut chain = Vec::new();
        let mut start = self;
        while let Start::Saved(SavedStart {
            recipe: Some(recipe), ..
        }) = start
        {
            chain.push(recipe.as_ref());
            start = &recipe.base;
        }
        chain
    }

    /// The `[network]` table a scenario starting here without one of its own runs with: the
    /// nearest saving scenario's in [`Start::saved_chain`]. A state saved with NICs is restored
    /// with them (a snapshot holds the devices it was taken with) and its steps were done
    /// with them.
    pub fn inherited_network(&self) -> Option<&NetworkSpec> {
        self.saved_chain()
            .into_iter()
            .find_map(|recipe| recipe.network.as_ref())
    }

    /// The file's word for it: `power-on`, `login`, `uboot` or the saved state's name.
    pub fn word(&self) -> &str {
        match self {
            Start::PowerOn => "power-on",
            Start::Login(_) => "login",
            Start::Uboot => "uboot",
            Start::Saved(saved) => &saved.name,
        }
    }
}

/// `start = "<name>"`: a state saved by a `save_state` step. The name is read from the file;
/// how the state is reached is known only once the scenario that saves it is loaded too
/// ([`super::load_all`] resolves it).
#[derive(Clone, Debug)]
pub struct SavedStart {
    /// The state's name.
    pub name: String,
    /// How it is reached; `None` while no loaded scenario saves it.
    pub recipe: Option<Arc<SavedRecipe>>,
}

impl PartialEq for SavedStart {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for SavedStart {}

/// How a saved state is reached: the saving scenario's start, then its steps before its
/// `save_state` step. On QEMU that is done once and snapshotted (the key covers the start's own
/// key and every one of these steps); on a board it is done again before each scenario.
#[derive(Clone, Debug)]
pub struct SavedRecipe {
    /// The state's name.
    pub name: String,
    /// The saving scenario's name and file.
    pub scenario: String,
    pub source: PathBuf,
    /// Where the saving scenario starts.
    pub base: Start,
    /// Its steps before the `save_state` step.
    pub steps: Vec<Step>,
    /// The saving scenario's own fatal patterns: they are watched while the steps are done,
    /// in the priming run or a replay, as they would be in the saving scenario itself.
    pub fatal: Vec<Pattern>,
    /// The saving scenario's `[network]` table: the steps may need its NICs, forwards and LAN,
    /// and a scenario starting from the state without a table of its own gets the same NICs.
    pub network: Option<NetworkSpec>,
}

/// How a `start = "login"` scenario's state is reached: the board's default boot (nothing typed
/// in U-Boot or its extlinux menu), then a login at the getty as `user`. On QEMU the state is
/// reached once and snapshotted; every scenario with the same recipe starts from the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRecipe {
    /// The user name typed at `login:`.
    pub user: String,
    /// Where the password comes from.
    pub password: Password,
    /// What the shell's prompt looks like, when not the default (`#` or `$` ending the line).
    pub prompt: Option<PromptRegex>,
}

/// A regex matching a shell's prompt at the end of the console's last line (`prompt` in a login
/// table). Recipes compare equal when their prompts' regexes are the same text.
#[derive(Clone, Debug)]
pub struct PromptRegex(Pattern);

impl PromptRegex {
    /// Wraps a console pattern.
    pub fn new(pattern: Pattern) -> Self {
        PromptRegex(pattern)
    }

    /// The pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.0
    }
}

impl PartialEq for PromptRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for PromptRegex {}

impl LoginRecipe {
    /// The recipe when the file gives no `login`: root, with the password in `R2S_PASSWORD`.
    pub fn default_root() -> LoginRecipe {
        LoginRecipe {
            user: "root".to_owned(),
            password: Password::Env("R2S_PASSWORD".to_owned()),
            prompt: None,
        }
    }
}

/// One step of a scenario.
#[derive(Clone, Debug)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// The step's own time budget, if the file gives one.
    pub timeout: Option<Duration>,
    /// The boot stage (for stage timings) that opens when this step starts waiting, that is right
    /// after the previous step was satisfied, if the file names one.
    pub stage: Option<String>,
    /// Where the step's table starts in the file (its `[[steps]]` header or inline table).
    pub location: Location,
}

/// Which extlinux menu entry a `menu` step chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MenuChoice {
    /// The entry whose `LABEL` is this name.
    Label(String),
    /// The entry U-Boot prints with this number (1 is the first `LABEL`).
    Number(u32),
}

/// Where a `login` step's password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// No password: the login prompt is expected to let the user in directly.
    None,
    /// The value of this environment variable, read when the step runs.
    Env(String),
    /// A password written in the scenario file.
    Literal(Secret),
}

/// A value that must never reach a log, a report or a transcript: `Debug` and `Display` print
/// `[redacted]`. Only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for typing it into the console and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Step {
    /// One line saying what the step does, as the file says it: `expect "ivy login:"`,
    /// `run "cat /etc/hostname"`, `menu nixos-2-default`. The checks a step makes (`output`,
    /// `status`) are left out, for the failure to state; a password never shows.
    pub fn describe(&self) -> String {
        self.action.describe()
    }
}
