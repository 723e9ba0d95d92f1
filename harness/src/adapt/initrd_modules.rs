//! Disk drivers added to the initrd QEMU's U-Boot loads, when the image's kernel and initrd can
//! drive none of QEMU's disk buses: an initrd built for the board (`mmc_block` alone, as the
//! R2S configurations users copy have it) with a kernel that builds virtio as modules boots
//! on the board and stops in stage 1 under QEMU.
//!
//! The drivers are the image's own: from the kernel's full module tree on the root filesystem
//! ([`on_root`]), the fewest modules that complete one bus ([`disk_bus::needs`]) with what
//! they need from `modules.dep`, each checked to be built for the kernel's release. They go
//! into one more newc archive appended to the shim's copy of the initrd (the kernel unpacks
//! archives one after another, a later file replacing an earlier one), in the initrd's own
//! modules directory, with depmod's files regenerated for the initrd's modules and the added
//! ones together (text for busybox, kmod's binary index for udev and kmod's `modprobe` in a
//! scripted stage 1) and an `/etc/modules-load.d` entry that systemd's stage 1 loads. The
//! image is never written.

use std::collections::BTreeSet;
use std::path::Path;

use r2s_images::cpio::Archive;

use super::disk_bus::{self, Drivable};
use crate::image::boot_config::Found;
use crate::image::drivers::{self, Drivers, Support};
use crate::image::extlinux::Label;
use crate::image::initrd;
use crate::image::modules::depmod::Depmod;
use crate::image::modules::index_files::{index_files, IndexedModule};
use crate::image::modules::on_root::{self, RootTree};
use crate::image::modules::vermagic;
use crate::image::{ImageError, Table, Volume};
use crate::qemu_devices::DiskBus;

/// The largest module read from the root filesystem.
const MODULE_READ: u64 = 64 << 20;
/// The most module bytes added to one initrd: a disk bus's drivers are well under 10 MiB, and
/// the R2S unpacks the initrd into 1 GiB.
const ADDED_BYTES: u64 = 128 << 20;
/// The largest initrd read for its modules, as [`drivers`] reads it.
const INITRD_READ: u64 = 512 << 20;
/// The largest kernel read for its release.
const KERNEL_READ: u64 = 128 << 20;
/// The modules-load.d file systemd's stage 1 reads, named for who wrote it.
pub const MODULES_LOAD: &str = "etc/modules-load.d/r2s-harness-qemu-disk.conf";

/// What adapting the initrd for QEMU's disk buses decided.
#[derive(Debug)]
pub enum InitrdModules {
    /// Stage 1 can drive a bus already, or nothing says it cannot: nothing added.
    NotNeeded,
    /// It cannot, and no modules are added: why.
    Refused(String),
    /// Modules added.
    Added(Addition),
}

impl InitrdModules {
    /// What was decided, in lines for the run's notes, transcript and report; none when
    /// nothing was needed.
    pub fn notes(&self) -> Vec<String> {
        match self {
            InitrdModules::NotNeeded => Vec::new(),
            InitrdModules::Refused(why) => vec![format!("initrd: no disk drivers added: {why}")],
            InitrdModules::Added(addition) => addition.notes(),
        }
    }
}

/// Modules added to an initrd, and the archive that adds them.
#[derive(Debug)]
pub struct Addition {
    /// The boot entry whose kernel and initrd were read: `nixos-default`.
    pub label: String,
    /// The initrd file (in the boot partition) the archive is appended to.
    pub initrd: String,
    /// The bus the added modules drive.
    pub bus: DiskBus,
    /// The kernel's release, which every added module's vermagic names.
    pub release: String,
    /// Where the modules came from: `partition 2: /nix/store/…/lib/modules/6.1.0-57-arm64 (the init= system)`.
    pub from: String,
    /// The modules added, in load order: canonical name and path below the tree.
    pub modules: Vec<(String, String)>,
    /// Where they are in the initrd: its modules directory.
    pub into: String,
    /// Why: what the kernel and initrd could drive before.
    pub reason: String,
    /// The newc archive to append.
    pub archive: Vec<u8>,
}

impl Addition {
    /// The module names, for the disk-bus choice.
    pub fn names(&self) -> Vec<String> {
        self.modules.iter().map(|(name, _)| name.clone()).collect()
    }

