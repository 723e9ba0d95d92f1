//! An exporter's TCP port reached through an SSH proxy, as labgrid-client reaches it: the
//! system `ssh` forwarding a local port on 127.0.0.1 to `HOST:PORT` as the proxy host sees it
//! (`ssh -N -L 127.0.0.1:LOCAL:HOST:PORT PROXY`). labgrid shares one ControlMaster per proxy
//! and asks it for forwards; the harness keeps one `ssh` process per forward instead, a child
//! it owns: no control socket to leave behind, and the forward ends with the process.
//!
//! The process never prompts (`BatchMode`), gives up connecting after [`CONNECT_TIMEOUT`], and
//! exits if the forward cannot be set up. The forward is ready when that process listens on
//! its local port, read from `/proc` so that nothing connects to the exporter's port before the
//! console does (a probe would be a client of ser2net's). Dropping the forward ends the
//! process and reaps it: a finished run, an error, and SIGINT/SIGTERM (which drop the running
//! command) all go through that drop.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The SSH connection's own connect timeout (`ConnectTimeout`), in seconds: labgrid's default
/// (`LG_SSH_CONNECT_TIMEOUT`) is 30; an unreachable proxy should fail a run sooner.
const CONNECT_TIMEOUT: u32 = 10;

/// How long the forward may take to listen: connecting, authenticating, binding.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// How long `ssh` has to exit on SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(2);

/// How much of `ssh`'s complaints are kept for the error.
const STDERR_LIMIT: u64 = 16 * 1024;

/// Tries at a local port: another process may take the free port found before `ssh` binds it.
const PORT_TRIES: usize = 3;

/// Why a forward could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The proxy or the destination is not something to hand to `ssh`.
    #[error("cannot forward through SSH proxy {proxy:?} to {destination:?}: {reason}")]
    Refused {
        proxy: String,
        destination: String,
        reason: &'static str,
    },
    /// `ssh` failed, or did not set the forward up in time.
    #[error("SSH forward to {destination} through {proxy} failed: {detail}")]
    Failed {
        proxy: String,
        destination: String,
        detail: String,
    },
}

/// A running forward: connect to [`SshForward::local`] to reach the destination.
#[derive(Debug)]
pub struct SshForward {
    proxy: String,
    host: String,
    port: u16,
    local: u16,
    child: Child,
}

impl SshForward {
    /// Forwards a free local port to `host:port` through `proxy` (an SSH destination, as
    /// labgrid's `LG_PROXY` names it: `HOST`, `USER@HOST`, or a `Host` of the user's SSH
    /// configuration), running `ssh` (the program's name or path).
    pub fn open(ssh: &str, proxy: &str, host: &str, port: u16) -> Result<SshForward, ForwardError> {
        let destination = join_host_port(host, port);
        let refuse = |reason| ForwardError::Refused {
            proxy: proxy.to_owned(),
            destination: destination.clone(),
            reason,
        };
        if proxy.is_empty() || proxy.starts_with('-') || proxy.contains(char::is_whitespace) {
            return Err(refuse("not an SSH destination"));
        }
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
        {
            return Err(refuse("not a host name or address"));
        }
        let mut last = String::new();
        for _ in 0..PORT_TRIES {
            let local = free_local_port().map_err(|e| ForwardError::Failed {
                proxy: proxy.to_owned(),
                destination: destination.clone(),
                detail: format!("no free local port: {e}"),
            })?;
            match start(ssh, proxy, &destination, local) {
                Ok(child) => {
                    return Ok(SshForward {
                        proxy: proxy.to_owned(),
                        host: host.to_owned(),
                        port,
                        local,
                        child,
                    })
                }
                // Someone took the port between finding it free and ssh binding it.
                Err(detail) if detail.contains("listen") || detail.contains("in use") => last = detail,
                Err(detail) => {
                    return Err(ForwardError::Failed {
                        proxy: proxy.to_owned(),
                        destination,
                        detail,
                    })
                }
            }
        }
        Err(ForwardError::Failed {
            proxy: proxy.to_owned(),
            destination,
            detail: last,
        })
    }

    /// `127.0.0.1:LOCAL`, where the forward listens.
    pub fn local(&self) -> String {
        format!("127.0.0.1:{}", self.local)
    }

    /// Whether this is the forward to `host:port` through `proxy`, still running.
    pub fn serves(&mut self, proxy: &str, host: &str, port: u16) -> bool {
        self.proxy == proxy
            && self.host == host
            && self.port == port
            && matches!(self.child.try_wait(), Ok(None))
    }
}

/// The forward a place's console goes through, made when first needed and made again when the
/// port moves (ser2net restarted elsewhere) or its `ssh` ended (the proxy went away).
#[derive(Debug, Default)]
pub struct ForwardSlot(Mutex<Option<SshForward>>);

impl ForwardSlot {
    /// `127.0.0.1:LOCAL` forwarded to `host:port` through `proxy`: the forward made last if it
    /// still serves, else a new one (the old one ended first).
    pub fn to(&self, proxy: &str, host: &str, port: u16) -> Result<String, ForwardError> {
        let mut slot = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(forward) = slot.as_mut() {
            if forward.serves(proxy, host, port) {
                return Ok(forward.local());
            }
        }
        *slot = None;
        let forward = SshForward::open("ssh", proxy, host, port)?;
        let local = forward.local();
        *slot = Some(forward);
        Ok(local)
    }
}

