//! The checks of one extlinux boot entry (`LABEL`): the files U-Boot loads for it, and the
//! kernel command line it passes.

use super::board::Profile;
use super::fdt;
use super::report::{Check, CheckName};
use super::Probed;
use crate::image::boot_config::resolve;
use crate::image::{ImageError, Label, Volume};

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

/// What every entry of one extlinux.conf shares.
pub struct Context<'a> {
    /// The board the image is for.
    pub profile: &'a Profile,
    /// The image's partitions and their filesystems.
    pub parts: &'a [Probed],
    /// The partition holding extlinux.conf, where its paths resolve.
    pub config_partition: u32,
    /// extlinux.conf's path in that partition.
    pub config_path: &'a str,
    /// The filesystems.
    pub volumes: &'a dyn Volumes,
}

/// Enough of a kernel to read its arm64 Image header.
const KERNEL_HEADER_LEN: usize = 64;
const ARM64_MAGIC_OFFSET: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const IMAGE_SIZE_OFFSET: usize = 0x10;
/// Device trees are small; anything larger is not one U-Boot would load (arm64 allows 2 MiB).
const FDT_MAX_LEN: usize = 2 << 20;

const RELATIVE_PATHS: &str = "relative paths count from the directory holding extlinux.conf, absolute ones \
                              from the partition root";

impl Context<'_> {
    /// The files of partition `index`, or why not, as report text.
    fn files(&self, index: u32) -> Result<&dyn Files, String> {
        match self.volumes.files(index) {
            Some(Ok(files)) => Ok(files),
            Some(Err(error)) => Err(error.detail()),
            None => Err(format!("the image has no partition {index}")),
        }
    }

    fn partition(&self, index: u32) -> Option<&Probed> {
        self.parts.iter().find(|p| p.partition.index == index)
    }

    fn partition_name(&self, index: u32) -> String {
        match self.partition(index) {
            Some(p) => p.short(),
            None => format!("partition {index}"),
        }
    }

    /// `LINUX ../nixos/x-Image → partition 1 (NIXOS_BOOT): /nixos/x-Image`.
    fn file_location(&self, keyword: &str, written: &str, resolved: &str) -> String {
        format!(
            "{keyword} {written} → {}: {resolved}",
            self.partition_name(self.config_partition)
        )
    }
}

/// Every check of one boot entry, in report order; checks that need a file that is missing
/// or unreadable are left out.
pub fn check_entry(label: &Label, ctx: &Context<'_>) -> Vec<Check> {
    if label.kernel.is_none() && label.localboot.is_some() {
        // LOCALBOOT hands over to another boot device: nothing is loaded, nothing passed.
        return Vec::new();
    }
    let mut checks = Vec::new();
    let boot = ctx.files(ctx.config_partition);
    kernel_checks(label, ctx, &boot, &mut checks);
    checks.push(initrd_check(label, ctx, &boot));
    fdt_checks(label, ctx, &boot, &mut checks);
    let append = label.append.as_deref().unwrap_or("");
    checks.push(check_console(append, ctx.profile, &append_location(label)));
    let (root_check, root_partition) = check_root(append, ctx, &append_location(label));
    checks.push(root_check);
    checks.push(check_init(append, ctx, root_partition, &append_location(label)));
    checks.into_iter().map(|c| c.for_label(&label.name)).collect()
}

fn append_location(label: &Label) -> String {
    format!("APPEND of LABEL {} (line {})", label.name, label.line)
}

