//! A failure as the page shows it: the step, what it expected, why it failed, and the console
//! around the failure with the fatal or last line marked.

use serde::Serialize;

use super::transcript::{LineKind, LogLine};
use crate::escape::{escape_console_line, escape_control, escape_keeping_lines};
use crate::runner::{FailReason, Failure, ScenarioResult};

/// Transcript lines shown before the marked line.
pub const BEFORE: usize = 30;
/// Transcript lines shown after the marked line.
pub const AFTER: usize = 10;

/// What the page shows of a failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureView {
    /// 1-based; 0 when the failure came before any step.
    pub step: usize,
    pub step_description: String,
    pub expected: String,
    pub reason: String,
    pub hint: Option<String>,
    /// Seconds from the target's start.
    pub at: f64,
    pub stage: String,
    /// The console around the failure.
    pub excerpt: Vec<LogLine>,
    /// Which line of `excerpt` is the fatal line, or the last console line before the failure.
    pub mark: Option<usize>,
}

/// The failure of `result`, if it failed, with its excerpt from `log` (the transcript), or
/// from the result's last console lines when the transcript could not be read.
pub fn failure_view(result: &ScenarioResult, log: &[LogLine]) -> Option<FailureView> {
    let crate::runner::Verdict::Fail(failure) = &result.verdict else {
        return None;
    };
    let at = failure.at.as_secs_f64();
    let fallback: Vec<LogLine>;
    let lines = if log.iter().any(|l| l.kind == LineKind::Out) {
        log
    } else {
        fallback = result
            .last_lines
            .iter()
            .map(|text| LogLine {
                t: at,
                kind: LineKind::Out,
                text: escape_console_line(text).into_owned(),
            })
            .collect();
        &fallback
    };
    let (excerpt, mark) = match marked_line(failure, lines) {
        Some(i) => {
            let from = i.saturating_sub(BEFORE);
            let to = (i + AFTER + 1).min(lines.len());
            (lines[from..to].to_vec(), Some(i - from))
        }
        None => (lines[lines.len().saturating_sub(BEFORE)..].to_vec(), None),
    };
    // The page draws a reason's line breaks (a command's output it quotes) and nothing else.
    Some(FailureView {
        step: failure.step,
        step_description: escape_control(&failure.step_description).into_owned(),
        expected: escape_control(&failure.expected).into_owned(),
        reason: escape_keeping_lines(&failure.reason.to_string()).into_owned(),
        hint: failure
            .hint
            .as_deref()
            .map(|hint| escape_keeping_lines(hint).into_owned()),
        at,
        stage: escape_control(&failure.stage.to_string()).into_owned(),
        excerpt,
        mark,
    })
}

