//! The load addresses a card's kernel is judged against: those of the U-Boot on the card.
//!
//! Each of `kernel_addr_r`, `ramdisk_addr_r` and `fdt_addr_r` is read from the default
//! environment of the image's own u-boot.itb (the U-Boot the SPL loads from the board's FIT
//! sector), else taken from the board profile's `[load_addresses]`, else the stock U-Boot's.

use std::fmt;

use super::board::Profile;
use super::bootloader::{fit_at, SECTOR};
use crate::image::load_layout::LoadAddresses;
use crate::image::uboot_env::DefaultEnv;

/// Where one load address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The default environment of the image's u-boot.itb, at this sector.
    ImageUBoot { sector: u64 },
    /// The board profile's `[load_addresses]`.
    BoardProfile { name: &'static str },
    /// The board's stock U-Boot (no u-boot.itb environment, no profile key).
    Stock { name: &'static str },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::ImageUBoot { sector } => {
                write!(
                    f,
                    "the default environment of the image's u-boot.itb (sector {sector})"
                )
            }
            Source::BoardProfile { name } => write!(f, "board profile {name}'s [load_addresses]"),
            Source::Stock { name } => write!(f, "the stock {name} U-Boot"),
        }
    }
}

/// The addresses a kernel is judged against, and where each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses.
    pub addresses: LoadAddresses,
    /// Where `kernel_addr_r`, `ramdisk_addr_r` and `fdt_addr_r` came from, in that order.
    pub sources: [Source; 3],
    /// Why the image's u-boot.itb said nothing, when it did not though one is there.
    pub unread: Option<String>,
}

const NAMES: [&str; 3] = ["kernel_addr_r", "ramdisk_addr_r", "fdt_addr_r"];

impl Resolved {
    /// The addresses for an image whose bootloader area (from sector 0) is `area`.
    pub fn of(area: &[u8], profile: &Profile) -> Resolved {
        let itb_at = (profile.itb_sector * SECTOR) as usize;
        let env = fit_at(area, itb_at).then(|| DefaultEnv::find(&area[itb_at..]));
        let unread = match &env {
            Some(None) => Some(
                "the image's u-boot.itb holds no default environment with kernel_addr_r (a compressed U-Boot?)"
                    .to_owned(),
            ),
            _ => None,
        };
        let env = env.flatten();
        let board = profile.board_load_addresses;
        let stock = profile.stock_load_addresses;
        let from_image = Source::ImageUBoot {
            sector: profile.itb_sector,
        };
        let from_board = Source::BoardProfile { name: profile.name };
        let from_stock = Source::Stock { name: "nanopi-r2s" };
        let pick = |name: &str, board: Option<u64>, stock: Option<u64>| -> (Option<u64>, Source) {
            if let Some(value) = env.as_ref().and_then(|env| env.address(name).ok()) {
                return (Some(value), from_image);
            }
            match board {
                Some(value) => (Some(value), from_board),
                None => (stock, from_stock),
            }
        };
        let (kernel, kernel_from) = pick(NAMES[0], board.kernel_addr_r, Some(stock.kernel_addr_r));
        let (ramdisk, ramdisk_from) = pick(NAMES[1], board.ramdisk_addr_r, Some(stock.ramdisk_addr_r));
        let (fdt, fdt_from) = pick(NAMES[2], board.fdt_addr_r, stock.fdt_addr_r);
        Resolved {
            addresses: LoadAddresses {
                kernel_addr_r: kernel.unwrap_or(stock.kernel_addr_r),
                ramdisk_addr_r: ramdisk.unwrap_or(stock.ramdisk_addr_r),
                fdt_addr_r: fdt,
            },
            sources: [kernel_from, ramdisk_from, fdt_from],
            unread,
        }
    }

