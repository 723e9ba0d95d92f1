//! The order scenarios run in. On a target that can run several at once (QEMU), the
//! scenarios that start from a snapshot (`start = "login"`, `"uboot"` or a saved state, and
//! those that save one) come after the power-on ones and run side by side, `jobs` at a time,
//! sharing one snapshot per start state; on a board every scenario runs in turn. Results come
//! back in the scenarios' order, each reported as it finishes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::events::{Reporters, ScenarioEvents, SuiteEventKind};
use super::ReportError;
use super::{retry, run_one, Suite};
use crate::runner::{self, ScenarioResult};
use crate::scenario::{Action, Scenario, Start};

/// How a suite run ended.
pub struct SuiteOutcome {
    /// Every result, in the scenarios' order (power-on ones first where they ran first).
    pub results: Vec<ScenarioResult>,
    /// Reports that could not be written.
    pub report_errors: Vec<ReportError>,
}

/// Runs `scenarios` on `suite`, reporting to `reporters`; a scenario that fails is run again
/// up to `retries` times.
pub async fn run_suite(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    jobs: usize,
    retries: u32,
    reporters: Reporters,
) -> SuiteOutcome {
    run_suite_with(suite, Vec::new(), scenarios, jobs, retries, reporters).await
}

/// [`run_suite`] with `unrun` reported first: results of what could not even be read (a bad
/// scenario file), each an error or a skip of its own, so that the report counts it.
pub async fn run_suite_with(
    suite: &Suite,
    unrun: Vec<ScenarioResult>,
    scenarios: Vec<Scenario>,
    jobs: usize,
    retries: u32,
    reporters: Reporters,
) -> SuiteOutcome {
    let reporters = Rc::new(RefCell::new(reporters));
    let emit = |kind| reporters.borrow_mut().emit(kind);
    let against = suite.target.against().to_owned();
    emit(SuiteEventKind::SuiteStarted {
        against: against.clone(),
        scenarios: unrun.len() + scenarios.len(),
    });
    let mut results = Vec::new();
    for result in unrun {
        report_not_run(result, &reporters, &mut results);
    }
    let scenarios = skip_what_does_not_apply(suite, scenarios, &reporters, &mut results);
    let scenarios = report_what_cannot_run(suite, scenarios, &reporters, &mut results);
    let (side_by_side, in_turn): (Vec<Scenario>, Vec<Scenario>) = if suite.target.parallel_login_starts() {
        scenarios
            .into_iter()
            .partition(|s| s.start.from_snapshot() || s.save_state_step().is_some())
    } else {
        (Vec::new(), scenarios)
    };
    // A scenario the harness cannot run (QEMU that does not start, a cache it cannot write) is
    // a result of its own, an error; the others still run.
    for scenario in &in_turn {
        results.push(run_reported(suite, scenario, retries, &reporters).await);
    }
    if !side_by_side.is_empty() {
        let how = if suite.starts_from_snapshots() {
            "start from a snapshot of their start state (one per state)"
        } else {
            "with a start state boot cold each (--no-snapshots)"
        };
        emit(SuiteEventKind::Note {
            text: format!("{} scenario(s) {how}, {jobs} at a time", side_by_side.len()),
        });
        results.append(&mut run_side_by_side(suite, side_by_side, jobs, retries, &reporters).await);
    }
    finish(against, results, &reporters)
}

/// Reports a suite none of whose scenarios could run (its target could not be made): each of
/// `unrun` as started and finished at once, between the suite's start and end against
/// `against`. Every report is written as for a run, so that none is left out or stale.
pub fn report_unrun(
    against: &std::path::Path,
    unrun: Vec<ScenarioResult>,
    reporters: Reporters,
) -> SuiteOutcome {
    let reporters = Rc::new(RefCell::new(reporters));
    let emit = |kind| reporters.borrow_mut().emit(kind);
    emit(SuiteEventKind::SuiteStarted {
        against: against.to_owned(),
        scenarios: unrun.len(),
    });
    let mut results = Vec::new();
    for result in unrun {
        report_not_run(result, &reporters, &mut results);
    }
    finish(against.to_owned(), results, &reporters)
}

/// Ends the suite: its finished event with `results`, and the reports' errors.
fn finish(
    against: std::path::PathBuf,
    results: Vec<ScenarioResult>,
    reporters: &Rc<RefCell<Reporters>>,
) -> SuiteOutcome {
    reporters.borrow_mut().emit(SuiteEventKind::SuiteFinished {
        against,
        results: results.clone(),
    });
    let report_errors = reporters.borrow_mut().take_errors();
    SuiteOutcome {
        results,
        report_errors,
    }
}

