//! A real loop device over a file, for tests that need a block device: attached with
//! `losetup --find`, detached when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An attached loop device.
pub struct LoopDevice(PathBuf);

impl LoopDevice {
    /// The first free loop device, attached to `file`; `None`, said on stderr, where losetup
    /// cannot attach one here (no loop devices, no privileges): the caller then skips.
    pub fn attach(file: &Path) -> Option<LoopDevice> {
        let attached = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output();
        match attached {
            Ok(out) if out.status.success() => Some(LoopDevice(PathBuf::from(
                String::from_utf8_lossy(&out.stdout).trim(),
            ))),
            Ok(out) => {
                eprintln!(
                    "skipped: losetup cannot attach a loop device here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: losetup cannot run here: {e}");
                None
            }
        }
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}