    /// What was done, in lines for the run's notes, transcript and report.
    pub fn notes(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "initrd {} (LABEL {}): + {} for the root disk on {}, from {}",
                self.initrd,
                self.label,
                self.modules
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.bus,
                self.from
            ),
            format!("  why: {}", self.reason),
        ];
        lines.extend(
            self.modules
                .iter()
                .map(|(_, path)| format!("  added /{}/{path}", self.into)),
        );
        lines.push(format!(
            "  with modules.dep(.bin), modules.alias(.bin) for the initrd's modules and these, and /{MODULES_LOAD}; vermagic {}",
            self.release
        ));
        lines
    }
}

/// Decides what `image`'s default boot entry (of `found`) needs under QEMU, and builds the
/// archive if modules are added. Errors are the image's partition table or boot partition
/// being unreadable; everything else is a [`InitrdModules::Refused`] reason.
pub fn plan(image: &Path, found: &Found) -> Result<InitrdModules, ImageError> {
    let Some(label) = found.config.default_label().or(found.config.labels.first()) else {
        return Ok(InitrdModules::NotNeeded);
    };
    let table = Table::read(image)?;
    let drivers = drivers::read_entry(image, &table, found, label)?;
    let choice = disk_bus::choose(&drivers);
    if !matches!(choice.drivable, Drivable::Missing(_)) {
        return Ok(InitrdModules::NotNeeded);
    }
    let Some(initrd_path) = label
        .initrd
        .as_deref()
        .and_then(|i| i.split(',').map(str::trim).rfind(|p| !p.is_empty()))
        .map(|p| found.resolve(p))
    else {
        return Ok(InitrdModules::Refused(format!(
            "LABEL {} has no initrd to add modules to",
            label.name
        )));
    };
    let boot = Volume::open_index(image, &table, found.partition)?;
    let index = match boot
        .read_limited(&initrd_path, INITRD_READ, "an initrd read for its modules")
        .map_err(|e| e.to_string())
        .and_then(|bytes| initrd::read(&bytes).map_err(|e| format!("initrd {initrd_path}: {e}")))
    {
        Ok(index) => index,
        Err(e) => return Ok(InitrdModules::Refused(format!("the initrd cannot be read ({e})"))),
    };
    let release = match kernel_release(&boot, found, label, &index) {
        Ok(release) => release,
        Err(e) => return Ok(InitrdModules::Refused(e)),
    };
    let init = on_root::init_of(label.append.as_deref());
    let tree = match on_root::find(image, &table, found.partition, init, &release) {
        Ok(tree) => tree,
        Err(e) => {
            return Ok(InitrdModules::Refused(format!(
                "no modules of the kernel's release {release} to add: {e}"
            )))
        }
    };
    let built = pick_bus(&drivers, &choice.summary, &index.modules, &tree.depmod, &tree.dir)
        .and_then(|(bus, added)| build(&drivers, bus, &added, &index, &tree, &release));
    Ok(match built {
        Ok(built) => InitrdModules::Added(Addition {
            label: label.name.clone(),
            initrd: initrd_path,
            bus: built.bus,
            release,
            from: format!("partition {}: {} ({})", tree.partition, tree.dir, tree.via),
            modules: built.modules,
            into: built.into,
            reason: format!(
                "the image's kernel and initrd can drive none of QEMU's disk buses: {}",
                choice.summary
            ),
            archive: built.archive,
        }),
        Err(e) => InitrdModules::Refused(e),
    })
}

/// The archive [`build`] made, and what is in it.
struct Built {
    bus: DiskBus,
    modules: Vec<(String, String)>,
    into: String,
    archive: Vec<u8>,
}

/// The drivers of `bus` that are neither built in nor in the initrd.
fn missing(drivers: &Drivers, bus: DiskBus) -> Vec<&'static str> {
    disk_bus::needs(bus)
        .iter()
        .filter(|d| matches!(drivers.support(d), Support::Missing))
        .map(|d| d.module)
        .collect()
}

/// The bus whose missing drivers, with what they need, are the fewest modules not in the
/// initrd (the first of [`DiskBus::ALL`] on a tie), and those modules in load order.
fn pick_bus(
    drivers: &Drivers,
    summary: &str,
    in_initrd: &BTreeSet<String>,
    tree: &Depmod,
    tree_dir: &str,
) -> Result<(DiskBus, Vec<String>), String> {
    let mut best: Option<(DiskBus, Vec<String>)> = None;
    let mut why_not = Vec::new();
    for bus in DiskBus::ALL {
        match tree.closure(missing(drivers, bus)) {
            Ok(closure) => {
                let added: Vec<String> = closure.into_iter().filter(|m| !in_initrd.contains(m)).collect();
                if best.as_ref().is_none_or(|(_, b)| added.len() < b.len()) {
                    best = Some((bus, added));
                }
            }
            Err(module) => why_not.push(format!("{}: {module} is not in its modules.dep", bus.name())),
        }
    }
    best.ok_or_else(|| {
        format!(
            "{tree_dir} completes no bus ({}); what the kernel and initrd drive: {summary}",
            why_not.join("; ")
        )
    })
}

