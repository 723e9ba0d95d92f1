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
use super::{run_one, Suite, SuiteError};
use crate::runner::ScenarioResult;
use crate::scenario::{Scenario, Start};

/// How a suite run ended.
pub struct SuiteOutcome {
    /// Every result, in the scenarios' order (power-on ones first where they ran first).
    pub results: Vec<ScenarioResult>,
    /// What stopped the run before a verdict on every scenario (QEMU that cannot start, a
    /// port in use); the results of what ran before are still there.
    pub stopped: Option<SuiteError>,
    /// Reports that could not be written.
    pub report_errors: Vec<ReportError>,
}

/// Runs `scenarios` on `suite`, reporting to `reporters`.
pub async fn run_suite(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    jobs: usize,
    reporters: Reporters,
) -> SuiteOutcome {
    let reporters = Rc::new(RefCell::new(reporters));
    let emit = |kind| reporters.borrow_mut().emit(kind);
    let against = suite.target.against().to_owned();
    emit(SuiteEventKind::SuiteStarted {
        against: against.clone(),
        scenarios: scenarios.len(),
    });
    let mut results = Vec::new();
    let scenarios = skip_what_does_not_apply(scenarios, &reporters, &mut results);
    let (side_by_side, in_turn): (Vec<Scenario>, Vec<Scenario>) = if suite.target.parallel_login_starts() {
        scenarios
            .into_iter()
            .partition(|s| s.start.from_snapshot() || s.save_state_step().is_some())
    } else {
        (Vec::new(), scenarios)
    };
    let mut stopped = None;
    for scenario in &in_turn {
        match run_reported(suite, scenario, &reporters).await {
            Ok(result) => results.push(result),
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    if stopped.is_none() && !side_by_side.is_empty() {
        let how = if suite.starts_from_snapshots() {
            "start from a snapshot of their start state (one per state)"
        } else {
            "with a start state boot cold each (--no-snapshots)"
        };
        emit(SuiteEventKind::Note {
            text: format!("{} scenario(s) {how}, {jobs} at a time", side_by_side.len()),
        });
        let (mut more, error) = run_side_by_side(suite, side_by_side, jobs, &reporters).await;
        results.append(&mut more);
        stopped = error;
    }
    emit(SuiteEventKind::SuiteFinished {
        against,
        results: results.clone(),
        stopped: stopped.as_ref().map(ToString::to_string),
    });
    let report_errors = reporters.borrow_mut().take_errors();
    SuiteOutcome {
        results,
        stopped,
        report_errors,
    }
}

/// Reports the scenarios that do not apply to the image ([`Scenario::skip`]), and those that
/// start from a state only a skipped scenario saves, as skipped, adding their results to
/// `results`; returns the others.
fn skip_what_does_not_apply(
    scenarios: Vec<Scenario>,
    reporters: &Rc<RefCell<Reporters>>,
    results: &mut Vec<ScenarioResult>,
) -> Vec<Scenario> {
    let skipped_savers: Vec<(String, String)> = scenarios
        .iter()
        .filter(|s| s.skip.is_some())
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
        let Some(reason) = scenario.skip.clone().or(saver_skipped) else {
            run.push(scenario);
            continue;
        };
        let result = ScenarioResult::skip(&scenario.name, &scenario.source, &reason);
        let mut reporters = reporters.borrow_mut();
        reporters.emit(SuiteEventKind::ScenarioStarted {
            scenario: scenario.name.clone(),
        });
        reporters.emit(SuiteEventKind::ScenarioFinished {
            result: Box::new(result.clone()),
        });
        results.push(result);
    }
    run
}

/// Runs one scenario between its started and finished events.
async fn run_reported(
    suite: &Suite,
    scenario: &Scenario,
    reporters: &Rc<RefCell<Reporters>>,
) -> Result<ScenarioResult, SuiteError> {
    reporters.borrow_mut().emit(SuiteEventKind::ScenarioStarted {
        scenario: scenario.name.clone(),
    });
    let mut events = ScenarioEvents::new(&scenario.name, reporters.clone());
    let result = run_one(suite, scenario, &mut events).await?;
    reporters.borrow_mut().emit(SuiteEventKind::ScenarioFinished {
        result: Box::new(result.clone()),
    });
    Ok(result)
}

/// Runs `scenarios` `jobs` at a time. The first to need the snapshot builds it and the others
/// wait for it (see [`super::StartSnapshots::checkout`]). On an error the scenarios
/// still running are stopped; the results so far come back with it.
async fn run_side_by_side(
    suite: &Suite,
    scenarios: Vec<Scenario>,
    jobs: usize,
    reporters: &Rc<RefCell<Reporters>>,
) -> (Vec<ScenarioResult>, Option<SuiteError>) {
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
                    (index, run_reported(&suite, &scenario, &reporters).await)
                });
            }
            let mut results: Vec<Option<ScenarioResult>> = vec![None; count];
            let mut error = None;
            while let Some(joined) = tasks.join_next().await {
                let (index, result) = joined.expect("a scenario task panicked");
                match result {
                    Ok(result) => results[index] = Some(result),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            (results.into_iter().flatten().collect(), error)
        })
        .await
}
