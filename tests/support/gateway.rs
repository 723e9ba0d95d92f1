//! A board farm behind an SSH gateway, on one machine: a network namespace of its own (the
//! farm's network: the tests run the coordinator, exporter, ser2net and power relay in it) whose
//! only way in is a real `sshd` listening on a high port of the namespace's loopback. Clients
//! on the host reach that sshd through a test-owned SSH configuration (`-F`, through an `ssh`
//! wrapper first on PATH, standing in for the user's `~/.ssh/config`, which OpenSSH reads from
//! the password database's home, not `$HOME`): host name `farm-gateway` (and the name an
//! exporter started `--isolated` gives as its proxy, see [`exporter_fqdn`]), key-only login with a
//! key made in the test's directory, the host key pinned, and a ProxyCommand that carries the
//! TCP connection into the namespace (`ip netns exec NS busybox nc 127.0.0.1 PORT`), as a route
//! to a gateway would. Needs root (`ip netns`); everything is stopped and deleted when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The SSH host name clients use for the gateway.
pub const GATEWAY: &str = "farm-gateway";

/// The sshd's port inside the namespace.
const SSHD_PORT: u16 = 40022;

/// How long sshd may take to listen.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A farm network and its SSH gateway.
pub struct Gateway {
    namespace: String,
    sshd: Option<Child>,
    bin: PathBuf,
    log: PathBuf,
    config: PathBuf,
}

impl Gateway {
    /// A namespace of its own with sshd in it; keys, configurations and logs go in `dir`.
    pub fn start(dir: &Path) -> Gateway {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let namespace = format!(
            "r2s-gw-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &namespace]));
        let mut gateway = Gateway {
            namespace: namespace.clone(),
            sshd: None,
            bin: dir.join("gateway-bin"),
            log: dir.join("sshd.log"),
            config: dir.join("ssh_config"),
        };
        run(Command::new("ip").args(["-n", &namespace, "link", "set", "lo", "up"]));
        // An address besides loopback's: ser2net resolves its wildcard accepter with
        // AI_ADDRCONFIG, which finds nothing on a host with loopback alone.
        // (glibc counts any address other than 127.0.0.1 and ::1, on any interface.)
        run(Command::new("ip").args(["-n", &namespace, "addr", "add", "192.0.2.1/32", "dev", "lo"]));
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(dir.join(key)));
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        std::fs::write(dir.join("known_hosts"), format!("{GATEWAY} {host_key}")).expect("known_hosts");
        let sshd_config = dir.join("sshd_config");
        std::fs::write(
            &sshd_config,
            format!(
                "Port {SSHD_PORT}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
                 AuthorizedKeysFile {keys}\nAuthenticationMethods publickey\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 AllowTcpForwarding local\nX11Forwarding no\nPermitTTY no\n\
                 # DEBUG1 logs each forwarded connection's target (server_request_direct_tcpip).\n\
                 LogLevel DEBUG1\n",
                host = dir.join("host_key").display(),
                keys = dir.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");
        std::fs::write(
            &gateway.config,
            format!(
                "Host {GATEWAY} {exporter}\n  HostName 127.0.0.1\n  Port {SSHD_PORT}\n  User root\n  \
                 IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  HostKeyAlias {GATEWAY}\n  \
                 ProxyCommand ip netns exec {namespace} busybox nc 127.0.0.1 %p\n",
                exporter = exporter_fqdn(),
                key = dir.join("client_key").display(),
                known = dir.join("known_hosts").display(),
            ),
        )
        .expect("ssh_config");
        std::fs::create_dir_all(&gateway.bin).expect("gateway bin");
        let wrapper = gateway.bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                gateway.config.display()
            ),
        )
        .expect("ssh wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // sshd's privilege separation directory, as the package's tmpfiles entry makes it.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let sshd = Command::new("ip")
            .args(["netns", "exec", &namespace, "/usr/sbin/sshd", "-D", "-f"])
            .arg(&sshd_config)
            .arg("-E")
            .arg(&gateway.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd (openssh-server, installed by .ci/setup)");
        gateway.sshd = Some(sshd);
        let started = Instant::now();
        while !gateway.sshd_log().contains("Server listening on 127.0.0.1") {
            if let Ok(Some(status)) = gateway.sshd.as_mut().unwrap().try_wait() {
                panic!("sshd exited ({status}): {}", gateway.sshd_log());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "sshd not listening: {}",
                gateway.sshd_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    /// The farm network's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The directory holding the `ssh` wrapper that reads the gateway's SSH configuration: put
    /// it first on a client's PATH.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// What sshd logged so far.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether something inside the farm network accepts connections on 127.0.0.1:`port`.
    pub fn reachable_inside(&self, port: u16) -> bool {
        in_namespace(&self.namespace, move || {
            std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
                .is_ok()
        })
    }

    /// Processes still running `ssh` with the gateway's configuration (the wrapper's).
    pub fn ssh_clients(&self) -> Vec<String> {
        let config = self.config.display().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().is_some_and(|a| a.ends_with("ssh")) && args.contains(&config) {
                found.push(args.join(" "));
            }
        }
        found
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut sshd) = self.sshd.take() {
            let pid = sshd.id();
            // Its per-connection children outlive a killed listener: end them first.
            for child in children_of(pid) {
                // SAFETY: signals a process sshd (started by this gateway) forked.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.namespace])
            .status();
    }
}

/// The name a labgrid exporter started `--isolated` gives as its proxy: Python's
/// `socket.getfqdn()` on this host (the namespace shares the host's name).
pub fn exporter_fqdn() -> String {
    let done = Command::new("python3")
        .args(["-c", "import socket; print(socket.getfqdn())"])
        .output()
        .expect("python3");
    let name = String::from_utf8_lossy(&done.stdout).trim().to_owned();
    assert!(
        !name.is_empty() && !name.contains(char::is_whitespace),
        "getfqdn: {name:?}"
    );
    name
}

/// `work`'s answer, done on a thread of its own moved into the network namespace `namespace`
/// (sockets made there stay in it).
pub fn in_namespace<T: Send + 'static>(namespace: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(Path::new("/run/netns").join(namespace)).expect("the namespace");
    std::thread::spawn(move || {
        // SAFETY: moves only this thread, which ends with `work`; the fd is open.
        let entered = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        work()
    })
    .join()
    .expect("work in the namespace")
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent == Some(pid) {
            if let Ok(child) = entry.file_name().to_string_lossy().parse() {
                children.push(child);
            }
        }
    }
    children
}

fn run(command: &mut Command) {
    let done = command.output().expect("run a setup command");
    assert!(
        done.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}
