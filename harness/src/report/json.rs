//! `run --message-format json`: every suite event as one JSON object on a line of its own,
//! for other programs. Each object has `"format"` (the version of this shape, [`FORMAT`]) and
//! `"event"` (kebab-case: `suite-started`, `note`, `scenario-started`, `stage-entered`,
//! `step-started`, `step-finished`, `operator-asked`, `scenario-retried`,
//! `scenario-finished`, `suite-finished`), `"elapsed"` (seconds since the suite started) and
//! the event's own fields. The quarter-second ticks are left out: they carry nothing a program
//! cannot count itself. A field is only ever added within one format version.

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::runner::{ScenarioResult, Verdict};
use crate::suite::{ReportError, Reporter, SuiteEvent, SuiteEventKind};

/// The version of the objects' shape; raised when a field changes meaning or goes away.
pub const FORMAT: u32 = 1;

/// Writes each event as a JSON line to its writer (stdout), flushed at once so that a reader
/// sees the event when it happens.
pub struct JsonReporter {
    out: Box<dyn Write>,
}

impl JsonReporter {
    /// Events on stdout.
    pub fn stdout() -> JsonReporter {
        JsonReporter::to(Box::new(std::io::stdout()))
    }

    /// Events to `out`.
    pub fn to(out: Box<dyn Write>) -> JsonReporter {
        JsonReporter { out }
    }
}

impl Reporter for JsonReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        let Some(object) = object(event) else {
            return Ok(());
        };
        let mut line = object.to_string();
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|source| ReportError::Write {
                path: "stdout".into(),
                source,
            })
    }
}

/// The JSON object of `event`; `None` for the ticks.
pub fn object(event: &SuiteEvent) -> Option<Value> {
    let (name, fields) = match &event.kind {
        SuiteEventKind::SuiteStarted { against, scenarios } => (
            "suite-started",
            json!({ "against": against.display().to_string(), "scenarios": scenarios }),
        ),
        SuiteEventKind::Note { text } => ("note", json!({ "text": text })),
        SuiteEventKind::ScenarioStarted { scenario } => ("scenario-started", json!({ "scenario": scenario })),
        SuiteEventKind::StageEntered { scenario, stage, at } => (
            "stage-entered",
            json!({ "scenario": scenario, "stage": stage.to_string(), "at": at.as_secs_f64() }),
        ),
        SuiteEventKind::StepStarted {
            scenario,
            step,
            description,
        } => (
            "step-started",
            json!({ "scenario": scenario, "step": step, "description": description }),
        ),
        SuiteEventKind::StepFinished {
            scenario,
            step,
            passed,
        } => (
            "step-finished",
            json!({ "scenario": scenario, "step": step, "passed": passed }),
        ),
        SuiteEventKind::Tick { .. } => return None,
        SuiteEventKind::OperatorAsked { scenario, request } => (
            "operator-asked",
            json!({ "scenario": scenario, "request": request }),
        ),
        SuiteEventKind::ScenarioRetried { result, try_number } => (
            "scenario-retried",
            json!({ "scenario": result.name, "try": try_number, "result": result_object(result) }),
        ),
        SuiteEventKind::ScenarioFinished { result } => (
            "scenario-finished",
            json!({ "scenario": result.name, "result": result_object(result) }),
        ),
        SuiteEventKind::SuiteFinished { against, results } => (
            "suite-finished",
            json!({
                "against": against.display().to_string(),
                "passed": results.iter().filter(|r| r.passed()).count(),
                "failed": results.iter().filter(|r| r.failed()).count(),
                "errors": results.iter().filter(|r| r.error().is_some()).count(),
                "skipped": results.iter().filter(|r| r.skipped().is_some()).count(),
                "flaky": results.iter().filter(|r| r.flaky()).count(),
                "scenarios": results.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            }),
        ),
    };
    let mut object = Map::new();
    object.insert("format".into(), FORMAT.into());
    object.insert("event".into(), name.into());
    object.insert("elapsed".into(), event.elapsed.as_secs_f64().into());
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Some(Value::Object(object))
}

