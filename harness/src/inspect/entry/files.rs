//! The files a boot entry names (`INITRD`, `FDT`/`FDTDIR`, and the kernel's presence): found
//! where U-Boot would look, and the device tree read far enough to judge it.

use std::fmt;

use super::Context;
use crate::image::boot_config::resolve;
use crate::image::{limits, ImageError, Label, Volume};
use crate::inspect::board::Profile;
use crate::inspect::fdt;
use crate::inspect::report::{Check, CheckName};

/// Files of one filesystem, as the entry checks read them.
pub trait Files {
    /// The file's size and its first `len` bytes; `Ok(None)` if there is no such file.
    fn head(&self, path: &str, len: usize) -> Result<Option<(u64, Vec<u8>)>, ImageError>;
    /// Whether the path exists (following symlinks inside the filesystem).
    fn exists(&self, path: &str) -> Result<bool, ImageError>;
}

impl Files for Volume {
    fn head(&self, path: &str, len: usize) -> Result<Option<(u64, Vec<u8>)>, ImageError> {
        match self.read_head(path, len) {
            Ok(found) => Ok(Some(found)),
            Err(ImageError::FileNotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, ImageError> {
        Volume::exists(self, path)
    }
}

/// The filesystems of an image, by partition number.
pub trait Volumes {
    /// The files of partition `index`: `None` if the image has no such partition, an error if
    /// its filesystem cannot be read (no reader for it, or corrupt).
    fn files(&self, index: u32) -> Option<Result<&dyn Files, &ImageError>>;
}

/// Why the files of a partition cannot be read.
#[derive(Debug)]
pub enum NoFiles<'a> {
    /// Its filesystem cannot be read (no reader for it, or corrupt).
    Unreadable(&'a ImageError),
    /// The image has no such partition.
    NoPartition(u32),
}

impl fmt::Display for NoFiles<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoFiles::Unreadable(error) => f.write_str(&error.detail()),
            NoFiles::NoPartition(index) => write!(f, "the image has no partition {index}"),
        }
    }
}

/// The boot filesystem's files, or why they cannot be read.
pub(super) type BootFiles<'a> = Result<&'a dyn Files, NoFiles<'a>>;

const RELATIVE_PATHS: &str = "relative paths count from the directory holding extlinux.conf, absolute ones \
                              from the partition root";

/// Looks a file up in the boot filesystem: its location text, and its size and head or a
/// failed check.
pub(super) fn find_file(
    name: CheckName,
    keyword: &str,
    written: &str,
    len: usize,
    ctx: &Context<'_>,
    boot: &BootFiles<'_>,
) -> Result<(String, u64, Vec<u8>), Check> {
    let resolved = resolve(ctx.config_path, written);
    let location = ctx.file_location(keyword, written, &resolved);
    let files = boot.as_ref().map_err(|reason| {
        Check::fail(
            name,
            location.clone(),
            format!("cannot read the boot filesystem: {reason}"),
            "check it with fsck",
        )
    })?;
    match files.head(&resolved, len) {
        Ok(Some((size, head))) => Ok((location, size, head)),
        Ok(None) => Err(Check::fail(
            name,
            location,
            if resolved.trim_end() == resolved {
                format!("{resolved} does not exist")
            } else {
                // A CR from a file edited on Windows, or a trailing blank, is part of the path
                // for U-Boot too.
                format!("{resolved:?} does not exist: the path ends in whitespace, which U-Boot keeps")
            },
            format!("copy the file there or fix the {keyword} path ({RELATIVE_PATHS})"),
        )),
        Err(reason) => Err(Check::fail(
            name,
            location,
            format!("cannot read {resolved}: {}", reason.detail()),
            "check the boot filesystem with fsck",
        )),
    }
}

pub(super) fn initrd_check(label: &Label, ctx: &Context<'_>, boot: &BootFiles<'_>) -> Check {
    let Some(written) = &label.initrd else {
        return Check::warn(
            CheckName::Initrd,
            format!("LABEL {} (line {})", label.name, label.line),
            "no INITRD line",
            "NixOS's stage 1 lives in the initrd: add `INITRD <path>`",
        );
    };
    match find_file(CheckName::Initrd, "INITRD", written, 0, ctx, boot) {
        Ok((location, size, _)) => Check::pass(CheckName::Initrd, location, format!("{size} bytes")),
        Err(check) => check,
    }
}

pub(super) fn fdt_checks(label: &Label, ctx: &Context<'_>, boot: &BootFiles<'_>, out: &mut Vec<Check>) {
    let found = match (&label.fdt, &label.fdtdir) {
        (Some(fdt), _) => find_file(CheckName::Fdt, "FDT", fdt, limits::FDT as usize, ctx, boot),
        (None, Some(dir)) => {
            // U-Boot looks for $fdtfile in FDTDIR.
            let written = format!("{}/{}", dir.trim_end_matches('/'), ctx.profile.fdtfile);
            find_file(
                CheckName::Fdt,
                "FDTDIR",
                &written,
                limits::FDT as usize,
                ctx,
                boot,
            )
        }
        (None, None) => {
            out.push(Check::warn(
                CheckName::Fdt,
                format!("LABEL {} (line {})", label.name, label.line),
                "no FDT or FDTDIR line: the kernel gets the device tree U-Boot was built with",
                format!(
                    "add `FDT <path to {}>` so the kernel's own device tree is used",
                    ctx.profile.fdtfile
                ),
            ));
            return;
        }
    };
    let (location, size, bytes) = match found {
        Ok(found) => found,
        Err(check) => return out.push(check),
    };
    match fdt::parse(&bytes) {
        Ok(tree) => {
            out.push(Check::pass(
                CheckName::Fdt,
                location.clone(),
                format!(
                    "device tree, {size} bytes{}",
                    tree.model
                        .as_deref()
                        .map(|m| format!(", model {m:?}"))
                        .unwrap_or_default()
                ),
            ));
            out.push(check_fdt_compatible(&tree, ctx.profile, &location));
        }
        Err(error) => out.push(Check::fail(
            CheckName::Fdt,
            location,
            format!("not a valid device tree ({size} bytes): {error}"),
            format!("install the kernel's {}", ctx.profile.fdtfile),
        )),
    }
}

/// The device tree's root `compatible` names the board.
pub fn check_fdt_compatible(tree: &fdt::DeviceTree, profile: &Profile, location: &str) -> Check {
    let quoted: Vec<String> = tree.compatible.iter().map(|c| format!("{c:?}")).collect();
    let found = format!(
        "compatible = {}",
        if quoted.is_empty() {
            "nothing".to_owned()
        } else {
            quoted.join(", ")
        }
    );
    if tree.compatible.iter().any(|c| c == profile.compatible) {
        Check::pass(CheckName::FdtCompatible, location, found)
    } else {
        Check::fail(
            CheckName::FdtCompatible,
            location,
            format!("{found}: not the {} ({:?})", profile.name, profile.compatible),
            format!("point FDT at the kernel's {}", profile.fdtfile),
        )
    }
}
