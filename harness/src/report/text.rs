//! The per-scenario lines and failure details people read.

use std::fmt::Write;

use crate::escape::{escape_console_line, escape_control, escape_keeping_lines, escape_lines};
use crate::runner::{secs, ScenarioResult, StageTiming, Verdict};
use crate::suite::ReportError;
use crate::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// How many console lines a failure report shows.
pub const LAST_LINES: usize = 20;

/// One line: verdict, name, duration and time per stage; for a skipped scenario, why.
pub fn summary_line(result: &ScenarioResult) -> String {
    if let Some(reason) = result.skipped() {
        return format!(
            "SKIP  {}  ({})",
            escape_control(&result.name),
            escape_control(reason)
        );
    }
    if let Some(reason) = result.error() {
        return format!(
            "ERROR  {}  (could not run: {})",
            escape_control(&result.name),
            escape_control(reason)
        );
    }
    let verdict = if result.flaky() {
        "FLAKY"
    } else if result.passed() {
        "PASS"
    } else {
        "FAIL"
    };
    let line = format!(
        "{verdict}  {}  {}  ({})",
        escape_control(&result.name),
        secs(result.duration),
        stages(&result.stages)
    );
    match (result.tries(), result.passed()) {
        (1, _) => line,
        (tries, true) => format!("{line}  passed on try {tries}"),
        (tries, false) => format!("{line}  failed all {tries} tries"),
    }
}

/// The line of a failed try that runs again: `TRY 1 FAIL  name  3.0s  (stages)`.
pub fn try_line(result: &ScenarioResult, try_number: usize) -> String {
    format!(
        "TRY {try_number} FAIL  {}  {}  ({})",
        escape_control(&result.name),
        secs(result.duration),
        stages(&result.stages)
    )
}

