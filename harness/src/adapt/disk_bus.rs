//! Which bus to attach the image on under QEMU: the first of virtio-blk, NVMe, AHCI and
//! usb-storage whose Linux drivers, down to the PCI host bridge, the image's kernel has built in
//! or its initrd carries ([`crate::image::drivers`]). Stage 1 mounts the root from that disk;
//! on a bus it cannot drive it waits for `NIXOS_SD` until it gives up.

use crate::image::drivers::{Driver, Drivers, Support};
use crate::qemu_devices::{DiskBus, RootDisk};

const fn driver(module: &'static str, option: &'static str) -> Driver {
    Driver { module, option }
}

const PCI_HOST: Driver = driver("pci_host_generic", "CONFIG_PCI_HOST_GENERIC");
const SD: Driver = driver("sd_mod", "CONFIG_BLK_DEV_SD");

const VIRTIO: &[Driver] = &[
    driver("virtio_blk", "CONFIG_VIRTIO_BLK"),
    driver("virtio_mmio", "CONFIG_VIRTIO_MMIO"),
];
const NVME: &[Driver] = &[
    driver("nvme", "CONFIG_BLK_DEV_NVME"),
    driver("nvme_core", "CONFIG_NVME_CORE"),
    PCI_HOST,
];
const AHCI: &[Driver] = &[driver("ahci", "CONFIG_SATA_AHCI"), SD, PCI_HOST];
const USB: &[Driver] = &[
    driver("usb_storage", "CONFIG_USB_STORAGE"),
    SD,
    driver("xhci_pci", "CONFIG_USB_XHCI_PCI"),
    driver("xhci_hcd", "CONFIG_USB_XHCI_HCD"),
    PCI_HOST,
];

/// The drivers a root disk on `bus` needs, the bus's own first, then what it sits on.
pub fn needs(bus: DiskBus) -> &'static [Driver] {
    match bus {
        DiskBus::Virtio => VIRTIO,
        DiskBus::Nvme => NVME,
        DiskBus::Ahci => AHCI,
        DiskBus::Usb => USB,
    }
}

/// Whether stage 1 can drive a bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drivable {
    /// Every driver is built in or in the initrd.
    Yes,
    /// Some drivers are neither: these.
    Missing(Vec<&'static str>),
    /// None is known to be missing, but these are not in the initrd and the kernel's
    /// built-ins are unknown.
    Unknown(Vec<&'static str>),
}

/// Whether `drivers` can drive `bus`.
pub fn drivable(bus: DiskBus, drivers: &Drivers) -> Drivable {
    let mut missing = Vec::new();
    let mut unknown = Vec::new();
    for driver in needs(bus) {
        match drivers.support(driver) {
            Support::Missing => missing.push(driver.module),
            Support::Unknown => unknown.push(driver.module),
            Support::BuiltIn(_) | Support::InInitrd => {}
        }
    }
    if !missing.is_empty() {
        Drivable::Missing(missing)
    } else if !unknown.is_empty() {
        Drivable::Unknown(unknown)
    } else {
        Drivable::Yes
    }
}

/// The bus chosen for a run and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub disk: RootDisk,
    /// Whether stage 1 is known to drive it.
    pub drivable: Drivable,
    /// What each bus needs and has, in one line: for warnings and failure hints.
    pub summary: String,
}

impl Choice {
    /// A warning to print before booting, when stage 1 will likely not find its root.
    pub fn warning(&self) -> Option<String> {
        match &self.drivable {
            Drivable::Yes | Drivable::Unknown(_) => None,
            Drivable::Missing(missing) => Some(format!(
                "the image's kernel and initrd cannot drive the root disk on {} (missing: {}); stage 1 \
                 will likely not find its root. What they can drive: {}",
                self.disk.bus,
                missing.join(", "),
                self.summary
            )),
        }
    }

    /// The hint for a run whose stage 1 did not find its root.
    pub fn root_hint(&self) -> String {
        format!(
            "the root disk was on {} ({}); what the image's kernel and initrd can drive: {}",
            self.disk.bus, self.disk.reason, self.summary
        )
    }
}

