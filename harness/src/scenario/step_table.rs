//! What a row of the step table declares, and everything made from the rows.
//!
//! The rows are in [`super::step_kind`], one per key a `[[steps]]` table can have as its
//! action, so that a new kind of step is one row there and one arm in the runner's dispatch
//! (`runner/steps.rs`, whose match over [`Action`](super::Action) is exhaustive). A row gives:
//!
//! - its key and its [`StepKind`], after the doc comment the kind carries;
//! - `value`: the type the key's value deserializes to; the types in `raw.rs` check themselves
//!   (non-empty strings, regexes), so that serde's errors point at the value;
//! - `action`: the [`Action`](super::Action) variant the row declares, after the variant's doc
//!   comment; left out by a row whose steps become another row's variant (`expect_regex`
//!   becomes an `Action::Expect` as `expect` does, so the runner has one arm for both);
//! - `is`: the pattern that tells the row's actions from every other row's, binding what
//!   `says` uses;
//! - `from`: the conversion of the value to the action, written like a closure of the value
//!   and the step's [`StepInput`] (its `status`, `output` and `until`, errors placed at the
//!   value, paths beside the scenario file);
//! - `says`: the step in one line, as the file says it (see [`Action::describe`](super::Action));
//! - `takes`: which of the keys only some kinds of step have ([`RestrictedKey`]) its steps take;
//! - `needs_boot`: whether the step acts on the boot (U-Boot, its menu, the getty), so that a
//!   scenario starting at a shell cannot have it;
//! - `countdowns`: which of the boot's countdowns the step keeps ([`CountdownNeed`]);
//! - `example`: a value the key takes, as scenario text, for the tests that write a step of
//!   every kind.
//!
//! Made from the rows: [`StepKind`], [`StepKind::ALL`] and each kind's facts, the `Action`
//! enum with its `kind` and `describe`, `RawStep` (a step as serde reads it) and the conversion
//! of a step's one action key to its action. The error messages that list kinds
//! ([`StepKind::key_list`], [`StepKind::taking`]) are made from those.

use super::step_kind::StepKind;

/// Which of the boot's countdowns a step needs to run as they are. The runner skips the
/// countdowns that no step of a run needs (U-Boot's autoboot delay and the extlinux menu's
/// timeout), doing at once what they would end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountdownNeed {
    /// Neither: the step acts after the boot, at a shell or on the host, or only watches the
    /// console (an `expect` still sees every line the boot prints).
    Neither,
    /// U-Boot's autoboot countdown: the step stops U-Boot itself.
    Autoboot,
    /// The extlinux menu: the step chooses the entry itself.
    Menu,
    /// Both: the step may type into either countdown.
    Both,
}

impl CountdownNeed {
    /// Whether the autoboot countdown must run as it is.
    pub fn autoboot(self) -> bool {
        matches!(self, CountdownNeed::Autoboot | CountdownNeed::Both)
    }

    /// Whether the extlinux menu must be left to the step (no default typed).
    pub fn menu(self) -> bool {
        matches!(self, CountdownNeed::Menu | CountdownNeed::Both)
    }
}

/// A key of a `[[steps]]` table that only some kinds of step take (a row's `takes`); the other
/// keys besides the action, `timeout` and `stage`, any step may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestrictedKey {
    /// `status = N`: the exit status a command must end with.
    Status,
    /// `output = "regex"`: what a command's output must match.
    Output,
    /// `until = "60s"`: retry a command until its checks pass.
    Until,
}

impl RestrictedKey {
    /// Every restricted key, in the order a step's keys are checked.
    pub(crate) const ALL: [RestrictedKey; 3] =
        [RestrictedKey::Status, RestrictedKey::Output, RestrictedKey::Until];

    /// The key as the file writes it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            RestrictedKey::Status => "status",
            RestrictedKey::Output => "output",
            RestrictedKey::Until => "until",
        }
    }
}

impl StepKind {
    /// Every key, each in backticks, separated by commas: `` `expect`, `expect_regex`, … ``.
    pub fn key_list() -> String {
        let keys: Vec<String> = StepKind::ALL
            .iter()
            .map(|kind| format!("`{}`", kind.key()))
            .collect();
        keys.join(", ")
    }

