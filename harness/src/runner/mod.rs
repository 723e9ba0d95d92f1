//! The scenario runner: walks a scenario's steps over a target's console, owns every timeout, and
//! turns what happened into a [`ScenarioResult`].

mod outcome;
mod session;
mod steps;
mod watch;

use std::time::Duration;

use tokio::time::Instant;

pub use outcome::{secs, FailReason, Failure, ScenarioResult, StageTiming, Verdict};
pub use session::{ConsoleState, Session};
pub use steps::menu_number;
pub use watch::{builtin_fatal, stage_markers, Watch, WatchKind, STAGES};

use crate::board::CharPacing;
use crate::console::{ByteStats, Transcript};
use crate::scenario::{Action, Password, Scenario};
use crate::target::Console;

/// Hears about a run as it happens (the CLI's progress line).
pub trait Observer {
    /// A boot stage began `at` after power-on.
    fn stage(&mut self, _name: &str, _at: Duration) {}
    /// Time passes; called at least every quarter second while the run waits.
    fn tick(&mut self, _elapsed: Duration) {}
    /// The operator must act (power-cycle a board by hand).
    fn ask_operator(&mut self, _request: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What the runner knows beyond the scenario itself.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// LABEL names of the image's extlinux.conf, in order, to turn `menu = "label"` into the
    /// number U-Boot's menu expects.
    pub menu_labels: Option<Vec<String>>,
    /// A password to use when a login step's variable is unset: only for the harness's own
    /// fixture images, whose password is public.
    pub fallback_password: Option<String>,
    /// How input is typed (the board profile's `char_delay`).
    pub pacing: CharPacing,
    /// The UART line rate, on a serial target: a failure whose console output was mostly
    /// unreadable then says it looks like a baud-rate mismatch and names it.
    pub baud: Option<u32>,
    /// The kernel console name a real board shows (its profile's `console`), on a serial target.
    pub board_console: Option<String>,
}

/// What a run produced: the verdict, stage timings, the console's last lines, and how long it
/// took from power-on.
pub type Outcome = (Verdict, Vec<StageTiming>, Vec<String>, Duration);

/// Runs `scenario` on a console that has just been powered on. The transcript receives every
/// byte whatever the verdict.
pub async fn run_scenario(
    scenario: &Scenario,
    console: &mut Console,
    transcript: &mut Transcript,
    ctx: &RunContext,
    observer: &mut dyn Observer,
) -> Outcome {
    let mut watches = builtin_fatal();
    watches.extend(scenario.fatal.iter().cloned().map(|pattern| Watch {
        kind: WatchKind::Fatal,
        pattern,
    }));
    watches.extend(stage_markers());
    let mut session = Session::new(console, transcript, observer, watches);
    session.pacing = ctx.pacing;
    session.board_console = ctx.board_console.clone();
    let scenario_deadline = Instant::now() + scenario.timeout;

    let mut verdict = missing_password(scenario, ctx).map_or(Verdict::Pass, Verdict::Fail);
    for (i, step) in scenario.steps.iter().enumerate() {
        if !verdict_passed(&verdict) {
            break;
        }
        if let Some(stage) = &step.stage {
            session.enter_stage(stage);
        }
        let deadline = match step.timeout {
            Some(t) => scenario_deadline.min(Instant::now() + t),
            None => scenario_deadline,
        };
        session.note(&format!("step {}: {}", i + 1, step.describe()));
        if let Err(failure) = steps::perform(&mut session, &step.action, ctx, deadline, i + 1).await {
            let at = session.elapsed();
            let reason = match failure.reason {
                // Say which limit ran out: the step's own or the whole scenario's.
                FailReason::Timeout { waited } if deadline == scenario_deadline => {
                    session.note(&format!("scenario timeout {} reached", secs(scenario.timeout)));
                    FailReason::Timeout { waited }
                }
                other => other,
            };
            session.note(&format!("FAIL: {reason}"));
            verdict = Verdict::Fail(Failure {
                step: i + 1,
                step_description: format!("{} ({})", step.describe(), step.location),
                expected: failure.expected,
                reason,
                at,
                stage: session.stage().to_owned(),
                hint: None,
            });
            break;
        }
    }
    session.record_notices();
    let end = session.elapsed();
    if let Verdict::Fail(failure) = &mut verdict {
        failure.hint = ctx
            .baud
            .and_then(|baud| baud_mismatch(session.byte_stats(), baud));
        if let Some(hint) = &failure.hint {
            session.note(hint);
        }
    }
    if verdict_passed(&verdict) {
        session.note("PASS");
    }
    (verdict, session.stage_timings(end), session.recent_lines(), end)
}

/// A login whose password variable is unset fails before the boot it would waste.
fn missing_password(scenario: &Scenario, ctx: &RunContext) -> Option<Failure> {
    scenario
        .steps
        .iter()
        .enumerate()
        .find_map(|(i, step)| match &step.action {
            Action::Login {
                user,
                password: Password::Env(name),
            } if std::env::var_os(name).is_none() && ctx.fallback_password.is_none() => Some(Failure {
                step: i + 1,
                step_description: format!("{} ({})", step.describe(), step.location),
                expected: format!("login as {user}"),
                reason: FailReason::Setup {
                    detail: format!(
                        "environment variable {name} is not set; it must hold the password of {user}"
                    ),
                },
                at: Duration::ZERO,
                stage: "uboot".to_owned(),
                hint: None,
            }),
            _ => None,
        })
}

/// Below this much output a ratio says little: a few bytes of line noise at power-on are normal.
const GARBLED_MIN_BYTES: u64 = 64;

/// Readable console text (colour codes, UTF-8 and all) has almost no unprintable bytes; at a
/// wrong line rate most bytes are.
const GARBLED_RATIO: f64 = 0.3;

/// What to say when the console printed mostly unreadable bytes at `baud`.
pub fn baud_mismatch(stats: ByteStats, baud: u32) -> Option<String> {
    (stats.total >= GARBLED_MIN_BYTES && stats.non_printable_ratio() >= GARBLED_RATIO).then(|| {
        format!(
            "console output looks like a baud-rate mismatch: {:.0}% of {} bytes were not printable at {baud} baud; check that the board's console runs at {baud} 8N1 (the board profile's `baud`)",
            stats.non_printable_ratio() * 100.0,
            stats.total
        )
    })
}

fn verdict_passed(v: &Verdict) -> bool {
    matches!(v, Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mostly_unprintable_output_is_called_a_baud_mismatch_naming_the_baud() {
        let stats = ByteStats {
            total: 1000,
            non_printable: 870,
        };
        assert_eq!(
            baud_mismatch(stats, 1_500_000).as_deref(),
            Some("console output looks like a baud-rate mismatch: 87% of 1000 bytes were not printable at 1500000 baud; check that the board's console runs at 1500000 8N1 (the board profile's `baud`)")
        );
    }

    #[test]
    fn readable_or_scant_output_is_not_a_baud_mismatch() {
        let readable = ByteStats {
            total: 100_000,
            non_printable: 12,
        };
        let scant = ByteStats {
            total: 10,
            non_printable: 10,
        };
        assert_eq!(baud_mismatch(readable, 115_200), None);
        assert_eq!(baud_mismatch(scant, 115_200), None);
    }

    #[test]
    fn silent_kernel_on_a_board_names_the_board_console_not_qemus() {
        let reason = FailReason::SilentAfterKernel {
            since: Duration::from_secs(45),
            console_args: Some("console=ttyAMA0,115200".to_owned()),
            board_console: Some("ttyS2 at 1500000 baud".to_owned()),
        };
        assert_eq!(
            reason.to_string(),
            "console silent for 45.0s after \"Starting kernel ...\"; the kernel was told `console=ttyAMA0,115200`, and this board's console is ttyS2 at 1500000 baud"
        );
    }
}
