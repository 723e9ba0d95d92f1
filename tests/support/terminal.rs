//! A person at a terminal: the harness runs with the slave side of a pseudo-terminal as its
//! controlling terminal, stdin, stdout and stderr (as in an xterm); the test types and reads on
//! the master side.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::pty::{read_some, write_some};
use crate::{harness_bin, shown_command};

/// The most of the terminal's output kept: a boot's console is far less.
const SCREEN_LIMIT: usize = 16 << 20;

/// The harness at a terminal.
pub struct AtTerminal {
    child: Child,
    master: OwnedFd,
    /// Everything the terminal showed.
    screen: Vec<u8>,
    /// Where the next [`AtTerminal::expect`] starts looking.
    mark: usize,
    pub command: String,
}

impl AtTerminal {
    /// Starts `harness ARGS` at a new terminal (80×24, cooked, as a shell leaves it), with the
    /// fixture's root password in `R2S_PASSWORD` and `env` added.
    pub fn spawn(args: &[&OsStr], env: &[(&str, &OsStr)]) -> AtTerminal {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; the name and termios may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", io::Error::last_os_error());
        // SAFETY: openpty succeeded: two open descriptors nobody else owns.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // SAFETY: fcntl on an open descriptor.
        unsafe {
            let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let bin = harness_bin();
        let command = shown_command(&bin, args);
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup of the terminal"));
        let mut line = Command::new(&bin);
        line.args(args)
            .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
            .env("TERM", "xterm")
            .envs(env.iter().copied())
            .stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            line.pre_exec(|| {
                // A session of its own, with the terminal as its controlling terminal.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = line.spawn().unwrap_or_else(|e| panic!("spawning {command}: {e}"));
        drop(slave);
        AtTerminal {
            child,
            master,
            screen: Vec::new(),
            mark: 0,
            command,
        }
    }

    /// Reads what the terminal shows now.
    fn read_available(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = read_some(&self.master, &mut buf) {
            if n == 0 {
                break;
            }
            if self.screen.len() + n <= SCREEN_LIMIT {
                self.screen.extend_from_slice(&buf[..n]);
            }
        }
    }

    /// Waits until `text` shows after the last match, for at most `limit`; moves the mark past
    /// it. Panics with what the terminal showed when it does not come.
    pub fn expect(&mut self, text: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            self.read_available();
            if let Some(at) = memchr::memmem::find(&self.screen[self.mark..], text.as_bytes()) {
                self.mark += at + text.len();
                return;
            }
            if started.elapsed() > limit {
                panic!(
                    "{text:?} did not show within {limit:?} on {}; the terminal showed:\n{}",
                    self.command,
                    self.shown()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `keys`.
    pub fn type_keys(&mut self, keys: &[u8]) {
        let mut rest = keys;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !rest.is_empty() {
            match write_some(&self.master, rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    self.read_available();
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("typing into {}: {e}", self.command),
            }
        }
    }

    /// Everything the terminal showed, as text.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Waits for the harness to exit, for at most `limit` (killed past it); its status and
    /// everything the terminal showed.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            self.read_available();
            if let Some(status) = self.child.try_wait().expect("waiting for the harness") {
                self.read_available();
                return (status, self.shown());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {limit:?}; it showed:\n{}",
                    self.command,
                    self.shown()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AtTerminal {
    fn drop(&mut self) {
        // A failed test must not leave the harness (and its QEMU) running.
        // SIGTERM first, as a person closing the terminal would: the harness stops its QEMU.
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
