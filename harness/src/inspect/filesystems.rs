//! The filesystems NixOS finds by label: `NIXOS_SD` (the root, which stage 1 waits for) and
//! `NIXOS_BOOT` (the boot files, where the layout has one).

use super::report::{Check, CheckName};
use super::Probed;
use crate::image::FsKind;

/// The root filesystem's label, which NixOS's stage 1 mounts as `/`.
pub const ROOT_LABEL: &str = "NIXOS_SD";
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

/// Exactly one filesystem is labelled `NIXOS_SD`.
pub fn check_root_label(parts: &[Probed]) -> Check {
    let found = labelled(parts, ROOT_LABEL);
    match found.as_slice() {
        [one] => Check::pass(
            CheckName::RootLabel,
            location(ROOT_LABEL),
            format!("{ROOT_LABEL} is {}", one.describe()),
        ),
        [] => Check::fail(
            CheckName::RootLabel,
            location(ROOT_LABEL),
            format!(
                "no filesystem is labelled {ROOT_LABEL} (labels: {})",
                all_labels(parts)
            ),
            format!(
                "label the root filesystem: `e2label /dev/sdX2 {ROOT_LABEL}`; NixOS's stage 1 waits for \
                 /dev/disk/by-label/{ROOT_LABEL}"
            ),
        ),
        many => Check::fail(
            CheckName::RootLabel,
            location(ROOT_LABEL),
            format!(
                "{} filesystems are labelled {ROOT_LABEL}: {}",
                many.len(),
                list(many)
            ),
            format!(
                "relabel all but the root filesystem; /dev/disk/by-label/{ROOT_LABEL} points at whichever \
                 udev sees last"
            ),
        ),
    }
}

/// At most one filesystem is labelled `NIXOS_BOOT`, and a layout with a boot partition of its
/// own (`boot_partition`, where extlinux.conf was found, when it is not the root filesystem)
/// labels it so, because NixOS's R2S configurations mount `/boot` by that label. Layouts that
/// keep `/boot` on the root filesystem need none.
pub fn check_boot_label(parts: &[Probed], boot_partition: Option<u32>) -> Check {
    let found = labelled(parts, BOOT_LABEL);
    let separate = boot_partition
        .and_then(|index| parts.iter().find(|p| p.partition.index == index))
        .filter(|p| p.fs.label() != Some(ROOT_LABEL));
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

/// The root filesystem (the first `NIXOS_SD`) is ext4; f2fs is a warning, anything else fails.
pub fn check_root_filesystem(parts: &[Probed]) -> Check {
    let location = format!("superblock of the partition labelled {ROOT_LABEL}");
    let Some(root) = labelled(parts, ROOT_LABEL).into_iter().next() else {
        return Check::warn(
            CheckName::RootFilesystem,
            location,
            format!("not checked: no filesystem is labelled {ROOT_LABEL}"),
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
            "format the root partition as ext4 (`mkfs.ext4 -L NIXOS_SD`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::{ext4, probed};

    fn part(index: u32, fs: FsKind) -> Probed {
        let first = 32768 * u64::from(index);
        probed(index, first, first + 2047, fs)
    }

    #[test]
    fn one_root_and_one_boot_label_pass() {
        let parts = [ext4(1, BOOT_LABEL), ext4(2, ROOT_LABEL)];
        assert_eq!(check_root_label(&parts).status, Status::Pass);
        assert_eq!(check_boot_label(&parts, Some(1)).status, Status::Pass);
        assert_eq!(check_root_filesystem(&parts).status, Status::Pass);
    }

    #[test]
    fn a_missing_root_label_fails_listing_the_labels() {
        let parts = [ext4(1, BOOT_LABEL), ext4(2, "nixos")];
        let check = check_root_label(&parts);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "no filesystem is labelled NIXOS_SD (labels: 1 \"NIXOS_BOOT\", 2 \"nixos\")"
        );
    }

    #[test]
    fn a_duplicate_root_label_fails() {
        let parts = [ext4(2, ROOT_LABEL), ext4(3, ROOT_LABEL)];
        assert_eq!(check_root_label(&parts).status, Status::Fail);
    }

    #[test]
    fn a_duplicate_boot_label_fails() {
        let parts = [ext4(1, BOOT_LABEL), ext4(3, BOOT_LABEL)];
        assert_eq!(check_boot_label(&parts, Some(1)).status, Status::Fail);
    }

    #[test]
    fn no_boot_label_passes_when_boot_files_are_on_the_root_filesystem() {
        let check = check_boot_label(&[ext4(1, "FIRMWARE"), ext4(2, ROOT_LABEL)], Some(2));
        assert_eq!(check.status, Status::Pass);
        assert_eq!(
            check.message,
            "no NIXOS_BOOT: this layout keeps /boot on the root filesystem"
        );
    }

    #[test]
    fn an_unlabelled_boot_partition_of_its_own_is_a_warning() {
        let check = check_boot_label(&[ext4(1, "BOOT"), ext4(2, ROOT_LABEL)], Some(1));
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
        assert_eq!(check_root_filesystem(&f2fs).status, Status::Warn);
        let vfat = [part(
            2,
            FsKind::Vfat {
                label: Some(ROOT_LABEL.to_owned()),
            },
        )];
        assert_eq!(check_root_filesystem(&vfat).status, Status::Fail);
    }
}
