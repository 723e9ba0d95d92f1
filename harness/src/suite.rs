//! Runs scenarios: against an image on QEMU (a cold boot per power-on scenario, a restored
//! login snapshot per `start = "login"` scenario), or on a board through its serial console,
//! powered as its profile says. Both share the runner, the matcher, the transcripts and the
//! report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapt::Shim;
use crate::console::Transcript;
use crate::report::timings::{Timings, TimingsError};
use crate::runner::{
    self, ConsoleAt, FailReason, Failure, Observer, Origin, RunContext, RunOutput, ScenarioResult, Verdict,
};
use crate::scenario::{LoginRecipe, Scenario, Start};
use crate::snapshot::{SnapshotCache, SnapshotError, SnapshotSource, TAG};
use crate::target::qemu::{QemuConfig, QemuError, QemuTarget};
use crate::target::serial::SerialError;
use crate::target::Console;

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
    /// Where `start = "login"` scenarios find their snapshot; `None` boots each of them cold.
    pub snapshots: Option<SnapshotCache>,
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

    /// What the runner knows beyond the scenarios on this target.
    pub fn context(&self) -> &RunContext {
        match self {
            TargetRun::Qemu(run) => &run.context,
            TargetRun::Serial(run) => &run.context,
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
    #[error("cannot write transcripts in {dir}: {source}")]
    Transcript { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Timings(#[from] TimingsError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Serial(#[from] SerialError),
}

/// Runs `scenario` on `run.image` and judges it. A power-on scenario gets a cold boot; a
/// `start = "login"` scenario starts from the login snapshot when `run.snapshots` is set (built
/// first if needed), else from a cold boot and the recipe's login. QEMU is gone when this
/// returns, and also if the future is dropped part-way (Ctrl-C, SIGTERM, panic).
pub async fn run_on_qemu(
    run: &QemuRun,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    if let (Start::Login(recipe), Some(cache)) = (&scenario.start, &run.snapshots) {
        return from_snapshot(run, cache, recipe, scenario, observer).await;
    }
    let mut recording = Recording::start(&run.transcripts, scenario)?;
    let shim = run.shim.as_ref().map(|s| s.disk());
    let (target, console) = match QemuTarget::start(&run.qemu, &run.image, shim).await {
        Ok(started) => started,
        Err(e) => return Err(recording.abandon(e.into())),
    };
    let at = ConsoleAt::PowerOn;
    let out = judge(
        run,
        scenario,
        at,
        target,
        console,
        &mut recording.transcript,
        observer,
    )
    .await;
    recording.finish(scenario, out, Origin::PowerOn, Vec::new(), &run.image)
}

/// A `start = "login"` scenario restored from the cache's snapshot. A restore that does not
/// reach a shell discards the entry and tries once more with a rebuilt one.
async fn from_snapshot(
    run: &QemuRun,
    cache: &SnapshotCache,
    recipe: &LoginRecipe,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let source = SnapshotSource {
        qemu: &run.qemu,
        image: &run.image,
        shim: run.shim.as_deref(),
        recipe,
    };
    let mut earlier_attempt: Option<String> = None;
    loop {
        let checkout = match cache
            .checkout(&source, &run.context, &run.transcripts, scenario.timeout)
            .await
        {
            Ok(checkout) => checkout,
            // The image did not boot to a shell: that is the scenario's verdict.
            Err(SnapshotError::Boot { boot, transcript }) => {
                let mut boot = *boot;
                if let Verdict::Fail(failure) = &mut boot.verdict {
                    failure.step_description = format!(
                        "start = \"login\" ({}, {})",
                        failure.step_description,
                        scenario.source.display()
                    );
                }
                let result = ScenarioResult {
                    name: scenario.name.clone(),
                    source: scenario.source.clone(),
                    duration: boot.duration,
                    verdict: boot.verdict,
                    stages: boot.stages,
                    last_lines: boot.last_lines,
                    transcript: vec![transcript],
                    origin: Origin::Snapshot { primed: true },
                };
                Timings::of(&result, &run.image).write(&run.transcripts, &transcript_stem(&scenario.name))?;
                return Ok(result);
            }
            Err(e) => return Err(e.into()),
        };
        let mut recording = Recording::start(&run.transcripts, scenario)?;
        let transcript = &mut recording.transcript;
        if let Some(note) = &earlier_attempt {
            let _ = transcript.note(Duration::ZERO, note);
        }
        let how = match &checkout.primed {
            Some(p) => format!(
                "built by this run: {:.1}s to a shell, savevm {:.2}s; boot transcript {}",
                p.to_shell.as_secs_f64(),
                p.save.as_secs_f64(),
                p.transcript.display()
            ),
            None => "reused from the cache".to_owned(),
        };
        let _ = transcript.note(
            Duration::ZERO,
            &format!(
                "start = \"login\": restoring snapshot {TAG} of {} ({how})",
                cache.entry_dir(&checkout.key).display()
            ),
        );
        let primed = checkout.primed.is_some();
        let mut extra = Vec::new();
        extra.extend(checkout.primed.as_ref().map(|p| p.transcript.clone()));
        let (key, build) = (checkout.key.clone(), checkout.build.clone());
        let restored = QemuTarget::restore(&run.qemu, &checkout.disks, TAG).await;
        // QEMU has its own copies now; other runs may use or rebuild the entry.
        drop(checkout);
        let (target, console) = match restored {
            Ok(started) => started,
            Err(e) => return Err(recording.abandon(e.into())),
        };
        let at = ConsoleAt::RestoredShell;
        let out = judge(
            run,
            scenario,
            at,
            target,
            console,
            &mut recording.transcript,
            observer,
        )
        .await;
        let restore_failed = matches!(
            &out.verdict,
            Verdict::Fail(f) if f.step == 0 && f.stage == runner::RESTORE_STAGE
        );
        if restore_failed && earlier_attempt.is_none() {
            if let Verdict::Fail(f) = &out.verdict {
                earlier_attempt = Some(format!(
                    "an earlier restore from build {build} failed ({}); the entry was discarded and rebuilt",
                    f.reason
                ));
            }
            let _ = recording.transcript.finish();
            cache
                .discard(&key, &build, scenario.timeout + Duration::from_secs(60))
                .await?;
            continue;
        }
        let origin = Origin::Snapshot { primed };
        return recording.finish(scenario, out, origin, extra, &run.image);
    }
}

/// Runs the scenario on a started target, then stops the target.
async fn judge(
    run: &QemuRun,
    scenario: &Scenario,
    at: ConsoleAt,
    mut target: QemuTarget,
    mut console: Console,
    transcript: &mut Transcript,
    observer: &mut dyn Observer,
) -> RunOutput {
    let mut out =
        runner::run_scenario_at(at, scenario, &mut console, transcript, &run.context, observer).await;
    // A console that closed under us usually means QEMU died; its stderr says why.
    if let Verdict::Fail(Failure {
        reason: FailReason::ConsoleClosed { detail },
        ..
    }) = &mut out.verdict
    {
        if let Some(report) = target.exit_report().await {
            detail.push_str(&format!("; {report}"));
        }
    }
    drop(console);
    target.shutdown().await;
    out
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

    /// Notes `error`, which ends the run before a verdict, closes the transcript and hands the
    /// error back: a run refused at the start (a port in use, a device that never appeared)
    /// still leaves a transcript saying why.
    fn abandon(mut self, error: SuiteError) -> SuiteError {
        let _ = self.transcript.note(Duration::ZERO, &format!("ERROR: {error}"));
        let _ = self.transcript.finish();
        error
    }

    /// Closes the transcript and writes the stage timings; `extra` are further transcript files
    /// of the run (the priming boot's), `against` is what ran: the image, or the console device
    /// of a board.
    fn finish(
        self,
        scenario: &Scenario,
        out: RunOutput,
        origin: Origin,
        extra: Vec<PathBuf>,
        against: &Path,
    ) -> Result<ScenarioResult, SuiteError> {
        let paths = self
            .transcript
            .finish()
            .map_err(|source| SuiteError::Transcript {
                dir: self.dir.clone(),
                source,
            })?;
        let mut transcript = vec![paths.log, paths.raw, paths.cast];
        transcript.extend(extra);
        let result = ScenarioResult {
            name: scenario.name.clone(),
            source: scenario.source.clone(),
            verdict: out.verdict,
            duration: out.duration,
            stages: out.stages,
            last_lines: out.last_lines,
            transcript,
            origin,
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
