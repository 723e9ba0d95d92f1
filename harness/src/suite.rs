//! Runs scenarios against an image on fresh QEMU targets, one boot per scenario.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapt::Shim;
use crate::console::Transcript;
use crate::report::timings::{Timings, TimingsError};
use crate::runner::{self, FailReason, Failure, Observer, RunContext, ScenarioResult, Verdict};
use crate::scenario::Scenario;
use crate::target::qemu::{QemuConfig, QemuError, QemuTarget};

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

/// Errors that stop a run before a verdict is possible.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Qemu(#[from] QemuError),
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
    std::fs::create_dir_all(&run.transcripts).map_err(|source| SuiteError::Transcript {
        dir: run.transcripts.clone(),
        source,
    })?;
    let stem = transcript_stem(&scenario.name);
    let mut transcript = Transcript::create(&run.transcripts, &stem, &scenario.name).map_err(|source| {
        SuiteError::Transcript {
            dir: run.transcripts.clone(),
            source,
        }
    })?;
    let shim = run.shim.as_ref().map(|s| s.disk());
    let (mut target, mut console) = QemuTarget::start(&run.qemu, &run.image, shim).await?;
    let (mut verdict, stages, last_lines, duration) =
        runner::run_scenario(scenario, &mut console, &mut transcript, &run.context, observer).await;
    // A console that closed under us usually means QEMU died; its stderr says why.
    if let Verdict::Fail(Failure {
        reason: FailReason::ConsoleClosed { detail },
        ..
    }) = &mut verdict
    {
        if let Some(report) = target.exit_report().await {
            detail.push_str(&format!("; {report}"));
        }
    }
    drop(console);
    target.shutdown().await;
    let paths = transcript.finish().map_err(|source| SuiteError::Transcript {
        dir: run.transcripts.clone(),
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
    Timings::of(&result, &run.image).write(&run.transcripts, &stem)?;
    Ok(result)
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
