//! Handing a scenario's console to a person, as the NixOS test driver's `breakpoint()` and
//! openQA's pause on failure do: before a step (a `pause` step, `--pause-at`) and where a
//! scenario failed (`--attach-on-failure`), with the machine as it is. Leaving (Ctrl-]) lets
//! the run go on exactly as it would have: the verdict, the reports and the exit code do not
//! change. The transcript marks the interactive part; one console holds the terminal at a time
//! (scenarios running in parallel queue in the order they asked).

use std::str::FromStr;
use std::sync::Arc;

use super::outcome::{FailReason, Failure};
use super::session::Session;
use super::steps::{failed, StepResult};
use crate::terminal::Terminal;

/// How a run hands consoles to a person.
#[derive(Clone, Debug, Default)]
pub struct Interaction {
    /// The terminal to hand consoles to; `None` without one (CI), when pauses are skipped with
    /// a note.
    pub terminal: Option<Arc<Terminal>>,
    /// Attach where a scenario fails.
    pub attach_on_failure: bool,
    /// Pause before these steps.
    pub pause_at: Vec<PauseAt>,
}

/// `--pause-at`: a step number, in every scenario or in the one named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseAt {
    /// The scenario's name; `None`: every scenario.
    pub scenario: Option<String>,
    /// The step's number, 1 for the first.
    pub step: usize,
}

impl PauseAt {
    /// Whether step `step` of scenario `scenario` is paused before.
    pub fn matches(&self, scenario: &str, step: usize) -> bool {
        self.step == step && self.scenario.as_deref().is_none_or(|name| name == scenario)
    }
}

impl FromStr for PauseAt {
    type Err = String;

    /// `N` or `SCENARIO:N`.
    fn from_str(text: &str) -> Result<PauseAt, String> {
        let (scenario, number) = match text.rsplit_once(':') {
            Some((name, number)) if !name.is_empty() => (Some(name.to_owned()), number),
            Some(_) => return Err(format!("{text:?}: a scenario name comes before the ':'")),
            None => (None, text),
        };
        match number.parse::<usize>() {
            Ok(step) if step >= 1 => Ok(PauseAt { scenario, step }),
            _ => Err(format!(
                "{text:?}: expected a step number (1 is the first step), or SCENARIO:NUMBER"
            )),
        }
    }
}

/// Pauses before step `step` when `--pause-at` names it.
pub async fn pause_at(
    s: &mut Session<'_>,
    interaction: &Interaction,
    scenario: &str,
    step: usize,
) -> StepResult {
    if interaction.pause_at.iter().any(|at| at.matches(scenario, step)) {
        let why = format!("{scenario}: paused before step {step} (--pause-at)");
        attach(s, interaction, &why).await?;
    }
    Ok(())
}

/// A `pause` step: hands the console over, or notes that nobody is there to take it.
pub async fn pause(s: &mut Session<'_>, interaction: &Interaction, step: usize) -> StepResult {
    let why = format!("{}: paused at step {step} (a pause step)", s.scenario);
    attach(s, interaction, &why).await
}

/// Hands the console over where the scenario failed, when asked to and the console is still
/// there.
pub async fn at_failure(s: &mut Session<'_>, interaction: &Interaction, scenario: &str, failure: &Failure) {
    if !interaction.attach_on_failure {
        return;
    }
    if matches!(failure.reason, FailReason::ConsoleClosed { .. }) {
        s.note("--attach-on-failure: the console closed with the failure; nothing to attach to");
        return;
    }
    let why = format!("{scenario}: {} failed: {}", failure.place(), failure.reason);
    // The verdict is made; a console that closes meanwhile changes nothing.
    let _ = attach(s, interaction, &why).await;
}

/// Waits for the terminal, tells the person where they are and how to leave, and hands them
/// the console until they do.
async fn attach(s: &mut Session<'_>, interaction: &Interaction, why: &str) -> StepResult {
    let Some(terminal) = &interaction.terminal else {
        s.note(&format!("{why}: no terminal to hand the console to; going on"));
        return Ok(());
    };
    let mut hold = terminal.hold().await;
    hold.say(&format!(
        "{why}. You are at its console; press Ctrl-] to leave and let the run go on."
    ));
    // Where the console is: its last line (a prompt, mostly), which came before the hand-over.
    if let Some(last) = s.recent_lines().last().filter(|line| !line.trim().is_empty()) {
        hold.show(last.as_bytes());
    }
    s.note(&format!(
        "interactive session begins ({why}): what follows was typed by a person, until it ends"
    ));
    let left = s.interact(&mut hold).await;
    let why_ended = match &left {
        Ok(why) => (*why).to_owned(),
        Err(e) => e.to_string(),
    };
    s.note(&format!("interactive session ends: {why_ended}"));
    hold.say(&format!("{why_ended}; the run goes on"));
    left.map(|_| ())
        .map_err(failed("the console after the interactive session"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_at_is_a_step_number_in_every_scenario_or_in_the_one_named() {
        let every: PauseAt = "3".parse().unwrap();
        assert!(every.matches("boot", 3) && every.matches("shell", 3) && !every.matches("boot", 2));
        let named: PauseAt = "shell-checks:2".parse().unwrap();
        assert!(named.matches("shell-checks", 2) && !named.matches("boot", 2));
    }

    #[test]
    fn pause_at_refuses_what_is_not_a_step_number() {
        for bad in ["0", "x", ":2", "shell:", "-1", ""] {
            assert!(bad.parse::<PauseAt>().is_err(), "{bad}");
        }
    }
}
