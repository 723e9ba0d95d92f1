//! The QEMU arguments that attach the disks: the image, on the bus its kernel and initrd can
//! drive ([`DiskBus`]), and the adaptation shim, where U-Boot's distro boot finds it first.
//!
//! U-Boot's `qemu_arm64` build scans `usb0 scsi0 virtio0 nvme0` in that order. The shim is a
//! virtio-mmio disk attached last, which makes it `virtio 0`, on every bus but AHCI: U-Boot
//! finds no USB controller on qemu-xhci (`No working controllers found`) and scans NVMe after
//! virtio. On AHCI the image itself would be `scsi 0` and be booted before any virtio disk, so
//! there the shim is the bus's first device (SATA port 0) and the image the second.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::qemu_devices::{DiskBus, RootDisk};

/// The transcript's note saying where the image is attached and why.
pub fn note(disk: &RootDisk) -> String {
    let reason = if disk.reason.is_empty() {
        "the default"
    } else {
        &disk.reason
    };
    format!("root disk on {}: {reason}", disk.bus)
}

/// `-drive` and `-device` arguments for qcow2 `disks`: the image first, then the shim (if
/// any) last, as [`super::qemu::QemuTarget::args`] takes them.
pub fn disk_args(bus: DiskBus, disks: &[PathBuf]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        let mut drive = OsString::from(format!("if=none,id=disk{i},format=qcow2,file="));
        drive.push(disk);
        args.push("-drive".into());
        args.push(drive);
    }
    let mut device = |spec: String| {
        args.push("-device".into());
        args.push(spec.into());
    };
    let shim = (disks.len() > 1).then_some(disks.len() - 1);
    // Disks between the image and the shim (none today) stay on virtio-mmio.
    let middle = 1..shim.unwrap_or(disks.len());
    match bus {
        DiskBus::Virtio => {
            for i in 0..disks.len() {
                device(format!("virtio-blk-device,drive=disk{i}"));
            }
        }
        DiskBus::Nvme => {
            device("nvme,drive=disk0,serial=r2s-disk0".to_owned());
            for i in middle.chain(shim) {
                device(format!("virtio-blk-device,drive=disk{i}"));
            }
        }
        DiskBus::Ahci => {
            device("ich9-ahci,id=ahci".to_owned());
            if let Some(shim) = shim {
                device(format!("ide-hd,drive=disk{shim},bus=ahci.0"));
            }
            device(format!(
                "ide-hd,drive=disk0,bus=ahci.{}",
                usize::from(shim.is_some())
            ));
            for i in middle {
                device(format!("virtio-blk-device,drive=disk{i}"));
            }
        }
        DiskBus::Usb => {
            device("qemu-xhci,id=xhci".to_owned());
            device("usb-storage,bus=xhci.0,port=1,drive=disk0".to_owned());
            for i in middle.chain(shim) {
                device(format!("virtio-blk-device,drive=disk{i}"));
            }
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(bus: DiskBus, disks: usize) -> Vec<String> {
        let disks: Vec<PathBuf> = (0..disks).map(|i| format!("/d/{i}.qcow2").into()).collect();
        disk_args(bus, &disks)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .filter(|a| a != "-drive" && a != "-device" && !a.starts_with("if=none"))
            .collect()
    }

    #[test]
    fn virtio_attaches_every_disk_on_virtio_mmio_as_before() {
        assert_eq!(
            shown(DiskBus::Virtio, 2),
            ["virtio-blk-device,drive=disk0", "virtio-blk-device,drive=disk1"]
        );
    }

    #[test]
    fn nvme_keeps_the_shim_on_virtio_where_u_boot_finds_it() {
        assert_eq!(
            shown(DiskBus::Nvme, 2),
            [
                "nvme,drive=disk0,serial=r2s-disk0",
                "virtio-blk-device,drive=disk1"
            ]
        );
        assert_eq!(shown(DiskBus::Nvme, 1), ["nvme,drive=disk0,serial=r2s-disk0"]);
    }

    #[test]
    fn ahci_puts_the_shim_first_on_the_images_bus() {
        assert_eq!(
            shown(DiskBus::Ahci, 2),
            [
                "ich9-ahci,id=ahci",
                "ide-hd,drive=disk1,bus=ahci.0",
                "ide-hd,drive=disk0,bus=ahci.1"
            ]
        );
        assert_eq!(
            shown(DiskBus::Ahci, 1),
            ["ich9-ahci,id=ahci", "ide-hd,drive=disk0,bus=ahci.0"]
        );
    }

    #[test]
    fn usb_keeps_the_shim_on_virtio_where_u_boot_finds_it() {
        assert_eq!(
            shown(DiskBus::Usb, 2),
            [
                "qemu-xhci,id=xhci",
                "usb-storage,bus=xhci.0,port=1,drive=disk0",
                "virtio-blk-device,drive=disk1"
            ]
        );
    }
}
