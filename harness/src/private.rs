//! Files and directories only their owner can read: the snapshot cache holds a booted guest's
//! memory (a logged-in shell, whatever was typed, the password included), and the harness's
//! caches sit in shared places such as the temporary directory.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of a private directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode 0700, and makes `dir` itself 0700 if it
/// existed with a wider mode.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    restrict(dir, DIR_MODE)
}

/// Makes the file at `path` (created by another program, such as `qemu-img`) mode 0600.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    restrict(path, FILE_MODE)
}

fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    let current = fs::metadata(path)?.permissions().mode() & 0o777;
    if current == mode {
        return Ok(());
    }
    fs::set_permissions(path, Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_their_new_parents_are_0700() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache/snapshots");
        create_dir_all(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&parent.path().join("cache"))), (0o700, 0o700));
    }

    #[test]
    fn an_existing_open_directory_is_closed_to_others() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_file_is_made_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk0.qcow2");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        restrict_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}
