//! Staging directories: the trees `mke2fs -d` and the vfat writer turn into filesystems, written
//! with the modes and links the image should have.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::BuildError;

/// `path` (absolute, as inside the image) below the staging directory `dir`.
pub fn under(dir: &Path, path: &str) -> PathBuf {
    dir.join(path.trim_start_matches('/'))
}

/// The contents of a file the build reads.
pub fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(BuildError::io("reading", path))
}

/// Writes a staged file with its mode, creating its directories.
pub fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BuildError> {
    let parent = path.parent().expect("staged files live in a directory");
    std::fs::create_dir_all(parent).map_err(BuildError::io("creating directory", parent))?;
    std::fs::write(path, bytes).map_err(BuildError::io("writing", path))?;
    set_mode(path, mode)
}

/// Makes a staged symlink, creating its directories.
pub fn link(path: &Path, target: &str) -> Result<(), BuildError> {
    let parent = path.parent().expect("staged links live in a directory");
    std::fs::create_dir_all(parent).map_err(BuildError::io("creating directory", parent))?;
    std::os::unix::fs::symlink(target, path).map_err(BuildError::io("linking", path))
}

/// Sets the mode of a staged file or directory.
pub fn set_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("setting mode of", path))
}
