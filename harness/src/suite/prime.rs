//! The priming run: QEMU on the disks of a snapshot cache entry being built, brought by the
//! runner to the state the entry holds — from power-on, or from the base state's snapshot —
//! saved under the state's tag and shut down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::console::{ConsoleState, Transcript, MAX_FAILED_UNITS};
use crate::runner::{self, ConsoleAt, Quiet, RunContext, RunOutput, Verdict};
use crate::scenario::{SavedRecipe, Scenario, Start};
use crate::snapshot::{SnapshotError, StateRecipe};
use crate::targets::qemu::{saved_state_name, state_beside, QemuConfig, QemuMachine};
use crate::targets::{Network, NoLog, StartFailure, Target, TargetError};

/// Where a priming run's disks begin.
pub(super) enum PrimeStart {
    /// At power-on: an overlay over the image.
    PowerOn,
    /// Copies of the base state's entry, holding its snapshot `tag`, saved with the console
    /// at `console`, after a boot in which `failed_units` failed.
    Snapshot {
        tag: &'static str,
        console: ConsoleState,
        entry: PathBuf,
        failed_units: Vec<String>,
    },
}

/// What a priming run needs.
pub(super) struct PrimingBoot<'a> {
    pub qemu: &'a QemuConfig,
    /// The entry's disks being built, in attachment order; QEMU writes to them.
    pub disks: &'a [PathBuf],
    pub state: StateRecipe<'a>,
    pub from: PrimeStart,
    pub context: &'a RunContext,
    /// Where the run's transcript goes, as `<stem>.{log,raw,cast}`.
    pub transcripts: &'a Path,
    pub stem: &'a str,
    pub timeout: Duration,
}

/// How a priming run ended, when the harness itself worked.
pub(super) enum PrimeOutcome {
    /// The machine reached the state and was saved.
    Saved(Primed),
    /// The image did not reach the state: a verdict on the image.
    BootFailed(Box<FailedBoot>),
}

/// What building an entry took.
#[derive(Debug, Clone)]
pub struct Primed {
    /// The priming run's transcript log.
    pub transcript: PathBuf,
    /// From QEMU's start to the state.
    pub to_state: Duration,
    /// How long saving the state took.
    pub save: Duration,
    /// Where the console was when saved.
    pub console: ConsoleState,
    /// The systemd units that failed on the way to the state (in the base state's boot too).
    pub failed_units: Vec<String>,
}

/// A priming run that did not reach its state: the verdict of every scenario that needed its
/// snapshot.
#[derive(Debug, Clone)]
pub struct FailedBoot {
    /// That run's verdict, stages and last console lines.
    pub output: RunOutput,
    /// Its transcript log.
    pub transcript: PathBuf,
}

