//! The start-up strategy: brings any target to the state a scenario starts from, runs the
//! scenario there, stops the target and makes the scenario's complete result.
//!
//! - `start = "power-on"`: the target is started (QEMU spawned, a board powered on) and the
//!   runner sees the whole boot.
//! - `start = "login"`, `"uboot"` or a saved state's name on a target with snapshots (QEMU):
//!   restored from that state's snapshot, built first by a priming run if needed; a restore
//!   that does not reach the state discards the snapshot and tries once more with a rebuilt
//!   one (see [`super::snapshots`]). A scenario with a `save_state` step starts from its own
//!   state's snapshot and runs the steps after it.
//! - A saved state's name on a target without snapshots (a board): the saving scenario's
//!   start and steps are done again first.
//! - `start = "login"` on a target that may be running (a board): one already at a shell is
//!   kept as it is; otherwise it is started and the runner logs in with the scenario's recipe.

use std::time::Duration;

use super::recording::{Recording, TargetLog};
use super::shell_probe::{at_shell, SHELL_PROBE};
use super::snapshots::from_snapshot;
use super::{Suite, SuiteError};
use crate::runner::{
    self, ConsoleAt, FailReason, Failure, Observer, Origin, RunContext, RunOutput, ScenarioResult, Stage,
    StartReached, Verdict,
};
use crate::scenario::{Scenario, Start};
use crate::snapshot::kept::{self, ImageIdentity, KeepFailed, KeptMeta, KeptStates, KEPT_TAG};
use crate::snapshot::StateRecipe;
use crate::targets::{Console, PortError, Snapshots, StartFailure, Target, TargetError};

/// Runs `scenario` on a fresh target of `suite` and judges it. The target is stopped when this
/// returns, and also if the future is dropped part-way (Ctrl-C, SIGTERM, panic).
pub async fn run_one(
    suite: &Suite,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let mut target = suite.target.open();
    let context = suite.run_context();
    let spec = scenario
        .network
        .as_ref()
        .or_else(|| scenario.start.inherited_network());
    if let (Some(spec), Some(network)) = (spec, target.network()) {
        network.attach(spec);
    }
    if suite.snapshots.is_some() && target.snapshots().is_some() {
        // A scenario that saves a state starts from it too: its steps before `save_state` are
        // what the snapshot's priming run did.
        if let Some(own) = scenario.saved_recipe() {
            if own.base == Start::PowerOn || StateRecipe::of(&own.base).is_some() {
                let steps_done = scenario.save_state_step().map_or(0, |(index, _)| index + 1);
                let state = StateRecipe::Saved(&own);
                return from_snapshot(
                    suite,
                    &mut *target,
                    state,
                    steps_done,
                    scenario,
                    &context,
                    observer,
                )
                .await;
            }
        }
        if let Some(state) = StateRecipe::of(&scenario.start) {
            return from_snapshot(suite, &mut *target, state, 0, scenario, &context, observer).await;
        }
    }
    from_power_on(suite, &mut *target, scenario, &context, observer).await
}