/// A result as JSON: `verdict` (`pass`, `fail`, `skip`, `error`), `duration`, `stages`,
/// `tries`, `flaky`, and what went wrong.
fn result_object(result: &ScenarioResult) -> Value {
    let mut object = json!({
        "name": result.name,
        "source": result.source.display().to_string(),
        "duration": result.duration.as_secs_f64(),
        "stages": result.stages.iter().map(|s| json!({
            "stage": s.name.to_string(),
            "start": s.start.as_secs_f64(),
            "duration": s.duration.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "tries": result.tries(),
        "flaky": result.flaky(),
        "failed_units": result.failed_units,
        "transcript": result.transcript.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    let (verdict, extra) = match &result.verdict {
        Verdict::Pass => ("pass", None),
        Verdict::Fail(failure) => (
            "fail",
            Some((
                "failure",
                json!({
                    "step": failure.step,
                    "step_description": failure.step_description,
                    "expected": failure.expected,
                    "reason": failure.reason.to_string(),
                    "at": failure.at.as_secs_f64(),
                    "stage": failure.stage.to_string(),
                    "hint": failure.hint,
                }),
            )),
        ),
        Verdict::Skip(reason) => ("skip", Some(("reason", json!(reason)))),
        Verdict::Error(reason) => ("error", Some(("reason", json!(reason)))),
    };
    if let Value::Object(map) = &mut object {
        map.insert("verdict".into(), verdict.into());
        if let Some((key, value)) = extra {
            map.insert(key.into(), value);
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::report::text::result_failed_on_console;

    fn event(kind: SuiteEventKind) -> SuiteEvent {
        SuiteEvent {
            timestamp: SystemTime::now(),
            elapsed: Duration::from_millis(2500),
            kind,
        }
    }

    #[test]
    fn every_object_carries_the_format_version_the_event_and_the_time() {
        let object = object(&event(SuiteEventKind::ScenarioStarted {
            scenario: "boot-to-login".into(),
        }))
        .unwrap();
        assert_eq!(
            object,
            json!({"format": 1, "event": "scenario-started", "elapsed": 2.5, "scenario": "boot-to-login"})
        );
    }

    #[test]
    fn a_failed_result_says_its_step_reason_and_tries() {
        let mut result = result_failed_on_console("nope");
        result.earlier_tries = vec![result.clone()];
        let object = object(&event(SuiteEventKind::ScenarioFinished {
            result: Box::new(result),
        }))
        .unwrap();
        assert_eq!(object["event"], "scenario-finished");
        assert_eq!(object["result"]["verdict"], "fail");
        assert_eq!(object["result"]["tries"], 2);
        assert_eq!(object["result"]["flaky"], false);
        assert_eq!(object["result"]["failure"]["step"], 1);
        assert_eq!(object["result"]["failure"]["expected"], "output matching /nope/");
    }

    #[test]
    fn ticks_are_left_out() {
        assert_eq!(
            object(&event(SuiteEventKind::Tick {
                scenario: "a".into(),
                elapsed: Duration::ZERO,
            })),
            None
        );
    }

    #[test]
    fn the_suites_end_counts_results_by_verdict() {
        let mut flaky = result_failed_on_console("x");
        flaky.earlier_tries = vec![flaky.clone()];
        flaky.verdict = Verdict::Pass;
        let skipped = ScenarioResult::skip("s", &PathBuf::from("s.toml"), "no");
        let object = object(&event(SuiteEventKind::SuiteFinished {
            against: "img.img".into(),
            results: vec![flaky, skipped],
        }))
        .unwrap();
        assert_eq!(
            (
                &object["passed"],
                &object["failed"],
                &object["skipped"],
                &object["flaky"]
            ),
            (&json!(1), &json!(0), &json!(1), &json!(1))
        );
        assert_eq!(object["scenarios"], json!(["boot", "s"]));
    }
}