/// Per bus, what it has: `virtio-blk (virtio-mmio): yes; NVMe (PCIe): missing nvme, nvme_core; …`.
pub fn summary(drivers: &Drivers) -> String {
    let parts: Vec<String> = DiskBus::ALL
        .iter()
        .map(|&bus| match drivable(bus, drivers) {
            Drivable::Yes => format!("{}: yes", bus.name()),
            Drivable::Missing(m) => format!("{}: no ({} missing)", bus.name(), m.join(", ")),
            Drivable::Unknown(u) => format!("{}: unknown ({} not in the initrd)", bus.name(), u.join(", ")),
        })
        .collect();
    format!("{} [read: {}]", parts.join("; "), drivers.sources())
}

/// The first bus `drivers` can drive; else the first none of whose drivers is known missing;
/// else virtio-blk, with a reason that says so.
pub fn choose(drivers: &Drivers) -> Choice {
    let verdicts: Vec<(DiskBus, Drivable)> =
        DiskBus::ALL.iter().map(|&b| (b, drivable(b, drivers))).collect();
    tracing::debug!(target: "adapt", "root disk buses, in order of preference: {verdicts:?}");
    let summary = summary(drivers);
    let first = |want: fn(&Drivable) -> bool| verdicts.iter().find(|(_, d)| want(d)).cloned();
    let (bus, drivable, reason) = if let Some((bus, d)) = first(|d| *d == Drivable::Yes) {
        let reason = format!(
            "the first bus the image's kernel and initrd can drive ({})",
            have(bus, drivers)
        );
        (bus, d, reason)
    } else if let Some((bus, d)) = first(|d| matches!(d, Drivable::Unknown(_))) {
        let Drivable::Unknown(unknown) = &d else {
            unreachable!()
        };
        let reason = format!(
            "no bus is known to work; {} may be built into the kernel (no embedded configuration or \
             modules.builtin says)",
            unknown.join(", ")
        );
        (bus, d, reason)
    } else {
        let d = verdicts[0].1.clone();
        (
            DiskBus::Virtio,
            d,
            "no bus the image's kernel and initrd can drive; virtio-blk, the default".to_owned(),
        )
    };
    Choice {
        disk: RootDisk { bus, reason },
        drivable,
        summary,
    }
}

/// The bus `--disk-bus` asked for, and whether `drivers` (if they could be read) can drive it.
pub fn forced(bus: DiskBus, drivers: Option<&Drivers>) -> Choice {
    let (drivable, summary) = match drivers {
        Some(drivers) => (self::drivable(bus, drivers), summary(drivers)),
        None => (Drivable::Unknown(Vec::new()), "unknown (not read)".to_owned()),
    };
    Choice {
        disk: RootDisk {
            bus,
            reason: format!("--disk-bus {}", bus.name()),
        },
        drivable,
        summary,
    }
}

/// virtio-blk, when the image's kernel and initrd could not be read (`error` says why).
pub fn unread(error: &str) -> Choice {
    Choice {
        disk: RootDisk {
            bus: DiskBus::Virtio,
            reason: format!("the default: what the image's kernel and initrd can drive is unknown ({error})"),
        },
        drivable: Drivable::Unknown(Vec::new()),
        summary: format!("unknown ({error})"),
    }
}

