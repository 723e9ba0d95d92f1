//! A scenario's timeline as the page draws it: its stages in order with their times, the
//! baseline's stages beside them with regressions marked (the rule of
//! [`crate::report::baseline`]), and the harness's notes at their times.

use std::path::Path;

use serde::Serialize;

use super::transcript::{LineKind, LogLine};
use crate::report::baseline::{Baseline, Policy, Skipped};
use crate::report::timings::{StageRecord, Timings};
use crate::runner::ScenarioResult;

/// What the page draws for one scenario's time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Seconds from the target's start to the scenario's end.
    pub total: f64,
    pub stages: Vec<Bar>,
    /// The baseline's run of this scenario, when the run has a baseline.
    pub baseline: Option<BaselineBars>,
    /// The harness's remarks (the target, reconnects, a snapshot restore, a skipped wait), at
    /// their times; steps and stages are drawn by their own means.
    pub notes: Vec<Note>,
}

/// One stage of this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub name: String,
    pub start: f64,
    pub duration: f64,
    /// Seconds the stage took in the baseline, if it had the stage and was compared.
    pub baseline: Option<f64>,
    pub regressed: bool,
}

/// The baseline's side of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineBars {
    /// Where the baseline was read from.
    pub source: String,
    /// Why the stages were not compared (a failure on either side, no run in the baseline).
    pub not_compared: Option<String>,
    pub total: f64,
    pub stages: Vec<StageRecord>,
}

/// A remark of the harness at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub t: f64,
    pub text: String,
}

/// The timeline of `result` (run against `against`), set against `baseline` if given; `log`
/// is its transcript, where the notes are.
pub fn timeline(
    result: &ScenarioResult,
    against: &Path,
    baseline: Option<(&Baseline, &Policy)>,
    log: &[LogLine],
) -> Timeline {
    let timings = Timings::of(result, against);
    let mut stages: Vec<Bar> = timings
        .stages
        .iter()
        .map(|s| Bar {
            name: s.name.clone(),
            start: s.start,
            duration: s.duration,
            baseline: None,
            regressed: false,
        })
        .collect();
    let baseline = baseline.map(|(baseline, policy)| {
        let comparison = baseline.compare(std::slice::from_ref(&timings), policy);
        for compared in &comparison.stages {
            if let Some(bar) = stages.iter_mut().find(|b| b.name == compared.stage) {
                bar.baseline = compared.baseline;
                bar.regressed = compared.regressed;
            }
        }
        let not_compared = comparison.skipped.first().map(|(_, why)| match why {
            Skipped::NotInBaseline => "not in the baseline".to_owned(),
            Skipped::Failed => "not compared: failed here or in the baseline".to_owned(),
        });
        let before = baseline.scenarios.get(&result.name);
        BaselineBars {
            source: baseline.source.display().to_string(),
            not_compared,
            total: before.map_or(0.0, |b| b.total),
            stages: before.map(|b| b.stages.clone()).unwrap_or_default(),
        }
    });
    Timeline {
        total: timings.total,
        stages,
        baseline,
        notes: notes(log),
    }
}

/// The `-- ` lines of a transcript that are remarks rather than the step, stage and verdict
/// lines every run has.
fn notes(log: &[LogLine]) -> Vec<Note> {
    log.iter()
        .filter(|l| l.kind == LineKind::Note)
        .filter(|l| {
            let t = l.text.as_str();
            !(is_step_line(t) || t.starts_with("stage ") || t == "PASS" || t.starts_with("FAIL: "))
        })
        .map(|l| Note {
            t: l.t,
            text: l.text.clone(),
        })
        .collect()
}

/// `step 3: expect "…"`
fn is_step_line(text: &str) -> bool {
    text.strip_prefix("step ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(n, _)| n.parse::<usize>().is_ok())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::report::timings::TimingsVerdict;
    use crate::runner::{Stage, StageTiming, Verdict};

    fn result(stages: &[(&str, u64, u64)]) -> ScenarioResult {
        ScenarioResult {
            name: "boot-to-login".into(),
            source: "scenarios/boot-to-login.toml".into(),
            verdict: Verdict::Pass,
            duration: Duration::from_millis(stages.iter().map(|s| s.1 + s.2).max().unwrap_or(0)),
            stages: stages
                .iter()
                .map(|(name, start, duration)| StageTiming {
                    name: Stage::named(name),
                    start: Duration::from_millis(*start),
                    duration: Duration::from_millis(*duration),
                    skipped_wait: None,
                })
                .collect(),
            last_lines: vec![],
            failed_units: vec![],
            transcript: vec![],
            origin: Default::default(),
            earlier_tries: Vec::new(),
        }
    }

    fn line(t: f64, kind: LineKind, text: &str) -> LogLine {
        LogLine {
            t,
            kind,
            text: text.into(),
        }
    }

    #[test]
    fn a_stage_slower_than_the_baseline_beyond_the_policy_is_marked_and_others_are_not() {
        let now = result(&[("uboot", 0, 2_000), ("kernel", 2_000, 3_100)]);
        let mut before = Timings::of(
            &result(&[("uboot", 0, 1_900), ("kernel", 1_900, 2_200)]),
            Path::new("a.img"),
        );
        before.verdict = TimingsVerdict::Pass;
        let baseline = Baseline {
            source: "main.json".into(),
            scenarios: BTreeMap::from([("boot-to-login".to_owned(), before.clone())]),
        };
        let line = timeline(
            &now,
            Path::new("a.img"),
            Some((&baseline, &Policy::default())),
            &[],
        );
        assert_eq!(
            line.stages
                .iter()
                .map(|b| (b.name.as_str(), b.baseline, b.regressed))
                .collect::<Vec<_>>(),
            [("uboot", Some(1.9), false), ("kernel", Some(2.2), true)]
        );
        let bars = line.baseline.expect("baseline side");
        assert_eq!(bars.stages, before.stages);
        assert_eq!(bars.not_compared, None);
    }

    #[test]
    fn a_scenario_missing_from_the_baseline_says_so() {
        let baseline = Baseline::default();
        let line = timeline(
            &result(&[("uboot", 0, 1_000)]),
            Path::new("a.img"),
            Some((&baseline, &Policy::default())),
            &[],
        );
        assert_eq!(
            line.baseline.unwrap().not_compared.as_deref(),
            Some("not in the baseline")
        );
        assert!(!line.stages[0].regressed);
    }

    #[test]
    fn notes_are_the_remarks_not_the_step_stage_and_verdict_lines() {
        let log = [
            line(0.0, LineKind::Note, "QEMU booting r2s.img"),
            line(0.0, LineKind::Note, "step 1: expect \"U-Boot\""),
            line(0.3, LineKind::Out, "U-Boot 2023.01"),
            line(2.9, LineKind::Note, "stage menu"),
            line(4.0, LineKind::Note, "console reconnected after 1.2s"),
            line(9.0, LineKind::Note, "PASS"),
        ];
        let notes = timeline(&result(&[]), Path::new("a.img"), None, &log).notes;
        assert_eq!(
            notes,
            [
                Note {
                    t: 0.0,
                    text: "QEMU booting r2s.img".into()
                },
                Note {
                    t: 4.0,
                    text: "console reconnected after 1.2s".into()
                },
            ]
        );
    }
}
