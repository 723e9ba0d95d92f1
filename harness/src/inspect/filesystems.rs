//! The filesystems NixOS finds by label: the root, which stage 1 waits for (the image's own
//! root device, [`RootDevice`]: `NIXOS_SD` unless the image names another), and `NIXOS_BOOT`
//! (the boot files, where the layout has one).

use super::report::{Check, CheckName};
use super::Probed;
use crate::image::root_device::RootDevice;
use crate::image::FsKind;
/// The boot filesystem's label, in layouts with a separate boot partition.
pub const BOOT_LABEL: &str = "NIXOS_BOOT";

fn labelled<'a>(parts: &'a [Probed], label: &str) -> Vec<&'a Probed> {
    parts.iter().filter(|p| p.fs.label() == Some(label)).collect()
}

fn list(parts: &[&Probed]) -> String {
    parts
        .iter()
        .map(|p| p.describe())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn location(label: &str) -> String {
    format!("filesystem labels of all partitions (LABEL={label})")
}

/// Exactly one filesystem carries the label of the root device `root` (the default entry's);
/// a root named otherwise (PARTUUID, a device path) has no label to check.
pub fn check_root_label(parts: &[Probed], root: &RootDevice) -> Check {
    let Some(label) = root.label() else {
        return Check::pass(
            CheckName::RootLabel,
            "filesystem labels of all partitions",
            format!("the root device is {}: no label to check", root.describe()),
        );
    };
    let found = labelled(parts, &label);
    match found.as_slice() {
        [one] if root.unread_fstab.is_some() => Check::warn(
            CheckName::RootLabel,
            location(&label),
            format!(
                "{label} is {}; the root device is taken as {}",
                one.describe(),
                root.describe()
            ),
            "check the root filesystem's /etc/fstab by hand: the root it names may be another",
        ),
        [one] => Check::pass(
            CheckName::RootLabel,
            location(&label),
            format!("{label} is {}", one.describe()),
        ),
        [] => Check::fail(
            CheckName::RootLabel,
            location(&label),
            format!(
                "no filesystem is labelled {label} (labels: {})",
                all_labels(parts)
            ),
            format!(
                "label the root filesystem: `e2label /dev/sdX2 {label}`; stage 1 waits for \
                 /dev/disk/by-label/{label} (named by {})",
                root.source
            ),
        ),
        many => Check::fail(
            CheckName::RootLabel,
            location(&label),
            format!("{} filesystems are labelled {label}: {}", many.len(), list(many)),
            format!(
                "relabel all but the root filesystem; /dev/disk/by-label/{label} points at whichever udev \
                 sees last"
            ),
        ),
    }
}

/// At most one filesystem is labelled `NIXOS_BOOT`, and a layout with a boot partition of its
/// own (`boot_partition`, where extlinux.conf was found, when it is not the root filesystem)
/// labels it so, because NixOS's R2S configurations mount `/boot` by that label. Layouts that
/// keep `/boot` on the root filesystem need none.
pub fn check_boot_label(parts: &[Probed], boot_partition: Option<u32>, root: &RootDevice) -> Check {
    let found = labelled(parts, BOOT_LABEL);
    let separate = boot_partition
        .and_then(|index| parts.iter().find(|p| p.partition.index == index))
        .filter(|p| root.is(&p.partition, &p.fs) != Some(true));
    match (found.as_slice(), separate) {
        ([], None) => Check::pass(
            CheckName::BootLabel,
            location(BOOT_LABEL),
            format!("no {BOOT_LABEL}: this layout keeps /boot on the root filesystem"),
        ),
        ([], Some(boot)) => Check::warn(
            CheckName::BootLabel,
            location(BOOT_LABEL),
            format!(
                "extlinux.conf is on {}, a boot partition of its own, but no filesystem is labelled \
                 {BOOT_LABEL}",
                boot.describe()
            ),
            format!(
                "label it {BOOT_LABEL} (`e2label` or `fatlabel`) if the NixOS configuration mounts /boot from \
                 /dev/disk/by-label/{BOOT_LABEL}, as the R2S write-up's does"
            ),
        ),
        ([one], _) => Check::pass(
            CheckName::BootLabel,
            location(BOOT_LABEL),
            format!("{BOOT_LABEL} is {}", one.describe()),
        ),
        (many, _) => Check::fail(
            CheckName::BootLabel,
            location(BOOT_LABEL),
            format!("{} filesystems are labelled {BOOT_LABEL}: {}", many.len(), list(many)),
            format!(
                "relabel all but the boot filesystem; NixOS mounts /boot from /dev/disk/by-label/{BOOT_LABEL}, \
                 which points at whichever udev sees last"
            ),
        ),
    }
}

fn all_labels(parts: &[Probed]) -> String {
    let labels: Vec<String> = parts
        .iter()
        .map(|p| match p.fs.label() {
            Some(label) => format!("{} {label:?}", p.partition.index),
            None => format!("{} none", p.partition.index),
        })
        .collect();
    if labels.is_empty() {
        "no partitions".to_owned()
    } else {
        labels.join(", ")
    }
}

/// The root filesystem (the first partition that is the root device `root`) is ext4; f2fs is
/// a warning, anything else fails.
pub fn check_root_filesystem(parts: &[Probed], root_device: &RootDevice) -> Check {
    let location = match root_device.label() {
        Some(label) => format!("superblock of the partition labelled {label}"),
        None => format!("superblock of the root partition ({})", root_device.device),
    };
    let Some(root) = parts
        .iter()
        .find(|p| root_device.is(&p.partition, &p.fs) == Some(true))
    else {
        return Check::warn(
            CheckName::RootFilesystem,
            location,
            format!(
                "not checked: no filesystem is the root device {}",
                root_device.describe()
            ),
            "see root-label",
        );
    };
    match &root.fs {
        FsKind::Ext4 { .. } => Check::pass(
            CheckName::RootFilesystem,
            location,
            format!("{} is ext4", root.describe()),
        ),
        FsKind::F2fs { .. } => Check::warn(
            CheckName::RootFilesystem,
            location,
            format!("{} is f2fs", root.describe()),
            "use ext4: on f2fs, Nix's SQLite database has failed with \"disk I/O error\"",
        ),
        other => Check::fail(
            CheckName::RootFilesystem,
            location,
            format!("{} holds {other}, not ext4", root.describe()),
            format!(
                "format the root partition as ext4 (`mkfs.ext4 -L {}`)",
                root_device.label().as_deref().unwrap_or("NIXOS_SD")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::root_device::{RootSource, DEFAULT_ROOT_LABEL as ROOT_LABEL};
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::{ext4, probed};

    fn nixos_sd() -> RootDevice {
        RootDevice::default_label()
    }

    fn part(index: u32, fs: FsKind) -> Probed {
        let first = 32768 * u64::from(index);
        probed(index, first, first + 2047, fs)
    }

    #[test]
    fn one_root_and_one_boot_label_pass() {
        let parts = [ext4(1, BOOT_LABEL), ext4(2, ROOT_LABEL)];
        assert_eq!(check_root_label(&parts, &nixos_sd()).status, Status::Pass);
        assert_eq!(
            check_boot_label(&parts, Some(1), &nixos_sd()).status,
            Status::Pass
        );
        assert_eq!(check_root_filesystem(&parts, &nixos_sd()).status, Status::Pass);
    }

    #[test]
    fn a_missing_root_label_fails_listing_the_labels() {
        let parts = [ext4(1, BOOT_LABEL), ext4(2, "nixos")];
        let check = check_root_label(&parts, &nixos_sd());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "no filesystem is labelled NIXOS_SD (labels: 1 \"NIXOS_BOOT\", 2 \"nixos\")"
        );
    }

    #[test]
    fn the_root_label_is_the_image_s_own_root_device_s() {
        let usb = RootDevice::new(
            "/dev/disk/by-label/NIXOS_SD_USB".to_owned(),
            RootSource::InitrdFstab,
        );
        let parts = [ext4(1, BOOT_LABEL), ext4(2, "NIXOS_SD_USB")];
        let check = check_root_label(&parts, &usb);
        assert_eq!(check.status, Status::Pass);
        assert_eq!(
            check.location,
            "filesystem labels of all partitions (LABEL=NIXOS_SD_USB)"
        );
        assert_eq!(check_root_filesystem(&parts, &usb).status, Status::Pass);
        let check = check_root_label(&[ext4(1, BOOT_LABEL), ext4(2, ROOT_LABEL)], &usb);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.hint.as_deref(),
            Some(
                "label the root filesystem: `e2label /dev/sdX2 NIXOS_SD_USB`; stage 1 waits for \
                 /dev/disk/by-label/NIXOS_SD_USB (named by the initrd's fstab (systemd stage 1))"
            )
        );
    }

    #[test]
    fn a_duplicate_root_label_fails() {
        let parts = [ext4(2, ROOT_LABEL), ext4(3, ROOT_LABEL)];
        assert_eq!(check_root_label(&parts, &nixos_sd()).status, Status::Fail);
    }

    #[test]
    fn a_duplicate_boot_label_fails() {
        let parts = [ext4(1, BOOT_LABEL), ext4(3, BOOT_LABEL)];
        assert_eq!(
            check_boot_label(&parts, Some(1), &nixos_sd()).status,
            Status::Fail
        );
    }

    #[test]
    fn no_boot_label_passes_when_boot_files_are_on_the_root_filesystem() {
        let check = check_boot_label(&[ext4(1, "FIRMWARE"), ext4(2, ROOT_LABEL)], Some(2), &nixos_sd());
        assert_eq!(check.status, Status::Pass);
        assert_eq!(
            check.message,
            "no NIXOS_BOOT: this layout keeps /boot on the root filesystem"
        );
    }

    #[test]
    fn an_unlabelled_boot_partition_of_its_own_is_a_warning() {
        let check = check_boot_label(&[ext4(1, "BOOT"), ext4(2, ROOT_LABEL)], Some(1), &nixos_sd());
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.message,
            "extlinux.conf is on partition 1 (ext4 labelled \"BOOT\", sectors 32768–34815), a boot partition of \
             its own, but no filesystem is labelled NIXOS_BOOT"
        );
    }

    #[test]
    fn f2fs_root_warns_and_vfat_root_fails() {
        let f2fs = [part(
            2,
            FsKind::F2fs {
                label: Some(ROOT_LABEL.to_owned()),
            },
        )];
        assert_eq!(check_root_filesystem(&f2fs, &nixos_sd()).status, Status::Warn);
        let vfat = [part(
            2,
            FsKind::Vfat {
                label: Some(ROOT_LABEL.to_owned()),
            },
        )];
        assert_eq!(check_root_filesystem(&vfat, &nixos_sd()).status, Status::Fail);
    }
}
