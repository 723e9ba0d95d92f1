//! Runs scenarios one boot each: against an image on fresh QEMU targets, or on a board through
//! its serial console, powered as its profile says. Both share the runner, the matcher, the
//! transcripts and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapt::Shim;
use crate::console::Transcript;
use crate::report::timings::{Timings, TimingsError};
use crate::runner::{self, FailReason, Failure, Observer, RunContext, ScenarioResult, Verdict};
use crate::scenario::Scenario;
use crate::target::qemu::{QemuConfig, QemuError, QemuTarget};
use crate::target::serial::SerialError;

mod serial;

pub use serial::{run_on_serial, SerialRun, MANUAL_POWER_WAIT};

/// Everything a QEMU run of a suite needs besides the scenarios.
#[derive(Debug, Clone)]
pub struct QemuRun {
    pub image: PathBuf,
    pub qemu: QemuConfig,
    pub transcripts: PathBuf,
    pub context: RunContext,
    /// The disk U-Boot boots from when the image was adapted for QEMU (see [`crate::adapt`]).
    pub shim: Option<Arc<Shim>>,
}

/// A suite's target: QEMU booting an image, or a board on a serial console.
#[derive(Debug, Clone)]
pub enum TargetRun {
    Qemu(QemuRun),
    Serial(SerialRun),
}

impl TargetRun {
    /// Runs one scenario on a fresh boot of the target.
    pub async fn run(
        &self,
        scenario: &Scenario,
        observer: &mut dyn Observer,
    ) -> Result<ScenarioResult, SuiteError> {
        match self {
            TargetRun::Qemu(run) => run_on_qemu(run, scenario, observer).await,
            TargetRun::Serial(run) => run_on_serial(run, scenario, observer).await,
        }
    }

    /// What the scenarios run against, for reports: the image, or the board's console device.
    pub fn against(&self) -> &Path {
        match self {
            TargetRun::Qemu(run) => &run.image,
            TargetRun::Serial(run) => &run.device,
        }
    }
}

/// Errors that stop a run before a verdict is possible.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Serial(#[from] SerialError),
    #[error("cannot write transcripts in {dir}: {source}")]
    Transcript { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Timings(#[from] TimingsError),
}

/// Boots `run.image` afresh for `scenario` and judges it. QEMU is gone when this returns, and
/// also if the future is dropped part-way (Ctrl-C, SIGTERM, panic).
pub async fn run_on_qemu(
    run: &QemuRun,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let mut recording = Recording::start(&run.transcripts, scenario)?;
    let shim = run.shim.as_ref().map(|s| s.disk());
    let (mut target, mut console) = QemuTarget::start(&run.qemu, &run.image, shim).await?;
    let mut outcome = runner::run_scenario(
        scenario,
        &mut console,
        &mut recording.transcript,
        &run.context,
        observer,
    )
    .await;
    // A console that closed under us usually means QEMU died; its stderr says why.
    if let Verdict::Fail(Failure {
        reason: FailReason::ConsoleClosed { detail },
        ..
    }) = &mut outcome.0
    {
        if let Some(report) = target.exit_report().await {
            detail.push_str(&format!("; {report}"));
        }
    }
    drop(console);
    target.shutdown().await;
    recording.finish(scenario, outcome, &run.image)
}

/// A scenario's transcript files, from before the target starts to the result.
struct Recording {
    dir: PathBuf,
    stem: String,
    transcript: Transcript,
}

impl Recording {
    fn start(dir: &Path, scenario: &Scenario) -> Result<Recording, SuiteError> {
        let error = |source| SuiteError::Transcript {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let stem = transcript_stem(&scenario.name);
        let transcript = Transcript::create(dir, &stem, &scenario.name).map_err(error)?;
        Ok(Recording {
            dir: dir.to_owned(),
            stem,
            transcript,
        })
    }

    /// Closes the transcript and writes the stage timings; `against` is what ran: the image,
    /// or the console device of a board.
    fn finish(
        self,
        scenario: &Scenario,
        (verdict, stages, last_lines, duration): runner::Outcome,
        against: &Path,
    ) -> Result<ScenarioResult, SuiteError> {
        let paths = self
            .transcript
            .finish()
            .map_err(|source| SuiteError::Transcript {
                dir: self.dir.clone(),
                source,
            })?;
        let result = ScenarioResult {
            name: scenario.name.clone(),
            source: scenario.source.clone(),
            verdict,
            duration,
            stages,
            last_lines,
            transcript: vec![paths.log, paths.raw, paths.cast],
        };
        Timings::of(&result, against).write(&self.dir, &self.stem)?;
        Ok(result)
    }
}

/// A file name for a scenario's transcripts: its name with anything odd replaced.
pub fn transcript_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The harness's own scenarios directory, next to its crate in the source tree.
pub fn shipped_scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// How long a run is allowed before its QEMU is considered stuck, beyond scenario timeouts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
