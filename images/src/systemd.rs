//! The systemd fixtures: the Debian root tree of [`crate::rootfs`] on an R2S card laid out as the
//! other fixtures are (bootloader at sectors 64 and 16384, ext4 NIXOS_BOOT at 32768 with NixOS's
//! extlinux menu, here of two generations, the board's console and the RK3328 device tree; ext4
//! NIXOS_SD), booted by Debian's own initramfs-tools initrd or by one holding only what an R2S
//! needs ([`crate::initramfs`]), or by systemd in a dracut-made initrd that finds its root from
//! its own fstab, as NixOS's systemd stage 1 does ([`crate::dracut`]).
//!
//! The tree takes minutes to make, so tree and images live in the shared cache
//! ([`crate::shared`]) too: a checkout whose own cache lacks an image takes the shared one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::boot::{self, BootContents};
use crate::card::{self, Bootloader};
use crate::debian::Parts;
use crate::fixture::{Breakage, Console, Layout, Recipe};
use crate::initramfs::{self, Initrd};
use crate::rootfs::{self, KernelDeb};
use crate::staging::read;
use crate::{cache, debian, dracut, kernel, recipe, router, shared, BuildError, FixtureInfo};

/// The systemd fixtures.
pub const FIXTURES: &[FixtureInfo] = &[
    FixtureInfo {
        name: "debian-systemd",
        description: "Debian bookworm arm64 with systemd, udev, agetty, login/PAM, bash and openssh-server \
                      (debootstrap, second stage under PRoot) in the R2S layout: NixOS extlinux menu of two \
                      generations with the board's console, Debian's initramfs-tools initrd (MODULES=list: \
                      every disk bus QEMU offers, virtio, NVMe, AHCI, USB storage on xHCI, and the R2S's SD \
                      card), set up as a router: systemd-networkd with the WAN end0 on DHCP and the LAN enu1 \
                      at 192.168.2.1/24 serving DHCP, systemd-network-generator (`ifname=` names the NICs), \
                      sshd letting root in by password; boots to `ivy login:` (root password in \
                      ROOT_PASSWORD). Takes 15 to 30 minutes to build once; cached outside the checkout too",
    },
    FixtureInfo {
        name: "debian-systemd-stage1",
        description: "debian-systemd booted by a systemd initrd, as NixOS 26.05's default systemd stage 1: \
                      dracut's systemd modules only (systemd as /init, udev, journald, the modules of every QEMU \
                      disk bus and the R2S's SD card), `Welcome to Debian GNU/Linux 12 (bookworm) (Initrd)!`, \
                      no root= on the command line: the initrd's /etc/fstab mounts \
                      /dev/disk/by-label/NIXOS_SD at /sysroot; then switch-root and systemd's own `Welcome`, \
                      boots to `ivy login:`",
    },
    FixtureInfo {
        name: "broken-systemd-stage1-root",
        description: "debian-systemd-stage1 whose root filesystem is labelled `nixos` instead of NIXOS_SD: the \
                      initrd waits for /dev/disk/by-label/NIXOS_SD (`A start job is running for …`), after 90 s \
                      `Timed out waiting for device`, `Dependency failed for …sysroot`, emergency mode with \
                      the root account locked",
    },
    FixtureInfo {
        name: "debian-systemd-board-initrd",
        description: "debian-systemd whose initrd holds only what an R2S needs to mount its root from the SD \
                      card or USB storage (initramfs-tools MODULES=list: mmc_block, dw_mmc_rockchip, ext4, \
                      xhci_hcd, xhci_plat_hcd, dwc3, xhci_pci, usb_storage, sd_mod; no virtio, NVMe or AHCI). \
                      Debian's kernel has every QEMU disk driver as a module, so under QEMU it boots only from \
                      usb-storage on qemu-xhci; on virtio-blk its initramfs finds no root device and drops to \
                      a shell after 180 s",
    },
];

/// What runs before the system's systemd: an initramfs-tools initrd, or systemd itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage1 {
    /// One of the initramfs-tools initrds; `root=` names the root.
    Initramfs(Initrd),
    /// The systemd initrd ([`dracut`]); its fstab names the root.
    Systemd,
}