/// The kernel's release: its banner's, else the one modules directory the initrd has.
fn kernel_release(
    boot: &Volume,
    found: &Found,
    label: &Label,
    index: &initrd::Index,
) -> Result<String, String> {
    if let Some(kernel) = &label.kernel {
        let path = found.resolve(kernel.split('#').next().unwrap_or(kernel).trim());
        if let Ok(bytes) = boot.read_limited(&path, KERNEL_READ, "a kernel read for its release") {
            if let Some(release) = vermagic::kernel_release(&bytes) {
                return Ok(release);
            }
        }
    }
    match &index.releases.iter().collect::<Vec<_>>()[..] {
        [one] => Ok((*one).clone()),
        _ => Err(
            "the kernel's release is unknown (no `Linux version` banner in the kernel, and the initrd \
                  has not exactly one lib/modules/<release>)"
                .to_owned(),
        ),
    }
}

/// Reads the `added` modules from `tree`, checks each was built for `release`, and builds the
/// archive that puts them, the regenerated index and the modules-load.d entry for `bus` into
/// the initrd.
fn build(
    drivers: &Drivers,
    bus: DiskBus,
    added: &[String],
    index: &initrd::Index,
    tree: &RootTree,
    release: &str,
) -> Result<Built, String> {
    let into = index
        .module_dirs
        .get(release)
        .cloned()
        .unwrap_or_else(|| format!("lib/modules/{release}"));
    let mut archive = Archive::new();
    let mut made = BTreeSet::new();
    let mut dirs_to = |archive: &mut Archive, path: &str| {
        for (at, _) in path.match_indices('/') {
            if made.insert(path[..at].to_owned()) {
                archive.dir(&path[..at], 0o755);
            }
        }
    };
    let mut modules = Vec::new();
    let mut total = 0u64;
    for name in added {
        let entry = &tree.depmod.modules[name];
        let source = format!("{}/{}", tree.dir, entry.path);
        let bytes = tree
            .volume
            .read_limited(&source, MODULE_READ, "a kernel module")
            .map_err(|e| e.to_string())?;
        total += bytes.len() as u64;
        if total > ADDED_BYTES {
            return Err(format!(
                "the modules for {bus} ({}) are more than {ADDED_BYTES} bytes together",
                added.join(", ")
            ));
        }
        let file = entry.path.rsplit('/').next().unwrap_or(&entry.path);
        let built_for = vermagic::module_release(&vermagic::inflated(file, &bytes)?);
        if built_for.as_deref() != Some(release) {
            return Err(format!(
                "{source} was built for {} but the kernel is {release} (its vermagic); the kernel would refuse it",
                built_for.as_deref().unwrap_or("no release (no vermagic)")
            ));
        }
        let path = format!("{into}/{}", entry.path);
        dirs_to(&mut archive, &path);
        archive.file(&path, 0o644, &bytes);
        modules.push((name.clone(), entry.path.clone()));
    }
    let combined = combined_set(index, &tree.depmod, added);
    let files = index_files(&combined, tree.builtin.as_deref()).map_err(|e| e.to_string())?;
    dirs_to(&mut archive, &format!("{into}/modules.dep"));
    for (name, bytes) in files {
        archive.file(&format!("{into}/{name}"), 0o644, &bytes);
    }
    let load: String = missing(drivers, bus).iter().map(|m| format!("{m}\n")).collect();
    dirs_to(&mut archive, MODULES_LOAD);
    archive.file(
        MODULES_LOAD,
        0o644,
        format!("# Added by r2s-harness: the drivers for QEMU's {bus} root disk.\n{load}").as_bytes(),
    );
    Ok(Built {
        bus,
        modules,
        into,
        archive: archive.finish(),
    })
}

