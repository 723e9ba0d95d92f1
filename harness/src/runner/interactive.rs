//! Handing a scenario's console to a person, as the NixOS test driver's `breakpoint()` and
//! openQA's pause on failure do: before a step (a `pause` step, `--pause-at`) and where a
//! scenario failed (`--attach-on-failure`), with the machine as it is. Leaving (Ctrl-]) lets
//! the run go on exactly as it would have: the verdict, the reports and the exit code do not
//! change. The transcript marks the interactive part; one console holds the terminal at a time
//! (scenarios running in parallel queue in the order they asked).

use std::str::FromStr;
use std::sync::Arc;

use tokio::time::Instant;

use super::outcome::{FailReason, Failure};
use super::session::Session;
use super::steps::{failed, StepResult};
use crate::scenario::{Action, Scenario};
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
    /// The run builds a state for the snapshot cache (a priming run): its pauses are skipped
    /// with a note, since what a person typed would be saved for every scenario that starts
    /// from the state; a failure is still handed over (a failed state is not saved).
    pub priming: bool,
    /// Keys typed before a hand-over go to it: `harness console --from`, whose hand-over is
    /// what the person typing waits for. Otherwise they are dropped (typed while a run boots,
    /// they were meant for no failure minutes later).
    pub keep_typed_ahead: bool,
}

impl Interaction {
    /// How a priming run hands its console over: at a failure only.
    pub fn for_priming(&self) -> Interaction {
        Interaction {
            pause_at: Vec::new(),
            priming: true,
            ..self.clone()
        }
    }
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

impl std::fmt::Display for PauseAt {
    /// As it was given: `N` or `SCENARIO:N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scenario {
            Some(name) => write!(f, "{name}:{}", self.step),
            None => write!(f, "{}", self.step),
        }
    }
}

/// What a person should know before `scenarios` run with `interaction`: pauses that will not
/// happen (no terminal for a `pause` step; a `--pause-at` naming no scenario of the run or a
/// step past a scenario's last).
pub fn interaction_warnings(interaction: &Interaction, scenarios: &[Scenario]) -> Vec<String> {
    let mut warnings = Vec::new();
    if interaction.terminal.is_none() {
        for scenario in scenarios {
            for (i, step) in scenario.steps.iter().enumerate() {
                if matches!(step.action, Action::Pause) {
                    warnings.push(format!(
                        "no terminal (stdin and stdout): the pause step of {} (step {}, {}) is ignored",
                        scenario.name,
                        i + 1,
                        step.location
                    ));
                }
            }
        }
        // --pause-at without a terminal is refused as a whole, where it is parsed.
        return warnings;
    }
    for at in &interaction.pause_at {
        let named: Vec<&Scenario> = scenarios
            .iter()
            .filter(|s| at.scenario.as_deref().is_none_or(|name| name == s.name))
            .collect();
        if named.is_empty() {
            let name = at.scenario.as_deref().unwrap_or_default();
            warnings.push(format!(
                "--pause-at {at}: no scenario of this run is named {name:?}; it never pauses"
            ));
        } else if named.iter().all(|s| s.steps.len() < at.step) {
            let most = named.iter().map(|s| s.steps.len()).max().unwrap_or(0);
            warnings.push(format!(
                "--pause-at {at}: step {} is past the last step ({most} at most); it never pauses",
                at.step
            ));
        } else if let (Some(_), [scenario]) = (&at.scenario, named.as_slice()) {
            if let Some((index, state)) = scenario
                .save_state_step()
                .filter(|(index, _)| at.step <= index + 1)
            {
                warnings.push(format!(
                    "--pause-at {at}: with a snapshot cache, steps 1 to {} of {} run only while \
                     its state {state:?} is built, and a person's keys must not be saved in it: \
                     it never pauses (--no-snapshots runs them in the scenario)",
                    index + 1,
                    scenario.name
                ));
            }
        }
    }
    warnings
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
    if interaction.priming {
        s.note(&format!(
            "{why}: skipped while building a saved state (what was typed would be saved for \
             every scenario that starts from it); put the pause after `save_state`"
        ));
        return Ok(());
    }
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
    // From here until the person leaves, the console is theirs: queueing for the terminal
    // behind another scenario's hand-over included.
    let handed = Instant::now();
    let mut hold = if interaction.keep_typed_ahead {
        terminal.hold().await
    } else {
        terminal.hold_fresh().await
    };
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
    s.add_person_time(handed.elapsed());
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

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(text, std::path::Path::new("s.toml")).unwrap()
    }

    fn at_terminal(pause_at: &[&str]) -> Interaction {
        Interaction {
            terminal: Some(Terminal::shared()),
            pause_at: pause_at.iter().map(|at| at.parse().unwrap()).collect(),
            ..Interaction::default()
        }
    }

    #[test]
    fn pause_at_a_step_that_runs_is_not_warned_of() {
        let two_steps = scenario("name = \"a\"\n[[steps]]\nexpect = \"x\"\n[[steps]]\nexpect = \"y\"\n");
        assert_eq!(
            interaction_warnings(&at_terminal(&["2", "a:1"]), &[two_steps]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn pause_at_that_can_never_pause_is_warned_of_with_the_reason() {
        let saver = scenario(
            "name = \"saver\"\nstart = \"login\"\n[[steps]]\nrun = \"true\"\n\
             [[steps]]\nsave_state = \"here\"\n[[steps]]\nrun = \"true\"\n",
        );
        let warnings = interaction_warnings(&at_terminal(&["other:1", "4", "saver:2", "saver:3"]), &[saver]);
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].starts_with("--pause-at other:1: no scenario of this run is named \"other\""));
        assert!(warnings[1].starts_with("--pause-at 4: step 4 is past the last step (3 at most)"));
        assert!(warnings[2].starts_with("--pause-at saver:2: with a snapshot cache, steps 1 to 2 of saver"));
    }

    #[test]
    fn without_a_terminal_each_pause_step_is_warned_of() {
        let paused = scenario("name = \"p\"\n[[steps]]\nexpect = \"x\"\n[[steps]]\npause = true\n");
        let warnings = interaction_warnings(&Interaction::default(), &[paused]);
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("no terminal (stdin and stdout): the pause step of p (step 2, s.toml:"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn pause_at_refuses_what_is_not_a_step_number() {
        for bad in ["0", "x", ":2", "shell:", "-1", ""] {
            assert!(bad.parse::<PauseAt>().is_err(), "{bad}");
        }
    }
}
