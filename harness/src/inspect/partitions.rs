//! The partition table, and the sectors it must leave to the bootloader.

use super::board::Profile;
use super::bootloader::SECTOR;
use super::report::{Check, CheckName};
use super::Probed;
use crate::image::{Partition, Scheme, Table};

/// The table was parsed; it fails only when it holds no partition at all.
pub fn check_table(table: &Table) -> Check {
    let location = match table.scheme {
        Scheme::Gpt => "sectors 0–33 (protective MBR, GPT header and entries) and the backup GPT",
        Scheme::Mbr => "sector 0 (MBR) and any extended partition chain",
    };
    let found = format!(
        "{} with {} partition{}, {}-byte sectors",
        table.scheme,
        table.partitions.len(),
        if table.partitions.len() == 1 { "" } else { "s" },
        table.sector_size
    );
    if table.partitions.is_empty() {
        return Check::fail(
            CheckName::PartitionTable,
            location,
            format!("{found}: nothing for U-Boot to boot from"),
            "partition the card: NIXOS_BOOT from sector 32768, then NIXOS_SD",
        );
    }
    let overlaps = overlapping_pairs(table);
    if !overlaps.is_empty() {
        return Check::fail(
            CheckName::PartitionTable,
            location,
            format!("{found}, but {}", overlaps.join("; ")),
            "repartition so that no two partitions share sectors: writing one corrupts the other",
        );
    }
    Check::pass(CheckName::PartitionTable, location, found)
}

/// `partition 1 (sectors a–b) overlaps partition 2 (sectors c–d)` for each overlapping pair.
fn overlapping_pairs(table: &Table) -> Vec<String> {
    let sectors = |p: &Partition| {
        let bytes = p.byte_range();
        format!("sectors {}–{}", bytes.start / SECTOR, bytes.end / SECTOR - 1)
    };
    let mut pairs = Vec::new();
    for (i, a) in table.partitions.iter().enumerate() {
        for b in &table.partitions[i + 1..] {
            let (ra, rb) = (a.byte_range(), b.byte_range());
            if ra.start < rb.end && rb.start < ra.end {
                pairs.push(format!(
                    "partition {} ({}) overlaps partition {} ({})",
                    a.index,
                    sectors(a),
                    b.index,
                    sectors(b)
                ));
            }
        }
    }
    pairs
}

/// No partition may overlap the sectors from the idbloader up to the board's first free
/// sector: the boot ROM and the SPL read the bootloader there whatever the table says.
pub fn check_bootloader_area(parts: &[Probed], profile: &Profile) -> Check {
    let area = profile.idbloader_sector * SECTOR..profile.first_free_sector * SECTOR;
    let location = format!(
        "sectors {}–{} (idbloader at {}, u-boot.itb at {})",
        profile.idbloader_sector,
        profile.first_free_sector - 1,
        profile.idbloader_sector,
        profile.itb_sector
    );
    let overlapping: Vec<String> = parts
        .iter()
        .filter(|p| {
            let range = p.partition.byte_range();
            range.start < area.end && area.start < range.end
        })
        .map(|p| {
            let holds = [
                (profile.idbloader_sector, "idbloader.img"),
                (profile.itb_sector, "u-boot.itb"),
            ]
            .iter()
            .filter(|(sector, _)| p.partition.byte_range().contains(&(sector * SECTOR)))
            .map(|(sector, file)| format!(" where {file} goes (sector {sector})"))
            .collect::<String>();
            format!("{}{holds}", p.describe())
        })
        .collect();
    if overlapping.is_empty() {
        return Check::pass(
            CheckName::BootloaderArea,
            location,
            format!("no partition starts before sector {}", profile.first_free_sector),
        );
    }
    Check::fail(
        CheckName::BootloaderArea,
        location,
        format!("overlapped by {}", overlapping.join("; ")),
        format!(
            "start the first partition at sector {} (16 MiB) or later (fdisk: type it as the first \
             sector; nixpkgs sd-image: sdImage.firmwarePartitionOffset = 16 or more)",
            profile.first_free_sector
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{FsKind, Scheme};
    use crate::inspect::board::Board;
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::probed;

    fn ext4(index: u32, first_lba: u64, last_lba: u64, label: &str) -> Probed {
        let label = Some(label.to_owned());
        probed(index, first_lba, last_lba, FsKind::Ext4 { label })
    }

    #[test]
    fn partitions_from_sector_32768_pass() {
        let parts = [
            ext4(1, 32768, 1081343, "NIXOS_BOOT"),
            ext4(2, 1081344, 2000000, "NIXOS_SD"),
        ];
        let check = check_bootloader_area(&parts, Board::NanopiR2s.profile());
        assert_eq!(check.status, Status::Pass);
    }

    #[test]
    fn fdisk_default_first_sector_overlaps_and_names_u_boot_itb() {
        let parts = [ext4(1, 2048, 1050623, "NIXOS_BOOT")];
        let check = check_bootloader_area(&parts, Board::NanopiR2s.profile());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "overlapped by partition 1 (ext4 labelled \"NIXOS_BOOT\", sectors 2048–1050623) where \
             u-boot.itb goes (sector 16384)"
        );
    }

    #[test]
    fn a_partition_ending_at_sector_63_is_outside_the_area() {
        let parts = [ext4(1, 34, 63, "tiny")];
        assert_eq!(
            check_bootloader_area(&parts, Board::NanopiR2s.profile()).status,
            Status::Pass
        );
    }

    #[test]
    fn overlapping_partitions_fail() {
        let parts = [
            ext4(1, 32768, 99999, "NIXOS_BOOT"),
            ext4(2, 90000, 200000, "NIXOS_SD"),
        ];
        let table = Table {
            image: "x.img".into(),
            scheme: Scheme::Mbr,
            sector_size: 512,
            image_len: 1 << 30,
            partitions: parts.iter().map(|p| p.partition.clone()).collect(),
        };
        let check = check_table(&table);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "MBR with 2 partitions, 512-byte sectors, but partition 1 (sectors 32768–99999) overlaps \
             partition 2 (sectors 90000–200000)"
        );
    }

    #[test]
    fn an_empty_table_fails() {
        let table = Table {
            image: "x.img".into(),
            scheme: Scheme::Mbr,
            sector_size: 512,
            image_len: 1 << 20,
            partitions: Vec::new(),
        };
        let check = check_table(&table);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "MBR with 0 partitions, 512-byte sectors: nothing for U-Boot to boot from"
        );
    }
}
