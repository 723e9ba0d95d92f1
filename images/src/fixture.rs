//! The fixtures: good images in the layouts R2S users have (the QEMU-console default, the NixOS
//! generic-extlinux menu, the hand-written first boot, the nixpkgs sd-image), and broken
//! variants that each differ from a good one in one way.

use crate::FixtureInfo;

/// Every fixture, the default good one first.
pub const FIXTURES: &[FixtureInfo] = &[
    FixtureInfo {
        name: "r2s-busybox",
        description: "R2S SD-card layout (RK3328 idbloader/u-boot.itb, GPT, ext4 NIXOS_BOOT + NIXOS_SD) with a \
                      NixOS extlinux menu of three generations and the QEMU console (ttyAMA0); boots through \
                      NixOS-style stage 1 and stage 2 to `ivy login:` (root password in ROOT_PASSWORD)",
    },
    FixtureInfo {
        name: "broken-stage1",
        description: "root filesystem labelled `nixos` instead of NIXOS_SD: stage 1 times out waiting for \
                      /dev/disk/by-label/NIXOS_SD, prints NixOS's \"An error occurred in stage 1\" dialog and \
                      waits for a key forever",
    },
    FixtureInfo {
        name: "broken-panic",
        description: "the default entry's APPEND adds `rdinit=/bin/false`: the initrd's init exits and the \
                      kernel panics with \"Attempted to kill init!\"; older generations still boot",
    },
    FixtureInfo {
        name: "broken-initrd-missing",
        description: "the initrd every extlinux entry names is missing from NIXOS_BOOT: U-Boot prints \
                      \"Skipping nixos-default for failure retrieving initrd\" (and for each other entry) and \
                      falls through to its other boot targets",
    },
    FixtureInfo {
        name: "r2s-first-boot",
        description: "the hand-written first boot of the reference write-up: GPT, RK3328 bootloader at sectors \
                      64 and 16384, ext4 NIXOS_BOOT holding /extlinux/extlinux.conf, /Image, /initrd and \
                      /rk3328-nanopi-r2s.dtb, `APPEND console=ttyS2,1500000 earlycon=uart8250,… \
                      root=LABEL=NIXOS_SD rootfstype=ext4 rootwait init=…`, one system in the store",
    },
    FixtureInfo {
        name: "r2s-generations",
        description: "R2S layout after nixos-rebuild: NixOS generic-extlinux menu (nixos-default, \
                      nixos-2-default, nixos-1-default) with `../nixos/` paths, an FDT line and the board \
                      console `console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000`",
    },
    FixtureInfo {
        name: "r2s-board-initrd",
        description: "r2s-busybox whose initrd is the board's (`includeDefaultModules = false`: the SD \
                      controller and ext4, no virtio, NVMe, AHCI or USB storage) with Debian's kernel, which \
                      builds every QEMU disk driver as a module; the root filesystem holds the kernel's \
                      module tree where NixOS keeps it (<system>/kernel-modules/lib/modules/<release>). \
                      Boots under QEMU only once the harness adds the image's own virtio modules to the \
                      initrd; with --no-adapt, stage 1 cannot find NIXOS_SD",
    },
    FixtureInfo {
        name: "r2s-sd-image",
        description: "nixpkgs sd-image layout: MBR, vfat FIRMWARE at the default 8 MiB (sector 16384, where an \
                      R2S needs u-boot.itb) and bootable ext4 NIXOS_SD with /boot/extlinux/extlinux.conf \
                      and /boot/nixos; boots under QEMU, `harness inspect` flags the collision",
    },
    FixtureInfo {
        name: "r2s-large-kernel",
        description: "r2s-busybox whose kernel needs more than QEMU's U-Boot leaves it (header image_size 66 MiB, \
                      file padded with zeros to 61 MiB; QEMU's qemu_arm64 loads the initrd 60 MiB above the \
                      kernel) and whose u-boot.itb loads the initrd at 0x08000000, as R2S flakes patch theirs: \
                      its own U-Boot boots it; under QEMU it boots only with the initrd moved up",
    },
    FixtureInfo {
        name: "broken-large-kernel-stock-uboot",
        description: "r2s-large-kernel with the stock RK3328 u-boot.itb (ramdisk_addr_r 0x06000000, 62 MiB above \
                      where booti runs the kernel): `harness inspect` flags the kernel, and under QEMU the \
                      initrd is not moved for it",
    },
    FixtureInfo {
        name: "broken-inspect-partition-table",
        description: "r2s-generations with a third GPT entry starting 1 MiB inside NIXOS_SD, as a \
                      hand-edited or miscalculated partition script leaves it",
    },
    FixtureInfo {
        name: "broken-inspect-bootloader-area",
        description: "r2s-generations with NIXOS_BOOT at fdisk's default first sector 2048 instead of 32768, \
                      over the bootloader area",
    },
    FixtureInfo {
        name: "broken-inspect-idbloader",
        description: "r2s-generations without idbloader.img at sector 64",
    },
    FixtureInfo {
        name: "broken-inspect-u-boot-itb",
        description: "r2s-generations without u-boot.itb at sector 16384",
    },
    FixtureInfo {
        name: "broken-inspect-root-label",
        description: "r2s-generations with a third partition also labelled NIXOS_SD",
    },
    FixtureInfo {
        name: "broken-inspect-boot-label",
        description: "r2s-generations with a third partition also labelled NIXOS_BOOT",
    },
    FixtureInfo {
        name: "broken-inspect-root-filesystem",
        description: "r2s-generations whose NIXOS_SD is f2fs (made by mkfs.f2fs and sload.f2fs from the same \
                      tree): a warning, as Nix's SQLite database fails on f2fs; init= is read from it and passes",
    },
    FixtureInfo {
        name: "broken-inspect-init-on-f2fs",
        description: "broken-inspect-root-filesystem whose `init=` names a system that is not in the f2fs root's \
                      store",
    },
    FixtureInfo {
        name: "broken-inspect-extlinux-conf",
        description: "r2s-generations without /extlinux/extlinux.conf",
    },
    FixtureInfo {
        name: "broken-inspect-extlinux-keywords",
        description: "r2s-generations whose extlinux.conf has a syslinux `UI menu.c32` line U-Boot ignores (a \
                      warning)",
    },
    FixtureInfo {
        name: "broken-inspect-extlinux-default",
        description: "r2s-generations whose extlinux.conf says `DEFAULT nixos-42`, a label it does not have",
    },
    FixtureInfo {
        name: "broken-inspect-extlinux-menu-wait",
        description: "r2s-generations whose extlinux.conf says `TIMEOUT -10` under its `MENU TITLE`, as NixOS \
                      24.11 wrote for boot.loader.timeout = 0: U-Boot's menu waits for a key forever",
    },
    FixtureInfo {
        name: "broken-inspect-kernel",
        description: "r2s-generations without the kernel file the entries name",
    },
    FixtureInfo {
        name: "broken-inspect-kernel-format",
        description: "r2s-generations whose kernel file is a gzip-compressed Image, which `booti` refuses",
    },
    FixtureInfo {
        name: "broken-inspect-kernel-size",
        description: "r2s-generations whose kernel header says it needs 68 MiB, more than the 62 MiB between \
                      where the RK3328 U-Boot's booti runs the kernel (kernel_addr_r rounded up to 2 MiB) and \
                      ramdisk_addr_r",
    },
    FixtureInfo {
        name: "broken-inspect-initrd",
        description: "r2s-generations without the initrd file the entries name",
    },
    FixtureInfo {
        name: "broken-inspect-fdt",
        description: "r2s-generations without the device tree the FDT lines name",
    },
    FixtureInfo {
        name: "broken-inspect-fdt-compatible",
        description: "r2s-generations whose rk3328-nanopi-r2s.dtb is the Rock64's device tree",
    },
    FixtureInfo {
        name: "broken-inspect-console",
        description: "r2s-generations whose APPEND says `console=ttyS2,115200n8` (the R2S UART runs at \
                      1500000)",
    },
    FixtureInfo {
        name: "broken-inspect-root",
        description: "r2s-first-boot whose APPEND says `root=LABEL=nixos`, a label no partition has",
    },
    FixtureInfo {
        name: "broken-inspect-init",
        description: "r2s-first-boot whose `init=` names a system that is not in the root filesystem's store",
    },
];

