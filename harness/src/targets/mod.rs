//! Targets: things with a serial console to read and write, and a way to start them.
//!
//! Every target implements [`Target`]: start it (QEMU spawns, a board is powered on) and get
//! its [`Console`]; ask why that console closed; stop it, however the run ends (dropping a
//! target stops it too). What only some targets can do is a capability reached through an
//! accessor that returns `None` elsewhere: [`Target::snapshots`] (QEMU saves and restores a
//! booted machine) and [`Target::attach`] (a board's console opened as the board is, without
//! switching power). A board's power commands and the operator prompt of `power = "manual"`
//! live in [`board::BoardTarget`], which any [`ConsolePort`] (a UART, a TCP socket) plugs
//! into.
//!
//! [`TargetSpec`] is the one factory: the CLI and the board profile say what to open, and
//! `harness run` and `harness console` open every target through it; a kind of target is a
//! [`TargetKind`] behind it. The snapshot priming boot starts its QEMU through the same
//! [`Target`] interface.
//! Scenarios never know which target they run on; the runner sees only a [`Console`].

pub mod board;
pub mod factory;
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
pub mod rfc2217;
pub mod serial;
pub mod tcp;
#[cfg(test)]
pub mod test_console;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::runner::RunContext;

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

    /// Login-state snapshots, on targets that can save and restore a booted machine.
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
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Power(#[from] power::PowerError),
    #[error(transparent)]
    Network(#[from] qemu_net::NetError),
}

/// A target's login-state snapshots: the machine saved at a root shell, restored for each
/// `start = "login"` scenario instead of booting it.
pub trait Snapshots {
    /// Starts the target from the snapshot of a start state, reaching and saving it first (the
    /// priming run) when there is none that checks out.
    fn restore<'a>(
        &'a mut self,
        request: RestoreRequest<'a>,
    ) -> LocalBoxFuture<'a, Result<Restored, RestoreFailure>>;

    /// The snapshot last restored did not reach a shell: forget it, so the next restore builds
    /// a new one.
    fn discard_restored(&mut self, limit: Duration) -> LocalBoxFuture<'_, Result<(), TargetError>>;
}

/// What a restore needs to know about the scenario.
pub struct RestoreRequest<'a> {
    /// The state to restore, and how a priming run reaches it.
    pub state: crate::snapshot::StateRecipe<'a>,
    /// Passwords and pacing for the priming boot.
    pub context: &'a RunContext,
    /// Where the priming boot's transcript goes.
    pub transcripts: &'a std::path::Path,
    /// How long the priming boot may take.
    pub boot_timeout: Duration,
}

/// A target started from its snapshot.
pub struct Restored {
    /// Its console, in the saved state (if the restore worked).
    pub console: Console,
    /// Where the console was when the state was saved.
    pub at: crate::console::ConsoleState,
    /// The systemd units that failed in the boot the snapshot was taken from.
    pub failed_units: Vec<String>,
    /// Where the snapshot came from, for the transcript.
    pub how: String,
    /// Whether this restore booted to build the snapshot.
    pub primed: bool,
    /// The priming boot's transcript, when this restore built the snapshot.
    pub priming_transcript: Option<PathBuf>,
    /// Which build of the snapshot was restored, for the transcript of a retry.
    pub build: String,
}

/// Why a target could not be restored.
#[derive(Debug)]
pub enum RestoreFailure {
    /// The priming boot did not reach a shell: a verdict on the image, shared by every
    /// scenario that needed that snapshot.
    Boot(std::sync::Arc<crate::snapshot::FailedBoot>),
    /// The snapshot could not be made or used for another reason.
    Error(TargetError),
}
