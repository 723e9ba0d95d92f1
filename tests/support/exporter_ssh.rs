//! The exporter's host over SSH, as labgrid-client reaches it: `labgrid-client sd-mux` runs the
//! SD-mux's tool there as `ssh HOST -- usbsdmux …`. A real sshd on loopback (a host key, a
//! config and a port of its own; the test's key authorised; `tools` first on its sessions' PATH,
//! as an exporter host has the mux's tool installed) and an `ssh` for the client's PATH that
//! runs the real ssh client with a config naming that port, key and known host: ssh reads
//! `~/.ssh/config` from the password database's home, never from `$HOME`, so this is how a
//! test points it elsewhere. sshd is stopped when dropped.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ser2net::free_port;

/// How long sshd may take to accept a login.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running sshd on 127.0.0.1 and the `ssh` that reaches it.
pub struct ExporterSsh {
    sshd: Child,
    bin: PathBuf,
}

impl ExporterSsh {
    /// An sshd on a free port of 127.0.0.1 whose sessions find `tools` first on PATH; its
    /// files go in `dir/ssh`.
    pub fn start(dir: &Path, tools: &Path) -> ExporterSsh {
        let dir = dir.join("ssh");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("ssh dir");
        for key in ["host_key", "user_key"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .status()
                .expect("ssh-keygen (openssh-client)");
            assert!(made.success(), "ssh-keygen {key}: {made}");
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
        std::fs::write(dir.join("authorized_keys"), read("user_key.pub")).expect("authorized_keys");
        let port = free_port();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}", read("host_key.pub")),
        )
        .expect("known_hosts");
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nSetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
                tools.display()
            ),
        )
        .expect("sshd_config");
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
            .expect("user name")
            .trim()
            .to_owned();
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/user_key\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/known_hosts\n  BatchMode yes\n"
            ),
        )
        .expect("ssh_config");
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec /usr/bin/ssh -F '{d}/ssh_config' \"$@\"\n"),
        )
        .expect("ssh wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // sshd started as root wants its privilege separation directory, as its service makes.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd log");
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // A group of its own, so that its sessions stop with it.
            .process_group(0)
            .spawn()
            .expect("start sshd (openssh-server, installed by .ci/setup)");
        let mut ssh = ExporterSsh { sshd, bin };
        ssh.wait_for_login(&dir);
        ssh
    }

    /// The directory holding the `ssh` that reaches this sshd, to put first on PATH.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    fn wait_for_login(&mut self, dir: &Path) {
        let started = Instant::now();
        loop {
            let login = Command::new(self.bin.join("ssh"))
                .args(["-o", "ConnectTimeout=5", "127.0.0.1", "true"])
                .stdin(Stdio::null())
                .output()
                .expect("ssh");
            if login.status.success() {
                return;
            }
            if let Ok(Some(status)) = self.sshd.try_wait() {
                panic!(
                    "sshd exited ({status}): {}",
                    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "no ssh login within {START_LIMIT:?}: {}",
                String::from_utf8_lossy(&login.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ExporterSsh {
    fn drop(&mut self) {
        let group = self.sshd.id() as i32;
        // SAFETY: signals the process group of a child this value started and has not reaped.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let started = Instant::now();
        while self.sshd.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.sshd.wait();
    }
}
