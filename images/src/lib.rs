//! Fixture disk images for the R2S boot harness, built from real Debian arm64 parts.
//!
//! CI cannot build NixOS, so fixtures are made from Debian's arm64 kernel, busybox-static and
//! RK3328 U-Boot, laid out like a NanoPi R2S SD card running NixOS: idbloader.img at sector 64,
//! u-boot.itb at sector 16384, a GPT with ext4 `NIXOS_BOOT` (sector 32768, 512 MiB) holding a
//! NixOS generic-extlinux `extlinux.conf`, and ext4 `NIXOS_SD` holding a small fake Nix store.
//! The initrd and the systems print what NixOS prints (stage banners, getty issue, login,
//! prompt), so the same scenarios run against fixtures and real NixOS images.
//!
//! [`build`] caches images under a directory (see [`default_cache_dir`]) and is safe to call
//! from several processes at once.

use std::path::{Path, PathBuf};

mod assemble;
mod boot;
mod cache;
mod card;
pub mod cpio;
mod debian;
mod debootstrap;
mod disk;
mod dracut;
mod error;
mod ext4;
mod f2fs;
mod fixture;
mod gpt;
pub mod hex;
mod initramfs;
mod kernel;
mod mbr;
mod modules;
mod recipe;
mod rootfs;
mod router;
mod seccomp;
mod shared;
mod staging;
mod store;
mod systemd;
mod tool;
mod vfat;

pub use boot::MENU_TIMEOUT;
pub use card::F2FS_FSTAB;
pub use error::{BuildError, KernelImageError, ModinfoError, ModuleError};
pub use store::{generations, Generation, HOSTNAME};

/// The fixture scenarios use when none is named: the good image.
pub const DEFAULT_FIXTURE: &str = "r2s-busybox";

/// The password of `root` in every fixture (stored as a SHA-512 crypt hash in /etc/shadow).
pub const ROOT_PASSWORD: &str = "r2s-fixture";

/// A fixture's name and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixtureInfo {
    /// The name [`build`] takes.
    pub name: &'static str,
    /// What the fixture boots into, or how and where it fails.
    pub description: &'static str,
}

/// Every fixture [`build`] knows, the good one ([`DEFAULT_FIXTURE`]) first.
pub fn fixtures() -> &'static [FixtureInfo] {
    static ALL: std::sync::LazyLock<Vec<FixtureInfo>> =
        std::sync::LazyLock::new(|| [fixture::FIXTURES, systemd::FIXTURES].concat());
    &ALL
}

/// The cache shared by every checkout on the machine, where the systemd fixtures (minutes to
/// build) are kept too: `$R2S_CACHE_DIR/fixtures`, else `$XDG_CACHE_HOME/r2s-harness/fixtures`,
/// else `~/.cache/r2s-harness/fixtures`.
pub fn shared_cache_dir() -> Option<PathBuf> {
    shared::dir()
}

/// Where fixtures are cached: `$R2S_FIXTURE_DIR` if set, else `target/fixtures` in the
/// workspace this crate was compiled in.
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("R2S_FIXTURE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest
                .parent()
                .unwrap_or(manifest)
                .join("target")
                .join("fixtures")
        }
    }
}

/// Builds fixture `name` in `cache_dir` (created if missing) and returns the path of the raw
/// disk image.
///
/// The image is rebuilt only when its inputs change: recipe files, this builder's sources and
/// the Debian packages' file names. Downloads (`apt-get download`) and unpacked packages are
/// cached in the same directory. Concurrent callers, in this or other processes, serialise on a
/// lock file there; images appear by atomic rename, so a path returned stays a complete image
/// even while another process replaces it.
pub fn build(name: &str, cache_dir: &Path) -> Result<PathBuf, BuildError> {
    if let Some(variant) = systemd::variant_of(name) {
        std::fs::create_dir_all(cache_dir).map_err(BuildError::io("creating directory", cache_dir))?;
        return systemd::build(name, variant, cache_dir);
    }
    let (recipe, cache_dir) = recipe_and_cache(name, cache_dir)?;
    let cache_dir = &cache_dir;
    let _lock = cache::Lock::acquire(cache_dir)?;

    let parts = debian::Parts::fetch(cache_dir)?;
    let debs = parts.deb_names();
    let key = cache::KeyInputs::current(name, &debs).key();
    let entry = cache::Entry::new(cache_dir, name);
    if entry.is_fresh(&key) {
        return Ok(entry.image);
    }

    let work = entry.work_dir(name)?;
    let built = assemble::fixture(name, recipe, &parts, work.path())?;
    entry.commit(&built, &key)?;
    Ok(entry.image)
}

/// The recipe of the busybox fixture `name`, and `cache_dir` created and made absolute: tools
/// run inside the cache directory (`dpkg -x`, `mke2fs`), so the paths handed to them must not
/// be relative to this process's working directory.
fn recipe_and_cache(name: &str, cache_dir: &Path) -> Result<(fixture::Recipe, PathBuf), BuildError> {
    let recipe = fixture::recipe(name).ok_or_else(|| BuildError::UnknownFixture {
        name: name.to_owned(),
        known: fixtures().iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
    })?;
    std::fs::create_dir_all(cache_dir).map_err(BuildError::io("creating directory", cache_dir))?;
    let cache_dir = std::path::absolute(cache_dir).map_err(BuildError::io("resolving", cache_dir))?;
    Ok((recipe, cache_dir))
}

/// Builds fixture `name` (not a systemd one) with a file of `root_data` bytes of pseudo-random
/// data on its root filesystem (at `/var/lib/r2s-data`), its root partition grown to hold it,
/// and writes the image to `out`: a real-size image for benchmarks, which hash and read an
/// image as a multi-GiB NixOS image makes them. Not cached; the Debian parts are, in
/// `cache_dir`. Takes a while: the data is written twice (the file, then the filesystem).
pub fn build_with_root_data(
    name: &str,
    root_data: u64,
    cache_dir: &Path,
    out: &Path,
) -> Result<(), BuildError> {
    let (recipe, cache_dir) = recipe_and_cache(name, cache_dir)?;
    let cache_dir = &cache_dir;
    let _lock = cache::Lock::acquire(cache_dir)?;
    let parts = debian::Parts::fetch(cache_dir)?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".build-{name}-data-"))
        .tempdir_in(cache_dir)
        .map_err(BuildError::io("creating a temporary directory in", cache_dir))?;
    let built = assemble::fixture_with_root_data(name, recipe, &parts, work.path(), root_data)?;
    std::fs::rename(&built, out)
        .or_else(|_| std::fs::copy(&built, out).map(drop))
        .map_err(BuildError::io("writing", out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fixture_error_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let err = build("r2s-nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown fixture `r2s-nope`"), "{err}");
        assert!(
            err.contains("r2s-busybox, broken-stage1, broken-panic, broken-initrd-missing"),
            "{err}"
        );
    }

    #[test]
    fn fixture_names_are_unique() {
        let mut names: Vec<&str> = fixtures().iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fixtures().len());
    }
}
