//! The bootloader in the raw sectors before the first partition: the RK3328 idbloader
//! (TPL/SPL) where the boot ROM looks and the U-Boot FIT where the SPL looks.

use super::board::Profile;
use super::fdt;
use super::report::{Check, CheckName};
use super::Probed;

/// 512-byte sectors, as the boot ROM and the SPL count them.
pub const SECTOR: u64 = 512;
/// The first four bytes of an RK3328 idbloader: its V1 header, RC4-scrambled.
pub const IDBLOADER_MAGIC: [u8; 4] = [0x3b, 0x8c, 0xdc, 0xfc];
/// Where the TPL's plaintext `RK32` sits in an RK3328 idbloader.
pub const IDBLOADER_RK32_OFFSET: usize = 0x800;

/// Whether an RK3328 idbloader starts at `at` in `area`.
pub fn idbloader_at(area: &[u8], at: usize) -> bool {
    area.get(at..at + 4) == Some(&IDBLOADER_MAGIC)
        && area.get(at + IDBLOADER_RK32_OFFSET..at + IDBLOADER_RK32_OFFSET + 4) == Some(b"RK32")
}

/// Whether a U-Boot FIT (a device tree with an `images` node) starts at `at` in `area`.
pub fn fit_at(area: &[u8], at: usize) -> bool {
    area.get(at..)
        .filter(|rest| fdt::has_magic(rest))
        .and_then(|rest| fdt::parse(rest).ok())
        .is_some_and(|dt| dt.children.iter().any(|c| c == "images"))
}

/// The sectors of `area` where `found` says the thing starts, except `expected`.
fn other_sectors(area: &[u8], expected: u64, found: impl Fn(&[u8], usize) -> bool) -> Vec<u64> {
    (0..area.len() as u64 / SECTOR)
        .filter(|s| *s != expected && found(area, (*s * SECTOR) as usize))
        .collect()
}

/// The partition holding 512-byte sector `sector`, if any.
fn covering(parts: &[Probed], sector: u64) -> Option<&Probed> {
    let byte = sector * SECTOR;
    parts.iter().find(|p| p.partition.byte_range().contains(&byte))
}

/// What one bootloader piece is and how to tell it.
struct Piece<'a> {
    name: CheckName,
    what: &'a str,
    file: &'a str,
    sector: u64,
    magic: &'a str,
    found: fn(&[u8], usize) -> bool,
}

/// Checks the idbloader: `area` is the image from sector 0 up to the board's first free sector
/// (shorter if the image is); `parts` are the image's partitions.
pub fn check_idbloader(area: &[u8], parts: &[Probed], profile: &Profile) -> Check {
    check(
        area,
        parts,
        Piece {
            name: CheckName::Idbloader,
            what: "RK3328 TPL/SPL",
            file: "idbloader.img",
            sector: profile.idbloader_sector,
            magic: "3b 8c dc fc, RK32 at +0x800",
            found: idbloader_at,
        },
    )
}

/// Checks the U-Boot FIT (u-boot.itb); arguments as for [`check_idbloader`].
pub fn check_u_boot_itb(area: &[u8], parts: &[Probed], profile: &Profile) -> Check {
    check(
        area,
        parts,
        Piece {
            name: CheckName::UBootItb,
            what: "U-Boot FIT image",
            file: "u-boot.itb",
            sector: profile.itb_sector,
            magic: "d0 0d fe ed with an /images node",
            found: fit_at,
        },
    )
}

