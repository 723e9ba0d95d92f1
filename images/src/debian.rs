//! Fetching and unpacking the Debian arm64 packages the fixtures are made of, through apt's own
//! tools (no root needed: `apt-get download` and `dpkg -x` work in any directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tool::run;
use crate::BuildError;

/// The metapackage whose dependency names the current arm64 kernel package.
const KERNEL_METAPACKAGE: &str = "linux-image-arm64";
/// Statically linked busybox: the whole userland of the fixtures.
pub(crate) const BUSYBOX: &str = "busybox-static";
/// U-Boot builds for Rockchip boards, among them rock64-rk3328 (same SoC as the R2S).
pub(crate) const UBOOT_ROCKCHIP: &str = "u-boot-rockchip";

/// A package unpacked in the cache.
#[derive(Debug, Clone)]
pub(crate) struct Unpacked {
    /// Package name without architecture.
    pub package: String,
    /// The .deb's file name; part of the fixture cache key.
    pub deb_name: String,
    /// Where `dpkg -x` put its contents.
    pub root: PathBuf,
}

impl Unpacked {
    /// A file of the package, or an error naming the package and path when it is absent.
    pub fn file(&self, relative: &str) -> Result<PathBuf, BuildError> {
        let path = self.root.join(relative);
        if path.exists() {
            Ok(path)
        } else {
            Err(BuildError::PartMissing {
                package: self.package.clone(),
                path: relative.into(),
            })
        }
    }
}

/// The three packages every fixture is built from.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    /// `linux-image-<version>-arm64`: kernel, modules, device trees.
    pub kernel: Unpacked,
    /// The kernel release, e.g. `6.1.0-56-arm64` (the modules directory name).
    pub kernel_release: String,
    /// `busybox-static`.
    pub busybox: Unpacked,
    /// `u-boot-rockchip`.
    pub uboot: Unpacked,
}

impl Parts {
    /// Resolves the packages in the local apt cache, downloads the .debs missing from
    /// `<cache>/debs` and unpacks each once into `<cache>/parts`. Callers hold the cache lock.
    pub fn fetch(cache: &Path) -> Result<Parts, BuildError> {
        let kernel_package = kernel_package(cache)?;
        let kernel_release = kernel_package
            .strip_prefix("linux-image-")
            .expect("kernel_package only returns linux-image-* names")
            .to_owned();
        Ok(Parts {
            kernel: fetch_and_unpack(cache, &kernel_package)?,
            kernel_release,
            busybox: fetch_and_unpack(cache, BUSYBOX)?,
            uboot: fetch_and_unpack(cache, UBOOT_ROCKCHIP)?,
        })
    }

    /// The .deb file names, in a fixed order, for the cache key.
    pub fn deb_names(&self) -> [&str; 3] {
        [
            &self.kernel.deb_name,
            &self.busybox.deb_name,
            &self.uboot.deb_name,
        ]
    }
}

/// The real kernel package behind the metapackage, e.g. `linux-image-6.1.0-56-arm64`.
fn kernel_package(cwd: &Path) -> Result<String, BuildError> {
    let target = format!("{KERNEL_METAPACKAGE}:arm64");
    let out = run(Command::new("apt-cache").args(["depends", &target]), cwd)?;
    parse_kernel_dependency(&out).ok_or_else(|| BuildError::PackageUnavailable {
        package: KERNEL_METAPACKAGE.to_owned(),
        detail: format!(
            "`apt-cache depends {target}` names no linux-image-* package:\n{}",
            out.trim_end()
        ),
    })
}

fn parse_kernel_dependency(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends.lines().find_map(|line| {
        let dep = line.trim().strip_prefix("Depends:")?.trim();
        let dep = dep.trim_start_matches('<').trim_end_matches('>');
        let name = dep.split(':').next()?;
        (name.starts_with("linux-image-") && name != KERNEL_METAPACKAGE).then(|| name.to_owned())
    })
}

/// The file name `apt-get download` gives the candidate version of `package` (an epoch's colon
/// is written `%3a`).
fn deb_name(package: &str, cwd: &Path) -> Result<String, BuildError> {
    let target = format!("{package}:arm64");
    let out = run(
        Command::new("apt-cache").args(["show", "--no-all-versions", &target]),
        cwd,
    )
    .map_err(|e| BuildError::PackageUnavailable {
        package: package.to_owned(),
        detail: e.to_string(),
    })?;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
    };
    match (field("Version:"), field("Architecture:")) {
        (Some(version), Some(arch)) => Ok(format!(
            "{package}_{}_{arch}.deb",
            version.replace(':', "%3a")
        )),
        _ => Err(BuildError::PackageUnavailable {
            package: package.to_owned(),
            detail: format!("`apt-cache show {target}` gave no Version/Architecture"),
        }),
    }
}

fn fetch_and_unpack(cache: &Path, package: &str) -> Result<Unpacked, BuildError> {
    let debs = cache.join("debs");
    create_dir(&debs)?;
    let deb_name = deb_name(package, cache)?;
    let deb = debs.join(&deb_name);
    if !deb.exists() {
        download(package, &debs, &deb)?;
    }
    let parts = cache.join("parts");
    create_dir(&parts)?;
    let root = parts.join(deb_name.trim_end_matches(".deb"));
    if !root.exists() {
        // Unpack beside the final place and rename, so an interrupted unpack is never reused.
        let partial = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&parts)
            .map_err(BuildError::io("creating a temporary directory in", &parts))?;
        run(
            Command::new("dpkg").arg("-x").arg(&deb).arg(partial.path()),
            cache,
        )?;
        std::fs::rename(partial.path(), &root).map_err(BuildError::io("renaming into", &root))?;
    }
    Ok(Unpacked {
        package: package.to_owned(),
        deb_name,
        root,
    })
}

/// `apt-get download` into a private directory, then a rename: a half-downloaded .deb never gets
/// the final name.
fn download(package: &str, debs: &Path, deb: &Path) -> Result<(), BuildError> {
    let partial = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(debs)
        .map_err(BuildError::io("creating a temporary directory in", debs))?;
    run(
        Command::new("apt-get").args(["download", "-q", &format!("{package}:arm64")]),
        partial.path(),
    )?;
    let name = deb.file_name().expect("deb path has a file name");
    let fetched = partial.path().join(name);
    if !fetched.exists() {
        return Err(BuildError::DebMissing {
            package: package.to_owned(),
            deb: fetched,
        });
    }
    std::fs::rename(&fetched, deb).map_err(BuildError::io("renaming into", deb))
}

fn create_dir(path: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(path).map_err(BuildError::io("creating directory", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dependency_is_read_from_apt_cache_depends() {
        let out = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n";
        assert_eq!(
            parse_kernel_dependency(out).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
    }

    #[test]
    fn virtual_and_unrelated_dependencies_are_skipped() {
        let out =
            "linux-image-arm64:arm64\n  Depends: <kmod>\n  Depends: <linux-image-6.12.1-arm64>\n";
        assert_eq!(
            parse_kernel_dependency(out).as_deref(),
            Some("linux-image-6.12.1-arm64")
        );
        assert_eq!(parse_kernel_dependency("linux-image-arm64:arm64\n"), None);
    }
}