/// The partition layout and boot menu of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// GPT, NIXOS_BOOT at sector 32768 with NixOS's generic-extlinux menu of three generations.
    Generations(Console),
    /// GPT, NIXOS_BOOT at sector 32768 with the reference write-up's hand-written extlinux.conf.
    FirstBoot,
    /// MBR, vfat FIRMWARE at 8 MiB, bootable ext4 NIXOS_SD holding `/boot`.
    SdImage,
}

impl Layout {
    /// Where the layout's initrd keeps its kernel modules.
    pub fn initrd_layout(self) -> InitrdLayout {
        match self {
            Layout::FirstBoot => InitrdLayout::Plain,
            Layout::Generations(_) | Layout::SdImage => InitrdLayout::NixStore,
        }
    }
}

/// Where an initrd keeps its kernel modules, and how it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitrdLayout {
    /// As NixOS's stage-1.nix makes it: the modules in the store path of a
    /// `linux-<release>-modules-shrunk` closure, `/lib` a symlink to its `lib`, the archive
    /// zstd-compressed.
    NixStore,
    /// Modules in `/lib/modules/<release>/` itself, gzip-compressed: an initrd not made by
    /// NixOS, so that the reader's plain path stays tested end to end too.
    Plain,
}

/// The console the kernel command line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// QEMU virt's PL011 (`console=ttyAMA0,115200`): boots under QEMU as written.
    Qemu,
    /// The R2S's UART2 (`console=ttyS2,1500000`), as images built for the board have it.
    Board,
}

