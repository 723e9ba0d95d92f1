//! A validated board profile: what the harness needs to know about a board and its bench.

use std::path::PathBuf;
use std::time::Duration;

/// A board profile, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// The profile's name (`nanopi-r2s`).
    pub name: String,
    /// One line for people.
    pub description: Option<String>,
    /// The console's line rate; the UART is always 8N1 without flow control.
    pub baud: u32,
    /// The kernel console name the board's images use (`ttyS2`).
    pub console: String,
    /// How input is typed.
    pub pacing: CharPacing,
    /// How long a console device that vanished (a USB-UART re-enumerating) may take to return.
    pub reconnect_timeout: Duration,
    /// How the board is switched on and off.
    pub power: Power,
    /// Whether the harness may skip this board's U-Boot autoboot delay and extlinux menu
    /// timeout (`skip_countdowns = true`); off unless the profile says so.
    pub skip_countdowns: bool,
    /// Whether QEMU's adaptation may add the image's own disk drivers to an initrd that can
    /// drive none of QEMU's disk buses (`adapt_initrd_modules = false` turns it off); on unless
    /// the profile says so.
    pub adapt_initrd_modules: bool,
    /// How the board's SD card is switched to the host for flashing, if it can be.
    pub sdmux: Option<super::SdMux>,
    /// The board's address as the harness's machine reaches it (`[network] address`): host
    /// steps see it as `${TARGET_ADDRESS}`, and each guest port as itself (`${PORT_TCP_22}` is 22).
    pub address: Option<String>,
    /// Diagnostics run at the shell when a step fails (`on_failure`), after the scenario's own.
    pub on_failure: Vec<String>,
    /// U-Boot load addresses the board's U-Boot uses (`[load_addresses]`): what `inspect` and
    /// `flash` judge a kernel against when the image's own u-boot.itb does not say.
    pub load_addresses: LoadAddressKeys,
    /// The profile file, or `<built-in NAME>`.
    pub source: PathBuf,
}

/// The `[load_addresses]` of a profile: each of U-Boot's load address variables it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadAddressKeys {
    /// `kernel_addr_r`.
    pub kernel_addr_r: Option<u64>,
    /// `ramdisk_addr_r`.
    pub ramdisk_addr_r: Option<u64>,
    /// `fdt_addr_r`.
    pub fdt_addr_r: Option<u64>,
}

/// How typed input is paced, for UART receivers that drop characters sent back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharPacing {
    /// This pause after each character (zero: no pacing).
    Delay(Duration),
    /// Wait for each character's echo before the next, as U-Boot's test/py does. Characters
    /// that are not echoed (a password) are waited for only briefly.
    Echo,
}

impl Default for CharPacing {
    fn default() -> Self {
        CharPacing::Delay(Duration::ZERO)
    }
}

/// How the harness switches the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Power {
    /// No power control: the board is assumed to be booting already when the run starts.
    None,
    /// Commands run directly (argv, never through a shell), each within `timeout`.
    Commands(PowerCommands),
    /// The operator power-cycles the board when asked; the run starts at the first bootloader
    /// banner.
    Manual,
}

/// The argument vectors of the power commands a profile gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerCommands {
    /// Switches the board on.
    pub on: Option<Vec<String>>,
    /// Switches the board off; run at the end of every run when given.
    pub off: Option<Vec<String>>,
    /// Switches the board off and on again; preferred at the start when given.
    pub cycle: Option<Vec<String>>,
    /// How long one command may run before it counts as failed.
    pub timeout: Duration,
}

impl PowerCommands {
    /// The commands that bring the board up from any state, in order: `cycle`; else `off` then
    /// `on`; else `on` alone (a board that is on already keeps running and is not reset).
    pub fn start_sequence(&self) -> Vec<(&'static str, &[String])> {
        if let Some(cycle) = &self.cycle {
            return vec![("cycle", cycle)];
        }
        let mut sequence = Vec::new();
        if let (Some(off), Some(_)) = (&self.off, &self.on) {
            sequence.push(("off", off.as_slice()));
        }
        if let Some(on) = &self.on {
            sequence.push(("on", on.as_slice()));
        }
        sequence
    }
}

/// The default `reconnect_timeout`.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default time a power command may take.
pub const DEFAULT_POWER_TIMEOUT: Duration = Duration::from_secs(30);