/// How a systemd fixture differs from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Its stage 1.
    pub stage1: Stage1,
    /// Its root filesystem's label.
    pub root_label: &'static str,
}

/// What systemd fixture `name` is, `None` for other names.
pub fn variant_of(name: &str) -> Option<Variant> {
    let variant = |stage1, root_label| Some(Variant { stage1, root_label });
    match name {
        "debian-systemd" => variant(Stage1::Initramfs(Initrd::Debian), card::ROOT_LABEL),
        "debian-systemd-board-initrd" => variant(Stage1::Initramfs(Initrd::Board), card::ROOT_LABEL),
        "debian-systemd-stage1" => variant(Stage1::Systemd, card::ROOT_LABEL),
        "broken-systemd-stage1-root" => variant(Stage1::Systemd, "nixos"),
        _ => None,
    }
}

/// How long a build waits for another to release the shared cache: a tree from nothing takes
/// several minutes, more on a loaded machine.
const SHARED_LOCK_LIMIT: Duration = Duration::from_secs(60 * 60);
/// Root filesystem room beyond what the tree holds, for logs, keys and a user's experiments.
const ROOT_SLACK: u64 = 256 << 20;

/// Builds systemd fixture `name` into `cache_dir`, through the shared cache.
pub fn build(name: &str, variant: Variant, cache_dir: &Path) -> Result<PathBuf, BuildError> {
    let entry = cache::Entry::new(cache_dir, name);
    let (parts, dracut, key) = {
        let _lock = cache::Lock::acquire(cache_dir)?;
        let parts = Parts::fetch(cache_dir)?;
        let dracut = match variant.stage1 {
            Stage1::Systemd => Some(debian::fetch_tool(cache_dir, dracut::PACKAGE)?),
            Stage1::Initramfs(_) => None,
        };
        let mut debs = parts.deb_names().to_vec();
        debs.extend(dracut.as_ref().map(|d| d.deb_name.as_str()));
        let key = cache::KeyInputs::current(name, &debs).key();
        if entry.is_fresh(&key) {
            return Ok(entry.image);
        }
        (parts, dracut, key)
    };
    // The checkout's cache is not held while the tree is made: other fixtures build meanwhile.
    let shared_dir = shared::dir().unwrap_or_else(|| cache_dir.join("shared"));
    std::fs::create_dir_all(&shared_dir).map_err(BuildError::io("creating directory", &shared_dir))?;
    let shared_entry = cache::Entry::new(&shared_dir, name);
    {
        let _lock = cache::Lock::acquire_within(&shared_dir, SHARED_LOCK_LIMIT)?;
        if !shared_entry.is_fresh(&key) {
            let deb = cache_dir.join("debs").join(&parts.kernel.deb_name);
            let tree = rootfs::ensure(
                &shared_dir,
                KernelDeb {
                    deb: &deb,
                    release: &parts.kernel_release,
                },
            )?;
            let initrd = match (variant.stage1, &dracut) {
                (Stage1::Initramfs(initrd), _) => initramfs::ensure(&shared_dir, &tree)?.path(initrd),
                (Stage1::Systemd, Some(dracut)) => dracut::ensure(&shared_dir, dracut, &tree)?,
                (Stage1::Systemd, None) => unreachable!("dracut is fetched for a systemd stage 1"),
            };
            let work = shared_entry.work_dir(name)?;
            let built = assemble(name, variant, &parts, &tree.root, &initrd, work.path())?;
            shared_entry.commit(&built, &key)?;
        }
    }
    let _lock = cache::Lock::acquire(cache_dir)?;
    if entry.is_fresh(&key) {
        return Ok(entry.image);
    }
    let work = entry.work_dir(name)?;
    let staged = work.path().join(format!("{name}.img"));
    shared::link_or_copy(&shared_entry.image, &staged)?;
    entry.commit(&staged, &key)?;
    Ok(entry.image)
}

