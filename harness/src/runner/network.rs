//! Steps that reach beyond the console: commands on the harness's machine (`host`) and on the
//! target's LAN (`lan`), port waits on both sides, and link control.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::outcome::FailReason;
use super::retry::{self, RETRY_PAUSE};
use super::session::Session;
use super::steps::{capture, check_output, StepFailure, StepResult};
use super::RunContext;
use crate::scenario::{CommandCheck, Forward, HostCommand, Link, Protocol};
use crate::targets::qemu_net;
use crate::targets::qmp::Qmp;
use crate::targets::NetAccess;

/// The most of a host command's output kept (stdout and stderr each); the rest is read and
/// dropped, so a chatty command cannot grow memory.
pub const HOST_OUTPUT_CAP: usize = 1024 * 1024;

/// How long a connection to a board must stay open, silent, to count as reaching a listener
/// (one that waits for the client to speak, as http does); one that speaks first (ssh) counts
/// at once.
pub const SETTLE: Duration = Duration::from_millis(1500);

/// Where a command step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// On the harness's machine (`host`).
    Host,
    /// Inside the LAN namespace, as a client on the target's LAN (`lan`).
    Lan,
}

/// A `host` or `lan` step: runs the command on its side, with `${…}` replaced, and checks it.
pub async fn command(
    s: &mut Session<'_>,
    side: Side,
    command: &HostCommand,
    check: &CommandCheck,
    ctx: &RunContext,
    deadline: Instant,
) -> StepResult {
    let setup = |detail: String| StepFailure {
        expected: format!("{} {command}", if side == Side::Host { "host" } else { "lan" }),
        reason: FailReason::Setup { detail },
    };
    let mut argv = Vec::new();
    if side == Side::Lan {
        // The harness's to make (the scenario asked for NICs, or `lan` steps would be refused
        // when it is loaded): without it the step could not run, whatever the image does.
        let namespace = ctx.net.lan.as_ref().map_err(|why| StepFailure {
            expected: format!("lan {command}"),
            reason: FailReason::CouldNotRun {
                detail: format!("no LAN to run on: {why}"),
            },
        })?;
        argv.extend(["ip", "netns", "exec", &namespace.namespace].map(str::to_owned));
    }
    argv.extend(expand(command, &ctx.net).map_err(setup)?);
    repeat(s, &argv, check, &ctx.net, deadline).await
}

/// Runs `argv` once, or with `until` again while its checks fail (see [`retry::until_passes`]).
async fn repeat<'a>(
    s: &mut Session<'a>,
    argv: &[String],
    check: &CommandCheck,
    net: &NetAccess,
    deadline: Instant,
) -> StepResult {
    let once = async |s: &mut Session<'a>| match run_host(argv, net, deadline).await {
        Ok((status, output)) => {
            s.note(&format!("exit status {status}, output:\n{}", head(&output)));
            judge(argv, status, &output, check)
        }
        Err(reason) => Err(StepFailure {
            expected: format!("{argv:?} to finish"),
            reason,
        }),
    };
    match check.until {
        None => once(s).await,
        Some(window) => {
            let what = format!("{argv:?} until it passes");
            retry::until_passes(s, &what, window, deadline, once).await
        }
    }
}

/// What of a host command's output the transcript shows: a few KiB, cut at a character.
fn head(output: &str) -> &str {
    const SHOWN: usize = 4096;
    let output = output.trim_end();
    match output.char_indices().nth(SHOWN) {
        Some((cut, _)) => &output[..cut],
        None => output,
    }
}

fn judge(argv: &[String], status: i32, output: &str, check: &CommandCheck) -> StepResult {
    if status != check.status {
        return Err(StepFailure {
            expected: format!("exit status {}", check.status),
            reason: FailReason::Check {
                detail: format!(
                    "{argv:?} exited with status {status}; output:\n{}",
                    super::steps::quoted(output)
                ),
            },
        });
    }
    check_output(output, check.output.as_ref())
}

