//! The one place targets are made: what the command line and the board profile ask for,
//! turned into a [`Target`] per run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::board::{BoardTarget, ConsolePort};
use super::qemu::{QemuConfig, QemuMachine};
use super::serial::{SerialConfig, SerialPort};
use super::tcp::TcpPort;
use super::Target;
use crate::adapt::Shim;
use crate::board::Board;
use crate::runner::RunContext;
use crate::snapshot::SnapshotCache;

/// What to run scenarios on. Cheap to clone; [`TargetSpec::open`] makes a fresh target for
/// each run.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// QEMU booting a disk image.
    Qemu {
        config: QemuConfig,
        /// The raw image; never written.
        image: PathBuf,
        /// The disk U-Boot boots from when the image was adapted for QEMU (see [`crate::adapt`]).
        shim: Option<Arc<Shim>>,
        /// Where `start = "login"` scenarios find their snapshot; `None` boots each of them cold.
        snapshots: Option<SnapshotCache>,
    },
    /// A real board on a console port, powered as its profile says.
    Board {
        board: Board,
        /// `--serial`: a device path, or `tcp://HOST:PORT` of a serial server.
        port: PathBuf,
    },
}

impl TargetSpec {
    /// A new target as this spec says, not started yet.
    pub fn open(&self) -> Box<dyn Target> {
        match self {
            TargetSpec::Qemu {
                config,
                image,
                shim,
                snapshots,
            } => Box::new(QemuMachine::new(
                config.clone(),
                image.clone(),
                shim.clone(),
                snapshots.clone(),
            )),
            TargetSpec::Board { board, port } => {
                Box::new(BoardTarget::new(board.clone(), console_port(port, board)))
            }
        }
    }

    /// What the scenarios run against, for reports: the image, or the board's console port.
    pub fn against(&self) -> &Path {
        match self {
            TargetSpec::Qemu { image, .. } => image,
            TargetSpec::Board { port, .. } => port,
        }
    }

    /// `base` with what the target adds: a board's pacing, line rate and kernel console.
    pub fn context(&self, base: &RunContext) -> RunContext {
        match self {
            TargetSpec::Qemu { .. } => base.clone(),
            TargetSpec::Board { board, .. } => RunContext {
                pacing: board.pacing,
                baud: Some(board.baud),
                board_console: Some(format!("{} at {} baud", board.console, board.baud)),
                ..base.clone()
            },
        }
    }

    /// Whether `start = "login"` scenarios can run side by side, each on a target of its own
    /// (QEMU), rather than one after another on the one board.
    pub fn parallel_login_starts(&self) -> bool {
        matches!(self, TargetSpec::Qemu { .. })
    }

    /// Whether `start = "login"` scenarios start from a snapshot.
    pub fn has_snapshots(&self) -> bool {
        matches!(
            self,
            TargetSpec::Qemu {
                snapshots: Some(_),
                ..
            }
        )
    }
}

/// The console port `--serial` names: a serial server's `tcp://HOST:PORT`, else a device.
fn console_port(name: &Path, board: &Board) -> Box<dyn ConsolePort> {
    if let Some(tcp) = name.to_str().and_then(TcpPort::parse) {
        return Box::new(tcp);
    }
    Box::new(SerialPort::new(SerialConfig {
        path: name.to_owned(),
        baud: board.baud,
        reconnect_timeout: board.reconnect_timeout,
    }))
}