/// Looks a file up in the boot filesystem: its location text, and its size and head or a
/// failed check.
fn find_file(
    name: CheckName,
    keyword: &str,
    written: &str,
    len: usize,
    ctx: &Context<'_>,
    boot: &Result<&dyn Files, String>,
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

fn kernel_checks(label: &Label, ctx: &Context<'_>, boot: &Result<&dyn Files, String>, out: &mut Vec<Check>) {
    let Some(written) = &label.kernel else {
        out.push(Check::fail(
            CheckName::Kernel,
            format!("LABEL {} (line {})", label.name, label.line),
            "no LINUX or KERNEL line",
            "add `LINUX <path to the arm64 Image>` to the entry",
        ));
        return;
    };
    // `path#config` selects a configuration of a FIT; the file is the part before `#`.
    let path = written.split('#').next().unwrap_or(written);
    let keyword = "LINUX";
    let (location, size, head) =
        match find_file(CheckName::Kernel, keyword, path, KERNEL_HEADER_LEN, ctx, boot) {
            Ok(found) => found,
            Err(check) => return out.push(check),
        };
    out.push(Check::pass(
        CheckName::Kernel,
        location.clone(),
        format!("{size} bytes"),
    ));
    let format = check_kernel_format(&head, &location);
    let is_image = format.status == super::report::Status::Pass;
    out.push(format);
    if is_image && label.initrd.is_some() {
        out.push(check_kernel_size(size, &head, ctx.profile, &location));
    }
}

/// The kernel file starts with an arm64 Image header (`ARM\x64` at 0x38), which is all `booti`
/// takes from a U-Boot without `kernel_comp_addr_r`.
pub fn check_kernel_format(head: &[u8], location: &str) -> Check {
    let name = CheckName::KernelFormat;
    if head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
        return Check::pass(name, location, "arm64 Image (ARM\\x64 at 0x38)");
    }
    let what = if head.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed data"
    } else if head.starts_with(b"MZ") && head.get(4..8) == Some(b"zimg") {
        "an EFI zboot image (compressed)"
    } else if head.starts_with(&[0x27, 0x05, 0x19, 0x56]) {
        "a legacy uImage"
    } else if fdt::has_magic(head) {
        "a FIT or device tree"
    } else {
        "no arm64 Image header"
    };
    Check::fail(
        name,
        location,
        format!(
            "{what}, not an arm64 Image (no ARM\\x64 at 0x38): booti says \"Bad Linux ARM64 Image magic!\""
        ),
        "install the uncompressed Image (NixOS copies the kernel's `Image` file; gunzip an Image.gz)",
    )
}