    /// The kinds that take `key`, in backticks, as a sentence lists them: `` `run`, `host`,
    /// `lan` and `uboot` ``. The command steps, which take every restricted key, come first,
    /// then the others; each group in table order.
    pub(crate) fn taking(key: RestrictedKey) -> String {
        let takes_all = |kind: &StepKind| RestrictedKey::ALL.iter().all(|&k| kind.takes(k));
        let (mut kinds, others): (Vec<StepKind>, Vec<StepKind>) = StepKind::ALL
            .iter()
            .copied()
            .filter(|kind| kind.takes(key))
            .partition(takes_all);
        kinds.extend(others);
        let keys: Vec<String> = kinds.iter().map(|kind| format!("`{}`", kind.key())).collect();
        match keys.split_last() {
            None => String::new(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// Declares the step kinds from the table's rows; see the module's comment for what a row
/// gives. Written once, invoked once, in `step_kind.rs`.
macro_rules! step_table {
    ($(
        $(#[$doc:meta])*
        $key:ident => $kind:ident {
            value: $value:ty,
            $(
                $(#[$action_doc:meta])*
                action: $variant:ident $(( $($tuple:tt)* ))? $({ $($fields:tt)* })?,
            )?
            is: $is:pat,
            from: |$given:pat_param, $input:pat_param| $from:expr,
            says: $says:expr,
            takes: [$($takes:ident),*],
            needs_boot: $boot:literal,
            countdowns: $countdowns:ident,
            example: $example:literal,
        }
    )*) => {
        /// A kind of step: one per action key of a `[[steps]]` table, one row of the step table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StepKind {
            $($(#[$doc])* $kind,)*
        }

        impl StepKind {
            /// Every kind, in the order the schema documents them.
            pub const ALL: &[StepKind] = &[$(StepKind::$kind),*];

            /// The step's key in a scenario file, e.g. `expect_regex`.
            pub fn key(self) -> &'static str {
                match self {
                    $(StepKind::$kind => stringify!($key),)*
                }
            }

            /// Whether the step acts on the boot (U-Boot, its menu, the getty), so that a
            /// scenario starting at a shell cannot have it.
            pub fn needs_boot(self) -> bool {
                match self {
                    $(StepKind::$kind => $boot,)*
                }
            }

            /// Which of the boot's countdowns the step needs as they are.
            pub fn countdowns(self) -> $crate::scenario::step_table::CountdownNeed {
                match self {
                    $(StepKind::$kind => $crate::scenario::step_table::CountdownNeed::$countdowns,)*
                }
            }

            /// Whether the step may have `key` (`status`, `output`, `until`).
            pub(crate) fn takes(self, key: $crate::scenario::step_table::RestrictedKey) -> bool {
                use $crate::scenario::step_table::RestrictedKey;
                let taken: &[RestrictedKey] = match self {
                    $(StepKind::$kind => &[$(RestrictedKey::$takes),*],)*
                };
                taken.contains(&key)
            }

            /// A value the key takes, as scenario text.
            #[cfg(test)]
            pub(crate) fn example(self) -> &'static str {
                match self {
                    $(StepKind::$kind => $example,)*
                }
            }
        }

        /// What a step does; exactly one per step. Each variant is declared by a row of the
        /// step table.
        #[derive(Clone, Debug)]
        pub enum Action {
            $($(
                $(#[$action_doc])*
                $variant $(( $($tuple)* ))? $({ $($fields)* })?,
            )?)*
        }

        impl Action {
            /// The kind of step that gives this action.
            // The rows' patterns bind what their descriptions use; only which one matches counts
            // here.
            #[allow(unused_variables)]
            pub fn kind(&self) -> StepKind {
                match self {
                    $($is => StepKind::$kind,)*
                }
            }

            /// One line saying what the step does, as the file says it: `expect "ivy login:"`,
            /// `run "cat /etc/hostname"`, `menu nixos-2-default`. The checks a step makes
            /// (`output`, `status`) are left out, for the failure to state; a password never
            /// shows.
            pub fn describe(&self) -> String {
                match self {
                    $($is => $says,)*
                }
            }
        }

        /// A `[[steps]]` table as serde reads it: the action keys in table order, then the
        /// keys only some steps take, then those any step may have. Serde's unknown-key error
        /// lists them in this order.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawStep {
            $(pub $key: Option<toml::Spanned<$value>>,)*
            pub status: Option<toml::Spanned<i32>>,
            pub output: Option<toml::Spanned<$crate::scenario::raw::OutputRegex>>,
            pub until: Option<toml::Spanned<$crate::config::Timeout>>,
            pub timeout: Option<toml::Spanned<$crate::config::Timeout>>,
            pub stage: Option<$crate::scenario::raw::NonEmpty>,
        }

        /// One action key of a step and its value, taken out of its [`RawStep`].
        pub(crate) enum RawAction {
            $($kind(toml::Spanned<$value>),)*
        }

        impl RawAction {
            /// The action keys `raw` has, with their values, in file order; takes them out of
            /// `raw`.
            pub(crate) fn take_all(raw: &mut RawStep) -> Vec<RawAction> {
                let mut present: Vec<RawAction> = [$(raw.$key.take().map(RawAction::$kind),)*]
                    .into_iter()
                    .flatten()
                    .collect();
                present.sort_by_key(|action| action.span().start);
                present
            }

            /// The kind of step the key gives.
            pub(crate) fn kind(&self) -> StepKind {
                match self {
                    $(RawAction::$kind(_) => StepKind::$kind,)*
                }
            }

            /// Where the value is in the file.
            pub(crate) fn span(&self) -> std::ops::Range<usize> {
                match self {
                    $(RawAction::$kind(value) => value.span(),)*
                }
            }

            /// The action the row makes of the value, given the rest of the step.
            pub(crate) fn into_action(
                self,
                input: $crate::scenario::parse::StepInput<'_>,
            ) -> Result<Action, $crate::scenario::ScenarioError> {
                match self {
                    $(RawAction::$kind(value) => {
                        let $given: $value = value.into_inner();
                        let $input: $crate::scenario::parse::StepInput<'_> = input;
                        $from
                    })*
                }
            }
        }
    };
}

pub(super) use step_table;
