//! The devices of the harness's QEMU machine that the image side must agree on: the NICs' MAC
//! addresses, which an adapted kernel command line names ([`crate::adapt::append`]), and the bus
//! the image's disk is attached on, which its kernel and initrd must drive
//! ([`crate::adapt::disk_bus`]). The QEMU target attaches them ([`crate::targets::qemu_net`],
//! [`crate::targets::qemu_disk`]); the facts are here, below both.

use std::fmt;

/// The WAN NIC's MAC address (locally administered, QEMU's OUI).
pub const WAN_MAC: &str = "52:54:00:52:32:01";
/// The LAN NIC's MAC address.
pub const LAN_MAC: &str = "52:54:00:52:32:02";

/// The bus the image is attached on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DiskBus {
    /// virtio-blk on virtio-mmio, as the harness has always attached it.
    #[default]
    Virtio,
    /// An NVMe controller on PCIe.
    Nvme,
    /// A SATA disk on an ICH9 AHCI controller on PCIe.
    Ahci,
    /// usb-storage on a qemu-xhci controller on PCIe.
    Usb,
}

impl DiskBus {
    /// Every bus, in the order they are tried.
    pub const ALL: [DiskBus; 4] = [DiskBus::Virtio, DiskBus::Nvme, DiskBus::Ahci, DiskBus::Usb];

    /// The name `--disk-bus` takes.
    pub fn name(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Nvme => "nvme",
            DiskBus::Ahci => "ahci",
            DiskBus::Usb => "usb",
        }
    }

    /// What the guest sees, in words.
    pub fn describe(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio-blk (virtio-mmio)",
            DiskBus::Nvme => "NVMe (PCIe)",
            DiskBus::Ahci => "AHCI (SATA on PCIe)",
            DiskBus::Usb => "usb-storage on qemu-xhci (PCIe)",
        }
    }
}

impl fmt::Display for DiskBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Where the image is attached and why: part of [`crate::targets::QemuConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootDisk {
    pub bus: DiskBus,
    /// Why this bus, for the run's notes; not part of QEMU's arguments.
    pub reason: String,
}
