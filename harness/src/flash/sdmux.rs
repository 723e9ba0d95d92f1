//! Switching a board's SD card between the board and the bench host with the `[sdmux]`
//! commands of its profile, and waiting for the card's block device to appear on the host.
//! The commands run as power commands do (argv, `${NAME}` from the environment, a timeout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::board::SdMux;
use crate::targets::power::{self, OffOnDrop, PowerError};

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
}

impl SdMuxError {
    /// A power command's failure, said of the SD-mux.
    fn from_power(side: Side, error: PowerError) -> SdMuxError {
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
                stderr,
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
pub async fn switch(sdmux: &SdMux, side: Side) -> Result<(), SdMuxError> {
    let argv = match side {
        Side::Host => &sdmux.host,
        Side::Dut => &sdmux.dut,
    };
    power::switch(side.name(), argv, sdmux.timeout)
        .await
        .map_err(|e| SdMuxError::from_power(side, e))
}

/// A guard that hands the card back to the board if the flash ends early (an error, Ctrl-C).
pub fn back_to_dut_on_drop(sdmux: &SdMux) -> OffOnDrop {
    OffOnDrop::new(Some(&sdmux.dut), sdmux.timeout)
}

/// Waits until `device` exists, at most `sdmux.device_timeout`.
pub async fn wait_for_device(sdmux: &SdMux, device: &Path) -> Result<(), SdMuxError> {
    let deadline = tokio::time::Instant::now() + sdmux.device_timeout;
    while !device.exists() {
        if tokio::time::Instant::now() >= deadline {
            return Err(SdMuxError::NoDevice {
                device: device.to_owned(),
                waited: sdmux.device_timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
