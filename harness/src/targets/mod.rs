//! Targets: things with a serial console to read and write, and a way to start them.
//!
//! Every target implements [`Target`]: start it (QEMU spawns, a board is powered on) and get
//! its [`Console`]; ask why that console closed; stop it, however the run ends (dropping a
//! target stops it too). What only some targets can do is a capability reached through an
//! accessor that returns `None` elsewhere: [`Target::snapshots`] (QEMU starts from a machine
//! saved earlier) and [`Target::attach`] (a board's console opened as the board is, without
//! switching power). A board's power commands and the operator prompt of `power = "manual"`
//! live in [`board::BoardTarget`], which any [`ConsolePort`] (a UART, a TCP socket) plugs
//! into.
//!
//! [`TargetSpec`] is the one factory: the CLI and the board profile say what to open, and
//! `harness run` and `harness console` open every target through it; a kind of target is a
//! [`TargetKind`] behind it. The snapshot priming boot starts its QEMU through the same
//! [`Target`] interface.
//! Scenarios never know which target they run on; the runner sees only a [`Console`].
//!
//! Targets are a lower layer than the runner, the snapshot cache and the start-up strategy
//! (see [`crate::layers`]): a target offers primitives (start, start at a snapshot, save a
//! state, stop), and what to do with them is decided above; a target author needs no runner
//! type.

pub mod board;
pub mod factory;
pub mod firmware;
pub mod labgrid;
pub mod network;
pub mod notices;
pub mod place;
pub mod power;
pub mod qemu;
pub mod qemu_disk;
pub mod qemu_img;
pub mod qemu_net;
pub mod qmp;
pub mod reconnecting_port;
pub mod rfc2217;
pub mod serial;
pub mod tcp;
#[cfg(test)]
pub mod test_console;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

pub use board::{BoardSpec, BoardTarget, ConsolePort, PortError};
pub use factory::{TargetKind, TargetSpec};
pub use network::{LanEnd, NetAccess, Network, Ports};
pub use notices::ConsoleNotices;
pub use qemu::{QemuConfig, QemuMachine, QemuSpec, QemuTarget};
pub use serial::{SerialConfig, SerialError, SerialTarget};

/// A future a target returns: targets hold processes and ports bound to the thread that
/// started them (QEMU's parent-death signal), so their futures are not `Send`.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What [`Target::start`] returns.
pub type StartFuture<'a> = LocalBoxFuture<'a, Result<Console, StartFailure>>;

/// The two directions of a target's serial console.
pub struct Console {
    /// Bytes the board prints.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes typed at the board.
    pub writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// What the target says about the console besides its bytes; the runner records it in the
    /// transcript.
    pub notices: ConsoleNotices,
}

impl Console {
    /// Puts `bytes` back in front of what the reader yields next: for code that looked at the
    /// console before the scenario (a shell probe, a banner wait), so the transcript and the
    /// steps still see everything.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let reader = std::mem::replace(&mut self.reader, Box::pin(tokio::io::empty()));
        self.reader = Box::pin(std::io::Cursor::new(bytes).chain(reader));
    }
}

/// What every target does.
pub trait Target {
    /// What runs, for transcripts and the console's banner: `QEMU booting IMG`, `board B on
    /// DEV at 1500000 baud 8N1`.
    fn describe(&self) -> String;

    /// Starts the target from power-on and returns its console. `attached` is the console
    /// [`Target::attach`] opened, when the caller looked at it first; the target then keeps it
    /// rather than opening another. `log` hears what is done on the way (power commands, a
    /// request to the operator).
    fn start<'a>(&'a mut self, attached: Option<Console>, log: &'a mut dyn StartLog) -> StartFuture<'a>;

    /// Why the console of the started target closed, if the target knows (QEMU's exit status
    /// and stderr). Asked by the runner when the console ends, so the result says it.
    fn closed_because(&mut self) -> LocalBoxFuture<'_, Option<String>>;

    /// Stops the target: QEMU is killed and reaped, a port closed and a board powered off.
    /// Safe to call on a target that never started. Dropping a target stops it too.
    fn stop<'a>(&'a mut self, log: &'a mut dyn StartLog) -> LocalBoxFuture<'a, Result<(), TargetError>>;

    /// The console of a target that may be running already, opened without starting or
    /// switching anything (a board left at a shell); `None` for targets that have no console
    /// until they start.
    fn attach(&mut self) -> Option<LocalBoxFuture<'_, Result<Console, TargetError>>> {
        None
    }

    /// Starting from a saved state, on targets that can (QEMU).
    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        None
    }

    /// The target's network (NICs, forwards, LAN), on targets that have one.
    fn network(&mut self) -> Option<&mut dyn Network> {
        None
    }
}

/// Where a target records what it does outside the console's bytes.
pub trait StartLog {
    /// A remark for the scenario's transcript (`power on: relay on 3`).
    fn note(&mut self, text: &str);
    /// The operator must act (power-cycle a board by hand).
    fn ask_operator(&mut self, request: &str);
}

/// A log that drops everything.
pub struct NoLog;

impl StartLog for NoLog {
    fn note(&mut self, _text: &str) {}
    fn ask_operator(&mut self, _request: &str) {}
}

/// Why a target did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    /// The harness cannot run it here (QEMU missing, a port another program holds): the run
    /// stops with exit 2.
    #[error(transparent)]
    Error(#[from] TargetError),
    /// The target did not come up as it should (a power command failed, no bootloader after a
    /// power cycle): the scenario's verdict.
    #[error("{detail}")]
    NotUp {
        /// What the harness waited for, e.g. `power the board on`.
        expected: String,
        detail: String,
    },
}

/// A target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Qemu(#[from] qemu::QemuError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Power(#[from] power::PowerError),
    #[error(transparent)]
    Network(#[from] qemu_net::NetError),
}

/// A target that can start from a state saved earlier instead of from power-on: QEMU, whose
/// machine is saved as its qcow2 disks and a file of its state. The target only starts at a
/// snapshot; reaching and saving a state (a priming boot on disks of its own, saved with
/// [`QemuMachine::save_and_quit`]), keeping the saved states (the snapshot cache) and retrying
/// a restore that failed are the start-up strategy's.
pub trait Snapshots {
    /// What the machine boots from power-on, which every state saved from it depends on.
    fn spec(&self) -> QemuSpec;

    /// Starts the target from the state saved as `tag` beside qcow2 `disks` (attachment order),
    /// the disks copied first so that the originals are never written, with the network attached
    /// ([`Target::network`]); returns its console and how long loading the snapshot took. A
    /// snapshot QEMU cannot load is [`qemu::QemuError::Snapshot`].
    fn start_at<'a>(
        &'a mut self,
        disks: &'a [PathBuf],
        tag: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Console, Duration), TargetError>>;

    /// Saves the running machine's state into the directory `into` as `tag`, stops it, and
    /// copies the disks there too (attachment order); returns the copies.
    fn save_into<'a>(
        &'a mut self,
        tag: &'a str,
        into: &'a Path,
    ) -> LocalBoxFuture<'a, Result<Vec<PathBuf>, TargetError>>;
}