/// The index of the line to mark: the fatal pattern's line as the transcript has it, else the
/// last console line at or before the failure.
fn marked_line(failure: &Failure, lines: &[LogLine]) -> Option<usize> {
    let output = |l: &&LogLine| l.kind == LineKind::Out;
    if let FailReason::Fatal { line, seen_at, .. } = &failure.reason {
        // The page's lines are escaped (see `transcript::log_lines`), so is the line looked for.
        let wanted = escape_console_line(line.trim());
        let wanted = wanted.as_ref();
        let seen = seen_at.as_secs_f64() + 0.001;
        let matches = |l: &LogLine| !wanted.is_empty() && l.text.contains(wanted);
        let before = lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| output(l) && l.t <= seen && matches(l));
        if let Some((i, _)) =
            before.or_else(|| lines.iter().enumerate().find(|(_, l)| output(l) && matches(l)))
        {
            return Some(i);
        }
    }
    let at = failure.at.as_secs_f64() + 0.001;
    lines
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| output(l) && l.t <= at)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::{Stage, Verdict};

    fn failed(reason: FailReason, at_ms: u64, last_lines: &[&str]) -> ScenarioResult {
        ScenarioResult {
            name: "boot-to-login".into(),
            source: "scenarios/boot-to-login.toml".into(),
            verdict: Verdict::Fail(Failure {
                step: 3,
                step_description: "expect \"<<< NixOS Stage 1 >>>\" (boot-to-login.toml:19:1)".into(),
                expected: "\"<<< NixOS Stage 1 >>>\"".into(),
                reason,
                at: Duration::from_millis(at_ms),
                stage: Stage::Kernel,
                hint: None,
            }),
            duration: Duration::from_millis(at_ms),
            stages: vec![],
            last_lines: last_lines.iter().map(|s| (*s).to_owned()).collect(),
            failed_units: vec![],
            transcript: vec![],
            origin: Default::default(),
            earlier_tries: Vec::new(),
        }
    }

    fn out(t: f64, text: &str) -> LogLine {
        LogLine {
            t,
            kind: LineKind::Out,
            text: text.into(),
        }
    }

    #[test]
    fn a_fatal_failure_marks_the_fatal_line_with_the_console_around_it() {
        let mut log: Vec<LogLine> = (0..50)
            .map(|i| out(i as f64 * 0.1, &format!("[ {i}] boot")))
            .collect();
        log[40] = out(
            4.0,
            "[    1.540354] Kernel panic - not syncing: Attempted to kill init!",
        );
        let reason = FailReason::Fatal {
            pattern: "\"Kernel panic - not syncing\"".into(),
            line: "[    1.540354] Kernel panic - not syncing: Attempted to kill init!".into(),
            seen_at: Duration::from_millis(4_000),
        };
        let view = failure_view(&failed(reason, 4_900, &[]), &log).unwrap();
        assert_eq!(view.excerpt.len(), BEFORE + 1 + 9);
        let mark = view.mark.unwrap();
        assert_eq!(mark, BEFORE);
        assert!(view.excerpt[mark].text.contains("Kernel panic"));
        assert_eq!(view.step, 3);
        assert!(view.reason.starts_with("fatal pattern"));
    }

    #[test]
    fn a_timeout_marks_the_last_console_line_before_the_failure() {
        let log = [
            out(1.0, "a"),
            out(2.0, "b"),
            LogLine {
                t: 2.5,
                kind: LineKind::Note,
                text: "FAIL: timeout".into(),
            },
            out(3.0, "after"),
        ];
        let view = failure_view(
            &failed(
                FailReason::Timeout {
                    waited: Duration::from_secs(2),
                },
                2_500,
                &[],
            ),
            &log,
        )
        .unwrap();
        assert_eq!(view.excerpt[view.mark.unwrap()].text, "b");
    }

    /// Asserts that `raw` in the console is shown as `escaped` in the failure's reason and in
    /// the excerpt read from the result's last lines.
    fn assert_shown_escaped(raw: &str, escaped: &str) {
        let console = format!("a{raw}b");
        let reason = FailReason::Check {
            detail: format!("output did not match /nope/:\n{console}"),
        };
        let view = failure_view(&failed(reason, 1_000, &[&console]), &[]).unwrap();
        assert_eq!(view.reason, format!("output did not match /nope/:\na{escaped}b"));
        assert_eq!(view.excerpt[0].text, format!("a{escaped}b"));
    }

    crate::escape::shows_each_control_class_escaped!(assert_shown_escaped);

    #[test]
    fn a_fatal_line_holding_a_bidi_override_is_still_the_marked_line() {
        let fatal = "Kernel panic \u{202e}here";
        let log = [
            out(1.0, "before"),
            out(2.0, &escape_control(fatal)),
            out(3.0, "after"),
        ];
        let reason = FailReason::Fatal {
            pattern: "\"Kernel panic\"".into(),
            line: fatal.into(),
            seen_at: Duration::from_millis(2_000),
        };
        let view = failure_view(&failed(reason, 3_500, &[]), &log).unwrap();
        assert_eq!(view.mark, Some(1));
        assert!(
            view.reason.ends_with("Kernel panic \\u{202e}here"),
            "{}",
            view.reason
        );
    }

    #[test]
    fn without_a_transcript_the_results_last_lines_are_the_excerpt() {
        let view = failure_view(
            &failed(
                FailReason::Timeout {
                    waited: Duration::from_secs(1),
                },
                1_000,
                &["x", "y"],
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            view.excerpt.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(view.mark, Some(1));
    }
}
