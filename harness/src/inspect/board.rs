//! What `inspect` expects of an image made for a board: where its boot ROM and SPL look, what
//! its U-Boot loads where, its console and its device tree.

use std::fmt;

use crate::board::LoadAddressKeys;
use crate::image::load_layout::LoadAddresses;

/// A board `harness inspect` can judge images for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Board {
    /// FriendlyElec NanoPi R2S (Rockchip RK3328).
    #[default]
    #[value(name = "nanopi-r2s")]
    NanopiR2s,
}

/// The facts about a board that the checks compare an image with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name, as `--board` takes it.
    pub name: &'static str,
    /// The sector the boot ROM loads the idbloader (TPL/SPL) from.
    pub idbloader_sector: u64,
    /// The sector the SPL loads the U-Boot FIT (u-boot.itb) from.
    pub itb_sector: u64,
    /// The first sector partitions may use: everything before it belongs to the bootloader
    /// except the partition table itself (sectors 0–63).
    pub first_free_sector: u64,
    /// The stock U-Boot's load addresses (`kernel_addr_r`, `ramdisk_addr_r`, `fdt_addr_r`):
    /// what a kernel is judged against when neither the image's own u-boot.itb nor the board
    /// profile says otherwise.
    pub stock_load_addresses: LoadAddresses,
    /// The load addresses the board profile sets (`[load_addresses]`), each preferred to the
    /// stock one when the image's u-boot.itb does not say.
    pub board_load_addresses: LoadAddressKeys,
    /// The device tree U-Boot picks from an `FDTDIR` (its `fdtfile` variable).
    pub fdtfile: &'static str,
    /// The `compatible` string the board's device tree must carry.
    pub compatible: &'static str,
    /// The console device on the board's debug UART.
    pub console_device: &'static str,
    /// The debug UART's baud rate.
    pub console_baud: u32,
}

/// RK3328: the boot ROM reads the idbloader at sector 64 and its SPL the FIT at sector 16384
/// (`CONFIG_SYS_MMCSD_RAW_MODE_U_BOOT_SECTOR` 0x4000); the load addresses are the
/// `ENV_MEM_LAYOUT_SETTINGS` of U-Boot's rk3328_common.h (as in Debian's 2023.01 build, which
/// has no `kernel_comp_addr_r` and so cannot boot a compressed kernel).
const NANOPI_R2S: Profile = Profile {
    name: "nanopi-r2s",
    idbloader_sector: 64,
    itb_sector: 16384,
    first_free_sector: 32768,
    stock_load_addresses: LoadAddresses {
        kernel_addr_r: 0x0208_0000,
        ramdisk_addr_r: 0x0600_0000,
        fdt_addr_r: Some(0x01f0_0000),
    },
    board_load_addresses: LoadAddressKeys {
        kernel_addr_r: None,
        ramdisk_addr_r: None,
        fdt_addr_r: None,
    },
    fdtfile: "rockchip/rk3328-nanopi-r2s.dtb",
    compatible: "friendlyarm,nanopi-r2s",
    console_device: "ttyS2",
    console_baud: 1_500_000,
};

impl Board {
    /// The board's facts.
    pub fn profile(self) -> &'static Profile {
        match self {
            Board::NanopiR2s => &NANOPI_R2S,
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.profile().name)
    }
}

impl Profile {
    /// The NanoPi R2S facts with the console and load addresses of a board profile (`harness
    /// run --board`'s TOML): a bench whose images use another console or line rate is checked
    /// for that one, and a U-Boot built with other load addresses for those (where the image's
    /// own u-boot.itb does not say). The bootloader facts are the RK3328's whatever the profile
    /// says.
    pub fn r2s_with_console_of(board: &crate::board::Board) -> Profile {
        // Leaked once per process: a profile's strings live as long as the command.
        let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
        Profile {
            name: leak(&board.name),
            console_device: leak(&board.console),
            console_baud: board.baud,
            board_load_addresses: board.load_addresses,
            ..NANOPI_R2S
        }
    }

    /// The console argument the kernel needs, e.g. `console=ttyS2,1500000`.
    pub fn console_arg(&self) -> String {
        format!("console={},{}", self.console_device, self.console_baud)
    }
}