/// How a fixture differs from the good one of its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// Nothing: a good image.
    None,
    /// The root filesystem carries this label instead of `NIXOS_SD`.
    RootLabel(&'static str),
    /// The default boot entry's APPEND ends with these parameters.
    DefaultEntryParams(&'static str),
    /// The initrd file is left off the boot filesystem (extlinux.conf still names it).
    InitrdMissing,
    /// NIXOS_BOOT starts at this sector instead of 32768.
    BootPartitionAt(u64),
    /// Nothing at sector 64.
    IdbloaderMissing,
    /// Nothing at sector 16384.
    UbootItbMissing,
    /// A small third ext4 partition with this label.
    ExtraPartition(&'static str),
    /// A third partition table entry that starts 1 MiB inside NIXOS_SD.
    OverlappingPartitions,
    /// The initrd carries only the board's modules (`recipes/initrd/board-kernel-modules`), and
    /// each system links `kernel-modules` to the kernel's module tree on the root filesystem.
    BoardInitrd,
    /// The root partition holds f2fs instead of ext4.
    F2fsRoot,
    /// [`Breakage::F2fsRoot`] and [`Breakage::StaleInit`] together.
    F2fsRootStaleInit,
    /// No extlinux.conf.
    ExtlinuxConfMissing,
    /// This line is added after the extlinux.conf's `TIMEOUT`.
    ExtlinuxLine(&'static str),
    /// extlinux.conf's `DEFAULT` names this label.
    Default(&'static str),
    /// extlinux.conf's `TIMEOUT` is this number.
    MenuTimeout(i32),
    /// The kernel file is left off the boot filesystem.
    KernelMissing,
    /// The kernel file is the Image gzip-compressed.
    KernelGzipped,
    /// The kernel header's image_size field says this many bytes.
    KernelImageSize(u64),
    /// A kernel that outgrows QEMU's U-Boot's load addresses.
    LargeKernel(LargeKernel),
    /// The device tree file is left off the boot filesystem.
    FdtMissing,
    /// The board's device tree file holds this device tree of Debian's (path below
    /// `usr/lib/linux-image-<release>/`).
    FdtFrom(&'static str),
    /// Every APPEND's `console=` parameter is this one.
    Console(&'static str),
    /// The APPEND's `root=` parameter is this one.
    RootParam(&'static str),
    /// The APPEND's `init=` names a system that is not in the store.
    StaleInit,
}

/// A kernel grown past the room a U-Boot leaves it, and the u-boot.itb that boots it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeKernel {
    /// The header's `image_size`.
    pub image_size: u64,
    /// The file's size: the Image padded with zeros (ext4 holes).
    pub file_size: u64,
    /// The `ramdisk_addr_r` written into u-boot.itb's default environment in place of the
    /// stock `0x06000000` (as many characters), if any.
    pub uboot_ramdisk_addr_r: Option<&'static str>,
}

/// What a fixture is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// The good image it starts from.
    pub layout: Layout,
    /// What is changed.
    pub breakage: Breakage,
}

/// Past QEMU's 60 MiB and the stock R2S U-Boot's 62 MiB (from the 2 MiB boundary `booti` moves
/// the kernel to), within the 128 MiB below 0x08000000.
const LARGE_KERNEL: LargeKernel = LargeKernel {
    image_size: 66 << 20,
    file_size: 61 << 20,
    uboot_ramdisk_addr_r: None,
};

/// The recipe of fixture `name`, `None` for names that are not fixtures.
pub fn recipe(name: &str) -> Option<Recipe> {
    use Breakage as B;
    const DEFAULT: Layout = Layout::Generations(Console::Qemu);
    const BOARD: Layout = Layout::Generations(Console::Board);
    let (layout, breakage) = match name {
        "r2s-busybox" => (DEFAULT, B::None),
        "broken-stage1" => (DEFAULT, B::RootLabel("nixos")),
        "broken-panic" => (DEFAULT, B::DefaultEntryParams("rdinit=/bin/false")),
        "broken-initrd-missing" => (DEFAULT, B::InitrdMissing),
        "r2s-first-boot" => (Layout::FirstBoot, B::None),
        "r2s-generations" => (BOARD, B::None),
        "r2s-sd-image" => (Layout::SdImage, B::None),
        "r2s-board-initrd" => (DEFAULT, B::BoardInitrd),
        "r2s-large-kernel" => (
            DEFAULT,
            B::LargeKernel(LargeKernel {
                uboot_ramdisk_addr_r: Some("0x08000000"),
                ..LARGE_KERNEL
            }),
        ),
        "broken-large-kernel-stock-uboot" => (DEFAULT, B::LargeKernel(LARGE_KERNEL)),
        // fdisk's default first sector, taken by anyone who does not type 32768 as the
        // write-up did.
        "broken-inspect-bootloader-area" => (BOARD, B::BootPartitionAt(2048)),
        "broken-inspect-partition-table" => (BOARD, B::OverlappingPartitions),
        "broken-inspect-idbloader" => (BOARD, B::IdbloaderMissing),
        "broken-inspect-u-boot-itb" => (BOARD, B::UbootItbMissing),
        "broken-inspect-root-label" => (BOARD, B::ExtraPartition("NIXOS_SD")),
        "broken-inspect-boot-label" => (BOARD, B::ExtraPartition("NIXOS_BOOT")),
        "broken-inspect-root-filesystem" => (BOARD, B::F2fsRoot),
        "broken-inspect-init-on-f2fs" => (BOARD, B::F2fsRootStaleInit),
        "broken-inspect-extlinux-conf" => (BOARD, B::ExtlinuxConfMissing),
        "broken-inspect-extlinux-keywords" => (BOARD, B::ExtlinuxLine("UI menu.c32")),
        "broken-inspect-extlinux-default" => (BOARD, B::Default("nixos-42")),
        "broken-inspect-extlinux-menu-wait" => (BOARD, B::MenuTimeout(-10)),
        "broken-inspect-kernel" => (BOARD, B::KernelMissing),
        "broken-inspect-kernel-format" => (BOARD, B::KernelGzipped),
        "broken-inspect-kernel-size" => (BOARD, B::KernelImageSize(68 << 20)),
        "broken-inspect-initrd" => (BOARD, B::InitrdMissing),
        "broken-inspect-fdt" => (BOARD, B::FdtMissing),
        "broken-inspect-fdt-compatible" => (BOARD, B::FdtFrom("rockchip/rk3328-rock64.dtb")),
        "broken-inspect-console" => (BOARD, B::Console("console=ttyS2,115200n8")),
        "broken-inspect-root" => (Layout::FirstBoot, B::RootParam("root=LABEL=nixos")),
        "broken-inspect-init" => (Layout::FirstBoot, B::StaleInit),
        _ => return None,
    };
    Some(Recipe { layout, breakage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_fixture_has_a_recipe() {
        for fixture in FIXTURES {
            assert!(recipe(fixture.name).is_some(), "{}", fixture.name);
        }
    }

    #[test]
    fn default_fixture_is_the_good_one_with_the_qemu_console() {
        assert_eq!(
            recipe(crate::DEFAULT_FIXTURE),
            Some(Recipe {
                layout: Layout::Generations(Console::Qemu),
                breakage: Breakage::None
            })
        );
        assert_eq!(FIXTURES[0].name, crate::DEFAULT_FIXTURE);
    }

    #[test]
    fn unknown_names_have_no_recipe() {
        assert_eq!(recipe("r2s-nope"), None);
    }

    #[test]
    fn inspect_fixtures_break_a_board_faithful_image() {
        for fixture in FIXTURES.iter().filter(|f| f.name.starts_with("broken-inspect-")) {
            let recipe = recipe(fixture.name).unwrap();
            assert_ne!(recipe.breakage, Breakage::None, "{}", fixture.name);
            assert_ne!(
                recipe.layout,
                Layout::Generations(Console::Qemu),
                "{}",
                fixture.name
            );
        }
    }
}
