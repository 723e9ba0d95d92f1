//! Runs a suite of scenarios on a target: the start-up strategy that brings a target to where
//! a scenario starts ([`strategy`]), the schedule that orders and parallelises the scenarios
//! ([`schedule`]), and the event stream reporters hear it all through ([`events`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runner::RunContext;
use crate::snapshot::SnapshotError;
use crate::targets::{TargetError, TargetSpec};

pub mod events;
mod load_addresses;
mod prime;
pub mod qemu_setup;
mod recording;
mod retry;
pub mod schedule;
pub mod shell_probe;
pub mod snapshots;
pub mod strategy;

pub use events::{ReportError, Reporter, Reporters, ScenarioEvents, SuiteEvent, SuiteEventKind};
pub use schedule::{report_unrun, run_suite, run_suite_with, SuiteOutcome};
pub use snapshots::StartSnapshots;
pub use strategy::run_one;

/// Everything a suite needs besides its scenarios.
#[derive(Debug, Clone)]
pub struct Suite {
    /// What the scenarios run on.
    pub target: TargetSpec,
    /// Where each scenario's transcript goes.
    pub transcripts: PathBuf,
    /// What the runner knows beyond the scenarios; the target adds its own (a board's pacing).
    pub context: RunContext,
    /// Where scenarios with a start state find its snapshot, on a target that can start from
    /// one (QEMU); `None` boots each of them cold.
    pub snapshots: Option<StartSnapshots>,
}

impl Suite {
    /// What the runner knows on this suite's target: [`Suite::context`], with what a real
    /// board's profile adds (see [`RunContext::on_board`]).
    pub fn run_context(&self) -> RunContext {
        match self.target.board_profile() {
            Some(board) => self.context.on_board(board),
            None => self.context.clone(),
        }
    }

    /// Whether scenarios with a start state start from its snapshot.
    pub fn starts_from_snapshots(&self) -> bool {
        self.snapshots.is_some() && self.target.has_snapshots()
    }
}

/// Errors that stop a run before a verdict is possible.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot write transcripts in {dir}: {source}")]
    Transcript { dir: PathBuf, source: std::io::Error },
}

/// The harness's own scenarios directory, next to its crate in the source tree, for the tests
/// that run it from there. A run without scenario arguments takes the copy built into the
/// binary ([`crate::scenario::shipped`]), which an installed harness has too.
pub fn shipped_scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// How long a run is allowed before its QEMU is considered stuck, beyond scenario timeouts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