/// The argument vector of `command`, with `${TARGET_ADDRESS}` and `${PORT_…}` replaced. A
/// `${PORT_…}` no forward provides is an error rather than an empty string.
pub fn expand(command: &HostCommand, net: &NetAccess) -> Result<Vec<String>, String> {
    let vars = net.variables();
    let one = |text: &str| substitute(text, net, &vars);
    Ok(match command {
        HostCommand::Shell(line) => vec!["sh".to_owned(), "-c".to_owned(), one(line)?],
        HostCommand::Argv(argv) => argv.iter().map(|a| one(a)).collect::<Result<_, _>>()?,
    })
}

fn substitute(text: &str, net: &NetAccess, vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let name = &after[..end];
        match net.lookup(name) {
            Some(value) => out.push_str(&value),
            None if name.starts_with("PORT_") || name == "TARGET_ADDRESS" || name == "LAN_IF" => {
                return Err(format!(
                    "${{{name}}} has no value here: {}",
                    if name == "TARGET_ADDRESS" {
                        "the target has no address (QEMU with a `[network]` table, or a board profile's `address`)".to_owned()
                    } else if name == "LAN_IF" {
                        "the target's LAN is not connected to the harness".to_owned()
                    } else {
                        format!("forwarded ports are {}", list_ports(vars))
                    }
                ))
            }
            // Not the harness's: left for the shell.
            None => out.push_str(&rest[at..at + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn list_ports(vars: &[(String, String)]) -> String {
    let ports: Vec<&str> = vars
        .iter()
        .filter(|(n, _)| n.starts_with("PORT_"))
        .map(|(n, _)| n.as_str())
        .collect();
    if ports.is_empty() {
        "none (add `[network] forward = [\"tcp:22\"]`)".to_owned()
    } else {
        ports.join(", ")
    }
}

/// Runs `argv` in a process group of its own, with the network's variables in its
/// environment, until it exits or `deadline` passes (then the whole group is killed). Returns
/// its exit status (-1 for a signal) and its stdout followed by its stderr, each capped.
pub async fn run_host(
    argv: &[String],
    net: &NetAccess,
    deadline: Instant,
) -> Result<(i32, String), FailReason> {
    let (program, args) = argv.split_first().ok_or_else(|| FailReason::Setup {
        detail: "empty command".to_owned(),
    })?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(net.variables())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| FailReason::Setup {
        detail: format!("cannot run {program:?}: {e}"),
    })?;
    let group = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let started = Instant::now();
    let work = async {
        let (out, err) = tokio::join!(read_capped(&mut stdout), read_capped(&mut stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    let outcome = tokio::time::timeout_at(deadline, work).await;
    // The group goes in every case: a command that exited may have left children behind
    // (`ssh … &`), and one that timed out is stopped with all it started.
    if let Some(pid) = group {
        // SAFETY: kill has no memory effects; a group that is gone already gives ESRCH.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    let Ok((out, err, status)) = outcome else {
        return Err(FailReason::Timeout {
            waited: started.elapsed(),
        });
    };
    let status = status.map_err(|e| FailReason::Io {
        detail: format!("waiting for {program:?}: {e}"),
    })?;
    let mut output = String::from_utf8_lossy(&out).into_owned();
    output.push_str(&String::from_utf8_lossy(&err));
    Ok((status.code().unwrap_or(-1), output))
}

async fn read_capped<R: AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = HOST_OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// `wait_for_port`: polls the target's socket table over the console until a TCP socket
/// listens on `port` (any address, IPv4 or IPv6).
pub async fn wait_for_port(s: &mut Session<'_>, port: u16, deadline: Instant, seq: usize) -> StepResult {
    // /proc is there with any userland (busybox has no ss).
    let command = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null";
    let expected = format!("a listener on TCP port {port}");
    let nothing = |mut ports: Vec<u16>| {
        ports.sort_unstable();
        ports.dedup();
        StepFailure {
            expected: expected.clone(),
            reason: FailReason::Check {
                detail: format!(
                    "nothing listened on TCP port {port} before the step's time ran out; listening: {ports:?}"
                ),
            },
        }
    };
    let mut last: Option<Vec<u16>> = None;
    loop {
        let table = match capture(s, command, deadline, seq).await {
            Ok((_, table)) => table,
            // The time ran out during a poll: the last complete one is the answer.
            Err(f) if matches!(f.reason, FailReason::Timeout { .. }) && last.is_some() => {
                return Err(nothing(last.unwrap_or_default()))
            }
            Err(f) => {
                return Err(StepFailure {
                    expected: expected.clone(),
                    ..f
                })
            }
        };
        let ports = listening_ports(&table);
        if ports.contains(&port) {
            return Ok(());
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(nothing(ports));
        }
        last = Some(ports);
        s.pause(RETRY_PAUSE).await.map_err(|reason| StepFailure {
            expected: expected.clone(),
            reason,
        })?;
    }
}

/// The local ports of the sockets in LISTEN state (`0A`) in `/proc/net/tcp{,6}` text.
pub fn listening_ports(table: &str) -> Vec<u16> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            (fields.get(3)? == &"0A").then_some(())?;
            let (_, port) = local.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// `host_port_open`: connects from the host through the forward (or to the board's address)
/// until a listener answers: data arrives, or the connection stays open for [`SETTLE`].
pub async fn host_port_open(
    s: &mut Session<'_>,
    forward: &Forward,
    ctx: &RunContext,
    deadline: Instant,
) -> StepResult {
    let expected = format!("a listener behind {forward}");
    let setup = |detail: String| StepFailure {
        expected: expected.clone(),
        reason: FailReason::Setup { detail },
    };
    if forward.protocol != Protocol::Tcp {
        return Err(setup(format!(
            "{forward}: only TCP ports can be checked from the host (UDP has no connection to see)"
        )));
    }
    let port = ctx.net.port(forward).map_err(setup)?;
    let address = ctx
        .net
        .address
        .clone()
        .unwrap_or_else(|| qemu_net::HOST_ADDRESS.to_string());
    let mut last;
    loop {
        let attempt = match &ctx.net.qmp {
            // QEMU's user-mode network: the host's connection is accepted before the guest is
            // asked, so only QEMU's own table tells whether the guest completed the handshake.
            Some(qmp) => probe_forwarded(qmp, &address, port, forward.port, deadline).await,
            // A board's own TCP stack refuses a port nothing listens on.
            None => probe(&address, port, deadline).await,
        };
        last = match attempt {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if Instant::now() + RETRY_PAUSE >= deadline {
            break;
        }
        s.pause(RETRY_PAUSE).await.map_err(|reason| StepFailure {
            expected: expected.clone(),
            reason,
        })?;
    }
    s.note(&format!("{address}:{port} ({forward}): {last}"));
    Err(StepFailure {
        expected,
        reason: FailReason::Check {
            detail: format!(
                "no listener answered at {address}:{port} ({forward}) before the step's time ran out: {last}"
            ),
        },
    })
}

/// One connection attempt; `Err` says what happened instead of a listener answering.
async fn probe(address: &str, port: u16, deadline: Instant) -> Result<(), String> {
    let connect = tokio::time::timeout_at(deadline, TcpStream::connect((address, port)));
    let mut stream = match connect.await {
        Err(_) => return Err("the connection did not complete".to_owned()),
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let mut byte = [0u8; 1];
    let settle = deadline.min(Instant::now() + SETTLE);
    match tokio::time::timeout_at(settle, stream.read(&mut byte)).await {
        // Silent and open for the whole settle time: something accepted it in the target.
        Err(_) => Ok(()),
        Ok(Ok(0)) => Err("the connection was closed at once (nothing listens in the target)".to_owned()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("the connection failed: {e}")),
    }
}

/// How long one attempt through a QEMU forward waits for the guest's side of the connection.
const HANDSHAKE: Duration = Duration::from_secs(3);

/// One connection through a QEMU forward, judged by QEMU's connection table (`info usernet`):
/// open once the connection to `guest_port` is ESTABLISHED on the guest's side.
async fn probe_forwarded(
    qmp: &std::path::Path,
    address: &str,
    host_port: u16,
    guest_port: u16,
    deadline: Instant,
) -> Result<(), String> {
    let connect = tokio::time::timeout_at(deadline, TcpStream::connect((address, host_port)));
    let mut stream = match connect.await {
        Err(_) => return Err("the connection did not complete".to_owned()),
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let mut qmp = Qmp::connect(qmp).await.map_err(|e| e.to_string())?;
    let give_up = deadline.min(Instant::now() + HANDSHAKE);
    let mut byte = [0u8; 1];
    loop {
        let table = qmp
            .execute(
                "human-monitor-command",
                serde_json::json!({ "command-line": "info usernet" }),
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| e.to_string())?;
        let states = usernet_states(table.as_str().unwrap_or(""), host_port, guest_port);
        if states.iter().any(|s| s == "ESTABLISHED") {
            return Ok(());
        }
        let wake = give_up.min(Instant::now() + Duration::from_millis(200));
        match tokio::time::timeout_at(wake, stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Err("the connection was closed (nothing listens in the target)".to_owned())
            }
            // Data from the guest: its side is open.
            Ok(Ok(_)) => return Ok(()),
            Err(_) if Instant::now() >= give_up => {
                return Err(format!(
                    "the target did not take the connection within {}s (QEMU's side: {})",
                    HANDSHAKE.as_secs(),
                    if states.is_empty() {
                        "gone".to_owned()
                    } else {
                        states.join(", ")
                    }
                ))
            }
            Err(_) => {}
        }
    }
}

/// The states of the forwarded TCP connections from host port `host_port` to `guest_port` in
/// the text of QEMU's `info usernet` (the listening forward itself left out).
pub fn usernet_states(table: &str, host_port: u16, guest_port: u16) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let state = fields.first()?.strip_prefix("TCP[")?.strip_suffix(']')?;
            let source_port: u16 = fields.get(3)?.parse().ok()?;
            let dest_port: u16 = fields.get(5)?.parse().ok()?;
            (state != "HOST_FORWARD" && source_port == host_port && dest_port == guest_port)
                .then(|| state.to_owned())
        })
        .collect()
}

/// `link`: switches the NIC's link over QMP.
pub async fn link(s: &mut Session<'_>, link: &Link, ctx: &RunContext) -> StepResult {
    let state = if link.up { "up" } else { "down" };
    let expected = format!("the {} link {state}", link.nic.as_str());
    let fail = |detail: String| StepFailure {
        expected: expected.clone(),
        reason: FailReason::Setup { detail },
    };
    let socket = ctx.net.qmp.as_ref().ok_or_else(|| {
        fail("this target's links cannot be switched (QEMU with a `[network]` table can)".to_owned())
    })?;
    let mut qmp = Qmp::connect(socket).await.map_err(|e| fail(e.to_string()))?;
    qemu_net::set_link(&mut qmp, link.nic, link.up)
        .await
        .map_err(|e| fail(e.to_string()))?;
    s.note(&format!("{} link set {state}", link.nic.as_str()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::targets::Ports;

    fn forwarded(port: u16) -> NetAccess {
        NetAccess {
            address: Some("127.0.0.1".to_owned()),
            ports: Ports::Forwarded(BTreeMap::from([(Forward::parse("tcp:22").unwrap(), port)])),
            ..NetAccess::default()
        }
    }

    #[test]
    fn a_forwarded_port_and_the_address_replace_their_variables() {
        let command = HostCommand::Argv(vec![
            "ssh".into(),
            "-p".into(),
            "${PORT_TCP_22}".into(),
            "root@${TARGET_ADDRESS}".into(),
        ]);
        assert_eq!(
            expand(&command, &forwarded(40022)).unwrap(),
            ["ssh", "-p", "40022", "root@127.0.0.1"]
        );
    }

    #[test]
    fn a_port_no_forward_provides_is_an_error_naming_the_forwarded_ones() {
        let command = HostCommand::Shell("curl http://x:${PORT_TCP_80}/".into());
        assert_eq!(
            expand(&command, &forwarded(40022)).unwrap_err(),
            "${PORT_TCP_80} has no value here: forwarded ports are PORT_TCP_22"
        );
    }

    #[test]
    fn on_a_board_a_port_is_itself_at_the_boards_address() {
        let board = NetAccess {
            address: Some("192.168.2.1".to_owned()),
            ports: Ports::Direct,
            ..NetAccess::default()
        };
        let command = HostCommand::Shell("ssh -p ${PORT_TCP_22} root@${TARGET_ADDRESS}".into());
        assert_eq!(expand(&command, &board).unwrap()[2], "ssh -p 22 root@192.168.2.1");
    }

    #[test]
    fn other_variables_are_left_for_the_shell() {
        let command = HostCommand::Shell("echo ${HOME} $x".into());
        assert_eq!(expand(&command, &forwarded(1)).unwrap()[2], "echo ${HOME} $x");
    }

    #[test]
    fn listening_sockets_are_found_in_both_tables() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n\
   1: 0100007F:0035 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0\n\
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(listening_ports(table), [22, 8080]);
    }

    #[test]
    fn the_guest_side_of_a_forwarded_connection_is_read_from_qemus_table() {
        // As QEMU 10 prints it while the guest has not answered the handshake yet.
        let table = "Hub -1 (wan):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  \
TCP[SYN_SENT]      17       127.0.0.1 45022       10.0.2.15    22     0     0\r\n  \
TCP[HOST_FORWARD]  16       127.0.0.1 45022       10.0.2.15    22     0     0\r\n  \
TCP[ESTABLISHED]   18       127.0.0.1 45080       10.0.2.15    80     0     0\r\n";
        assert_eq!(usernet_states(table, 45022, 22), ["SYN_SENT"]);
        assert_eq!(usernet_states(table, 45080, 80), ["ESTABLISHED"]);
    }

    #[tokio::test]
    async fn a_connection_closed_at_once_is_no_listener() {
        // What user-mode networking does when nothing listens in the guest: accept, then close.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            probe("127.0.0.1", port, deadline).await,
            Err("the connection was closed at once (nothing listens in the target)".to_owned())
        );
    }

    #[tokio::test]
    async fn a_listener_that_speaks_first_is_open() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"SSH-2.0-x\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let started = Instant::now();
        assert_eq!(
            probe("127.0.0.1", port, started + Duration::from_secs(10)).await,
            Ok(())
        );
        assert!(started.elapsed() < SETTLE, "waited {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_host_command_past_its_deadline_is_killed_with_its_children() {
        let argv = ["sh".to_owned(), "-c".to_owned(), "sleep 30 & sleep 30".to_owned()];
        let started = Instant::now();
        let result = run_host(&argv, &NetAccess::default(), started + Duration::from_millis(300)).await;
        assert!(matches!(result, Err(FailReason::Timeout { .. })), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_host_command_sees_the_forwarded_ports_in_its_environment() {
        let argv = [
            "sh".to_owned(),
            "-c".to_owned(),
            "echo $PORT_TCP_22; exit 3".to_owned(),
        ];
        let result = run_host(&argv, &forwarded(40022), Instant::now() + Duration::from_secs(10)).await;
        assert_eq!(result.ok(), Some((3, "40022\n".to_owned())));
    }
}
