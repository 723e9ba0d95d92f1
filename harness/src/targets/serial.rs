//! The serial target: a real board's console on a UART (a USB-UART's `/dev/serial/by-id/…`
//! path, or a pseudo-terminal), 8N1 without flow control, held exclusively.
//!
//! When the device vanishes (a USB-UART re-enumerating as the board power-cycles, a pulled
//! cable) the port waits for the path to return, reopens it, and says so in the transcript (see
//! [`super::reconnecting_port`]); if it does not return in time the console ends with the error
//! "console device gone: DEV".

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, StopBits, TTYPort};

use super::reconnecting_port::{Kind, Link, Opened, ReconnectingPort, READ_POLL};
use super::{Console, ConsolePort, LocalBoxFuture, PortError};

/// How to open the console.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// The device: `/dev/serial/by-id/…`, `/dev/ttyUSB0`, or a pseudo-terminal.
    pub path: PathBuf,
    /// Line rate; always 8 data bits, no parity, one stop bit, no flow control.
    pub baud: u32,
    /// How long a vanished device may take to come back.
    pub reconnect_timeout: Duration,
}

/// Why the console could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// Another program holds the port.
    #[error(
        "{path} is in use by another program (another harness, screen, picocom, minicom?); only one may hold a console"
    )]
    Busy { path: PathBuf },
    /// Nothing at that path.
    #[error("{path} does not exist: is the USB-UART plugged in? (ls -l /dev/serial/by-id/)")]
    NotFound { path: PathBuf },
    /// Any other failure to open or configure the device.
    #[error("cannot open {path} at {baud} baud 8N1: {detail}")]
    Open {
        path: PathBuf,
        baud: u32,
        detail: String,
    },
}

/// An open serial console. Dropping it stops the reader thread and closes the device.
pub struct SerialTarget {
    path: PathBuf,
    _port: ReconnectingPort<SerialLink>,
}

impl SerialTarget {
    /// Opens `config.path` exclusively at `config.baud` 8N1 and returns the target and its
    /// console. Fails at once if another program holds the port.
    pub fn open(config: &SerialConfig) -> Result<(SerialTarget, Console), SerialError> {
        let mut link = SerialLink {
            path: config.path.clone(),
            baud: config.baud,
        };
        let opened = link.open()?;
        let (port, console) =
            ReconnectingPort::start(link, opened, config.reconnect_timeout).map_err(|e| {
                SerialError::Open {
                    path: config.path.clone(),
                    baud: config.baud,
                    detail: format!("cannot start the reader thread: {e}"),
                }
            })?;
        let target = SerialTarget {
            path: config.path.clone(),
            _port: port,
        };
        Ok((target, console))
    }

    /// The device path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A UART as a board's [`ConsolePort`]: the device of `config`, held while open.
pub struct SerialPort {
    config: SerialConfig,
    open: Option<SerialTarget>,
}

impl SerialPort {
    /// The port `config` names; nothing is opened yet.
    pub fn new(config: SerialConfig) -> SerialPort {
        SerialPort { config, open: None }
    }
}

impl ConsolePort for SerialPort {
    fn describe(&self) -> String {
        self.config.path.display().to_string()
    }

    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>> {
        Box::pin(async move {
            self.open = None;
            match SerialTarget::open(&self.config) {
                Ok((target, console)) => {
                    self.open = Some(target);
                    Ok(console)
                }
                Err(e @ SerialError::NotFound { .. }) => Err(PortError::Absent(Box::new(e))),
                Err(e) => Err(PortError::Unusable(Box::new(e))),
            }
        })
    }

    fn close(&mut self) {
        self.open = None;
    }
}

/// Opens and configures the device, mapping serialport's errors to what the user should do.
fn open_port(path: &Path, baud: u32) -> Result<TTYPort, SerialError> {
    let name = path.to_string_lossy();
    // TTYPort opens with TIOCEXCL and an exclusive flock: a second opener fails with
    // NoDevice (EBUSY, or the lock held), even when it runs as root, which TIOCEXCL lets through.
    serialport::new(name, baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(READ_POLL)
        .open_native()
        .map_err(|e| match e.kind {
            serialport::ErrorKind::NoDevice => SerialError::Busy {
                path: path.to_owned(),
            },
            serialport::ErrorKind::Io(io::ErrorKind::NotFound) => SerialError::NotFound {
                path: path.to_owned(),
            },
            _ => SerialError::Open {
                path: path.to_owned(),
                baud,
                detail: e.description,
            },
        })
}

/// A UART: the device at a path, reopened at the same path when it comes back.
struct SerialLink {
    path: PathBuf,
    baud: u32,
}

impl Link for SerialLink {
    type Reader = TTYPort;
    type Writer = TTYPort;
    type Error = SerialError;

    fn open(&mut self) -> Result<Opened<Self>, SerialError> {
        let reader = open_port(&self.path, self.baud)?;
        let writer = reader.try_clone_native().map_err(|e| SerialError::Open {
            path: self.path.clone(),
            baud: self.baud,
            detail: e.to_string(),
        })?;
        Ok(Opened::new(reader, writer))
    }

    fn kind(&self) -> Kind<'_> {
        Kind::Device(&self.path)
    }
}