/// Starts the target and runs the scenario from power-on, or on a board already at a shell.
pub(super) async fn from_power_on(
    suite: &Suite,
    target: &mut dyn Target,
    scenario: &Scenario,
    context: &RunContext,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let mut recording = Recording::start(&suite.transcripts, scenario)?;
    recording.note(&target.describe());
    let mut attached = None;
    if matches!(scenario.start, Start::Login(_)) {
        let looked = match target.attach() {
            Some(attach) => Some(attach.await),
            None => None,
        };
        if let Some(looked) = looked {
            match looked {
                Ok(mut console) => {
                    if at_shell(&mut console, SHELL_PROBE).await {
                        recording.note(
                            "start = \"login\": the board answered at a shell; kept as it is, no power switched",
                        );
                        let at = ConsoleAt::RESTORED_SHELL;
                        let out =
                            judge(target, console, at, scenario, context, &mut recording, observer).await;
                        return recording.finish(scenario, out, Origin::PowerOn, Vec::new());
                    }
                    attached = Some(console);
                }
                // Not there yet: starting the target powers it on first.
                Err(TargetError::Port(PortError::Absent(_))) => {}
                Err(e) => return Err(recording.abandon(e.into())),
            }
        }
    }
    let mut log = TargetLog {
        recording: &mut recording,
        observer: &mut *observer,
        at: Duration::ZERO,
    };
    let started = target.start(attached, &mut log).await;
    let console = match started {
        Ok(console) => console,
        Err(StartFailure::Error(e)) => return Err(recording.abandon(e.into())),
        Err(StartFailure::NotUp { expected, detail }) => {
            recording.note(&format!("FAIL: {detail}"));
            let out = setup_failure(&expected, detail);
            let out = stop(target, out, &mut recording, observer).await;
            return recording.finish(scenario, out, Origin::PowerOn, Vec::new());
        }
    };
    let out = judge(
        target,
        console,
        ConsoleAt::PowerOn,
        scenario,
        context,
        &mut recording,
        observer,
    )
    .await;
    recording.finish(scenario, out, Origin::PowerOn, Vec::new())
}

/// The one judge step of every target: runs the scenario on the started target's console,
/// then stops the target.
pub(super) async fn judge(
    target: &mut dyn Target,
    mut console: Console,
    at: ConsoleAt,
    scenario: &Scenario,
    context: &RunContext,
    recording: &mut Recording,
    observer: &mut dyn Observer,
) -> RunOutput {
    // Where host steps reach the target is known only now that it runs (its forwards' ports).
    let mut context = context.clone();
    if let Some(network) = target.network() {
        context.net = network.access();
        let mut shown: Vec<String> = context
            .net
            .variables()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if let Ok(lan) = &context.net.lan {
            shown.push(format!("LAN namespace {}", lan.namespace));
        }
        if !shown.is_empty() {
            recording.note(&format!("network: {}", shown.join(" ")));
        }
    }
    let out = runner::run_scenario_at(
        at,
        scenario,
        &mut console,
        Some(&mut *target),
        &mut recording.transcript,
        &context,
        observer,
    )
    .await;
    crate::debug_timing::mark("steps done");
    if let (Verdict::Fail(failure), Some(keep)) = (&out.verdict, &context.keep_failed) {
        // A restore that did not reach its state is retried from a rebuilt entry, not kept.
        let restore_failed = matches!(at, ConsoleAt::Restored { .. }) && out.start == StartReached::No;
        if !restore_failed {
            if let Some(snapshots) = target.snapshots() {
                keep_failed_machine(snapshots, keep, scenario, failure, recording).await;
            }
        }
    }
    drop(console);
    stop(target, out, recording, observer).await
}

/// Saves the failed machine as the kept state `failed-<scenario>` (`--keep-failed`), saying so
/// in the transcript; a machine that cannot be kept is noted, and the verdict stays as it is.
async fn keep_failed_machine(
    snapshots: &mut dyn Snapshots,
    keep: &KeepFailed,
    scenario: &Scenario,
    failure: &Failure,
    recording: &mut Recording,
) {
    let name = KeptStates::name_for(&scenario.name);
    let image = snapshots.spec().image;
    let kept = async {
        let identity = ImageIdentity::of(&image).map_err(|e| format!("{}: {e}", image.display()))?;
        let staging = keep.states.staging().map_err(|e| e.to_string())?;
        let disks = snapshots
            .save_into(KEPT_TAG, staging.path())
            .await
            .map_err(|e| e.to_string())?;
        let reason = failure.reason.to_string();
        let meta = KeptMeta {
            name: name.clone(),
            scenario: scenario.name.clone(),
            failure: format!("{}: {}", failure.place(), reason.lines().next().unwrap_or("")),
            image: identity,
            kept_at: kept::now_secs(),
            disks: disks.len(),
            network: scenario
                .network
                .as_ref()
                .or_else(|| scenario.start.inherited_network())
                .map(|spec| spec.forwards.iter().map(ToString::to_string).collect()),
        };
        keep.states.commit(staging, &meta).map_err(|e| e.to_string())?;
        keep.states.evict(keep.keep).map_err(|e| e.to_string())
    };
    match kept.await {
        Ok(evicted) => {
            recording.note(&format!(
                "--keep-failed: the failed machine is kept as state {name} in {}; open it with \
                 `harness console --image {} --from {name}`",
                keep.states.dir().display(),
                image.display()
            ));
            if !evicted.is_empty() {
                recording.note(&format!(
                    "--keep-failed: the oldest kept states were removed ({}), {} are kept",
                    evicted.join(", "),
                    keep.keep
                ));
            }
        }
        Err(e) => recording.note(&format!(
            "--keep-failed: the failed machine could not be kept: {e}"
        )),
    }
}

