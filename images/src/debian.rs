//! Fetching and unpacking the Debian arm64 packages the fixtures are made of, through apt's own
//! tools (no root needed: `apt-get download` and `dpkg -x` work in any directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

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
        let debs = cache.join("debs");
        create_dir(&debs)?;
        let resolved = Resolved::load_or_resolve(&debs)?;
        let kernel_release = resolved
            .kernel_package
            .strip_prefix("linux-image-")
            .expect("resolution only accepts linux-image-* names")
            .to_owned();
        Ok(Parts {
            kernel: fetch_and_unpack(cache, &resolved.kernel_package, &resolved.kernel_deb)?,
            kernel_release,
            busybox: fetch_and_unpack(cache, BUSYBOX, &resolved.busybox_deb)?,
            uboot: fetch_and_unpack(cache, UBOOT_ROCKCHIP, &resolved.uboot_deb)?,
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

/// The candidate arm64 version of `package`, downloaded into `<cache>/debs` when missing and
/// unpacked once into `<cache>/parts`: a tool a fixture's build runs (dracut), not a part of
/// every fixture. Callers hold the cache lock.
pub(crate) fn fetch_tool(cache: &Path, package: &str) -> Result<Unpacked, BuildError> {
    let debs = cache.join("debs");
    create_dir(&debs)?;
    let deb_name = deb_of(&show(&[package], &debs)?, package)?;
    fetch_and_unpack(cache, package, &deb_name)
}

/// Which .deb files the current apt lists offer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    kernel_package: String,
    kernel_deb: String,
    busybox_deb: String,
    uboot_deb: String,
}

impl Resolved {
    /// The resolution recorded in `<debs>/resolved` if apt's state is unchanged since, else a
    /// fresh one (recorded for next time). apt-cache takes over a second per call when its
    /// binary cache is disabled, as in many containers, and every `build` needs the names.
    fn load_or_resolve(debs: &Path) -> Result<Resolved, BuildError> {
        let record = debs.join("resolved");
        let state = apt_state();
        if let Some(resolved) = std::fs::read_to_string(&record)
            .ok()
            .and_then(|t| Self::parse(&t, &state))
        {
            return Ok(resolved);
        }
        let resolved = Self::resolve(debs)?;
        crate::cache::write_atomically(debs, &record, resolved.render(&state).as_bytes())?;
        Ok(resolved)
    }

    /// Asks apt-cache: the metapackage's dependency names the kernel package, then each
    /// package's candidate version gives its .deb name.
    fn resolve(cwd: &Path) -> Result<Resolved, BuildError> {
        let stanzas = show(&[KERNEL_METAPACKAGE, BUSYBOX, UBOOT_ROCKCHIP], cwd)?;
        let kernel_package = stanzas
            .iter()
            .find(|s| s.package == KERNEL_METAPACKAGE)
            .and_then(|s| kernel_dependency(&s.depends))
            .ok_or_else(|| BuildError::PackageUnavailable {
                package: KERNEL_METAPACKAGE.to_owned(),
                detail: "its Depends names no linux-image-* package".to_owned(),
            })?;
        let kernel = show(&[&kernel_package], cwd)?;
        Ok(Resolved {
            kernel_deb: deb_of(&kernel, &kernel_package)?,
            busybox_deb: deb_of(&stanzas, BUSYBOX)?,
            uboot_deb: deb_of(&stanzas, UBOOT_ROCKCHIP)?,
            kernel_package,
        })
    }

    fn render(&self, state: &str) -> String {
        format!(
            "{state}\n{}\n{}\n{}\n{}\n",
            self.kernel_package, self.kernel_deb, self.busybox_deb, self.uboot_deb
        )
    }

    fn parse(text: &str, state: &str) -> Option<Resolved> {
        let mut lines = text.lines();
        if lines.next()? != state {
            return None;
        }
        let mut next = || lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
        Some(Resolved {
            kernel_package: next()?,
            kernel_deb: next()?,
            busybox_deb: next()?,
            uboot_deb: next()?,
        })
    }
}

/// A fingerprint of what apt-cache answers from: the package lists (replaced by `apt-get
/// update`) and the dpkg architecture list.
fn apt_state() -> String {
    let mut parts = Vec::new();
    for dir in [
        "/var/lib/apt/lists",
        "/etc/apt",
        "/etc/apt/sources.list.d",
        "/etc/apt/preferences.d",
    ] {
        let mut entries: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
                Some(format!(
                    "{}:{}:{}",
                    e.file_name().to_string_lossy(),
                    meta.len(),
                    mtime.as_nanos()
                ))
            })
            .collect();
        entries.sort();
        parts.push(format!("{dir}[{}]", entries.join(",")));
    }
    let arch = std::fs::read_to_string("/var/lib/dpkg/arch").unwrap_or_default();
    let digest = Sha256::digest(format!("{}|{arch}", parts.join("|")).as_bytes());
    format!("apt-state {}", crate::hex::lower_hex(&digest))
}

