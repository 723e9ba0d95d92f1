//! The step table: every kind of step a scenario file can give, written once.
//!
//! A row names the step's TOML key, the [`Action`] it becomes, whether it needs the boot and
//! what it does to the boot's countdowns. Everything else that lists the kinds is made from
//! the rows: [`StepKind`] and [`StepKind::ALL`], the keys the "no action" error lists, the
//! spans that find a step's action keys in a [`RawStep`], [`Action::kind`] (which the runner's
//! countdown skipper and the login-start check ask), and the tests' key lists.
//!
//! A row refers to its `RawStep` field by its key and to its `Action` by a pattern, so neither
//! can be missing; an `Action` without a row does not compile either ([`Action::kind`] is an
//! exhaustive match), nor does a row without its conversion (`parse.rs` matches every
//! [`StepKind`]) or its description ([`super::Step::describe`]). A `RawStep` field without a
//! row fails a test below.

use std::ops::Range;

use super::model::Action;
use super::raw::RawStep;
use crate::console::Pattern;

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

/// Declares [`StepKind`] and everything derived from the rows; see the module's comment.
macro_rules! step_table {
    ($(
        $(#[$doc:meta])*
        $key:ident => $kind:ident, $action:pat, needs_boot: $boot:literal, countdowns: $countdowns:ident;
    )*) => {
        /// A kind of step: one per action key of a `[[steps]]` table.
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
            pub fn countdowns(self) -> CountdownNeed {
                match self {
                    $(StepKind::$kind => CountdownNeed::$countdowns,)*
                }
            }
        }

        impl Action {
            /// The kind of step that gives this action.
            pub fn kind(&self) -> StepKind {
                match self {
                    $($action => StepKind::$kind,)*
                }
            }
        }

        /// The action keys a step has, with their value spans, in file order.
        pub(super) fn present_actions(raw: &RawStep) -> Vec<(StepKind, Range<usize>)> {
            let mut present: Vec<(StepKind, Range<usize>)> = [
                $(raw.$key.as_ref().map(|value| (StepKind::$kind, value.span())),)*
            ]
            .into_iter()
            .flatten()
            .collect();
            present.sort_by_key(|(_, span)| span.start);
            present
        }
    };
}

step_table! {
    /// `expect = "text"`: wait until the console shows the text.
    expect => Expect, Action::Expect(Pattern::Literal(_)), needs_boot: false, countdowns: Neither;
    /// `expect_regex = "regex"`: wait until a console line matches.
    expect_regex => ExpectRegex, Action::Expect(Pattern::Regex(_)), needs_boot: false, countdowns: Neither;
    /// `send = "bytes"`: type the text as it is.
    send => Send, Action::Send(_), needs_boot: false, countdowns: Both;
    /// `send_line = "text"`: type the text and Enter.
    send_line => SendLine, Action::SendLine(_), needs_boot: false, countdowns: Both;
    /// `interrupt_autoboot = true`: stop U-Boot's countdown at its prompt.
    interrupt_autoboot => InterruptAutoboot, Action::InterruptAutoboot, needs_boot: true, countdowns: Autoboot;
    /// `uboot = "command"`: run a command at U-Boot's prompt.
    uboot => Uboot, Action::Uboot { .. }, needs_boot: true, countdowns: Autoboot;
    /// `menu = "LABEL"` or `menu = N`: choose an extlinux menu entry.
    menu => Menu, Action::Menu(_), needs_boot: true, countdowns: Menu;
    /// `login = { user = … }`: log in at the getty.
    login => Login, Action::Login { .. }, needs_boot: true, countdowns: Neither;
    /// `run = "command"`: run a shell command and check its status and output.
    run => Run, Action::Run { .. }, needs_boot: false, countdowns: Neither;
    /// `host = "command"`: run a command on the harness's machine.
    host => Host, Action::Host { .. }, needs_boot: false, countdowns: Neither;
    /// `lan = "command"`: run a command as a client on the target's LAN.
    lan => Lan, Action::Lan { .. }, needs_boot: false, countdowns: Neither;
    /// `wait_for_port = 22`: wait until something in the target listens on the port.
    wait_for_port => WaitForPort, Action::WaitForPort(_), needs_boot: false, countdowns: Neither;
    /// `host_port_open = "tcp:22"`: wait until the host reaches a listener through the forward.
    host_port_open => HostPortOpen, Action::HostPortOpen(_), needs_boot: false, countdowns: Neither;
    /// `copy_from = { path = … }`: copy a target file out over the console.
    copy_from => CopyFrom, Action::CopyFrom { .. }, needs_boot: false, countdowns: Neither;
    /// `copy_to = { from = …, path = … }`: copy a local file in over the console.
    copy_to => CopyTo, Action::CopyTo(_), needs_boot: false, countdowns: Neither;
    /// `link = { nic = …, up = … }`: switch a NIC's link up or down.
    link => Link, Action::Link(_), needs_boot: false, countdowns: Neither;
    /// `wait_for_unit = "unit"`: wait until a systemd unit is active.
    wait_for_unit => WaitForUnit, Action::WaitForUnit(_), needs_boot: false, countdowns: Neither;
    /// `save_state = "name"`: name the state reached here, for other scenarios to start from.
    save_state => SaveState, Action::SaveState(_), needs_boot: false, countdowns: Neither;
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
}

