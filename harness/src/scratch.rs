//! Private scratch directories of one harness process, and the sweep of those left by killed
//! runs.
//!
//! Every scratch directory is made under the temporary directory as
//! `r2s-<pid>-<purpose>-<random>`, mode 0700. Dropping the handle removes it, which covers every
//! exit the process survives (a pass, a failure, an error, SIGINT, SIGTERM, SIGHUP). A process
//! killed outright (SIGKILL, the machine's OOM killer) cannot clean up; its directories name a
//! PID that no longer lives, and the next run's [`sweep_stale`] removes them.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// What every scratch directory's name starts with.
pub const PREFIX: &str = "r2s-";

/// A fresh private directory `r2s-<pid>-<purpose>-<random>` under the temporary directory
/// (`$TMPDIR`, else `/tmp`), removed when the handle is dropped.
pub fn dir(purpose: &str) -> io::Result<TempDir> {
    dir_in(&std::env::temp_dir(), purpose)
}

/// [`dir`] under `parent`.
pub fn dir_in(parent: &Path, purpose: &str) -> io::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-{purpose}-", std::process::id()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(parent)
}

/// Removes the scratch directories under the temporary directory whose owner process is gone:
/// named by [`dir`], owned by this user, and naming a PID that no longer exists. Returns the
/// directories removed; one that cannot be removed is left for the next sweep.
pub fn sweep_stale() -> Vec<PathBuf> {
    sweep_stale_in(&std::env::temp_dir())
}

/// [`sweep_stale`] under `parent`.
pub fn sweep_stale_in(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        // Not followed: a symlink named like ours is not ours to delete behind.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me || pid == std::process::id() || process_exists(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The PID in a scratch directory name `r2s-<pid>-…`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|&pid| pid > 0)
}

/// Whether a process `pid` exists (of any user; a zombie counts).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A PID that no process has: beyond the kernel's largest.
    fn dead_pid() -> u32 {
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4_194_304);
        max + 1
    }

    #[test]
    fn a_scratch_dir_is_private_names_this_process_and_goes_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = dir_in(parent.path(), "qemu").unwrap();
        let path = dir.path().to_owned();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with(&format!("r2s-{}-qemu-", std::process::id())),
            "{name}"
        );
        assert_eq!(owner_pid(&name), Some(std::process::id()));
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o700);
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn the_sweep_removes_dirs_of_dead_processes_only() {
        let parent = tempfile::tempdir().unwrap();
        let stale = parent.path().join(format!("r2s-{}-qemu-abc", dead_pid()));
        std::fs::create_dir_all(stale.join("inner")).unwrap();
        std::fs::write(stale.join("inner/overlay.qcow2"), b"x").unwrap();
        let live = dir_in(parent.path(), "qemu").unwrap();
        let init = parent.path().join("r2s-1-shim-abc");
        std::fs::create_dir(&init).unwrap();
        let unrelated = parent.path().join("r2s-harness");
        std::fs::create_dir(&unrelated).unwrap();
        let stale_file = parent.path().join(format!("r2s-{}-file", dead_pid()));
        std::fs::write(&stale_file, b"not a dir").unwrap();

        assert_eq!(sweep_stale_in(parent.path()), vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(live.path().is_dir() && init.is_dir() && unrelated.is_dir() && stale_file.is_file());
    }

    #[test]
    fn names_that_are_not_scratch_dirs_have_no_owner() {
        for name in [
            "r2s-harness",
            "r2s-test-abc",
            "r2s--x",
            "r2s-0-x",
            "r2s-12",
            "x-12-y",
            "r2s-+1-x",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
        assert_eq!(owner_pid("r2s-42-qemu-xyz"), Some(42));
    }
}