/// The fields of an `apt-cache show` stanza this builder reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stanza {
    package: String,
    version: String,
    architecture: String,
    depends: String,
}

impl Stanza {
    /// The file name `apt-get download` gives this version (an epoch's colon becomes `%3a`).
    fn deb_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.package,
            self.version.replace(':', "%3a"),
            self.architecture
        )
    }
}

/// The .deb name of `package`'s stanza among `stanzas`.
fn deb_of(stanzas: &[Stanza], package: &str) -> Result<String, BuildError> {
    stanzas
        .iter()
        .find(|s| s.package == package)
        .map(Stanza::deb_name)
        .ok_or_else(|| BuildError::PackageUnavailable {
            package: package.to_owned(),
            detail: "`apt-cache show` printed no stanza for it".to_owned(),
        })
}

/// Candidate-version stanzas of the arm64 `packages`.
fn show(packages: &[&str], cwd: &Path) -> Result<Vec<Stanza>, BuildError> {
    let targets: Vec<String> = packages.iter().map(|p| format!("{p}:arm64")).collect();
    let out = run(
        Command::new("apt-cache")
            .args(["show", "--no-all-versions"])
            .args(&targets),
        cwd,
    )
    .map_err(|e| BuildError::PackageUnavailable {
        package: packages.join(", "),
        detail: e.to_string(),
    })?;
    Ok(parse_stanzas(&out))
}

fn parse_stanzas(text: &str) -> Vec<Stanza> {
    let mut stanzas = Vec::new();
    let mut current = Stanza::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.package.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key {
            "Package" => current.package = value,
            "Version" => current.version = value,
            "Architecture" => current.architecture = value,
            "Depends" => current.depends = value,
            _ => {}
        }
    }
    stanzas
}

/// The linux-image-* package in a Depends field such as
/// `linux-image-6.1.0-56-arm64 (= 6.1.192-2)`.
fn kernel_dependency(depends: &str) -> Option<String> {
    depends.split([',', '|']).find_map(|alternative| {
        let name = alternative.split_whitespace().next()?.split(':').next()?;
        (name.starts_with("linux-image-") && name != KERNEL_METAPACKAGE).then(|| name.to_owned())
    })
}

fn fetch_and_unpack(cache: &Path, package: &str, deb_name: &str) -> Result<Unpacked, BuildError> {
    let debs = cache.join("debs");
    let deb = debs.join(deb_name);
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
        deb_name: deb_name.to_owned(),
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

    const SHOW: &str = "Package: linux-image-arm64
Version: 6.1.192-2
Architecture: arm64
Depends: linux-image-6.1.0-56-arm64 (= 6.1.192-2)
Description: Linux for 64-bit ARMv8 machines (meta-package)

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Architecture: arm64
";

    #[test]
    fn stanzas_are_read_from_apt_cache_show() {
        let stanzas = parse_stanzas(SHOW);
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0].depends, "linux-image-6.1.0-56-arm64 (= 6.1.192-2)");
        assert_eq!(stanzas[1].package, "busybox-static");
    }

    #[test]
    fn deb_name_encodes_the_epoch_as_apt_get_download_does() {
        let busybox = &parse_stanzas(SHOW)[1];
        assert_eq!(
            busybox.deb_name(),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb"
        );
    }

    #[test]
    fn kernel_dependency_is_the_linux_image_package() {
        assert_eq!(
            kernel_dependency("linux-image-6.1.0-56-arm64 (= 6.1.192-2)").as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        assert_eq!(
            kernel_dependency("kmod, linux-image-6.12.1-arm64:arm64 | linux-image-6.12.0-arm64").as_deref(),
            Some("linux-image-6.12.1-arm64")
        );
        assert_eq!(kernel_dependency("kmod"), None);
    }

    #[test]
    fn recorded_resolution_is_used_only_for_the_same_apt_state() {
        let resolved = Resolved {
            kernel_package: "linux-image-6.1.0-56-arm64".to_owned(),
            kernel_deb: "k.deb".to_owned(),
            busybox_deb: "b.deb".to_owned(),
            uboot_deb: "u.deb".to_owned(),
        };
        let text = resolved.render("apt-state 1");
        assert_eq!(Resolved::parse(&text, "apt-state 1"), Some(resolved));
        assert_eq!(Resolved::parse(&text, "apt-state 2"), None);
        assert_eq!(Resolved::parse("apt-state 1\nonly\n", "apt-state 1"), None);
    }
}