/// The kernel, loaded at `kernel_addr_r`, needs `image_size` bytes of memory (its header) or at
/// least its file size; both must end below `ramdisk_addr_r`, where U-Boot loads the initrd.
pub fn check_kernel_size(file_size: u64, head: &[u8], profile: &Profile, location: &str) -> Check {
    let image_size = head
        .get(IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let room = profile.ramdisk_addr_r - profile.kernel_addr_r;
    let (needed, source) = if image_size > file_size {
        (image_size, "header image_size")
    } else {
        (file_size, "file size")
    };
    let mib = |n: u64| format!("{:.1} MiB", n as f64 / f64::from(1 << 20));
    let message = format!(
        "needs {} ({source}) from kernel_addr_r {:#010x}; the initrd loads at ramdisk_addr_r {:#010x}, {} above",
        mib(needed),
        profile.kernel_addr_r,
        profile.ramdisk_addr_r,
        mib(room)
    );
    if needed <= room {
        Check::pass(CheckName::KernelSize, location, message)
    } else {
        Check::fail(
            CheckName::KernelSize,
            location,
            message,
            "build a smaller kernel (drivers as modules), or use a U-Boot whose ramdisk_addr_r leaves room: \
             kernel and initrd would overlap in memory",
        )
    }
}

fn initrd_check(label: &Label, ctx: &Context<'_>, boot: &Result<&dyn Files, String>) -> Check {
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

fn fdt_checks(label: &Label, ctx: &Context<'_>, boot: &Result<&dyn Files, String>, out: &mut Vec<Check>) {
    let found = match (&label.fdt, &label.fdtdir) {
        (Some(fdt), _) => find_file(CheckName::Fdt, "FDT", fdt, FDT_MAX_LEN, ctx, boot),
        (None, Some(dir)) => {
            // U-Boot looks for $fdtfile in FDTDIR.
            let written = format!("{}/{}", dir.trim_end_matches('/'), ctx.profile.fdtfile);
            find_file(CheckName::Fdt, "FDTDIR", &written, FDT_MAX_LEN, ctx, boot)
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

/// The values of a kernel parameter in command-line order.
fn params<'a>(append: &'a str, key: &str) -> Vec<&'a str> {
    append
        .split_whitespace()
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// `APPEND` has the board's console (`console=ttyS2,1500000`, optionally with `n8`).
pub fn check_console(append: &str, profile: &Profile, location: &str) -> Check {
    let wanted = profile.console_arg();
    let value = &wanted["console=".len()..];
    let consoles = params(append, "console");
    let is_board = |c: &&str| *c == value || c.strip_prefix(value).is_some_and(|rest| rest.starts_with('n'));
    let hint = format!(
        "add `{wanted}` to APPEND (NixOS: boot.kernelParams); the {} prints at {} baud only",
        profile.name, profile.console_baud
    );
    match consoles.iter().position(is_board) {
        Some(i) if i + 1 == consoles.len() => {
            Check::pass(CheckName::Console, location, format!("console={}", consoles[i]))
        }
        Some(_) => Check::warn(
            CheckName::Console,
            location,
            format!(
                "console={} is there, but the last console= ({}) becomes /dev/console, where NixOS's stage 1 \
                 prompts",
                value,
                consoles.last().expect("a later console")
            ),
            format!("put `{wanted}` last"),
        ),
        None if consoles.is_empty() => {
            Check::fail(CheckName::Console, location, "no console= argument", hint)
        }
        None => {
            let found: Vec<String> = consoles.iter().map(|c| format!("console={c}")).collect();
            Check::fail(
                CheckName::Console,
                location,
                format!("{}, not {wanted}", found.join(" ")),
                hint,
            )
        }
    }
}

/// What a `root=` value names.
enum RootSpec<'a> {
    Label(&'a str),
    PartUuid(&'a str),
    Other,
}

fn root_spec(value: &str) -> RootSpec<'_> {
    if let Some(label) = value
        .strip_prefix("LABEL=")
        .or(value.strip_prefix("/dev/disk/by-label/"))
    {
        RootSpec::Label(label)
    } else if let Some(uuid) = value
        .strip_prefix("PARTUUID=")
        .or(value.strip_prefix("/dev/disk/by-partuuid/"))
    {
        RootSpec::PartUuid(uuid)
    } else {
        RootSpec::Other
    }
}

/// `root=` (the last one, as the kernel takes it) names a filesystem label or PARTUUID of the
/// image. Returns the check and the partition it names.
fn check_root(append: &str, ctx: &Context<'_>, location: &str) -> (Check, Option<u32>) {
    let Some(value) = params(append, "root").pop() else {
        return (
            Check::pass(
                CheckName::Root,
                location,
                "no root=: NixOS's stage 1 mounts the filesystem labelled NIXOS_SD",
            ),
            None,
        );
    };
    let found = match root_spec(value) {
        RootSpec::Label(label) => ctx.parts.iter().find(|p| p.fs.label() == Some(label)),
        RootSpec::PartUuid(uuid) => ctx
            .parts
            .iter()
            .find(|p| p.partition.partuuid.eq_ignore_ascii_case(uuid)),
        RootSpec::Other => return (
            Check::warn(
                CheckName::Root,
                location,
                format!("root={value} cannot be checked against the image"),
                "use root=LABEL=NIXOS_SD or root=PARTUUID=…: device names differ between SD card and eMMC",
            ),
            None,
        ),
    };
    match found {
        Some(p) => (
            Check::pass(
                CheckName::Root,
                location,
                format!("root={value} is {}", p.describe()),
            ),
            Some(p.partition.index),
        ),
        None => {
            let known: Vec<String> = ctx
                .parts
                .iter()
                .map(|p| match p.fs.label() {
                    Some(label) => format!("LABEL={label}, PARTUUID={}", p.partition.partuuid),
                    None => format!("PARTUUID={}", p.partition.partuuid),
                })
                .collect();
            (
                Check::fail(
                    CheckName::Root,
                    location,
                    format!(
                        "root={value} names no partition of the image (it has {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join("; ")
                        }
                    ),
                    "fix root= (e.g. root=LABEL=NIXOS_SD) or relabel the root filesystem; the kernel waits \
                     for it forever with rootwait",
                ),
                None,
            )
        }
    }
}

/// `init=` exists on the root filesystem: the partition `root=` names, else the one labelled
/// NIXOS_SD.
fn check_init(append: &str, ctx: &Context<'_>, root: Option<u32>, location: &str) -> Check {
    let Some(init) = params(append, "init").pop() else {
        return Check::warn(
            CheckName::Init,
            location,
            "no init=: NixOS's stage 1 needs init=/nix/store/…-nixos-system-…/init",
            "regenerate extlinux.conf (nixos-rebuild boot) or add init=<system>/init",
        );
    };
    let root = root.or_else(|| {
        ctx.parts
            .iter()
            .find(|p| p.fs.label() == Some(super::filesystems::ROOT_LABEL))
            .map(|p| p.partition.index)
    });
    let Some(root) = root else {
        return Check::warn(
            CheckName::Init,
            location,
            format!("init={init} not checked: no root filesystem found"),
            "see root and root-label",
        );
    };
    let place = format!("{location} → {}: {init}", ctx.partition_name(root));
    let files = match ctx.files(root) {
        Ok(files) => files,
        Err(reason) => {
            return Check::warn(
                CheckName::Init,
                place,
                format!("not checked: {reason}"),
                "see root-filesystem",
            )
        }
    };
    match files.exists(init) {
        Ok(true) => Check::pass(CheckName::Init, place, format!("{init} exists")),
        Ok(false) => Check::fail(
            CheckName::Init,
            place,
            format!("{init} is not on the root filesystem"),
            "boot a system that is in the store: regenerate extlinux.conf (nixos-rebuild boot), or point init= \
             at an existing /nix/store/…-nixos-system-…/init (garbage collection removes old systems)",
        ),
        Err(reason) => Check::fail(
            CheckName::Init,
            place,
            format!("cannot look up {init}: {}", reason.detail()),
            "check the root filesystem with fsck",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::{Config, FsKind};
    use crate::inspect::board::Board;
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::ext4;

    /// An in-memory filesystem.
    #[derive(Default)]
    struct Memory(BTreeMap<String, Vec<u8>>);

    impl Files for Memory {
        fn head(&self, path: &str, len: usize) -> Result<Option<(u64, Vec<u8>)>, ImageError> {
            Ok(self
                .0
                .get(path)
                .map(|b| (b.len() as u64, b[..len.min(b.len())].to_vec())))
        }

        fn exists(&self, path: &str) -> Result<bool, ImageError> {
            Ok(self.0.contains_key(path))
        }
    }

    /// Readable partitions by number; the others hold f2fs.
    struct Disk(BTreeMap<u32, Memory>, ImageError);

    impl Volumes for Disk {
        fn files(&self, index: u32) -> Option<Result<&dyn Files, &ImageError>> {
            Some(self.0.get(&index).map(|m| m as &dyn Files).ok_or(&self.1))
        }
    }

    fn kernel(image_size: u64, len: usize) -> Vec<u8> {
        let mut k = vec![0u8; len];
        k[0x38..0x3c].copy_from_slice(b"ARM\x64");
        k[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        k
    }

    const CONF: &str = "DEFAULT a\nLABEL a\n  LINUX ../nixos/k-Image\n  INITRD ../nixos/i-initrd\n  FDT \
                        ../nixos/k-dtbs/rockchip/rk3328-nanopi-r2s.dtb\n  APPEND init=/nix/store/s/init \
                        console=ttyS2,1500000 loglevel=4\n";

    fn disk() -> Disk {
        let dtb = fdt::tests::build(
            &[("compatible", b"friendlyarm,nanopi-r2s\0rockchip,rk3328\0")],
            &[],
        );
        let boot = Memory(BTreeMap::from([
            ("/nixos/k-Image".to_owned(), kernel(40 << 20, 4096)),
            ("/nixos/i-initrd".to_owned(), vec![0x1f, 0x8b]),
            ("/nixos/k-dtbs/rockchip/rk3328-nanopi-r2s.dtb".to_owned(), dtb),
        ]));
        let root = Memory(BTreeMap::from([(
            "/nix/store/s/init".to_owned(),
            b"#!/bin/sh".to_vec(),
        )]));
        let f2fs = ImageError::NoFileReader {
            image: "r2s.img".into(),
            partition: 2,
            found: FsKind::F2fs { label: None },
        };
        Disk(BTreeMap::from([(1, boot), (2, root)]), f2fs)
    }

    /// The checks of the first entry of `conf`, on NIXOS_BOOT (1) and NIXOS_SD (2) of `disk`.
    fn entry_checks(conf: &str, disk: &Disk) -> Vec<Check> {
        let parts = [ext4(1, "NIXOS_BOOT"), ext4(2, "NIXOS_SD")];
        let config = Config::parse(conf).unwrap();
        let ctx = Context {
            profile: Board::NanopiR2s.profile(),
            parts: &parts,
            config_partition: 1,
            config_path: "/extlinux/extlinux.conf",
            volumes: disk,
        };
        check_entry(&config.labels[0], &ctx)
    }

    fn run(conf: &str, disk: &Disk) -> Vec<(CheckName, Status)> {
        entry_checks(conf, disk)
            .into_iter()
            .map(|c| {
                assert_eq!(c.label.as_deref(), Some("a"));
                (c.name, c.status)
            })
            .collect()
    }

    fn statuses(pairs: &[(CheckName, Status)], status: Status) -> Vec<CheckName> {
        pairs
            .iter()
            .filter(|(_, s)| *s == status)
            .map(|(n, _)| *n)
            .collect()
    }

    #[test]
    fn a_good_entry_passes_every_check_in_order() {
        assert_eq!(
            run(CONF, &disk()),
            [
                (CheckName::Kernel, Status::Pass),
                (CheckName::KernelFormat, Status::Pass),
                (CheckName::KernelSize, Status::Pass),
                (CheckName::Initrd, Status::Pass),
                (CheckName::Fdt, Status::Pass),
                (CheckName::FdtCompatible, Status::Pass),
                (CheckName::Console, Status::Pass),
                (CheckName::Root, Status::Pass),
                (CheckName::Init, Status::Pass),
            ]
        );
    }

    #[test]
    fn a_missing_kernel_fails_and_its_format_and_size_are_not_reported() {
        let mut disk = disk();
        disk.0.get_mut(&1).unwrap().0.remove("/nixos/k-Image");
        let result = run(CONF, &disk);
        assert_eq!(statuses(&result, Status::Fail), [CheckName::Kernel]);
        assert!(!result
            .iter()
            .any(|(n, _)| *n == CheckName::KernelFormat || *n == CheckName::KernelSize));
    }

    #[test]
    fn absolute_paths_resolve_from_the_partition_root() {
        let conf = CONF.replace("../nixos/k-Image", "/nixos/k-Image");
        assert_eq!(statuses(&run(&conf, &disk()), Status::Fail), []);
        let conf = CONF.replace("../nixos/k-Image", "nixos/k-Image");
        assert_eq!(statuses(&run(&conf, &disk()), Status::Fail), [CheckName::Kernel]);
    }

    #[test]
    fn a_path_with_trailing_whitespace_is_missing_and_says_why() {
        let conf = CONF.replace("LINUX ../nixos/k-Image", "LINUX ../nixos/k-Image\r");
        let kernel = entry_checks(&conf, &disk()).remove(0);
        assert_eq!(kernel.status, Status::Fail);
        assert_eq!(
            kernel.message,
            "\"/nixos/k-Image\\r\" does not exist: the path ends in whitespace, which U-Boot keeps"
        );
    }

    #[test]
    fn a_localboot_entry_has_nothing_to_check() {
        assert_eq!(run("LABEL a\n  LOCALBOOT 0\n", &disk()), []);
    }

    #[test]
    fn an_entry_without_a_kernel_fails_kernel() {
        let result = run("LABEL a\n  APPEND console=ttyS2,1500000\n", &disk());
        assert_eq!(statuses(&result, Status::Fail), [CheckName::Kernel]);
    }

    #[test]
    fn a_gzipped_kernel_fails_its_format() {
        let check = check_kernel_format(&[0x1f, 0x8b, 8, 0], "here");
        assert_eq!(check.status, Status::Fail);
        assert!(check
            .message
            .starts_with("gzip-compressed data, not an arm64 Image"));
    }

    #[test]
    fn kernel_size_is_judged_against_the_gap_below_ramdisk_addr_r() {
        let profile = Board::NanopiR2s.profile();
        let room = 0x0600_0000 - 0x0208_0000;
        assert_eq!(
            check_kernel_size(1 << 20, &kernel(room, 64), profile, "k").status,
            Status::Pass
        );
        let check = check_kernel_size(1 << 20, &kernel(68 << 20, 64), profile, "k");
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "needs 68.0 MiB (header image_size) from kernel_addr_r 0x02080000; the initrd loads at \
             ramdisk_addr_r 0x06000000, 63.5 MiB above"
        );
        // A kernel too old to fill image_size is judged by its file size.
        assert_eq!(
            check_kernel_size(room + 1, &kernel(0, 64), profile, "k").status,
            Status::Fail
        );
    }

    #[test]
    fn a_wrong_device_tree_fails_compatible_naming_what_it_is() {
        let tree = fdt::DeviceTree {
            compatible: vec!["pine64,rock64".to_owned(), "rockchip,rk3328".to_owned()],
            ..fdt::DeviceTree::default()
        };
        let check = check_fdt_compatible(&tree, Board::NanopiR2s.profile(), "f");
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "compatible = \"pine64,rock64\", \"rockchip,rk3328\": not the nanopi-r2s (\"friendlyarm,nanopi-r2s\")"
        );
    }

    #[test]
    fn fdtdir_is_searched_for_the_boards_fdtfile() {
        let conf = CONF.replace(
            "FDT ../nixos/k-dtbs/rockchip/rk3328-nanopi-r2s.dtb",
            "FDTDIR ../nixos/k-dtbs/",
        );
        assert_eq!(statuses(&run(&conf, &disk()), Status::Fail), []);
    }

    #[test]
    fn console_must_be_the_boards_uart_at_its_baud_rate() {
        let profile = Board::NanopiR2s.profile();
        let status = |append: &str| check_console(append, profile, "a").status;
        assert_eq!(status("console=ttyS2,1500000"), Status::Pass);
        assert_eq!(status("console=ttyS2,1500000n8"), Status::Pass);
        assert_eq!(status("console=ttyS2,115200n8"), Status::Fail);
        assert_eq!(status("console=ttyS2,15000000"), Status::Fail);
        assert_eq!(status("loglevel=4"), Status::Fail);
        assert_eq!(status("console=ttyS2,1500000 console=tty0"), Status::Warn);
        assert_eq!(
            check_console("console=ttyS2,115200n8 x", profile, "a").message,
            "console=ttyS2,115200n8, not console=ttyS2,1500000"
        );
    }

    #[test]
    fn root_resolves_labels_and_partuuids() {
        let append = |root: &str| CONF.replace("loglevel=4", root);
        let fails = |root: &str| statuses(&run(&append(root), &disk()), Status::Fail);
        assert_eq!(fails("root=LABEL=NIXOS_SD"), []);
        assert_eq!(fails("root=/dev/disk/by-label/NIXOS_SD"), []);
        assert_eq!(fails("root=PARTUUID=1A2B3C4D-02"), []);
        assert_eq!(fails("root=LABEL=nixos"), [CheckName::Root]);
        assert_eq!(fails("root=PARTUUID=1a2b3c4d-07"), [CheckName::Root]);
        let warns = statuses(&run(&append("root=/dev/mmcblk0p2"), &disk()), Status::Warn);
        assert_eq!(warns, [CheckName::Root]);
    }

    #[test]
    fn init_is_looked_up_on_the_filesystem_root_names() {
        let conf = CONF.replace("loglevel=4", "root=LABEL=NIXOS_BOOT");
        // NIXOS_BOOT has no /nix/store/s/init.
        assert_eq!(statuses(&run(&conf, &disk()), Status::Fail), [CheckName::Init]);
        let stale = CONF.replace("/nix/store/s/init", "/nix/store/gone/init");
        assert_eq!(statuses(&run(&stale, &disk()), Status::Fail), [CheckName::Init]);
    }

    #[test]
    fn init_on_an_unreadable_root_is_a_warning() {
        let mut disk = disk();
        disk.0.remove(&2);
        assert_eq!(statuses(&run(CONF, &disk), Status::Warn), [CheckName::Init]);
    }
}
