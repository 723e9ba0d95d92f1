//! The step table: every kind of step a scenario file can give, one row each.
//!
//! A row is all the scenario side knows of a kind of step: its key, the type of its value,
//! the [`Action`] variant it declares and how the value becomes one, how the step is
//! described, which of `status`, `output` and `until` it takes, whether it needs the boot,
//! which countdowns it keeps, and an example value for the tests. What a row gives and what
//! is made from the rows is in [`super::step_table`]; the runner's dispatch
//! (`runner/steps.rs`) is the one other place a new row asks for code.

use super::model::{MenuChoice, Password, PromptRegex};
use super::network::{CommandCheck, CopyTo, Forward, HostCommand, Link, RawCopyFrom, RawCopyTo, RawLink};
use super::raw::{ConsoleRegex, MenuValue, NonEmpty, OnlyTrue, RawLogin, StateName, UnitName};
use super::step_table::step_table;
use crate::config::Table;
use crate::console::Pattern;

step_table! {
    /// `expect = "text"`: wait until the console shows the text.
    expect => Expect {
        value: NonEmpty,
        /// Wait until the console shows the pattern.
        action: Expect(Pattern),
        is: Action::Expect(pattern @ Pattern::Literal(_)),
        from: |text, _| Ok(Action::Expect(Pattern::Literal(text.0))),
        says: format!("expect {pattern}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""login:""#,
    }
    /// `expect_regex = "regex"`: wait until a console line matches.
    expect_regex => ExpectRegex {
        value: ConsoleRegex,
        is: Action::Expect(pattern @ Pattern::Regex(_)),
        from: |regex, _| Ok(Action::Expect(regex.0)),
        says: format!("expect {pattern}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""login: ?$""#,
    }
    /// `send = "bytes"`: type the text as it is.
    send => Send {
        value: NonEmpty,
        /// Send these bytes as they are.
        action: Send(Vec<u8>),
        is: Action::Send(bytes),
        from: |text, _| Ok(Action::Send(text.0.into_bytes())),
        says: format!("send {}", quoted_head(&String::from_utf8_lossy(bytes))),
        takes: [],
        needs_boot: false,
        countdowns: Both,
        example: r#""\u0003""#,
    }
    /// `send_line = "text"`: type the text and Enter.
    send_line => SendLine {
        value: String,
        /// Send the text followed by the Enter key (`"\r"`).
        action: SendLine(String),
        is: Action::SendLine(text),
        from: |text, _| Ok(Action::SendLine(text)),
        says: format!("send_line {}", quoted_head(text)),
        takes: [],
        needs_boot: false,
        countdowns: Both,
        example: r#""root""#,
    }
    /// `interrupt_autoboot = true`: stop U-Boot's countdown at its prompt.
    interrupt_autoboot => InterruptAutoboot {
        value: OnlyTrue,
        /// Stop U-Boot at "Hit any key to stop autoboot" and wait for its prompt.
        action: InterruptAutoboot,
        is: Action::InterruptAutoboot,
        from: |OnlyTrue, _| Ok(Action::InterruptAutoboot),
        says: "interrupt_autoboot".to_owned(),
        takes: [],
        needs_boot: true,
        countdowns: Autoboot,
        example: "true",
    }
    /// `uboot = "command"`: run a command at U-Boot's prompt.
    uboot => Uboot {
        value: NonEmpty,
        /// Run a command at the U-Boot prompt; `output`, if given, must match what it printed
        /// (multi-line mode: `^` and `$` match at line boundaries).
        action: Uboot {
            /// The command line sent to U-Boot.
            command: String,
            /// What the command's output must match.
            output: Option<regex::Regex>,
        },
        is: Action::Uboot { command, .. },
        from: |command, step| Ok(Action::Uboot { command: command.0, output: step.output }),
        says: format!("uboot {command:?}"),
        takes: [Output],
        needs_boot: true,
        countdowns: Autoboot,
        example: r#""version""#,
    }
    /// `menu = "LABEL"` or `menu = N`: choose an extlinux menu entry.
    menu => Menu {
        value: MenuValue,
        /// Choose an entry of U-Boot's extlinux menu.
        action: Menu(MenuChoice),
        is: Action::Menu(choice),
        from: |menu, _| Ok(Action::Menu(match menu {
            MenuValue::Label(label) => MenuChoice::Label(label),
            MenuValue::Number(number) => MenuChoice::Number(number),
        })),
        says: match choice {
            MenuChoice::Label(label) => format!("menu {label}"),
            MenuChoice::Number(number) => format!("menu {number}"),
        },
        takes: [],
        needs_boot: true,
        countdowns: Menu,
        example: "2",
    }
    /// `login = { user = … }`: log in at the getty.
    login => Login {
        value: Table<RawLogin>,
        /// Log in on the getty.
        action: Login {
            /// The user name typed at `login:`.
            user: String,
            /// Where the password comes from.
            password: Password,
            /// What the shell's prompt looks like, when not the default.
            prompt: Option<PromptRegex>,
        },
        is: Action::Login { user, .. },
        from: |login, step| {
            let (user, password, prompt) = step.login(login.0)?;
            Ok(Action::Login { user, password, prompt })
        },
        says: format!("login {user}"),
        takes: [],
        needs_boot: true,
        countdowns: Neither,
        example: r#"{ user = "root" }"#,
    }
    /// `run = "command"`: run a shell command and check its status and output.
    run => Run {
        value: NonEmpty,
        /// Run a shell command; its exit status must equal `status` and its output, if `output`
        /// is given, must match it (multi-line mode: `^` and `$` match at line boundaries).
        action: Run {
            /// The command line sent to the shell.
            command: String,
            /// The exit status the command must end with (0 unless the file says otherwise).
            status: i32,
            /// What the command's output must match.
            output: Option<regex::Regex>,
            /// Retry the command until its status and output match, for at most this long
            /// (`until = "60s"`); `None` runs it once.
            until: Option<std::time::Duration>,
        },
        is: Action::Run { command, .. },
        from: |command, step| Ok(Action::Run {
            command: command.0,
            status: step.status,
            output: step.output,
            until: step.until,
        }),
        says: format!("run {}", quoted_head(command)),
        takes: [Status, Output, Until],
        needs_boot: false,
        countdowns: Neither,
        example: r#""true""#,
    }
    /// `host = "command"`: run a command on the harness's machine.
    host => Host {
        value: HostCommand,
        /// Run a command on the harness's machine (`${PORT_TCP_22}` and `${TARGET_ADDRESS}`
        /// replaced), within the step's time.
        action: Host {
            command: HostCommand,
            check: CommandCheck,
        },
        is: Action::Host { command, .. },
        from: |command, step| Ok(Action::Host { command, check: step.check() }),
        says: format!("host {command}"),
        takes: [Status, Output, Until],
        needs_boot: false,
        countdowns: Neither,
        example: r#""true""#,
    }
    /// `lan = "command"`: run a command as a client on the target's LAN.
    lan => Lan {
        value: HostCommand,
        /// Run a command as a client on the target's LAN (inside the harness's network
        /// namespace).
        action: Lan {
            command: HostCommand,
            check: CommandCheck,
        },
        is: Action::Lan { command, .. },
        from: |command, step| Ok(Action::Lan { command, check: step.check() }),
        says: format!("lan {command}"),
        takes: [Status, Output, Until],
        needs_boot: false,
        countdowns: Neither,
        example: r#"["ping", "-c1", "${TARGET_ADDRESS}"]"#,
    }
    /// `wait_for_port = 22`: wait until something in the target listens on the port.
    wait_for_port => WaitForPort {
        value: u16,
        /// Wait until something in the target listens on this TCP port.
        action: WaitForPort(u16),
        is: Action::WaitForPort(port),
        from: |port, step| match port {
            0 => Err(step.invalid("port 0 is no port: give 1 to 65535")),
            port => Ok(Action::WaitForPort(port)),
        },
        says: format!("wait_for_port {port}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: "22",
    }
    /// `host_port_open = "tcp:22"`: wait until the host reaches a listener through the forward.
    host_port_open => HostPortOpen {
        value: Forward,
        /// Wait until a connection from the host through the forward reaches a listener.
        action: HostPortOpen(Forward),
        is: Action::HostPortOpen(forward),
        from: |forward, _| Ok(Action::HostPortOpen(forward)),
        says: format!("host_port_open {forward}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""tcp:22""#,
    }
    /// `copy_from = { path = … }`: copy a target file out over the console.
    copy_from => CopyFrom {
        value: Table<RawCopyFrom>,
        /// Copy a target file out, over the console, beside the transcript.
        action: CopyFrom {
            /// The file on the target.
            path: String,
        },
        is: Action::CopyFrom { path },
        from: |copy, _| Ok(Action::CopyFrom { path: copy.0.path.0 }),
        says: format!("copy_from {path:?}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#"{ path = "/etc/hostname" }"#,
    }
    /// `copy_to = { from = …, path = … }`: copy a local file in over the console.
    copy_to => CopyTo {
        value: Table<RawCopyTo>,
        /// Copy a local file into the target, over the console.
        action: CopyTo(CopyTo),
        is: Action::CopyTo(copy),
        from: |copy, step| Ok(Action::CopyTo(CopyTo {
            from: step.beside_file(copy.0.from.0),
            path: copy.0.path.0,
        })),
        says: format!("copy_to {:?} from {}", copy.path, copy.from.display()),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#"{ from = "a", path = "/tmp/a" }"#,
    }
    /// `link = { nic = …, up = … }`: switch a NIC's link up or down.
    link => Link {
        value: Table<RawLink>,
        /// Switch a NIC's link up or down.
        action: Link(Link),
        is: Action::Link(link),
        from: |link, _| Ok(Action::Link(Link { nic: link.0.nic, up: link.0.up })),
        says: format!("link {} {}", link.nic.as_str(), if link.up { "up" } else { "down" }),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#"{ nic = "wan", up = false }"#,
    }
    /// `wait_for_unit = "unit"`: wait until a systemd unit is active.
    wait_for_unit => WaitForUnit {
        value: UnitName,
        /// Wait until a systemd unit is active (`systemctl is-active`), failing at once when it
        /// failed.
        action: WaitForUnit(String),
        is: Action::WaitForUnit(unit),
        from: |unit, _| Ok(Action::WaitForUnit(unit.0)),
        says: format!("wait_for_unit {unit}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""sshd.service""#,
    }
    /// `system_running = true`: wait until systemd ends the boot and check it says `running`.
    system_running => SystemRunning {
        value: OnlyTrue,
        /// Wait until systemd ends the boot (`systemctl is-system-running --wait`) and check that
        /// it says `running`; when it says `degraded`, the failure lists the failed units with
        /// their `systemctl status`.
        action: SystemRunning,
        is: Action::SystemRunning,
        from: |OnlyTrue, _| Ok(Action::SystemRunning),
        says: "system_running".to_owned(),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: "true",
    }
    /// `unit_healthy = "unit"`: check that a systemd unit did what it is for.
    unit_healthy => UnitHealthy {
        value: UnitName,
        /// Check that a systemd unit did what it is for: active, or (a oneshot without
        /// `RemainAfterExit`) ended with success, or skipped by its own condition; a failure
        /// names the unit and quotes its `systemctl status`.
        action: UnitHealthy(String),
        is: Action::UnitHealthy(unit),
        from: |unit, _| Ok(Action::UnitHealthy(unit.0)),
        says: format!("unit_healthy {unit}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""sshd.service""#,
    }
    /// `pause = true`: hand the console to the person at the terminal until they leave.
    pause => Pause {
        value: OnlyTrue,
        /// Hand the console to the person at the terminal (as the NixOS test driver's
        /// `breakpoint()` does) until they leave with Ctrl-]; the run then goes on. Without a
        /// terminal (CI) the step notes so and does nothing.
        action: Pause,
        is: Action::Pause,
        from: |OnlyTrue, _| Ok(Action::Pause),
        says: "pause".to_owned(),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: "true",
    }
    /// `save_state = "name"`: name the state reached here, for other scenarios to start from.
    save_state => SaveState {
        value: StateName,
        /// Name the state reached here, for other scenarios to start from (`start = "<name>"`).
        action: SaveState(String),
        is: Action::SaveState(name),
        from: |name, _| Ok(Action::SaveState(name.0)),
        says: format!("save_state {name}"),
        takes: [],
        needs_boot: false,
        countdowns: Neither,
        example: r#""configured""#,
    }
}

/// `text` quoted, or, when long, its first characters quoted and its size: a step's line in a
/// report or log stays one readable line even for a megabyte of input.
fn quoted_head(text: &str) -> String {
    const SHOWN: usize = 200;
    match text.char_indices().nth(SHOWN) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::step_table::RestrictedKey;
    use crate::scenario::tests::{error_of, parse_ok};
    use crate::scenario::ScenarioErrorKind;

    /// A scenario of one step, `kind` with its example value, after `header`.
    fn one_step(header: &str, kind: StepKind) -> String {
        format!(
            "name = \"t\"\n{header}[[steps]]\n{} = {}\n",
            kind.key(),
            kind.example()
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
                let text = format!("{}{} = {}\n", one_step("", first), second.key(), second.example());
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

    #[test]
    fn a_restricted_key_is_refused_on_every_kind_that_does_not_take_it() {
        let values = [
            (RestrictedKey::Status, "1"),
            (RestrictedKey::Output, "\"x\""),
            (RestrictedKey::Until, "\"5s\""),
        ];
        for &kind in StepKind::ALL {
            for (key, value) in values {
                let text = format!("{}{} = {value}\n", one_step("", kind), key.key());
                if kind.takes(key) {
                    parse_ok(&text);
                } else {
                    assert_eq!(
                        error_of(&text),
                        format!(
                            "t.toml:4:1: `{}` applies only to {} steps, not to `{}`",
                            key.key(),
                            StepKind::taking(key),
                            kind.key()
                        )
                    );
                }
            }
        }
    }
}