/// Stops the target. A target that cannot be stopped (a board whose power-off command failed)
/// fails a run that passed: the next run would find the board in an unknown state.
async fn stop(
    target: &mut dyn Target,
    out: RunOutput,
    recording: &mut Recording,
    observer: &mut dyn Observer,
) -> RunOutput {
    let mut log = TargetLog {
        recording: &mut *recording,
        observer,
        at: out.duration,
    };
    let stopped = target.stop(&mut log).await;
    match stopped {
        Ok(()) => out,
        Err(e) => {
            recording.note_at(out.duration, &format!("FAIL: {e}"));
            match out.verdict {
                Verdict::Pass => RunOutput {
                    verdict: setup_failure("power the board off", e.to_string()).verdict,
                    ..out
                },
                Verdict::Fail(_) | Verdict::Skip(_) | Verdict::Error(_) => out,
            }
        }
    }
}

/// An outcome for a run that failed before its first step.
fn setup_failure(expected: &str, detail: String) -> RunOutput {
    let failure = Failure {
        step: 0,
        step_description: String::new(),
        expected: expected.to_owned(),
        reason: FailReason::Setup { detail },
        at: Duration::ZERO,
        stage: Stage::Uboot,
        hint: None,
    };
    RunOutput {
        verdict: Verdict::Fail(failure),
        start: StartReached::No,
        stages: Vec::new(),
        last_lines: Vec::new(),
        failed_units: Vec::new(),
        duration: Duration::ZERO,
        artifacts: Vec::new(),
        console: crate::runner::ConsoleState::Booting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Quiet;
    use crate::targets::test_console::FakeTarget;

    fn passed() -> RunOutput {
        RunOutput {
            verdict: Verdict::Pass,
            start: StartReached::Yes,
            stages: Vec::new(),
            last_lines: Vec::new(),
            failed_units: Vec::new(),
            duration: Duration::from_secs(9),
            artifacts: Vec::new(),
            console: crate::runner::ConsoleState::Shell,
        }
    }

    fn recording(dir: &std::path::Path) -> Recording {
        let text = "name = \"s\"\ndescription = \"d\"\n[[steps]]\nexpect = \"x\"\n";
        let scenario = crate::scenario::parse(text, std::path::Path::new("s.toml")).unwrap();
        Recording::start(dir, &scenario).unwrap()
    }

    #[tokio::test]
    async fn a_target_that_cannot_be_stopped_fails_a_run_that_passed() {
        let dir = tempfile::tempdir().unwrap();
        let mut recording = recording(dir.path());
        let mut target = FakeTarget {
            stop_error: Some("PLUG_TOKEN".to_owned()),
            ..Default::default()
        };
        let out = stop(&mut target, passed(), &mut recording, &mut Quiet).await;
        let Verdict::Fail(failure) = out.verdict else {
            panic!("a board left powered passed");
        };
        assert_eq!(failure.expected, "power the board off");
        assert_eq!(
            failure.reason.to_string(),
            "power off command `relay ${PLUG_TOKEN}` needs environment variable PLUG_TOKEN, which is not set"
        );
    }

    #[tokio::test]
    async fn a_target_that_stops_leaves_the_verdict_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut recording = recording(dir.path());
        let out = stop(&mut FakeTarget::default(), passed(), &mut recording, &mut Quiet).await;
        assert!(matches!(out.verdict, Verdict::Pass));
    }
}
