//! Bringing the console to the state a scenario's first step starts from: from power-on by
//! booting (and logging in, stopping U-Boot, or replaying a saved state's steps), or, on a
//! restored snapshot, by making the restored console show that it answers.

use tokio::time::Instant;

use super::session::{ConsoleState, Session};
use super::steps::{self, failed, StepFailure};
use super::{fail, login_with, ConsoleAt, FailReason, Failure, RunContext, RESTORE_CONFIRM};
use crate::console::Pattern;
use crate::scenario::{Action, SavedRecipe, SavedStart, Scenario, Start};

/// What reaching `start` from power-on performs before the scenario's own steps, for deciding
/// which countdowns may be skipped: stopping U-Boot for `uboot`, a saved state's replayed steps.
pub(super) fn actions_before_steps(start: &Start) -> Vec<&Action> {
    match start {
        Start::PowerOn | Start::Login(_) => Vec::new(),
        Start::Uboot => vec![&Action::InterruptAutoboot],
        Start::Saved(SavedStart {
            recipe: Some(recipe), ..
        }) => {
            let mut actions = actions_before_steps(&recipe.base);
            actions.extend(recipe.steps.iter().map(|s| &s.action));
            actions
        }
        Start::Saved(SavedStart { recipe: None, .. }) => Vec::new(),
    }
}

/// Brings the console to where the scenario's first step starts.
pub(super) async fn reach_start(
    session: &mut Session<'_>,
    scenario: &Scenario,
    at: ConsoleAt,
    ctx: &RunContext,
    scenario_deadline: Instant,
) -> Result<(), Failure> {
    let word = scenario.start.word().to_owned();
    let (result, description, deadline) = match at {
        ConsoleAt::PowerOn => {
            let result = from_power_on(session, &scenario.start, ctx, scenario_deadline).await;
            let description = match &scenario.start {
                Start::Login(recipe) => format!("start = \"login\" (login as {})", recipe.user),
                _ => format!("start = {word:?}"),
            };
            (result, description, scenario_deadline)
        }
        ConsoleAt::Restored { console, .. } => {
            let deadline = scenario_deadline.min(Instant::now() + RESTORE_CONFIRM);
            let result = confirm(session, console, deadline).await;
            let what = match console {
                ConsoleState::Shell => "restored shell",
                ConsoleState::UbootPrompt => "restored U-Boot prompt",
                ConsoleState::Booting => "restored state",
            };
            (result, format!("start = {word:?} ({what})"), deadline)
        }
    };
    result.map_err(|failure| Failure {
        step: 0,
        step_description: format!("{description} ({})", scenario.source.display()),
        ..fail(session, scenario, failure, deadline == scenario_deadline)
    })
}

/// From power-on to `start`: nothing for power-on, a login, U-Boot stopped, or a saved state's
/// recipe done again (its base first).
async fn from_power_on(
    session: &mut Session<'_>,
    start: &Start,
    ctx: &RunContext,
    deadline: Instant,
) -> Result<(), StepFailure> {
    match start {
        Start::PowerOn => Ok(()),
        Start::Login(recipe) => {
            session.note(&format!(
                "start = \"login\": booting the default entry, then logging in as {}",
                recipe.user
            ));
            login_with(session, recipe, ctx, deadline).await
        }
        Start::Uboot => {
            session.note("start = \"uboot\": stopping U-Boot's autoboot at its prompt");
            steps::perform(session, &Action::InterruptAutoboot, ctx, deadline, 0).await
        }
        // Resolved when the scenarios are loaded: unresolved here is the harness's fault.
        Start::Saved(SavedStart { name, recipe: None }) => Err(StepFailure {
            expected: format!("start state {name:?}"),
            reason: FailReason::CouldNotRun {
                detail: format!(
                    "no scenario run with this one saves a state named {name:?} (a step `save_state = {name:?}`): \
                     give its file too"
                ),
            },
        }),
        Start::Saved(SavedStart {
            recipe: Some(recipe),
            ..
        }) => replay(session, recipe, ctx, deadline).await,
    }
}

/// Reaches a saved state without its snapshot (on a board, or with snapshots off): the saving
/// scenario's start, then its steps before `save_state`, each within the scenario's time.
async fn replay(
    session: &mut Session<'_>,
    recipe: &SavedRecipe,
    ctx: &RunContext,
    deadline: Instant,
) -> Result<(), StepFailure> {
    Box::pin(from_power_on(session, &recipe.base, ctx, deadline)).await?;
    session.note(&format!(
        "start = {:?}: replaying the {} step(s) of {} ({}) before its save_state",
        recipe.name,
        recipe.steps.len(),
        recipe.scenario,
        recipe.source.display()
    ));
    for (i, step) in recipe.steps.iter().enumerate() {
        let step_deadline = match step.timeout {
            Some(t) => deadline.min(Instant::now() + t),
            None => deadline,
        };
        session.note(&format!(
            "{} step {}: {}",
            recipe.scenario,
            i + 1,
            step.describe()
        ));
        steps::perform(session, &step.action, ctx, step_deadline, 0)
            .await
            .map_err(|failure| StepFailure {
                expected: format!(
                    "{} (step {} of {}, {})",
                    failure.expected,
                    i + 1,
                    recipe.scenario,
                    step.location
                ),
                ..failure
            })?;
    }
    Ok(())
}

/// Makes a restored console show the state it was saved in: a shell or U-Boot answers an
/// empty line with its prompt; anywhere else (a boot saved half-way) there is nothing to ask,
/// and the steps find out.
async fn confirm(
    session: &mut Session<'_>,
    console: ConsoleState,
    deadline: Instant,
) -> Result<(), StepFailure> {
    match console {
        ConsoleState::Shell => steps::confirm_shell(session, deadline).await,
        ConsoleState::UbootPrompt => confirm_uboot(session, deadline).await,
        ConsoleState::Booting => {
            session.note("restored a state saved while booting: no prompt to confirm it by");
            Ok(())
        }
    }
}

/// Makes a restored U-Boot show itself: an empty command line must bring back its prompt.
pub(super) async fn confirm_uboot(session: &mut Session<'_>, deadline: Instant) -> Result<(), StepFailure> {
    session.discard_retained();
    session.send(b"\r", b"\r").await.map_err(failed("send"))?;
    session
        .wait_for(&[Pattern::literal(session.uboot_prompt.clone())], deadline)
        .await
        .map_err(failed("U-Boot's prompt after restoring the snapshot"))?;
    session.state = ConsoleState::UbootPrompt;
    Ok(())
}
