//! Switching a board's SD card between the board and the bench host with the `[sdmux]`
//! commands of its profile (or a labgrid place's `sd-mux` commands), and waiting for the card's
//! block device to appear on the host with a medium in it. The commands run as power commands do
//! (argv, `${NAME}` from the environment, a timeout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::device::{self, DeviceKind, Sysroot};
use crate::board::SdMux;
use crate::targets::power::{self, OffOnDrop, PowerError};

/// How a card is switched: the commands, and how the cause of a failed one is read from its
/// stderr.
#[derive(Debug, Clone)]
pub struct CardMux {
    pub commands: SdMux,
    /// The cause in a failed command's stderr: all of it for a profile's commands; the mux
    /// tool's own words among labgrid-client's log lines for a place's.
    pub cause: fn(&str) -> String,
}

impl CardMux {
    /// A board profile's `[sdmux]` commands, whose stderr is their own.
    pub fn of_profile(commands: SdMux) -> CardMux {
        CardMux {
            commands,
            cause: str::to_owned,
        }
    }
}

/// Where the card is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The bench host, to be written.
    Host,
    /// The board, to boot.
    Dut,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Host => "host",
            Side::Dut => "dut",
        }
    }
}

/// An SD-mux step that failed.
#[derive(Debug, thiserror::Error)]
pub enum SdMuxError {
    #[error("SD-mux {side} command `{command}` could not be started: {source}")]
    Spawn {
        side: &'static str,
        command: String,
        source: std::io::Error,
    },
    #[error("SD-mux {side} command `{command}` failed ({status}): {stderr}")]
    Failed {
        side: &'static str,
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("SD-mux {side} command `{command}` needs environment variable {name}, which is not set")]
    Unset {
        side: &'static str,
        command: String,
        name: String,
    },
    #[error("SD-mux {side} command `{command}` did not finish within {}; killed", humantime::format_duration(*.timeout))]
    Timeout {
        side: &'static str,
        command: String,
        timeout: Duration,
    },
    #[error("{} did not appear within {} of switching the card to the host", device.display(), humantime::format_duration(*.waited))]
    NoDevice { device: PathBuf, waited: Duration },
    #[error("{} has no medium {} after switching the card to the host: is the card in the SD-mux?", device.display(), humantime::format_duration(*.waited))]
    NoMedium { device: PathBuf, waited: Duration },
}

impl SdMuxError {
    /// A power command's failure, said of the SD-mux; `cause` reads a failed command's stderr.
    fn from_power(side: Side, error: PowerError, cause: fn(&str) -> String) -> SdMuxError {
        let side = side.name();
        match error {
            PowerError::Spawn { command, source, .. } => SdMuxError::Spawn {
                side,
                command,
                source,
            },
            PowerError::Failed {
                command,
                status,
                stderr,
                ..
            } => SdMuxError::Failed {
                side,
                command,
                status,
                stderr: cause(&stderr),
            },
            PowerError::Unset { command, name, .. } => SdMuxError::Unset { side, command, name },
            PowerError::Timeout { command, timeout, .. } => SdMuxError::Timeout {
                side,
                command,
                timeout,
            },
        }
    }
}

/// Connects the card to `side`.
pub async fn switch(mux: &CardMux, side: Side) -> Result<(), SdMuxError> {
    let argv = match side {
        Side::Host => &mux.commands.host,
        Side::Dut => &mux.commands.dut,
    };
    power::switch(side.name(), argv, mux.commands.timeout)
        .await
        .map_err(|e| SdMuxError::from_power(side, e, mux.cause))
}

/// A guard that hands the card back to the board if the flash ends early (an error, Ctrl-C).
pub fn back_to_dut_on_drop(mux: &CardMux) -> OffOnDrop {
    OffOnDrop::new(Some(&mux.commands.dut), mux.commands.timeout)
}

/// Waits until `device` is there with a medium in it, at most `mux.device_timeout`: a card
/// reader's block device (a USB-SD-Mux's) may stay while the card is with the board, with no
/// medium (size 0) until the kernel sees the card come back. A regular file (a test's copy of
/// the card) only has to exist.
pub async fn wait_for_card(mux: &CardMux, device: &Path, sysroot: &Sysroot) -> Result<(), SdMuxError> {
    let waited = mux.commands.device_timeout;
    let deadline = tokio::time::Instant::now() + waited;
    loop {
        let present = device.exists();
        let ready = present
            && match device::resolve(device, sysroot) {
                Ok(DeviceKind::Block(disk)) => disk.size > 0,
                Ok(DeviceKind::File { exists }) => exists,
                // The guards that follow say what is wrong with it.
                Err(_) => true,
            };
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let device = device.to_owned();
            return Err(if present {
                SdMuxError::NoMedium { device, waited }
            } else {
                SdMuxError::NoDevice { device, waited }
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