fn check(area: &[u8], parts: &[Probed], piece: Piece<'_>) -> Check {
    let location = format!("sector {} ({})", piece.sector, piece.magic);
    let dd = format!(
        "write it with `dd if={} of=/dev/sdX seek={} conv=notrunc,fsync` (512-byte sectors)",
        piece.file, piece.sector
    );
    let present = (piece.found)(area, (piece.sector * SECTOR) as usize);
    let inside = covering(parts, piece.sector);
    match (present, inside) {
        (true, None) => Check::pass(
            piece.name,
            location,
            format!("{} ({}) is at sector {}", piece.file, piece.what, piece.sector),
        ),
        (true, Some(part)) => Check::warn(
            piece.name,
            location,
            format!(
                "{} is at sector {}, but inside {}: writing to that filesystem can destroy it",
                piece.file,
                piece.sector,
                part.describe()
            ),
            "move the partition out of the bootloader area (see bootloader-area)",
        ),
        (false, Some(part)) => Check::fail(
            piece.name,
            location,
            format!(
                "no {} at sector {}: it lies inside {}{}, whose filesystem has overwritten it",
                piece.file,
                piece.sector,
                part.describe(),
                if part.partition.first_lba * part.partition.sector_size == piece.sector * SECTOR {
                    " which starts right there"
                } else {
                    ""
                }
            ),
            format!(
                "move the partition out of the bootloader area, then {dd}; U-Boot never starts otherwise"
            ),
        ),
        (false, None) => {
            let elsewhere = other_sectors(area, piece.sector, piece.found);
            match elsewhere.first() {
                Some(sector) => Check::fail(
                    piece.name,
                    location,
                    format!(
                        "{} is misplaced: found at sector {sector}, not at sector {}",
                        piece.file, piece.sector
                    ),
                    format!("{dd}; the boot ROM and SPL only look at fixed sectors"),
                ),
                None => Check::fail(
                    piece.name,
                    location,
                    format!(
                        "no {} at sector {} (nor anywhere before sector {})",
                        piece.file,
                        piece.sector,
                        area.len() as u64 / SECTOR
                    ),
                    format!("{dd}; without it the board does not start"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::FsKind;
    use crate::inspect::board::Board;
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::probed;

    fn profile() -> &'static Profile {
        Board::NanopiR2s.profile()
    }

    fn area() -> Vec<u8> {
        vec![0u8; 32768 * 512]
    }

    fn put_idbloader(area: &mut [u8], sector: u64) {
        let at = (sector * SECTOR) as usize;
        area[at..at + 4].copy_from_slice(&IDBLOADER_MAGIC);
        area[at + 0x800..at + 0x804].copy_from_slice(b"RK32");
    }

    fn put_fit(area: &mut [u8], sector: u64) {
        let fit = fdt::tests::build(&[("description", b"FIT\0")], &["images", "configurations"]);
        let at = (sector * SECTOR) as usize;
        area[at..at + fit.len()].copy_from_slice(&fit);
    }

    fn vfat_at(first_lba: u64) -> Probed {
        let label = Some("FIRMWARE".to_owned());
        probed(1, first_lba, first_lba + 61439, FsKind::Vfat { label })
    }

    #[test]
    fn both_pieces_in_place_pass() {
        let mut area = area();
        put_idbloader(&mut area, 64);
        put_fit(&mut area, 16384);
        assert_eq!(check_idbloader(&area, &[], profile()).status, Status::Pass);
        assert_eq!(check_u_boot_itb(&area, &[], profile()).status, Status::Pass);
    }

    #[test]
    fn a_missing_idbloader_fails_with_the_dd_command() {
        let check = check_idbloader(&area(), &[], profile());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "no idbloader.img at sector 64 (nor anywhere before sector 32768)"
        );
        assert!(check
            .hint
            .unwrap()
            .contains("dd if=idbloader.img of=/dev/sdX seek=64"));
    }

    #[test]
    fn an_idbloader_written_at_another_sector_is_misplaced() {
        let mut area = area();
        put_idbloader(&mut area, 1);
        let check = check_idbloader(&area, &[], profile());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "idbloader.img is misplaced: found at sector 1, not at sector 64"
        );
    }

    #[test]
    fn the_scrambled_magic_without_rk32_is_no_idbloader() {
        let mut area = area();
        area[64 * 512..64 * 512 + 4].copy_from_slice(&IDBLOADER_MAGIC);
        assert_eq!(check_idbloader(&area, &[], profile()).status, Status::Fail);
    }

    #[test]
    fn a_bare_device_tree_is_no_fit() {
        let mut area = area();
        let dtb = fdt::tests::build(&[("compatible", b"x\0")], &["cpus"]);
        area[16384 * 512..16384 * 512 + dtb.len()].copy_from_slice(&dtb);
        assert_eq!(check_u_boot_itb(&area, &[], profile()).status, Status::Fail);
    }

    #[test]
    fn a_filesystem_over_the_fit_sector_has_overwritten_it() {
        let check = check_u_boot_itb(&area(), &[vfat_at(16384)], profile());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "no u-boot.itb at sector 16384: it lies inside partition 1 (vfat labelled \"FIRMWARE\", sectors \
             16384–77823) which starts right there, whose filesystem has overwritten it"
        );
    }

    #[test]
    fn a_fit_inside_a_partition_is_a_warning() {
        let mut area = area();
        put_fit(&mut area, 16384);
        let check = check_u_boot_itb(&area, &[vfat_at(2048)], profile());
        assert_eq!(check.status, Status::Warn);
    }

    #[test]
    fn a_short_image_is_judged_on_what_it_has() {
        let check = check_u_boot_itb(&[0u8; 1024], &[], profile());
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "no u-boot.itb at sector 16384 (nor anywhere before sector 2)"
        );
    }
}