/// Reaches the state and saves it. QEMU is gone when this returns, on every path.
pub(super) async fn reach_and_save(boot: PrimingBoot<'_>) -> Result<PrimeOutcome, SnapshotError> {
    std::fs::create_dir_all(boot.transcripts).map_err(|e| SnapshotError::io(boot.transcripts, e))?;
    let title = format!("reaching the {} state to snapshot it", boot.state.name());
    let mut transcript = Transcript::create(boot.transcripts, boot.stem, &title)
        .map_err(|e| SnapshotError::io(boot.transcripts, e))?;
    let log = transcript.paths().log;

    let started = Instant::now();
    let (mut target, at) = match &boot.from {
        PrimeStart::PowerOn => (
            QemuMachine::on_disks(boot.qemu.clone(), boot.disks.to_vec()),
            ConsoleAt::PowerOn,
        ),
        PrimeStart::Snapshot {
            tag, console, entry, ..
        } => {
            let _ = transcript.note(
                started.elapsed(),
                &format!("from snapshot {tag} of {} (its disks copied)", entry.display()),
            );
            let at = ConsoleAt::Restored {
                console: *console,
                steps_done: 0,
            };
            (
                QemuMachine::on_disks_at(
                    boot.qemu.clone(),
                    boot.disks.to_vec(),
                    entry.join(saved_state_name(tag)),
                ),
                at,
            )
        }
    };
    // The steps before `save_state` may use the saving scenario's forwards and LAN.
    if let StateRecipe::Saved(SavedRecipe {
        network: Some(spec), ..
    }) = boot.state
    {
        Network::attach(&mut target, spec);
    }
    let mut console = match target.start(None, &mut NoLog).await {
        Ok(console) => console,
        Err(StartFailure::Error(TargetError::Qemu(e))) => return Err(e.into()),
        Err(other) => return Err(SnapshotError::Start(Box::new(other))),
    };
    // Where host and LAN steps reach the machine is known only now that it runs.
    let mut context = boot.context.clone();
    context.net = Network::access(&target);
    context.interaction = context.interaction.for_priming();
    let keep_failed = context.keep_failed.take().is_some();
    let reached = match boot.state {
        StateRecipe::Login(recipe) => {
            runner::reach_login_shell(
                &mut console,
                &mut transcript,
                &context,
                recipe,
                boot.timeout,
                &mut Quiet,
            )
            .await
        }
        StateRecipe::Uboot | StateRecipe::Saved(_) => {
            let scenario = match boot.state {
                StateRecipe::Saved(recipe) => saved_state_scenario(recipe, boot.timeout),
                _ => state_scenario("uboot", Start::Uboot, Vec::new(), boot.timeout),
            };
            runner::run_scenario_at(
                at,
                &scenario,
                &mut console,
                None,
                &mut transcript,
                &context,
                &mut Quiet,
            )
            .await
        }
    };
    let to_state = started.elapsed();
    let outcome = match reached.verdict {
        Verdict::Pass => {
            let tag = boot.state.tag();
            let save_started = Instant::now();
            // Beside the disks being built, which become the entry.
            let saved = target
                .save_and_quit(&state_beside(boot.disks, tag))
                .await
                .map_err(SnapshotError::from);
            let _ = transcript.note(
                started.elapsed(),
                &match &saved {
                    Ok(()) => format!(
                        "state {tag} saved in {:.2}s",
                        save_started.elapsed().as_secs_f64()
                    ),
                    Err(e) => format!("saving state {tag} failed: {e}"),
                },
            );
            saved.map(|()| {
                PrimeOutcome::Saved(Primed {
                    transcript: log.clone(),
                    to_state,
                    save: save_started.elapsed(),
                    console: reached.console,
                    failed_units: failed_units(&boot.from, &reached),
                })
            })
        }
        // A run the runner made is never skipped; counted as not reaching the state.
        Verdict::Fail(_) | Verdict::Skip(_) | Verdict::Error(_) => {
            if keep_failed {
                // The failed boot is the shared cache entry's, not a scenario's.
                let _ = transcript.note(
                    started.elapsed(),
                    "--keep-failed: this machine is not kept (it is the snapshot cache's shared \
                     boot to a start state, not a scenario's run); `harness console --image` \
                     boots the image again, and --attach-on-failure hands this machine over",
                );
            }
            Ok(PrimeOutcome::BootFailed(Box::new(FailedBoot {
                output: reached,
                transcript: log,
            })))
        }
    };
    drop(console);
    let _ = target.stop(&mut NoLog).await;
    let _ = transcript.finish();
    outcome
}

/// The units that failed on the way to a state: in the boot its base state was saved in, then
/// in this run, at most [`MAX_FAILED_UNITS`] of them.
fn failed_units(from: &PrimeStart, reached: &RunOutput) -> Vec<String> {
    let earlier = match from {
        PrimeStart::PowerOn => &[][..],
        PrimeStart::Snapshot { failed_units, .. } => failed_units,
    };
    let mut units: Vec<String> = earlier.iter().chain(&reached.failed_units).cloned().collect();
    units.truncate(MAX_FAILED_UNITS + 1);
    units
}

/// The scenario a priming run walks to reach a saved state: the saving scenario's start and
/// its steps before `save_state`, watched for its fatal patterns, with its network.
fn saved_state_scenario(recipe: &SavedRecipe, timeout: Duration) -> Scenario {
    let mut scenario = state_scenario(
        &recipe.scenario,
        recipe.base.clone(),
        recipe.steps.clone(),
        timeout,
    );
    scenario.source = recipe.source.clone();
    scenario.fatal = recipe.fatal.clone();
    scenario.network = recipe.network.clone();
    scenario
}

fn state_scenario(
    name: &str,
    start: Start,
    steps: Vec<crate::scenario::Step>,
    timeout: Duration,
) -> Scenario {
    Scenario {
        name: name.to_owned(),
        description: None,
        timeout,
        start,
        real_time_boot: false,
        fatal: Vec::new(),
        steps,
        network: None,
        on_failure: Vec::new(),
        requires: Vec::new(),
        skip: None,
        source: PathBuf::from(name),
    }
}
