//! The checks of one extlinux boot entry (`LABEL`): the files U-Boot loads for it
//! ([`files`]), the kernel's Image header ([`kernel`]), and the kernel command line it passes
//! ([`cmdline`]).

mod cmdline;
mod files;
mod kernel;

pub use cmdline::check_console;
pub use files::{check_fdt_compatible, Files, NoFiles, Volumes};
pub use kernel::{check_kernel_format, check_kernel_size};

use super::board::Profile;
use super::report::Check;
use super::Probed;
use crate::image::root_device::RootDevice;
use crate::image::Label;

/// What every entry of one extlinux.conf shares.
pub struct Context<'a> {
    /// The board the image is for.
    pub profile: &'a Profile,
    /// The load addresses of the U-Boot on the card, and where they came from.
    pub addresses: &'a crate::inspect::load_addresses::Resolved,
    /// The image's partitions and their filesystems.
    pub parts: &'a [Probed],
    /// The partition holding extlinux.conf, where its paths resolve.
    pub config_partition: u32,
    /// extlinux.conf's path in that partition.
    pub config_path: &'a str,
    /// The filesystems.
    pub volumes: &'a dyn Volumes,
}

impl Context<'_> {
    /// The files of partition `index`, or why they cannot be read.
    pub(super) fn files(&self, index: u32) -> Result<&dyn Files, NoFiles<'_>> {
        match self.volumes.files(index) {
            Some(Ok(files)) => Ok(files),
            Some(Err(error)) => Err(NoFiles::Unreadable(error)),
            None => Err(NoFiles::NoPartition(index)),
        }
    }

    pub(super) fn partition(&self, index: u32) -> Option<&Probed> {
        self.parts.iter().find(|p| p.partition.index == index)
    }

    pub(super) fn partition_name(&self, index: u32) -> String {
        match self.partition(index) {
            Some(p) => p.short(),
            None => format!("partition {index}"),
        }
    }

    /// `LINUX ../nixos/x-Image → partition 1 (NIXOS_BOOT): /nixos/x-Image`.
    pub(super) fn file_location(&self, keyword: &str, written: &str, resolved: &str) -> String {
        format!(
            "{keyword} {written} → {}: {resolved}",
            self.partition_name(self.config_partition)
        )
    }
}

/// Every check of one boot entry (whose stage 1 mounts `root`), in report order; checks that need a file that is missing
/// or unreadable are left out.
pub fn check_entry(label: &Label, root: &RootDevice, ctx: &Context<'_>) -> Vec<Check> {
    if label.kernel.is_none() && label.localboot.is_some() {
        // LOCALBOOT hands over to another boot device: nothing is loaded, nothing passed.
        return Vec::new();
    }
    let mut checks = Vec::new();
    let boot = ctx.files(ctx.config_partition);
    kernel::kernel_checks(label, ctx, &boot, &mut checks);
    checks.push(files::initrd_check(label, ctx, &boot));
    files::fdt_checks(label, ctx, &boot, &mut checks);
    let append = label.append.as_deref().unwrap_or("");
    checks.push(check_console(append, ctx.profile, &append_location(label)));
    let (root_check, root_partition) = cmdline::check_root(append, root, ctx, &append_location(label));
    checks.push(root_check);
    checks.push(cmdline::check_init(
        append,
        ctx,
        root_partition,
        &append_location(label),
    ));
    checks.into_iter().map(|c| c.for_label(&label.name)).collect()
}