/// Reports the scenarios that do not apply to the image ([`Scenario::skip`]), those with `lan`
/// steps where the target's LAN cannot be made (not root), and those that start from a state
/// only a skipped scenario saves, as skipped, adding their results to `results`; returns the
/// others.
fn skip_what_does_not_apply(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    reporters: &Rc<RefCell<Reporters>>,
    results: &mut Vec<ScenarioResult>,
) -> Vec<Scenario> {
    let lan_unavailable = suite.target.lan_unavailable();
    let lan_skipped = |scenario: &Scenario| {
        let uses_lan = scenario
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Lan { .. }));
        lan_unavailable
            .as_ref()
            .filter(|_| uses_lan)
            .map(|why| format!("has `lan` steps, which cannot run here: {why}"))
    };
    let skipped_savers: Vec<(String, String)> = scenarios
        .iter()
        .filter(|s| s.skip.is_some() || lan_skipped(s).is_some())
        .filter_map(|s| Some((s.save_state_step()?.1.to_owned(), s.name.clone())))
        .collect();
    let mut run = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let saver_skipped = match &scenario.start {
            Start::Saved(saved) => {
                skipped_savers
                    .iter()
                    .find(|(state, _)| *state == saved.name)
                    .map(|(state, saver)| {
                        format!("starts from state {state:?}, which {saver:?} saves and is skipped")
                    })
            }
            _ => None,
        };
        let Some(reason) = scenario
            .skip
            .clone()
            .or_else(|| lan_skipped(&scenario))
            .or(saver_skipped)
        else {
            run.push(scenario);
            continue;
        };
        report_not_run(
            ScenarioResult::skip(&scenario.name, &scenario.source, &reason),
            reporters,
            results,
        );
    }
    run
}

/// Reports the scenarios that cannot run because a password variable a login needs is not set
/// (before any of them boots: a boot it would waste) as errors, adding their results to
/// `results`; returns the others.
fn report_what_cannot_run(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    reporters: &Rc<RefCell<Reporters>>,
    results: &mut Vec<ScenarioResult>,
) -> Vec<Scenario> {
    let context = suite.run_context();
    let mut run = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let Some(failure) = runner::unset_password(&scenario, &context) else {
            run.push(scenario);
            continue;
        };
        let reason = format!("{}: {}", failure.step_description, failure.reason);
        report_not_run(
            ScenarioResult::could_not_run(&scenario.name, &scenario.source, &reason),
            reporters,
            results,
        );
    }
    run
}

/// Reports `result`, of a scenario that did not run, as started and finished at once.
fn report_not_run(
    result: ScenarioResult,
    reporters: &Rc<RefCell<Reporters>>,
    results: &mut Vec<ScenarioResult>,
) {
    let mut reporters = reporters.borrow_mut();
    reporters.emit(SuiteEventKind::ScenarioStarted {
        scenario: result.name.clone(),
    });
    reporters.emit(SuiteEventKind::ScenarioFinished {
        result: Box::new(result.clone()),
    });
    results.push(result);
}

/// Runs one scenario between its started and finished events; one the harness cannot run is
/// reported as an error result. A failed try is run again, up to `retries` times: each failed
/// try is reported (and its transcripts kept aside) before the next begins, and the result
/// is the last try's, holding the failed ones before it.
async fn run_reported(
    suite: &Suite,
    scenario: &Scenario,
    retries: u32,
    reporters: &Rc<RefCell<Reporters>>,
) -> ScenarioResult {
    reporters.borrow_mut().emit(SuiteEventKind::ScenarioStarted {
        scenario: scenario.name.clone(),
    });
    let mut events = ScenarioEvents::new(&scenario.name, reporters.clone());
    let mut earlier_tries = Vec::new();
    let mut result = loop {
        let result = match run_one(suite, scenario, &mut events).await {
            Ok(result) => result,
            Err(e) => ScenarioResult::could_not_run(&scenario.name, &scenario.source, &e.to_string()),
        };
        // Only a failure is tried again: a scenario the harness could not run would not run
        // the next time either.
        if !result.failed() || earlier_tries.len() >= retries as usize {
            break result;
        }
        let failed = retry::set_aside(result, earlier_tries.len() + 1);
        reporters.borrow_mut().emit(SuiteEventKind::ScenarioRetried {
            result: Box::new(failed.clone()),
            try_number: earlier_tries.len() + 1,
        });
        earlier_tries.push(failed);
    };
    result.earlier_tries = earlier_tries;
    reporters.borrow_mut().emit(SuiteEventKind::ScenarioFinished {
        result: Box::new(result.clone()),
    });
    result
}

/// Runs `scenarios` `jobs` at a time. The first to need the snapshot builds it and the others
/// wait for it (see [`super::StartSnapshots::checkout`]). Results come back in the scenarios'
/// order.
async fn run_side_by_side(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    jobs: usize,
    retries: u32,
    reporters: &Rc<RefCell<Reporters>>,
) -> Vec<ScenarioResult> {
    let count = scenarios.len();
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    // The futures hold QEMU targets that are not Send; a LocalSet runs them on this thread,
    // where QEMU's parent-death signal belongs. Dropping the set (Ctrl-C) drops every task,
    // and with it every QEMU.
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, scenario) in scenarios.into_iter().enumerate() {
                let suite = suite.clone();
                let slots = slots.clone();
                let reporters = reporters.clone();
                tasks.spawn_local(async move {
                    let _slot = slots.acquire_owned().await.expect("semaphore is never closed");
                    (index, run_reported(&suite, &scenario, retries, &reporters).await)
                });
            }
            let mut results: Vec<Option<ScenarioResult>> = vec![None; count];
            while let Some(joined) = tasks.join_next().await {
                let (index, result) = joined.expect("a scenario task panicked");
                results[index] = Some(result);
            }
            results.into_iter().flatten().collect()
        })
        .await
}
