//! A seccomp filter that answers `faccessat2` with ENOSYS, for the commands run under PRoot.
//!
//! PRoot 5.1 translates the paths of the system calls it knows, and `faccessat2` (Linux 5.8) is
//! not among them: the call reaches the host kernel with the guest's path, which names nothing
//! (or the host's file), so `test -r`, `ldd` and `run-parts` inside the tree see every file as
//! unreadable. mkinitramfs then copies no shared library into the initrd, and the kernel finds no
//! working `/init`. glibc falls back to `faccessat`, which PRoot does translate, whenever
//! `faccessat2` fails with ENOSYS (as on kernels before 5.8); the filter makes it so. It is
//! installed before `proot` is executed and inherited by every process PRoot starts, so it covers
//! qemu-aarch64-static's own host call for the guest's `faccessat2`. A filter's ERRNO outranks
//! the TRACE that PRoot's own filter asks for, so the call fails before PRoot would look at it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `AUDIT_ARCH_*` of the host, as the kernel reports it in `seccomp_data.arch` (linux/audit.h):
/// the filter answers only this architecture's `faccessat2`.
#[cfg(target_arch = "x86_64")]
const HOST_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const HOST_ARCH: u32 = 0xC000_00B7;
/// `faccessat2`'s number on x86_64 and aarch64 alike (calls from 424 on share one number).
const FACCESSAT2: u32 = 439;
/// Offsets in `struct seccomp_data` (linux/seccomp.h).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// One BPF instruction.
const fn op(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Another architecture's calls (a 32-bit process) pass; this one's `faccessat2` fails with
/// ENOSYS; everything else passes.
const FILTER: [libc::sock_filter; 6] = [
    op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_ARCH, 0, 0),
    op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, HOST_ARCH, 0, 3),
    op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_NR, 0, 0),
    op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, FACCESSAT2, 0, 1),
    op(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        0,
        0,
    ),
    op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
];

/// Makes `command`'s process (and everything it starts) get ENOSYS for `faccessat2`.
pub(crate) fn without_faccessat2(command: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the child between fork and exec; it only calls prctl(2), which
    // is async-signal-safe, on data that lives in the binary (no allocation, no locks).
    unsafe { command.pre_exec(install) }
}

fn install() -> io::Result<()> {
    let program = libc::sock_fprog {
        len: FILTER.len() as u16,
        filter: FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with these options reads `program` (and the filter it points to) only
    // during the call.
    unsafe {
        // Required to install a filter without CAP_SYS_ADMIN; as root it changes nothing the
        // steps need (nothing in the tree gains privileges through exec).
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `faccessat2` and `faccessat` on `/` for R_OK: each call's result and errno.
    fn probe() -> [(i64, i32); 2] {
        let root = c"/";
        let call = |nr: libc::c_long| {
            // SAFETY: both calls only read the NUL-terminated path.
            let r = unsafe { libc::syscall(nr, libc::AT_FDCWD, root.as_ptr(), libc::R_OK, 0) };
            let errno = if r == 0 {
                0
            } else {
                io::Error::last_os_error().raw_os_error().unwrap_or(0)
            };
            (r, errno)
        };
        [call(FACCESSAT2 as libc::c_long), call(libc::SYS_faccessat)]
    }

    /// A real `faccessat2` call after the filter is installed fails with ENOSYS, and `faccessat`
    /// (the fallback PRoot translates) still works. The filter binds only the thread that
    /// installs it (and what it starts), so the test installs it on a thread of its own.
    #[test]
    fn filter_answers_faccessat2_with_enosys_and_lets_faccessat_pass() {
        assert_eq!(probe(), [(0, 0), (0, 0)]);
        let filtered = std::thread::spawn(|| {
            install().expect("installing the filter");
            probe()
        })
        .join()
        .unwrap();
        assert_eq!(filtered, [(-1, libc::ENOSYS), (0, 0)]);
    }
}