/// The kernel parameters after `init=`: initramfs-tools needs the root named (NixOS's stage 1
/// knows it); then the board's console, as on the board-faithful busybox fixtures. A systemd
/// stage 1 reads its root from its fstab: NixOS writes `root=fstab` for that, which Debian's
/// systemd 252 would take for a device's name (251 to 253 read no `root=` as the same), so
/// none is written.
fn kernel_params(stage1: Stage1) -> String {
    match stage1 {
        Stage1::Initramfs(_) => format!(
            "root=LABEL={} rootwait {}",
            card::ROOT_LABEL,
            recipe::KERNEL_PARAMS_BOARD.joined()
        ),
        Stage1::Systemd => recipe::KERNEL_PARAMS_BOARD.joined(),
    }
}

/// Puts the card image together in `work` from the tree at `root` with the router's
/// configuration laid over it ([`router`]) and the initrd file `initrd`, and returns its path.
fn assemble(
    name: &str,
    variant: Variant,
    parts: &Parts,
    root: &Path,
    initrd: &Path,
    work: &Path,
) -> Result<PathBuf, BuildError> {
    let release = &parts.kernel_release;
    let contents = BootContents {
        kernel: kernel::raw_image(&parts.kernel.file(&format!("boot/vmlinuz-{release}"))?)?,
        initrd: read(initrd)?,
        dtb: read(
            &parts
                .kernel
                .file(&format!("usr/lib/linux-image-{release}/{}", boot::DTB))?,
        )?,
    };
    let recipe = Recipe {
        layout: Layout::Generations(Console::Board),
        breakage: Breakage::None,
    };
    let boot_dir = work.join("boot");
    boot::stage(
        &boot_dir,
        recipe,
        &contents,
        &rootfs::generations(),
        &kernel_params(variant.stage1),
    )?;

    let root = router::overlay(root, work)?;
    let bootloader = Bootloader::rock64(&parts.uboot)?;
    let root_size = root_size(tree_bytes(&root)?);
    let out = work.join(format!("{name}.img"));
    let breakage = match variant.root_label {
        card::ROOT_LABEL => Breakage::None,
        label => Breakage::RootLabel(label),
    };
    card::r2s_with_root_size(&out, work, breakage, &bootloader, &boot_dir, &root, root_size)?;
    Ok(out)
}

/// NIXOS_SD's size for a tree of `used` bytes: a quarter more (ext4's metadata and journal),
/// the slack, rounded up to whole MiB.
fn root_size(used: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    (used + used / 4 + ROOT_SLACK).div_ceil(MIB) * MIB
}

/// The space the files below `dir` take (allocated blocks, directories included).
fn tree_bytes(dir: &Path) -> Result<u64, BuildError> {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(BuildError::io("reading directory", &current))? {
            let entry = entry.map_err(BuildError::io("reading directory", &current))?;
            let meta = entry
                .metadata()
                .map_err(BuildError::io("reading metadata of", entry.path()))?;
            total += meta.blocks() * 512;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_fixtures_have_a_variant_and_others_none() {
        for fixture in FIXTURES {
            assert!(variant_of(fixture.name).is_some(), "{}", fixture.name);
        }
        assert_eq!(variant_of("r2s-busybox"), None);
    }

    #[test]
    fn kernel_params_name_the_root_for_initramfs_tools_and_the_board_console() {
        assert_eq!(
            kernel_params(Stage1::Initramfs(Initrd::Debian)),
            "root=LABEL=NIXOS_SD rootwait console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 loglevel=4"
        );
    }

    #[test]
    fn a_systemd_stage_1_gets_no_root_parameter() {
        assert_eq!(
            kernel_params(Stage1::Systemd),
            "console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 loglevel=4"
        );
    }

    #[test]
    fn the_broken_stage_1_variant_differs_only_in_its_root_label() {
        let good = variant_of("debian-systemd-stage1").unwrap();
        let broken = variant_of("broken-systemd-stage1-root").unwrap();
        assert_eq!(broken.stage1, good.stage1);
        assert_eq!((good.root_label, broken.root_label), ("NIXOS_SD", "nixos"));
    }

    #[test]
    fn root_size_leaves_room_and_is_whole_mebibytes() {
        let size = root_size(800 << 20);
        assert_eq!(size % (1 << 20), 0);
        assert!(size >= (1000 << 20) + ROOT_SLACK, "{size}");
    }
}