/// The initrd's modules and the added ones, as the regenerated index lists them: paths as they
/// are in the initrd, needs and aliases from the tree (aliases the tree lacks from the initrd's
/// own modules.alias), in the tree's order.
fn combined_set(index: &initrd::Index, tree: &Depmod, added: &[String]) -> Vec<IndexedModule> {
    let mut names: Vec<&String> = index.modules.iter().chain(added).collect();
    names.sort_by_key(|name| {
        (
            tree.order.get(*name).copied().unwrap_or(u32::MAX),
            (*name).clone(),
        )
    });
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let entry = tree.modules.get(name);
            let path = index.module_paths.get(name).or(entry.map(|e| &e.path))?;
            Some(IndexedModule {
                name: name.clone(),
                path: path.clone(),
                deps: entry.map(|e| e.deps.clone()).unwrap_or_default(),
                // The tree's aliases, else those of the initrd's own modules.alias.
                aliases: tree
                    .aliases
                    .get(name)
                    .or(index.aliases.get(name))
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::drivers::Drivers;

    /// Debian's arm64 kernel: every QEMU disk driver a module, PCI host and virtio core built in.
    fn debian_kernel() -> Drivers {
        Drivers {
            builtin: Some(
                ["pci_host_generic", "virtio", "virtio_ring", "mmc_block"]
                    .map(String::from)
                    .into(),
            ),
            initrd: ["ext4", "jbd2", "mbcache", "dw_mmc_rockchip"]
                .map(String::from)
                .into(),
            ..Drivers::default()
        }
    }

    const TREE: &str = "\
kernel/drivers/block/virtio_blk.ko:
kernel/drivers/virtio/virtio_mmio.ko:
kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko
kernel/drivers/nvme/host/nvme-core.ko:
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/sd_mod.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
";

    fn pick(tree: &str) -> Result<(DiskBus, Vec<String>), String> {
        let drivers = debian_kernel();
        let depmod = Depmod::parse(tree, None).unwrap();
        pick_bus(&drivers, "(summary)", &drivers.initrd, &depmod, "/tree")
    }

    #[test]
    fn the_bus_needing_the_fewest_modules_is_chosen_with_what_they_need() {
        assert_eq!(
            pick(TREE),
            Ok((DiskBus::Virtio, vec!["virtio_blk".into(), "virtio_mmio".into()]))
        );
    }

    #[test]
    fn a_bus_whose_driver_the_tree_lacks_is_passed_over_for_the_next_smallest() {
        let without_virtio_mmio = TREE.replace("kernel/drivers/virtio/virtio_mmio.ko:\n", "");
        assert_eq!(
            pick(&without_virtio_mmio),
            Ok((DiskBus::Nvme, vec!["nvme_core".into(), "nvme".into()]))
        );
    }

    #[test]
    fn a_tree_that_completes_no_bus_is_refused_naming_what_each_lacks() {
        assert_eq!(
            pick("kernel/fs/ext4/ext4.ko:\n"),
            Err("/tree completes no bus (virtio: virtio_blk is not in its modules.dep; nvme: nvme is not in its \
                 modules.dep; ahci: ahci is not in its modules.dep; usb: usb_storage is not in its modules.dep); \
                 what the kernel and initrd drive: (summary)"
                .to_owned())
        );
    }

    #[test]
    fn an_initrd_module_the_tree_has_no_alias_for_keeps_the_initrd_s_own() {
        let tree = Depmod::parse(
            "kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/mmc/host/dw_mmc.ko:\n",
            Some("alias virtio:d00000002v* virtio_blk\n"),
        )
        .unwrap();
        let mut index = initrd::Index::default();
        index.modules.insert("dw_mmc".to_owned());
        index.module_paths.insert(
            "dw_mmc".to_owned(),
            "kernel/drivers/mmc/host/dw_mmc.ko.xz".to_owned(),
        );
        index
            .aliases
            .insert("dw_mmc".to_owned(), vec!["of:N*T*Csnps,dw-mshc".to_owned()]);
        index
            .aliases
            .insert("virtio_blk".to_owned(), vec!["from-the-initrd".to_owned()]);
        let combined = combined_set(&index, &tree, &["virtio_blk".to_owned()]);
        let listed: Vec<(&str, &str, Vec<String>)> = combined
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_str(), m.aliases.clone()))
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "virtio_blk",
                    "kernel/drivers/block/virtio_blk.ko",
                    vec!["virtio:d00000002v*".to_owned()]
                ),
                (
                    "dw_mmc",
                    "kernel/drivers/mmc/host/dw_mmc.ko.xz",
                    vec!["of:N*T*Csnps,dw-mshc".to_owned()]
                ),
            ]
        );
    }
}