impl Drop for SshForward {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `ssh`'s arguments for the forward: labgrid's (`-x`, `LogLevel=ERROR`, no passwords), never
/// a prompt, a bounded connect, no shared ControlMaster (this process is the forward's whole
/// lifetime), and an exit when the forward cannot be made or the proxy stops answering.
fn argv(proxy: &str, destination: &str, local: u16) -> Vec<String> {
    let options = [
        "BatchMode=yes".to_owned(),
        format!("ConnectTimeout={CONNECT_TIMEOUT}"),
        "ExitOnForwardFailure=yes".to_owned(),
        "ServerAliveInterval=10".to_owned(),
        "ServerAliveCountMax=3".to_owned(),
        "PasswordAuthentication=no".to_owned(),
        "LogLevel=ERROR".to_owned(),
        "ControlMaster=no".to_owned(),
        "ControlPath=none".to_owned(),
    ];
    let mut argv: Vec<String> = ["-x", "-N", "-T"].map(str::to_owned).to_vec();
    for option in options {
        argv.extend(["-o".to_owned(), option]);
    }
    argv.extend([
        "-L".to_owned(),
        format!("127.0.0.1:{local}:{destination}"),
        "--".to_owned(),
        proxy.to_owned(),
    ]);
    argv
}

/// Starts `ssh` and waits until it listens on `local`; its complaints if it exits or overruns.
fn start(ssh: &str, proxy: &str, destination: &str, local: u16) -> Result<Child, String> {
    let argv = argv(proxy, destination, local);
    tracing::debug!(target: "labgrid", "forward: {ssh} {}", argv.join(" "));
    let mut child = Command::new(ssh)
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {ssh}: {e} (is OpenSSH's client installed?)"))?;
    let stderr = collect(child.stderr.take());
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let said = stderr.join().unwrap_or_default();
                return Err(format!(
                    "ssh exited ({status}){}",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ));
            }
            Ok(None) if listens(child.id(), local) => {
                tracing::debug!(target: "labgrid", "forward: 127.0.0.1:{local} -> {destination} through {proxy} after {:?}", started.elapsed());
                return Ok(child);
            }
            Ok(None) if started.elapsed() < READY_LIMIT => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                stop(&mut child);
                return Err(format!(
                    "not listening within {}; stopped",
                    humantime::format_duration(READY_LIMIT)
                ));
            }
            Err(e) => {
                stop(&mut child);
                return Err(e.to_string());
            }
        }
    }
}

/// SIGTERM (so that `ssh` ends its ProxyCommand, if the user's configuration has one), then
/// SIGKILL after [`STOP_LIMIT`]; reaped either way.
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: signals a child this process started and has not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < STOP_LIMIT {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What a pipe says until it closes, at most [`STDERR_LIMIT`] of it, on a thread.
fn collect(pipe: Option<std::process::ChildStderr>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(STDERR_LIMIT).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).trim().to_owned()
    })
}

/// `HOST:PORT`, an IPv6 address in brackets, as `ssh -L` reads it.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
fn free_local_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port`.
fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let Some(inode) = listening_inode(&table, port) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str()))
}

/// The inode of the socket listening on 127.0.0.1:`port` in a `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<&str> {
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        (fields.len() > 9 && fields[1] == local && fields[3] == "0A").then(|| fields[9])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_never_prompts_and_ends_the_proxy_name_after_the_options() {
        let argv = argv("gw@farm", "exporter-1:20001", 40000);
        let text = argv.join(" ");
        for option in [
            "-o BatchMode=yes",
            "-o ConnectTimeout=10",
            "-o ExitOnForwardFailure=yes",
            "-o ControlPath=none",
        ] {
            assert!(text.contains(option), "{option} missing from {text}");
        }
        assert!(
            text.ends_with("-L 127.0.0.1:40000:exporter-1:20001 -- gw@farm"),
            "{text}"
        );
    }

    #[test]
    fn an_ipv6_destination_is_bracketed() {
        assert_eq!(join_host_port("fd00::5", 20001), "[fd00::5]:20001");
        assert_eq!(join_host_port("exporter-1", 20001), "exporter-1:20001");
    }

    #[test]
    fn a_proxy_or_host_that_would_read_as_an_option_is_refused() {
        for (proxy, host) in [("-oProxyCommand=x", "exporter"), ("gw", "a b"), ("gw", "")] {
            let error = SshForward::open("ssh", proxy, host, 1).expect_err("refused");
            assert!(matches!(error, ForwardError::Refused { .. }), "{error}");
        }
    }

    #[test]
    fn an_ssh_that_cannot_start_is_named_in_the_error() {
        let error = SshForward::open("/nonexistent/ssh", "gw", "exporter-1", 20001).expect_err("no ssh");
        let text = error.to_string();
        assert!(matches!(error, ForwardError::Failed { .. }), "{text}");
        assert!(
            text.starts_with(
                "SSH forward to exporter-1:20001 through gw failed: cannot start /nonexistent/ssh: "
            ),
            "{text}"
        );
    }

    #[test]
    fn the_listening_socket_is_found_by_address_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 111 1\n\
   1: 0100007F:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1\n";
        assert_eq!(listening_inode(table, 40000), Some("222"));
        assert_eq!(listening_inode(table, 40001), None);
    }
}
