//! The per-scenario lines and failure details people read.

use std::fmt::Write;

use super::ReportError;
use crate::runner::{secs, ScenarioResult, StageTiming, Verdict};
use crate::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// How many console lines a failure report shows.
pub const LAST_LINES: usize = 20;

/// One line: verdict, name, duration and time per stage.
pub fn summary_line(result: &ScenarioResult) -> String {
    let verdict = if result.passed() { "PASS" } else { "FAIL" };
    format!(
        "{verdict}  {}  {}  ({})",
        result.name,
        secs(result.duration),
        stages(&result.stages)
    )
}

/// `uboot 3.1s, menu 2.0s, …`
pub fn stages(stages: &[StageTiming]) -> String {
    stages
        .iter()
        .map(|s| format!("{} {}", s.name, secs(s.duration)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// For a failed scenario: the step, what it expected, why it failed, the last console lines and
/// where the transcript is. Empty for a pass.
pub fn failure_details(result: &ScenarioResult) -> String {
    let Verdict::Fail(failure) = &result.verdict else {
        return String::new();
    };
    let mut out = String::new();
    if failure.step > 0 {
        let _ = writeln!(out, "  step {}: {}", failure.step, failure.step_description);
    }
    let _ = writeln!(out, "  expected: {}", failure.expected);
    let _ = writeln!(out, "  reason: {}", failure.reason);
    if let Some(hint) = &failure.hint {
        let _ = writeln!(out, "  hint: {hint}");
    }
    let _ = writeln!(out, "  at: {} (stage {})", secs(failure.at), failure.stage);
    let skip = result.last_lines.len().saturating_sub(LAST_LINES);
    let _ = writeln!(out, "  last {} console lines:", result.last_lines.len() - skip);
    for line in &result.last_lines[skip..] {
        let _ = writeln!(out, "    | {line}");
    }
    for path in &result.transcript {
        let _ = writeln!(out, "  transcript: {}", path.display());
    }
    out
}

/// The units systemd failed to start during the run, one per line under the result; empty
/// when none failed. A failed unit does not fail the scenario, but it is worth a look.
pub fn failed_units(result: &ScenarioResult) -> String {
    if result.failed_units.is_empty() {
        return String::new();
    }
    let mut out = format!("  failed units ({}):\n", result.failed_units.len());
    for unit in &result.failed_units {
        let _ = writeln!(out, "    [FAILED] {unit}");
    }
    out
}

/// The closing line: `3 passed, 1 failed`.
pub fn totals(results: &[ScenarioResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

/// The text report on stdout: a line (and the failure details) per scenario as it finishes,
/// the suite's remarks, and the totals. What stopped a run early goes to stderr.
#[derive(Debug, Default)]
pub struct TextReporter;

impl Reporter for TextReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        match &event.kind {
            SuiteEventKind::Note { text } => println!("{text}"),
            SuiteEventKind::ScenarioFinished { result } => {
                println!("{}", summary_line(result));
                print!("{}", failed_units(result));
                print!("{}", failure_details(result));
            }
            SuiteEventKind::SuiteFinished { results, stopped, .. } => {
                if let Some(error) = stopped {
                    eprintln!("harness: {error}");
                }
                println!("{}", totals(results));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A passed 90 s result of scenario `boot` in which `units` failed, for the reporters' tests.
#[cfg(test)]
pub(super) fn result_with_failed_units(units: &[&str]) -> ScenarioResult {
    ScenarioResult {
        name: "boot".to_owned(),
        source: "boot.toml".into(),
        verdict: Verdict::Pass,
        duration: std::time::Duration::from_secs(90),
        stages: Vec::new(),
        last_lines: Vec::new(),
        failed_units: units.iter().map(|u| (*u).to_owned()).collect(),
        transcript: Vec::new(),
        origin: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_units_are_listed_under_the_result_and_nothing_when_none_failed() {
        assert_eq!(failed_units(&result_with_failed_units(&[])), "");
        let result = result_with_failed_units(&[
            "systemd-networkd.service - Network Configuration",
            "ssh.service - OpenBSD Secure Shell server",
        ]);
        assert_eq!(
            failed_units(&result),
            "  failed units (2):\n    [FAILED] systemd-networkd.service - Network Configuration\n    \
             [FAILED] ssh.service - OpenBSD Secure Shell server\n"
        );
    }
}