    /// Where the addresses came from, in a sentence: one source for all three, else each's.
    pub fn describe(&self) -> String {
        let mut text = if self.sources.iter().all(|s| *s == self.sources[0]) {
            format!("load addresses from {}", self.sources[0])
        } else {
            let each: Vec<String> = NAMES
                .iter()
                .zip(&self.sources)
                .map(|(name, source)| format!("{name} from {source}"))
                .collect();
            each.join(", ")
        };
        if let Some(unread) = &self.unread {
            text.push_str(&format!(" ({unread})"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::LoadAddressKeys;
    use crate::inspect::Board;

    /// A bootloader area with a FIT at sector 16384 whose U-Boot has `env` as its default
    /// environment.
    fn area_with_itb(env: &[&str]) -> Vec<u8> {
        let mut area = vec![0u8; 16384 * 512];
        area.extend_from_slice(&crate::inspect::fdt::tests::build(
            &[("description", b"FIT\0")],
            &["images", "configurations"],
        ));
        area.extend_from_slice(b"\0rodata\0");
        for entry in env {
            area.extend_from_slice(entry.as_bytes());
            area.push(0);
        }
        area.extend_from_slice(&[0; 16]);
        area
    }

    fn r2s() -> Profile {
        *Board::NanopiR2s.profile()
    }

    #[test]
    fn the_image_u_boot_says_first() {
        let area = area_with_itb(&[
            "kernel_addr_r=0x02080000",
            "ramdisk_addr_r=0x08000000",
            "fdt_addr_r=0x01f00000",
        ]);
        let mut profile = r2s();
        profile.board_load_addresses.ramdisk_addr_r = Some(0x0700_0000);
        let resolved = Resolved::of(&area, &profile);
        assert_eq!(resolved.addresses.ramdisk_addr_r, 0x0800_0000);
        assert_eq!(
            resolved.describe(),
            "load addresses from the default environment of the image's u-boot.itb (sector 16384)"
        );
    }

    #[test]
    fn the_profile_says_what_the_image_u_boot_does_not() {
        let area = area_with_itb(&["kernel_addr_r=0x02080000", "bootdelay=2"]);
        let mut profile = r2s();
        profile.board_load_addresses = LoadAddressKeys {
            kernel_addr_r: Some(0x0300_0000),
            ramdisk_addr_r: Some(0x0800_0000),
            fdt_addr_r: None,
        };
        let resolved = Resolved::of(&area, &profile);
        assert_eq!(
            resolved.addresses,
            LoadAddresses {
                kernel_addr_r: 0x0208_0000,
                ramdisk_addr_r: 0x0800_0000,
                fdt_addr_r: Some(0x01f0_0000),
            }
        );
        assert_eq!(
            resolved.describe(),
            "kernel_addr_r from the default environment of the image's u-boot.itb (sector 16384), \
             ramdisk_addr_r from board profile nanopi-r2s's [load_addresses], fdt_addr_r from the stock \
             nanopi-r2s U-Boot"
        );
    }

    #[test]
    fn without_a_u_boot_itb_the_stock_numbers_count() {
        let resolved = Resolved::of(&vec![0u8; 32768 * 512], &r2s());
        assert_eq!(resolved.addresses, r2s().stock_load_addresses);
        assert_eq!(
            resolved.describe(),
            "load addresses from the stock nanopi-r2s U-Boot"
        );
    }

    #[test]
    fn a_u_boot_itb_without_an_environment_is_said() {
        let resolved = Resolved::of(&area_with_itb(&[]), &r2s());
        assert_eq!(resolved.addresses, r2s().stock_load_addresses);
        assert_eq!(
            resolved.describe(),
            "load addresses from the stock nanopi-r2s U-Boot (the image's u-boot.itb holds no default \
             environment with kernel_addr_r (a compressed U-Boot?))"
        );
    }

    #[test]
    fn a_non_numeric_value_in_the_image_u_boot_falls_back() {
        let area = area_with_itb(&["kernel_addr_r=${loadaddr}", "ramdisk_addr_r=0x08000000"]);
        let resolved = Resolved::of(&area, &r2s());
        assert_eq!(resolved.addresses.kernel_addr_r, 0x0208_0000);
        assert_eq!(resolved.sources[0], Source::Stock { name: "nanopi-r2s" });
        assert_eq!(resolved.addresses.ramdisk_addr_r, 0x0800_0000);
    }
}
