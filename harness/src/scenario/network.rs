//! What a scenario asks of the target's network and of the harness's machine: NICs and host
//! forwards (`[network]`), host-side and LAN-side commands, port waits, file copies over the
//! console, link control and diagnostics on failure.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A scenario's `[network]` table: its presence attaches the board's NICs (WAN, then LAN) to a
/// QEMU target; `forward` lists the guest ports the host reaches through the WAN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Guest ports forwarded from free host ports, in file order, without repeats.
    pub forwards: Vec<Forward>,
}

impl NetworkSpec {
    /// `self` with the forwards of `other` that `self` lacks added after its own: a board
    /// profile's forwards joined to a scenario's.
    pub fn merged(&self, other: &NetworkSpec) -> NetworkSpec {
        let mut forwards = self.forwards.clone();
        for forward in &other.forwards {
            if !forwards.contains(forward) {
                forwards.push(*forward);
            }
        }
        NetworkSpec { forwards }
    }
}

/// The transport of a forwarded port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as QEMU's `hostfwd` and the scenario file write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A guest port the host reaches: `tcp:22`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Forward {
    pub protocol: Protocol,
    pub port: u16,
}

impl Forward {
    /// Reads `tcp:22` or `udp:53`; the error says what is wrong in one line.
    pub fn parse(text: &str) -> Result<Forward, String> {
        let (protocol, port) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} is not a forward: write \"tcp:PORT\" or \"udp:PORT\""))?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(format!("unknown protocol {other:?}: write \"tcp\" or \"udp\"")),
        };
        let port = match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("{port:?} is not a port number (1 to 65535)")),
        };
        Ok(Forward { protocol, port })
    }

    /// The variable host steps see the forward's host port in: `PORT_TCP_22`.
    pub fn variable(&self) -> String {
        format!("PORT_{}_{}", self.protocol.as_str().to_uppercase(), self.port)
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol.as_str(), self.port)
    }
}

impl<'de> Deserialize<'de> for Forward {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Forward::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// One of the board's NICs, in the board's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nic {
    /// The uplink (`end0` on an R2S): QEMU's user-mode network.
    Wan,
    /// The LAN port (`enu1` on an R2S): a tap in a network namespace of the harness's.
    Lan,
}

impl Nic {
    /// `wan` or `lan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Nic::Wan => "wan",
            Nic::Lan => "lan",
        }
    }
}

impl<'de> Deserialize<'de> for Nic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "wan" => Ok(Nic::Wan),
            "lan" => Ok(Nic::Lan),
            other => Err(de::Error::custom(format!(
                r#"unknown NIC {other:?}: write "wan" or "lan""#
            ))),
        }
    }
}

/// A command run on the harness's machine: a string for `sh -c`, or an argument vector run
/// as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl fmt::Display for HostCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostCommand::Shell(line) => write!(f, "{line:?}"),
            HostCommand::Argv(argv) => write!(f, "{argv:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for HostCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = HostCommand;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command line for `sh -c`, or a list of arguments")
            }

            fn visit_str<E: de::Error>(self, line: &str) -> Result<HostCommand, E> {
                if line.trim().is_empty() {
                    return Err(E::custom("must not be empty"));
                }
                Ok(HostCommand::Shell(line.to_owned()))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<HostCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                match argv.first() {
                    None => Err(de::Error::custom("the argument list must name a program")),
                    Some(program) if program.is_empty() => {
                        Err(de::Error::custom("the program name must not be empty"))
                    }
                    Some(_) => Ok(HostCommand::Argv(argv)),
                }
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

/// What a command step checks: its exit status, its output, and whether it is retried until
/// both hold.
#[derive(Clone, Debug)]
pub struct CommandCheck {
    /// The exit status the command must end with (0 unless the file says otherwise).
    pub status: i32,
    /// What the command's output must match (multi-line mode).
    pub output: Option<regex::Regex>,
    /// Retry, once a second, while the checks fail, for at most this long (`until = "60s"`, the
    /// NixOS test driver's `wait_until_succeeds`); `None` runs the command once.
    pub until: Option<std::time::Duration>,
}

/// `copy_to`: a file of the harness's machine written into the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyTo {
    /// The local file, relative to the scenario file's directory unless absolute.
    pub from: PathBuf,
    /// Where it goes on the target.
    pub path: String,
}