#[cfg(test)]
mod tests {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;

    use super::*;
    use crate::scenario::tests::{error_of, parse_ok};
    use crate::scenario::ScenarioErrorKind;

    /// A value each key takes, for scenario text about every kind.
    fn example(kind: StepKind) -> &'static str {
        match kind {
            StepKind::Expect => r#""login:""#,
            StepKind::ExpectRegex => r#""login: ?$""#,
            StepKind::Send => r#""\u0003""#,
            StepKind::SendLine => r#""root""#,
            StepKind::InterruptAutoboot => "true",
            StepKind::Uboot => r#""version""#,
            StepKind::Menu => "2",
            StepKind::Login => r#"{ user = "root" }"#,
            StepKind::Run => r#""true""#,
            StepKind::Host => r#""true""#,
            StepKind::Lan => r#"["ping", "-c1", "${TARGET_ADDRESS}"]"#,
            StepKind::WaitForPort => "22",
            StepKind::HostPortOpen => r#""tcp:22""#,
            StepKind::CopyFrom => r#"{ path = "/etc/hostname" }"#,
            StepKind::CopyTo => r#"{ from = "a", path = "/tmp/a" }"#,
            StepKind::Link => r#"{ nic = "wan", up = false }"#,
            StepKind::WaitForUnit => r#""sshd.service""#,
            StepKind::SaveState => r#""configured""#,
        }
    }

    /// A scenario of one step, `kind` with its example value, after `header`.
    fn one_step(header: &str, kind: StepKind) -> String {
        format!(
            "name = \"t\"\n{header}[[steps]]\n{} = {}\n",
            kind.key(),
            example(kind)
        )
    }

    #[test]
    fn every_key_alone_is_a_step_of_its_kind() {
        for &kind in StepKind::ALL {
            let scenario = parse_ok(&one_step("", kind));
            assert_eq!(scenario.steps[0].action.kind(), kind, "{}", kind.key());
        }
    }

    #[test]
    fn every_step_is_described_by_its_key_and_a_regex_expect_as_an_expect() {
        for &kind in StepKind::ALL {
            let description = parse_ok(&one_step("", kind)).steps[0].describe();
            let said = match kind {
                StepKind::ExpectRegex => StepKind::Expect.key(),
                _ => kind.key(),
            };
            assert_eq!(description.split(' ').next(), Some(said), "{description}");
        }
    }

    #[test]
    fn two_action_keys_are_refused_at_the_second_whichever_they_are() {
        for &first in StepKind::ALL {
            for &second in StepKind::ALL.iter().filter(|&&k| k != first) {
                let text = format!("{}{} = {}\n", one_step("", first), second.key(), example(second));
                assert_eq!(
                    error_of(&text),
                    format!(
                        "t.toml:4:1: step has two actions, `{}` and `{}`: split them into two [[steps]]",
                        first.key(),
                        second.key()
                    )
                );
            }
        }
    }

    #[test]
    fn a_login_start_refuses_exactly_the_steps_that_need_the_boot() {
        for &kind in StepKind::ALL {
            let text = one_step("start = \"login\"\n", kind);
            if kind.needs_boot() {
                assert_eq!(
                    error_of(&text),
                    format!(
                        "t.toml:4:1: `{}` needs the boot, but this scenario starts at a shell \
                         (start = \"login\"): start it at \"power-on\" or drop the step",
                        kind.key()
                    )
                );
            } else {
                parse_ok(&text);
            }
        }
    }

    #[test]
    fn the_no_action_error_lists_every_key_in_table_order() {
        let message = ScenarioErrorKind::NoAction.to_string();
        let listed: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
        let keys: Vec<&str> = StepKind::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(listed, keys);
    }

    /// The field names serde reads a struct by, in declaration order: a deserializer that
    /// records what `deserialize_struct` is asked for.
    fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        #[derive(Debug)]
        struct Found(&'static [&'static str]);
        impl std::fmt::Display for Found {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Found {}
        impl de::Error for Found {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Found(&[])
            }
        }
        struct Recorder;
        impl<'de> Deserializer<'de> for Recorder {
            type Error = Found;

            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
                Err(Found(&[]))
            }

            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Found> {
                Err(Found(fields))
            }

            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        match T::deserialize(Recorder) {
            Ok(_) => unreachable!("the recorder gives no values"),
            Err(Found(fields)) => fields,
        }
    }

    #[test]
    fn every_step_field_is_an_action_key_or_a_key_any_step_may_have() {
        let others = ["status", "output", "until", "timeout", "stage"];
        let mut fields: Vec<&str> = fields_of::<RawStep>()
            .iter()
            .copied()
            .filter(|field| !others.contains(field))
            .collect();
        let mut keys: Vec<&str> = StepKind::ALL.iter().map(|k| k.key()).collect();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }
}