/// How `bus`'s drivers are there: `virtio_blk in the initrd, virtio_mmio in the initrd`.
fn have(bus: DiskBus, drivers: &Drivers) -> String {
    needs(bus)
        .iter()
        .map(|d| format!("{} {}", d.module, drivers.support(d)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::image::ikconfig::KernelConfig;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The busybox fixtures: Debian's kernel, no embedded configuration, virtio in the initrd.
    fn busybox() -> Drivers {
        Drivers {
            initrd: set(&["virtio_mmio", "virtio_blk", "ext4", "jbd2"]),
            ..Drivers::default()
        }
    }

    /// The board-specific Debian initrd: SD card and USB drivers, Debian's modules.builtin.
    fn board_initrd() -> Drivers {
        Drivers {
            initrd: set(&[
                "mmc_block",
                "dw_mmc_rockchip",
                "ext4",
                "usb_storage",
                "sd_mod",
                "xhci_pci",
                "xhci_hcd",
            ]),
            builtin: Some(set(&["pci_host_generic", "amba_pl011", "virtio", "virtio_ring"])),
            builtin_from: Some("the initrd".to_owned()),
            ..Drivers::default()
        }
    }

    #[test]
    fn virtio_modules_in_the_initrd_choose_virtio() {
        let choice = choose(&busybox());
        assert_eq!(choice.disk.bus, DiskBus::Virtio);
        assert_eq!(choice.drivable, Drivable::Yes);
        assert_eq!(
            choice.disk.reason,
            "the first bus the image's kernel and initrd can drive (virtio_blk in the initrd, virtio_mmio in the initrd)"
        );
        assert_eq!(choice.warning(), None);
    }

    #[test]
    fn an_initrd_for_the_board_with_usb_storage_chooses_usb() {
        let choice = choose(&board_initrd());
        assert_eq!(choice.disk.bus, DiskBus::Usb);
        assert_eq!(
            choice.summary,
            "virtio: no (virtio_blk, virtio_mmio missing); nvme: no (nvme, nvme_core missing); ahci: no \
             (ahci missing); usb: yes [read: modules.builtin from the initrd, 7 module(s) in the initrd]"
        );
    }

    #[test]
    fn a_stock_kernel_configuration_drives_virtio_with_nothing_in_the_initrd() {
        let config =
            KernelConfig::parse("CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_BLK_DEV_NVME=m\n");
        let drivers = Drivers {
            config: Some(config),
            ..Drivers::default()
        };
        let choice = choose(&drivers);
        assert_eq!(choice.disk.bus, DiskBus::Virtio);
        assert_eq!(
            choice.disk.reason,
            "the first bus the image's kernel and initrd can drive (virtio_blk built in (CONFIG), virtio_mmio built in (CONFIG))"
        );
    }

    #[test]
    fn nvme_as_a_module_in_the_initrd_is_chosen_when_virtio_is_missing() {
        let config =
            KernelConfig::parse("CONFIG_PCI_HOST_GENERIC=y\nCONFIG_BLK_DEV_NVME=m\nCONFIG_NVME_CORE=m\n");
        let drivers = Drivers {
            config: Some(config),
            initrd: set(&["nvme", "nvme_core"]),
            ..Drivers::default()
        };
        assert_eq!(choose(&drivers).disk.bus, DiskBus::Nvme);
    }

    #[test]
    fn no_drivable_bus_falls_back_to_virtio_and_warns() {
        let drivers = Drivers {
            initrd: set(&["ext4"]),
            builtin: Some(set(&["amba_pl011"])),
            builtin_from: Some("the initrd".to_owned()),
            ..Drivers::default()
        };
        let choice = choose(&drivers);
        assert_eq!(choice.disk.bus, DiskBus::Virtio);
        assert_eq!(
            choice.drivable,
            Drivable::Missing(vec!["virtio_blk", "virtio_mmio"])
        );
        let warning = choice.warning().unwrap();
        assert!(
            warning.starts_with(
                "the image's kernel and initrd cannot drive the root disk on virtio-blk (virtio-mmio) (missing: virtio_blk, virtio_mmio)"
            ),
            "{warning}"
        );
    }

    #[test]
    fn unknown_builtins_choose_the_first_bus_not_known_missing() {
        let choice = choose(&Drivers::default());
        assert_eq!(choice.disk.bus, DiskBus::Virtio);
        assert_eq!(
            choice.drivable,
            Drivable::Unknown(vec!["virtio_blk", "virtio_mmio"])
        );
        assert_eq!(choice.warning(), None);
    }

    #[test]
    fn a_forced_bus_says_so_and_whether_it_can_be_driven() {
        let choice = forced(DiskBus::Nvme, Some(&busybox()));
        assert_eq!(choice.disk.reason, "--disk-bus nvme");
        assert_eq!(
            choice.drivable,
            Drivable::Unknown(vec!["nvme", "nvme_core", "pci_host_generic"])
        );
        let choice = forced(DiskBus::Nvme, Some(&board_initrd()));
        assert_eq!(choice.drivable, Drivable::Missing(vec!["nvme", "nvme_core"]));
        assert!(choice.warning().is_some());
    }
}