/// `link`: a NIC's link switched up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub nic: Nic,
    pub up: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    pub forward: Vec<toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCopyFrom {
    pub path: super::raw::NonEmpty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCopyTo {
    pub from: super::raw::NonEmpty,
    pub path: super::raw::NonEmpty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLink {
    pub nic: Nic,
    pub up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_reads_protocol_and_port_and_names_its_variable() {
        let forward = Forward::parse("udp:53").unwrap();
        assert_eq!(
            forward,
            Forward {
                protocol: Protocol::Udp,
                port: 53
            }
        );
        assert_eq!(forward.variable(), "PORT_UDP_53");
        assert_eq!(forward.to_string(), "udp:53");
    }

    #[test]
    fn a_forward_without_a_valid_port_is_refused() {
        assert_eq!(
            Forward::parse("tcp:0").unwrap_err(),
            "\"0\" is not a port number (1 to 65535)"
        );
        assert_eq!(
            Forward::parse("sctp:22").unwrap_err(),
            "unknown protocol \"sctp\": write \"tcp\" or \"udp\""
        );
        assert_eq!(
            Forward::parse("22").unwrap_err(),
            "\"22\" is not a forward: write \"tcp:PORT\" or \"udp:PORT\""
        );
    }

    #[test]
    fn a_board_forward_the_scenario_also_has_is_listed_once() {
        let scenario = NetworkSpec {
            forwards: vec![Forward::parse("tcp:22").unwrap()],
        };
        let board = NetworkSpec {
            forwards: vec![
                Forward::parse("tcp:80").unwrap(),
                Forward::parse("tcp:22").unwrap(),
            ],
        };
        let merged: Vec<String> = scenario
            .merged(&board)
            .forwards
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(merged, ["tcp:22", "tcp:80"]);
    }
}

#[cfg(test)]
mod parse_tests {
    use std::path::Path;

    use crate::scenario::{parse, Action, HostCommand, Nic};

    const HEADER: &str = "name = \"n\"\n";

    fn error_of(text: &str) -> String {
        parse(text, Path::new("t.toml")).unwrap_err().headline()
    }

    #[test]
    fn a_network_table_lists_its_forwards_in_file_order() {
        let text =
            format!("{HEADER}[network]\nforward = [\"tcp:22\", \"udp:53\"]\n[[steps]]\nexpect = \"x\"\n");
        let scenario = parse(&text, Path::new("t.toml")).unwrap();
        let forwards: Vec<String> = scenario
            .network
            .unwrap()
            .forwards
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(forwards, ["tcp:22", "udp:53"]);
    }

    #[test]
    fn a_forward_given_twice_points_at_the_second() {
        let text =
            format!("{HEADER}[network]\nforward = [\"tcp:22\", \"tcp:22\"]\n[[steps]]\nexpect = \"x\"\n");
        assert_eq!(error_of(&text), "t.toml:3:22: tcp:22 is forwarded already");
    }

    #[test]
    fn a_bad_forward_points_at_itself() {
        let text =
            format!("{HEADER}[network]\nforward = [\"tcp:22\", \"tcp:http\"]\n[[steps]]\nexpect = \"x\"\n");
        assert_eq!(
            error_of(&text),
            "t.toml:3:22: \"http\" is not a port number (1 to 65535)"
        );
    }

    #[test]
    fn a_host_step_takes_a_command_line_or_an_argument_list() {
        let text = format!(
            "{HEADER}[[steps]]\nhost = \"true\"\n[[steps]]\nhost = [\"ssh\", \"-p\", \"${{PORT_TCP_22}}\"]\nstatus = 255\nuntil = \"10s\"\n"
        );
        let scenario = parse(&text, Path::new("t.toml")).unwrap();
        let Action::Host { command, .. } = &scenario.steps[0].action else {
            panic!("not a host step")
        };
        assert_eq!(command, &HostCommand::Shell("true".into()));
        let Action::Host { command, check } = &scenario.steps[1].action else {
            panic!("not a host step")
        };
        assert_eq!(
            command,
            &HostCommand::Argv(vec!["ssh".into(), "-p".into(), "${PORT_TCP_22}".into()])
        );
        assert_eq!(
            (check.status, check.until),
            (255, Some(std::time::Duration::from_secs(10)))
        );
    }

    #[test]
    fn a_copy_to_source_is_found_beside_the_scenario() {
        let text = format!("{HEADER}[[steps]]\ncopy_to = {{ from = \"files/a\", path = \"/tmp/a\" }}\n");
        let scenario = parse(&text, Path::new("dir/t.toml")).unwrap();
        let Action::CopyTo(copy) = &scenario.steps[0].action else {
            panic!("not a copy")
        };
        assert_eq!(copy.from, Path::new("dir/files/a"));
        assert_eq!(copy.path, "/tmp/a");
    }

    #[test]
    fn a_link_names_a_nic_of_the_board() {
        let text = format!("{HEADER}[[steps]]\nlink = {{ nic = \"wan\", up = false }}\n");
        let scenario = parse(&text, Path::new("t.toml")).unwrap();
        assert!(matches!(&scenario.steps[0].action, Action::Link(l) if l.nic == Nic::Wan && !l.up));
        let text = format!("{HEADER}[[steps]]\nlink = {{ nic = \"eth0\", up = false }}\n");
        assert_eq!(
            error_of(&text),
            "t.toml:3:16: unknown NIC \"eth0\": write \"wan\" or \"lan\""
        );
    }

    #[test]
    fn on_failure_commands_are_kept_in_order() {
        let text = format!("{HEADER}on_failure = [\"dmesg\", \"ip a\"]\n[[steps]]\nexpect = \"x\"\n");
        assert_eq!(
            parse(&text, Path::new("t.toml")).unwrap().on_failure,
            ["dmesg", "ip a"]
        );
    }
}