pub(super) fn append_location(label: &Label) -> String {
    format!("APPEND of LABEL {} (line {})", label.name, label.line)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::load_layout::{EntryFiles, KernelHeader};
    use crate::image::root_device;
    use crate::image::{Config, FsKind, ImageError};
    use crate::inspect::board::Board;
    use crate::inspect::fdt;
    use crate::inspect::load_addresses::Resolved;
    use crate::inspect::report::CheckName;
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

    /// The stock R2S U-Boot's addresses, as for an image without u-boot.itb.
    fn stock_addresses() -> Resolved {
        Resolved::of(&[], Board::NanopiR2s.profile())
    }

    /// The checks of the first entry of `conf`, on NIXOS_BOOT (1) and NIXOS_SD (2) of `disk`.
    fn entry_checks(conf: &str, disk: &dyn Volumes) -> Vec<Check> {
        let parts = [ext4(1, "NIXOS_BOOT"), ext4(2, "NIXOS_SD")];
        let config = Config::parse(conf).unwrap();
        let addresses = stock_addresses();
        let ctx = Context {
            profile: Board::NanopiR2s.profile(),
            addresses: &addresses,
            parts: &parts,
            config_partition: 1,
            config_path: "/extlinux/extlinux.conf",
            volumes: disk,
        };
        let label = &config.labels[0];
        let root = root_device::decide(None, label.append.as_deref().unwrap_or(""), || None);
        check_entry(label, &root, &ctx)
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

    /// An entry whose kernel (flags 0: run where it is loaded) has `image_size` and a file of
    /// `file` bytes, with a 4 MiB initrd and no device tree.
    fn entry_files(image_size: u64, file: u64) -> EntryFiles {
        EntryFiles {
            kernel: KernelHeader::parse(&kernel(image_size, 64)).unwrap(),
            kernel_file: file,
            initrd: Some(4 << 20),
            fdt: None,
        }
    }

    #[test]
    fn kernel_size_is_judged_against_the_gap_below_ramdisk_addr_r() {
        let room = 0x0600_0000 - 0x0208_0000;
        assert_eq!(
            check_kernel_size(&entry_files(room, 1 << 20), &stock_addresses(), "k").status,
            Status::Pass
        );
        let check = check_kernel_size(&entry_files(68 << 20, 1 << 20), &stock_addresses(), "k");
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "needs 68.0 MiB (header image_size) from 0x02080000; the initrd loads at ramdisk_addr_r 0x06000000, \
             63.5 MiB above; load addresses from the stock nanopi-r2s U-Boot: the kernel (0x02080000–0x06480000) \
             overlaps the initrd (0x06000000–0x06400000)"
        );
        // A kernel too old to fill image_size is judged by its file size.
        assert_eq!(
            check_kernel_size(&entry_files(0, room + 1), &stock_addresses(), "k").status,
            Status::Fail
        );
    }

    #[test]
    fn a_kernel_that_may_lie_anywhere_is_judged_from_the_2_mib_boundary_booti_moves_it_to() {
        let mut files = entry_files(63 << 20, 1 << 20);
        files.kernel.place_anywhere = true;
        let check = check_kernel_size(&files, &stock_addresses(), "k");
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.message.starts_with(
                "needs 63.0 MiB (header image_size) from 0x02200000 (booti moves it there from kernel_addr_r \
                 0x02080000); the initrd loads at ramdisk_addr_r 0x06000000, 62.0 MiB above"
            ),
            "{}",
            check.message
        );
    }

    #[test]
    fn a_board_profile_ramdisk_addr_r_leaves_the_room_it_says() {
        let mut profile = *Board::NanopiR2s.profile();
        profile.board_load_addresses.ramdisk_addr_r = Some(0x0800_0000);
        let addresses = Resolved::of(&[], &profile);
        let check = check_kernel_size(&entry_files(68 << 20, 1 << 20), &addresses, "k");
        assert_eq!(check.status, Status::Pass);
        assert!(
            check.message.ends_with(
                "ramdisk_addr_r from board profile nanopi-r2s's [load_addresses], fdt_addr_r from the stock \
                 nanopi-r2s U-Boot"
            ),
            "{}",
            check.message
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

    /// The root check of an entry whose APPEND is `append` and whose initrd holds `fstab`.
    fn root_check_with_initrd_fstab(append: &str, fstab: Option<&str>) -> Check {
        let parts = [ext4(1, "NIXOS_BOOT"), ext4(2, "NIXOS_SD_USB")];
        let disk = disk();
        let addresses = stock_addresses();
        let ctx = Context {
            profile: Board::NanopiR2s.profile(),
            parts: &parts,
            config_partition: 1,
            config_path: "/extlinux/extlinux.conf",
            volumes: &disk,
            addresses: &addresses,
        };
        let files = crate::image::initrd::RootFiles {
            fstab: fstab.map(str::to_owned),
            ..Default::default()
        };
        let root = root_device::decide(Some(&files), append, || None);
        cmdline::check_root(append, &root, &ctx, "APPEND").0
    }

    #[test]
    fn root_fstab_passes_when_the_initrd_s_fstab_names_a_partition_and_warns_without_one() {
        let fstab = "/dev/disk/by-label/NIXOS_SD_USB /sysroot ext4 defaults\n";
        let check = root_check_with_initrd_fstab("root=fstab", Some(fstab));
        assert_eq!(check.status, Status::Pass);
        assert_eq!(
            check.message,
            "root=fstab: stage 1 mounts /dev/disk/by-label/NIXOS_SD_USB (from the initrd's fstab (systemd stage 1)) \
             is partition 2 (ext4 labelled \"NIXOS_SD_USB\", sectors 65536–67583)"
        );
        let check = root_check_with_initrd_fstab("root=fstab", None);
        assert_eq!(check.status, Status::Warn);
        assert!(check
            .message
            .starts_with("root=fstab, but the initrd names no root in an fstab"));
        let check = root_check_with_initrd_fstab("", Some("LABEL=NIXOS_SD /sysroot ext4 defaults\n"));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.message.starts_with(
                "no root=: stage 1 mounts LABEL=NIXOS_SD (from the initrd's fstab (systemd stage 1)) names no \
                 partition of the image"
            ),
            "{}",
            check.message
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

    /// A root whose reader lacks what every lookup needs (an encrypted directory).
    struct Encrypted;

    impl Files for Encrypted {
        fn head(&self, _: &str, _: usize) -> Result<Option<(u64, Vec<u8>)>, ImageError> {
            Ok(None)
        }

        fn exists(&self, path: &str) -> Result<bool, ImageError> {
            Err(ImageError::Unsupported {
                image: "r2s.img".into(),
                partition: 2,
                path: path.to_owned(),
                reason: "an encrypted directory (inode 5), which this f2fs reader cannot read".to_owned(),
            })
        }
    }

    #[test]
    fn init_behind_what_the_reader_cannot_read_is_a_warning_saying_why() {
        struct Roots(Memory, Encrypted);
        impl Volumes for Roots {
            fn files(&self, index: u32) -> Option<Result<&dyn Files, &ImageError>> {
                Some(Ok(if index == 2 { &self.1 } else { &self.0 }))
            }
        }
        let boot = disk().0.remove(&1).unwrap();
        let init = entry_checks(CONF, &Roots(boot, Encrypted)).pop().unwrap();
        assert_eq!((init.name, init.status), (CheckName::Init, Status::Warn));
        assert_eq!(
            init.message,
            "not checked: partition 2: cannot read /nix/store/s/init: an encrypted directory (inode 5), which this \
             f2fs reader cannot read"
        );
    }

    #[test]
    fn init_on_an_unreadable_root_is_a_warning() {
        let mut disk = disk();
        disk.0.remove(&2);
        assert_eq!(statuses(&run(CONF, &disk), Status::Warn), [CheckName::Init]);
    }
}
