//! A board profile's `[sdmux]` table: the commands that switch the board's SD card between the
//! bench host (to be written) and the board (to boot), as a USB SD-mux does (`usbsdmux DEV
//! host` / `usbsdmux DEV dut`). Like power commands, they are argument vectors run directly.

use std::time::Duration;

use serde::Deserialize;

use super::raw::Argv;
use crate::config::Timeout;

/// The `[sdmux]` table as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSdMux {
    pub host: Argv,
    pub dut: Argv,
    pub device: Option<String>,
    pub timeout: Option<Timeout>,
    pub device_timeout: Option<Timeout>,
}

/// How the card is switched between the host and the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdMux {
    /// Connects the card to the host: its block device appears there.
    pub host: Vec<String>,
    /// Connects the card to the board (the "device under test").
    pub dut: Vec<String>,
    /// The card's block device on the host (a stable `/dev/disk/by-id/…` path), for
    /// `harness run --flash`, which has no DEVICE argument.
    pub device: Option<String>,
    /// How long one switch command may take.
    pub timeout: Duration,
    /// How long the block device may take to appear after switching to the host.
    pub device_timeout: Duration,
}

/// The default time a switch command may take.
pub const DEFAULT_SDMUX_TIMEOUT: Duration = Duration::from_secs(30);

/// The default time the card's block device may take to appear on the host.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_secs(30);

impl From<RawSdMux> for SdMux {
    fn from(raw: RawSdMux) -> SdMux {
        SdMux {
            host: raw.host.0,
            dut: raw.dut.0,
            device: raw.device,
            timeout: raw.timeout.map_or(DEFAULT_SDMUX_TIMEOUT, |t| t.get()),
            device_timeout: raw.device_timeout.map_or(DEFAULT_DEVICE_TIMEOUT, |t| t.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::board::Board;

    const MINIMAL: &str = "name = \"b\"\nbaud = 1500000\nconsole = \"ttyS2\"\n";

    #[test]
    fn a_profile_without_the_table_has_no_sdmux() {
        let board = Board::parse(MINIMAL, Path::new("bench.toml")).unwrap();
        assert_eq!(board.sdmux, None);
    }

    #[test]
    fn the_table_gives_both_commands_and_default_timeouts() {
        let text = format!(
            "{MINIMAL}[sdmux]\nhost = [\"usbsdmux\", \"/dev/sg0\", \"host\"]\ndut = [\"usbsdmux\", \"/dev/sg0\", \"dut\"]\n"
        );
        let board = Board::parse(&text, Path::new("bench.toml")).unwrap();
        assert_eq!(
            board.sdmux,
            Some(SdMux {
                host: vec!["usbsdmux".into(), "/dev/sg0".into(), "host".into()],
                dut: vec!["usbsdmux".into(), "/dev/sg0".into(), "dut".into()],
                device: None,
                timeout: DEFAULT_SDMUX_TIMEOUT,
                device_timeout: DEFAULT_DEVICE_TIMEOUT,
            })
        );
    }

    #[test]
    fn device_and_timeouts_are_read() {
        let text = format!(
            "{MINIMAL}[sdmux]\nhost = [\"h\"]\ndut = [\"d\"]\ndevice = \"/dev/disk/by-id/usb-mux\"\ntimeout = \"5s\"\ndevice_timeout = \"1m\"\n"
        );
        let sdmux = Board::parse(&text, Path::new("bench.toml"))
            .unwrap()
            .sdmux
            .unwrap();
        assert_eq!(sdmux.device.as_deref(), Some("/dev/disk/by-id/usb-mux"));
        assert_eq!(sdmux.timeout, Duration::from_secs(5));
        assert_eq!(sdmux.device_timeout, Duration::from_secs(60));
    }

    #[test]
    fn a_table_without_dut_is_an_error_at_the_table() {
        let text = format!("{MINIMAL}[sdmux]\nhost = [\"h\"]\n");
        let error = Board::parse(&text, Path::new("bench.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bench.toml:4:1: "), "{error}");
        assert!(error.contains("missing field `dut`"), "{error}");
    }
}
