//! One scenario's part of the page: its verdict, timeline, failure, transcript and recording,
//! as the JSON the page's script draws from.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::excerpt::{failure_view, FailureView};
use super::interactive::{interactive_parts, InteractiveView};
use super::timeline::{timeline, Timeline};
use super::transcript::{self, Cast, LogLine, CAST_CAP, LOG_CAP};
use super::BaselineView;
use crate::escape::escape_control;
use crate::runner::{Origin, ScenarioResult, Verdict};

/// What the page knows of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioView {
    pub name: String,
    pub source: String,
    /// `pass`, `flaky` (passed on a later try), `fail`, `skip` or `error`.
    pub verdict: &'static str,
    /// How many times it ran (`--retries`): 1 unless a try failed and it ran again.
    pub tries: usize,
    /// Why each earlier try failed, oldest first: `step N: reason`.
    pub failed_tries: Vec<String>,
    /// Why a skipped scenario did not run.
    pub skipped: Option<String>,
    /// Why the harness could not run it.
    pub error: Option<String>,
    /// Seconds from the target's start to the scenario's end.
    pub duration: f64,
    /// How the target reached the scenario's first step.
    pub origin: &'static str,
    pub timeline: Timeline,
    pub failure: Option<FailureView>,
    /// The parts of the transcript a person typed in, each its own section.
    pub interactive: Vec<InteractiveView>,
    pub transcript: TranscriptView,
    pub cast: CastView,
}

/// The `.log` transcript, read back.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptView {
    pub file: Option<String>,
    pub lines: Vec<LogLine>,
    /// Why there are no lines, if the file could not be read.
    pub error: Option<String>,
}

/// The `.cast` recording, read back.
#[derive(Debug, Clone, Serialize)]
pub struct CastView {
    pub file: Option<String>,
    pub cast: Option<Cast>,
    pub error: Option<String>,
}

/// The view of `result`, run against `against`, reading its transcript files.
pub fn scenario_view(
    result: &ScenarioResult,
    against: &Path,
    baseline: Option<&BaselineView>,
) -> ScenarioView {
    let log_path = own_file(result, "log");
    let (lines, log_error) = match &log_path {
        Some(path) => match transcript::read_bounded(path, LOG_CAP) {
            Ok(text) => (transcript::log_lines(&text), None),
            Err(e) => (Vec::new(), Some(format!("cannot read {}: {e}", path.display()))),
        },
        None => (Vec::new(), Some("this run wrote no transcript".to_owned())),
    };
    let cast_path = own_file(result, "cast");
    let (cast, cast_error) = match &cast_path {
        Some(path) => match transcript::read_bounded(path, CAST_CAP) {
            Ok(text) => (Some(transcript::cast(&text)), None),
            Err(e) => (None, Some(format!("cannot read {}: {e}", path.display()))),
        },
        None => (None, Some("this run wrote no recording".to_owned())),
    };
    ScenarioView {
        name: escape_control(&result.name).into_owned(),
        source: escape_control(&result.source.display().to_string()).into_owned(),
        verdict: match result.verdict {
            Verdict::Pass if result.flaky() => "flaky",
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Skip(_) => "skip",
            Verdict::Error(_) => "error",
        },
        tries: result.tries(),
        failed_tries: result.earlier_tries.iter().map(try_failure).collect(),
        skipped: result.skipped().map(|reason| escape_control(reason).into_owned()),
        error: result.error().map(|reason| escape_control(reason).into_owned()),
        duration: result.duration.as_secs_f64(),
        origin: match result.origin {
            Origin::PowerOn => "from power-on",
            Origin::Snapshot { primed: true } => "from a login snapshot this run booted to make",
            Origin::Snapshot { primed: false } => "from a login snapshot",
        },
        timeline: timeline(
            result,
            against,
            baseline.map(|b| (&b.baseline, &b.policy)),
            &lines,
        ),
        failure: failure_view(result, &lines),
        interactive: interactive_parts(&lines),
        transcript: TranscriptView {
            file: log_path.map(|p| p.display().to_string()),
            lines,
            error: log_error,
        },
        cast: CastView {
            file: cast_path.map(|p| p.display().to_string()),
            cast,
            error: cast_error,
        },
    }
}

/// `step 3: timed out after 60s` for a failed try, escaped.
fn try_failure(result: &ScenarioResult) -> String {
    match &result.verdict {
        Verdict::Fail(failure) => {
            escape_control(&format!("step {}: {}", failure.step, failure.reason)).into_owned()
        }
        _ => String::new(),
    }
}

/// The scenario's own transcript file with extension `ext` (the first: a priming boot's files
/// come after). Never the `.raw` bytes, which are not redacted.
fn own_file(result: &ScenarioResult, ext: &str) -> Option<PathBuf> {
    debug_assert_ne!(ext, "raw");
    result
        .transcript
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::text::{result_failed_on_console, result_with_failed_units};

    #[test]
    fn a_scenario_passing_on_a_retry_is_shown_flaky_with_its_tries_and_why_each_failed() {
        let flaky = ScenarioResult {
            earlier_tries: vec![result_failed_on_console("x")],
            ..result_with_failed_units(&[])
        };
        let view = scenario_view(&flaky, Path::new("r2s.img"), None);
        assert_eq!(view.verdict, "flaky");
        assert_eq!(view.tries, 2);
        assert_eq!(view.failed_tries, ["step 1: output did not match /nope/:\\nx"]);
    }

    #[test]
    fn a_scenario_run_once_is_one_try_with_no_failed_ones() {
        let view = scenario_view(&result_failed_on_console("x"), Path::new("r2s.img"), None);
        assert_eq!((view.verdict, view.tries), ("fail", 1));
        assert!(view.failed_tries.is_empty());
    }
}
