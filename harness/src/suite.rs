//! Runs scenarios one boot each: against an image on fresh QEMU targets, or on a board through
//! its serial console, powered as its profile says. Both share the runner, the matcher, the
//! transcripts and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::adapt::Shim;
use crate::board::{Board, Power};
use crate::console::Transcript;
use crate::report::timings::{Timings, TimingsError};
use crate::runner::{self, FailReason, Failure, Observer, RunContext, ScenarioResult, Verdict};
use crate::scenario::Scenario;
use crate::target::power::{self, OffOnDrop, PowerError};
use crate::target::qemu::{QemuConfig, QemuError, QemuTarget};
use crate::target::serial::{SerialConfig, SerialError, SerialTarget};
use crate::target::Console;

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

/// Everything a serial run of a suite needs besides the scenarios.
#[derive(Debug, Clone)]
pub struct SerialRun {
    pub board: Board,
    /// The console device, e.g. `/dev/serial/by-id/usb-Silicon_Labs_CP2102…-if00-port0`.
    pub device: PathBuf,
    pub transcripts: PathBuf,
    /// The board's pacing and baud are taken from `board`, not from here.
    pub context: RunContext,
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

/// With `manual = true` power: how long the operator has to power-cycle the board.
pub const MANUAL_POWER_WAIT: Duration = Duration::from_secs(5 * 60);

/// The first words an R2S prints: Rockchip's DDR init blob (`DDR version …`) or U-Boot's TPL,
/// SPL or proper (`U-Boot TPL 2024.01 …`).
const BOOTLOADER_BANNERS: [&[u8]; 2] = [b"U-Boot", b"DDR"];

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

/// Powers the board on (or cycles it), runs `scenario` on its serial console and powers it
/// off if the profile can. The console is opened before the power is switched, so no boot
/// output is missed and a port another program holds is refused before its board is touched.
pub async fn run_on_serial(
    run: &SerialRun,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let config = SerialConfig {
        path: run.device.clone(),
        baud: run.board.baud,
        reconnect_timeout: run.board.reconnect_timeout,
    };
    // A USB-UART powered from the board's own hub port appears only once the power is on.
    let opened = match SerialTarget::open(&config) {
        Ok(opened) => Some(opened),
        Err(SerialError::NotFound { .. }) if run.board.power != Power::None => None,
        Err(e) => return Err(e.into()),
    };
    let mut recording = Recording::start(&run.transcripts, scenario)?;
    let note = |recording: &mut Recording, text: &str| {
        let _ = recording.transcript.note(Duration::ZERO, text);
    };
    note(
        &mut recording,
        &format!(
            "board {} on {} at {} baud 8N1",
            run.board.name,
            run.device.display(),
            run.board.baud
        ),
    );
    if let Err(e) = power_up(&run.board.power, &mut recording).await {
        note(&mut recording, &format!("FAIL: {e}"));
        return recording.finish(
            scenario,
            setup_failure("power the board on", e.to_string()),
            &run.device,
        );
    }
    // From here on the board is on: however the run ends, it ends with the board off.
    let off_guard = match &run.board.power {
        Power::Commands(commands) => OffOnDrop::new(commands.off.as_deref(), commands.timeout),
        _ => OffOnDrop::new(None, Duration::ZERO),
    };
    let manual = run.board.power == Power::Manual;
    if manual {
        // Asked before waiting for an absent device: the operator's power cycle may be what
        // brings the adapter up.
        observer.ask_operator(&format!(
            "power-cycle board {} now; waiting up to {} for its bootloader on {}",
            run.board.name,
            humantime::format_duration(MANUAL_POWER_WAIT),
            run.device.display()
        ));
    }
    let (target, mut console) = match opened {
        Some(opened) => opened,
        None if manual => open_when_present(&config, MANUAL_POWER_WAIT).await?,
        None => open_when_present(&config, config.reconnect_timeout).await?,
    };
    if manual {
        if let Err(detail) = await_banner(&mut console, MANUAL_POWER_WAIT).await {
            note(&mut recording, &format!("FAIL: {detail}"));
            return recording.finish(
                scenario,
                setup_failure("the board to be power-cycled", detail),
                &run.device,
            );
        }
    }
    let context = RunContext {
        pacing: run.board.pacing,
        baud: Some(run.board.baud),
        board_console: Some(format!("{} at {} baud", run.board.console, run.board.baud)),
        ..run.context.clone()
    };
    let mut outcome = runner::run_scenario(
        scenario,
        &mut console,
        &mut recording.transcript,
        &context,
        observer,
    )
    .await;
    drop(console);
    // Closed before the power goes off, so the outage is not mistaken for a vanished device.
    drop(target);
    if let (Some(off), Power::Commands(commands)) = (off_guard.disarm(), &run.board.power) {
        let _ = recording
            .transcript
            .note(outcome.3, &format!("power off: {}", off.join(" ")));
        if let Err(e) = power::switch("off", &off, commands.timeout).await {
            let _ = recording.transcript.note(outcome.3, &format!("FAIL: {e}"));
            if matches!(outcome.0, Verdict::Pass) {
                outcome.0 = setup_failure("power the board off", e.to_string()).0;
            }
        }
    }
    recording.finish(scenario, outcome, &run.device)
}

/// Runs the profile's start sequence, noting each command in the transcript.
async fn power_up(power: &Power, recording: &mut Recording) -> Result<(), PowerError> {
    let Power::Commands(commands) = power else {
        return Ok(());
    };
    for (what, argv) in commands.start_sequence() {
        let _ = recording
            .transcript
            .note(Duration::ZERO, &format!("power {what}: {}", argv.join(" ")));
        power::switch(what, argv, commands.timeout).await?;
    }
    Ok(())
}

/// Opens a device that is expected to appear within `limit`.
async fn open_when_present(
    config: &SerialConfig,
    limit: Duration,
) -> Result<(SerialTarget, Console), SuiteError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match SerialTarget::open(config) {
            Err(SerialError::NotFound { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Reads until a bootloader banner appears, then puts what was read back in front of the
/// console, so the scenario's clock starts at the banner and its first step still sees it.
async fn await_banner(console: &mut Console, limit: Duration) -> Result<(), String> {
    // Only the tail is kept: a board left running prints without end, and the banner is what
    // follows the power cycle.
    const KEEP: usize = 64 * 1024;
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, console.reader.read(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "no bootloader banner (U-Boot or DDR) within {} of asking for a power cycle",
                    humantime::format_duration(limit)
                ))
            }
            Ok(Ok(0)) => return Err("console closed while waiting for the bootloader".to_owned()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(n)) => n,
        };
        let search_from = seen.len().saturating_sub(8);
        seen.extend_from_slice(&buf[..n]);
        let found = BOOTLOADER_BANNERS
            .iter()
            .any(|banner| memchr::memmem::find(&seen[search_from..], banner).is_some());
        if found {
            let reader = std::mem::replace(&mut console.reader, Box::pin(tokio::io::empty()));
            console.reader = Box::pin(std::io::Cursor::new(seen).chain(reader));
            return Ok(());
        }
        if seen.len() > KEEP {
            seen.drain(..seen.len() - KEEP);
        }
    }
}

/// An outcome for a run that failed before its first step.
fn setup_failure(expected: &str, detail: String) -> runner::Outcome {
    let failure = Failure {
        step: 0,
        step_description: String::new(),
        expected: expected.to_owned(),
        reason: FailReason::Setup { detail },
        at: Duration::ZERO,
        stage: "uboot".to_owned(),
        hint: None,
    };
    (Verdict::Fail(failure), Vec::new(), Vec::new(), Duration::ZERO)
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