/// `uboot 3.1s, menu 2.0s, …`
pub fn stages(stages: &[StageTiming]) -> String {
    stages
        .iter()
        .map(|s| format!("{} {}", escape_control(&s.name.to_string()), secs(s.duration)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// For a failed scenario: the step, what it expected, why it failed, the last console lines and
/// where the transcript is. Empty for a pass. Every field is shown escaped (console text is
/// untrusted): a field that spans lines, such as a reason quoting a command's output, goes on
/// indented lines of its own, and each console line stays one line.
pub fn failure_details(result: &ScenarioResult) -> String {
    let Verdict::Fail(failure) = &result.verdict else {
        return String::new();
    };
    let mut out = String::new();
    if failure.step > 0 {
        field(
            &mut out,
            &format!("step {}", failure.step),
            &failure.step_description,
        );
    }
    field(&mut out, "expected", &failure.expected);
    field(&mut out, "reason", &failure.reason.to_string());
    if let Some(hint) = &failure.hint {
        field(&mut out, "hint", hint);
    }
    let stage = failure.stage.to_string();
    let _ = writeln!(
        out,
        "  at: {} (stage {})",
        secs(failure.at),
        escape_control(&stage)
    );
    let skip = result.last_lines.len().saturating_sub(LAST_LINES);
    let _ = writeln!(out, "  last {} console lines:", result.last_lines.len() - skip);
    for line in &result.last_lines[skip..] {
        let _ = writeln!(out, "    | {}", escape_console_line(line));
    }
    for path in &result.transcript {
        let _ = writeln!(
            out,
            "  transcript: {}",
            escape_control(&path.display().to_string())
        );
    }
    out
}

/// `  label: first line`, then each further line of `text` indented under it, all escaped.
fn field(out: &mut String, label: &str, text: &str) {
    let mut lines = escape_lines(text);
    let first = lines.next().unwrap_or_default();
    let _ = writeln!(out, "  {label}: {first}");
    for line in lines {
        let _ = writeln!(out, "    {line}");
    }
}

/// The units systemd failed to start during the run, one per line under the result; empty
/// when none failed. A failed unit does not fail the scenario, but it is worth a look.
pub fn failed_units(result: &ScenarioResult) -> String {
    if result.failed_units.is_empty() {
        return String::new();
    }
    let mut out = format!("  failed units ({}):\n", result.failed_units.len());
    for unit in &result.failed_units {
        let _ = writeln!(out, "    [FAILED] {}", escape_control(unit));
    }
    out
}

/// The closing line: `3 passed, 1 failed`, then `, 1 error`, `, 2 skipped` and `, 1 flaky`
/// (passed, after a failed try) when any.
pub fn totals(results: &[ScenarioResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    let failed = results.iter().filter(|r| r.failed()).count();
    let errors = results.iter().filter(|r| r.error().is_some()).count();
    let skipped = results.iter().filter(|r| r.skipped().is_some()).count();
    let mut line = format!("{passed} passed, {failed} failed");
    if errors > 0 {
        line.push_str(&format!(", {errors} error{}", if errors == 1 { "" } else { "s" }));
    }
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    let flaky = results.iter().filter(|r| r.flaky()).count();
    if flaky > 0 {
        line.push_str(&format!(", {flaky} flaky"));
    }
    line
}

/// The text report: a line (and the failure details) per scenario as it finishes, the
/// suite's remarks, and the totals; on stdout, or on stderr when stdout is another program's.
#[derive(Debug, Default)]
pub struct TextReporter {
    to_stderr: bool,
    quiet: bool,
}

impl TextReporter {
    /// The report on stderr if `to_stderr`, else stdout; without the suite's remarks if
    /// `quiet`.
    pub fn new(to_stderr: bool, quiet: bool) -> TextReporter {
        TextReporter { to_stderr, quiet }
    }

    /// Writes `text`, or keeps it until no console holds the terminal (see
    /// [`crate::terminal::write_or_defer`]).
    fn write(&self, text: &str) {
        crate::terminal::write_or_defer(self.to_stderr, text.as_bytes());
    }
}

impl Reporter for TextReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        match &event.kind {
            SuiteEventKind::Note { text } if !self.quiet => {
                self.write(&format!("{}\n", escape_keeping_lines(text)));
            }
            SuiteEventKind::ScenarioRetried { result, try_number } => {
                self.write(&format!(
                    "{}\n{}",
                    try_line(result, *try_number),
                    failure_details(result)
                ));
            }
            SuiteEventKind::ScenarioFinished { result } => {
                self.write(&format!(
                    "{}\n{}{}",
                    summary_line(result),
                    failed_units(result),
                    failure_details(result)
                ));
            }
            SuiteEventKind::SuiteFinished { results, .. } => {
                self.write(&format!("{}\n", totals(results)));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A passed 90 s result of scenario `boot` in which `units` failed, for the reporters' tests.
#[cfg(test)]
pub(crate) fn result_with_failed_units(units: &[&str]) -> ScenarioResult {
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
        earlier_tries: Vec::new(),
    }
}

/// A result that failed on the console line `console`: its reason quotes the line as a
/// command's output, and it is the excerpt's last line. For the reporters' tests.
#[cfg(test)]
pub(crate) fn result_failed_on_console(console: &str) -> ScenarioResult {
    use crate::runner::{FailReason, Failure, Stage};
    ScenarioResult {
        verdict: Verdict::Fail(Failure {
            step: 1,
            step_description: "run \"printf x\" (esc.toml:3:1)".to_owned(),
            expected: "output matching /nope/".to_owned(),
            reason: FailReason::Check {
                detail: format!("output did not match /nope/:\n{console}"),
            },
            at: std::time::Duration::from_secs(1),
            stage: Stage::Body,
            hint: None,
        }),
        last_lines: vec!["[root@ivy:~]# printf x".to_owned(), console.to_owned()],
        ..result_with_failed_units(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `raw` in a console line is shown as `escaped` in the reason and the excerpt
    /// of the failure details, and never as itself.
    fn assert_shown_escaped(raw: &str, escaped: &str) {
        let details = failure_details(&result_failed_on_console(&format!("a{raw}b")));
        assert!(!details.contains(raw), "{details:?}");
        assert!(
            details.contains(&format!("\n    a{escaped}b\n")),
            "reason: {details}"
        );
        assert!(
            details.contains(&format!("\n    | a{escaped}b\n")),
            "excerpt: {details}"
        );
    }

    crate::escape::shows_each_control_class_escaped!(assert_shown_escaped);

    #[test]
    fn a_scenario_passing_on_its_second_try_is_flaky_and_counted_so() {
        let failed = result_failed_on_console("x");
        let flaky = ScenarioResult {
            earlier_tries: vec![failed.clone()],
            ..result_with_failed_units(&[])
        };
        assert_eq!(summary_line(&flaky), "FLAKY  boot  90.0s  ()  passed on try 2");
        assert_eq!(totals(&[flaky]), "1 passed, 0 failed, 1 flaky");
        let every_try = ScenarioResult {
            earlier_tries: vec![failed.clone(), failed.clone()],
            ..failed.clone()
        };
        assert_eq!(
            summary_line(&every_try),
            "FAIL  boot  90.0s  ()  failed all 3 tries"
        );
        assert_eq!(totals(&[every_try]), "0 passed, 1 failed");
        assert_eq!(try_line(&failed, 1), "TRY 1 FAIL  boot  90.0s  ()");
    }

    #[test]
    fn output_quoted_in_a_reason_cannot_forge_a_result_line() {
        let details = failure_details(&result_failed_on_console("x\nPASS  boot  1.0s  ()"));
        assert!(
            details.contains("  reason: output did not match /nope/:\n    x\n    PASS  boot  1.0s  ()\n"),
            "{details}"
        );
        assert!(!details.lines().any(|l| l.starts_with("PASS")), "{details}");
    }

    #[test]
    fn a_console_line_holding_a_newline_stays_one_excerpt_line() {
        let mut result = result_failed_on_console("x");
        result.last_lines = vec!["a\nFAIL  b\rc".to_owned()];
        let details = failure_details(&result);
        assert!(details.contains("\n    | a\\nFAIL  b\\rc\n"), "{details}");
    }

    #[test]
    fn a_failed_units_name_is_shown_escaped() {
        let result = result_with_failed_units(&["evil\u{1b}[2J\u{202e}.service"]);
        assert_eq!(
            failed_units(&result),
            "  failed units (1):\n    [FAILED] evil\\u{1b}[2J\\u{202e}.service\n"
        );
    }

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
