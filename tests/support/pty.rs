//! Pseudo-terminals standing in for USB-UARTs: the harness opens the slave side by a stable
//! symlink (as it would open `/dev/serial/by-id/…`), the test plays the board on the master side.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A pseudo-terminal pair whose slave is reachable through `link`. Dropping it removes the link
/// and closes the master: to the harness, the device vanished.
pub struct Pty {
    master: OwnedFd,
    slave: PathBuf,
    link: PathBuf,
}

impl Pty {
    /// Opens a pair, puts the slave in raw mode (so nothing is echoed back to the board before
    /// the harness opens it), and points `link` at the slave.
    pub fn open(link: &Path) -> io::Result<Pty> {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the integers; the name, termios and
        // window size arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openpty succeeded, so both are open descriptors owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        set_flags(&slave, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
        set_raw(&slave)?;
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
        drop(slave);
        // Not inherited: a child (the harness under test, QEMU) holding the master would keep
        // the device alive after the test unplugs it.
        set_flags(&master, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
        set_flags(&master, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)?;
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link)?;
        Ok(Pty {
            master,
            slave: slave_path,
            link: link.to_owned(),
        })
    }

    /// The slave device (`/dev/pts/N`).
    pub fn slave(&self) -> &Path {
        &self.slave
    }

    /// The master side, non-blocking.
    pub fn master(&self) -> &OwnedFd {
        &self.master
    }

    /// Writes all of `bytes` as the board would, waiting while the pty's buffer is full (the
    /// harness reads it), for at most `limit`.
    pub fn write_all(&self, mut bytes: &[u8], limit: std::time::Duration) -> io::Result<()> {
        let deadline = std::time::Instant::now() + limit;
        while !bytes.is_empty() {
            match write_some(&self.master, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "pty write timed out"));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // The link first, as udev removes a by-id link when the adapter goes.
        let _ = std::fs::remove_file(&self.link);
    }
}

/// One non-blocking `write(2)`.
pub fn write_some(fd: &OwnedFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One non-blocking `read(2)`.
pub fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, writable slice.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn set_raw(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd.as_raw_fd(), &mut termios) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut termios);
        if libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &termios) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Adds `flag` to a descriptor's flags (`get`/`set`: F_GETFD/F_SETFD or F_GETFL/F_SETFL).
fn set_flags(fd: &OwnedFd, get: libc::c_int, set: libc::c_int, flag: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on an open descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), get);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), set, flags | flag) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
