//! The one place targets are made: what the command line and the board profile ask for,
//! turned into a [`Target`] per run.
//!
//! A kind of target is a [`TargetKind`]: what is known before any target of it exists (the
//! image, the board and its port), and how to open one. A new kind is a file that implements
//! [`Target`] and [`TargetKind`], and a line here that recognises how it is asked for; a new
//! way to reach a board's console is a [`ConsolePort`] and a line in [`console_port`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::board::{BoardSpec, ConsolePort};
use super::qemu::QemuSpec;
use super::rfc2217::Rfc2217Port;
use super::serial::{SerialConfig, SerialPort};
use super::tcp::TcpPort;
use super::Target;
use crate::board::Board;

/// What a kind of target knows before any target of it exists.
pub trait TargetKind: fmt::Debug {
    /// A new target, not started yet.
    fn open(&self) -> Box<dyn Target>;
    /// What the scenarios run against, for reports: an image, a console port.
    fn against(&self) -> &Path;
    /// The profile of the real board a target of this kind is, which says how a run talks to
    /// it (pacing, line rate, kernel console, address, diagnostics); `None` for QEMU.
    fn board(&self) -> Option<&Board> {
        None
    }
    /// Whether `start = "login"` scenarios can run side by side, each on a target of its own,
    /// rather than one after another on the one target.
    fn side_by_side(&self) -> bool {
        false
    }
    /// Whether its targets can start from a saved state ([`Target::snapshots`]).
    fn has_snapshots(&self) -> bool {
        false
    }
    /// Why `lan` steps cannot run on its targets here, if they cannot (QEMU's LAN needs root).
    fn lan_unavailable(&self) -> Option<String> {
        None
    }
}

/// What to run scenarios on. Cheap to clone; [`TargetSpec::open`] makes a fresh target for
/// each run.
#[derive(Debug, Clone)]
pub struct TargetSpec(Arc<dyn TargetKind>);

impl TargetSpec {
    /// QEMU booting `spec`'s image (raw; never written), through its adaptation shim if the
    /// image needs one.
    pub fn qemu(spec: QemuSpec) -> TargetSpec {
        TargetSpec(Arc::new(spec))
    }

    /// A real board on `port` (`--serial`: a device, or `tcp://HOST:PORT` of a serial
    /// server), powered as its profile says.
    pub fn board(board: Board, port: &Path) -> TargetSpec {
        TargetSpec(Arc::new(BoardSpec {
            port: port.to_owned(),
            board,
        }))
    }

    /// A board in a labgrid farm (`--place`): the place is acquired now and released when the
    /// last clone of the spec is dropped.
    pub fn place(
        labgrid: super::labgrid::Labgrid,
        board: Board,
    ) -> Result<TargetSpec, super::labgrid::PlaceError> {
        Ok(TargetSpec(Arc::new(super::place::PlaceSpec::acquire(
            labgrid, board,
        )?)))
    }

    /// [`TargetSpec::place`], waiting at most `limit` for a held place through a labgrid
    /// reservation (`--place-wait`); `progress` hears who holds it meanwhile.
    pub async fn place_waiting(
        labgrid: super::labgrid::Labgrid,
        board: Board,
        limit: std::time::Duration,
        progress: &mut dyn FnMut(&super::labgrid::reservation::Waiting),
    ) -> Result<TargetSpec, super::labgrid::PlaceError> {
        let spec = super::place::PlaceSpec::acquire_waiting(labgrid, board, limit, progress).await?;
        Ok(TargetSpec(Arc::new(spec)))
    }

    /// A new target as this spec says, not started yet.
    pub fn open(&self) -> Box<dyn Target> {
        self.0.open()
    }

    /// What the scenarios run against, for reports: the image, or the board's console port.
    pub fn against(&self) -> &Path {
        self.0.against()
    }

    /// The profile of the real board the scenarios run on; `None` for QEMU.
    pub fn board_profile(&self) -> Option<&Board> {
        self.0.board()
    }

    /// Whether `start = "login"` scenarios run side by side (QEMU) rather than in turn.
    pub fn parallel_login_starts(&self) -> bool {
        self.0.side_by_side()
    }

    /// Whether its targets can start from a saved state (QEMU).
    pub fn has_snapshots(&self) -> bool {
        self.0.has_snapshots()
    }

    /// Why `lan` steps cannot run on its targets here, if they cannot.
    pub fn lan_unavailable(&self) -> Option<String> {
        self.0.lan_unavailable()
    }
}

/// The console port `--serial` names: a serial server's `tcp://HOST:PORT` or
/// `rfc2217://HOST:PORT`, else a device.
pub fn console_port(name: &Path, board: &Board) -> Box<dyn ConsolePort> {
    if let Some(tcp) = name
        .to_str()
        .and_then(|n| TcpPort::parse(n, board.reconnect_timeout))
    {
        return Box::new(tcp);
    }
    if let Some(rfc2217) = name
        .to_str()
        .and_then(|n| Rfc2217Port::parse(n, board.baud, board.reconnect_timeout))
    {
        return Box::new(rfc2217);
    }
    Box::new(SerialPort::new(SerialConfig {
        path: name.to_owned(),
        baud: board.baud,
        reconnect_timeout: board.reconnect_timeout,
    }))
}
