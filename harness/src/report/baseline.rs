//! Stage baselines: a previous run's timings, and the rule that says when a stage has become
//! slower than noise explains.
//!
//! A baseline is any of:
//! - one `<scenario>.timings.json` file;
//! - a directory of them (a previous run's `--transcripts` directory);
//! - a combined file written by `harness run --write-baseline FILE`.
//!
//! A stage regresses when it took more than `max_regression` percent longer than in the
//! baseline **and** more than [`NOISE_FLOOR`] longer. The second condition keeps sub-second
//! stages (the extlinux menu, NixOS stage 2 on small images) from failing runs on the tenths of
//! a second that QEMU's scheduling moves them by. Only scenarios that passed in both the
//! baseline and this run are compared: a failed run's last stage was cut short. A stage whose
//! countdown (U-Boot's autoboot delay, the extlinux menu's timeout) was skipped in one run and
//! waited out in the other is shown but not compared: a skipped wait is not a speed-up, and
//! baselines recorded before the harness skipped countdowns mark none.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::timings::{CombinedTimings, StageRecord, Timings, BASELINE_FORMAT, TIMINGS_SUFFIX};

/// Changes smaller than this never count as regressions, whatever their percentage.
pub const NOISE_FLOOR: Duration = Duration::from_millis(500);

/// The default of `--max-regression`, in percent.
pub const DEFAULT_MAX_REGRESSION: f64 = 20.0;

/// Timings to compare a run against, by scenario name.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// Where the baseline was read from.
    pub source: PathBuf,
    /// Each scenario's recorded run.
    pub scenarios: BTreeMap<String, Timings>,
}

/// A baseline that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("baseline {path} is not a timings file or a combined baseline: {message}")]
    Format { path: PathBuf, message: String },
    #[error("baseline {path} has format {found:?}; this harness reads {BASELINE_FORMAT:?}")]
    Version { path: PathBuf, found: String },
    #[error("scenario {scenario:?} appears twice in the baseline: {first} and {second}")]
    Duplicate {
        scenario: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("baseline directory {path} holds no *{TIMINGS_SUFFIX} files")]
    Empty { path: PathBuf },
}

/// The thresholds of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Percent a stage may grow before it counts as a regression.
    pub max_regression: f64,
    /// Absolute growth below which nothing counts as a regression.
    pub floor: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_regression: DEFAULT_MAX_REGRESSION,
            floor: NOISE_FLOOR,
        }
    }
}

impl Policy {
    /// Whether a stage that took `baseline` seconds before and `now` seconds now has regressed.
    pub fn regressed(&self, baseline: f64, now: f64) -> bool {
        now > baseline * (1.0 + self.max_regression / 100.0) && now - baseline > self.floor.as_secs_f64()
    }
}

/// One stage of one scenario, then and now.
#[derive(Debug, Clone, PartialEq)]
pub struct StageComparison {
    pub scenario: String,
    pub stage: String,
    /// Seconds in the baseline; `None` for a stage the baseline run did not have.
    pub baseline: Option<f64>,
    /// Seconds now; `None` for a stage this run did not have.
    pub now: Option<f64>,
    pub regressed: bool,
    /// Why the two cannot be compared: a countdown skipped in one run only.
    pub incomparable: Option<String>,
}

/// Why a scenario of this run was not compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Skipped {
    /// The baseline has no run of this scenario.
    NotInBaseline,
    /// The scenario failed in this run or in the baseline.
    Failed,
}

/// A run set against a baseline.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub stages: Vec<StageComparison>,
    pub skipped: Vec<(String, Skipped)>,
}

impl Comparison {
    /// The stages that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &StageComparison> {
        self.stages.iter().filter(|s| s.regressed)
    }

    /// The table the CLI prints: every compared stage with both numbers, regressions marked.
    pub fn render(&self, policy: &Policy) -> String {
        let mut out = String::new();
        let name_width = self
            .stages
            .iter()
            .map(|s| s.scenario.len() + s.stage.len() + 1)
            .max()
            .unwrap_or(0);
        for s in &self.stages {
            let label = format!("{} {}", s.scenario, s.stage);
            let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}s"));
            let change = match (s.baseline, s.now) {
                _ if s.incomparable.is_some() => {
                    format!("not compared: {}", s.incomparable.as_deref().unwrap_or_default())
                }
                (Some(b), Some(n)) if b > 0.0 => format!("{:+.0}%", (n - b) / b * 100.0),
                (Some(_), Some(0.0)) => "+0%".to_owned(),
                (Some(_), Some(_)) => "was 0".to_owned(),
                (None, Some(_)) => "not in baseline".to_owned(),
                (Some(_), None) => "not reached".to_owned(),
                (None, None) => String::new(),
            };
            let mark = if s.regressed { "  REGRESSION" } else { "" };
            let _ = writeln!(
                out,
                "  {label:<name_width$}  {:>8} -> {:>8}  {change}{mark}",
                cell(s.baseline),
                cell(s.now),
            );
        }
        for (scenario, why) in &self.skipped {
            let why = match why {
                Skipped::NotInBaseline => "not in the baseline",
                Skipped::Failed => "not compared: failed here or in the baseline",
            };
            let _ = writeln!(out, "  {scenario}: {why}");
        }
        let regressions = self.regressions().count();
        let _ = writeln!(
            out,
            "{regressions} stage regression{} (limit +{}% and +{:.1}s)",
            if regressions == 1 { "" } else { "s" },
            policy.max_regression,
            policy.floor.as_secs_f64()
        );
        out
    }
}

impl Baseline {
    /// Reads a baseline from a timings file, a directory of them, or a combined file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let mut baseline = Baseline {
            source: path.to_owned(),
            scenarios: BTreeMap::new(),
        };
        let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut add = |runs: Vec<Timings>, file: &Path| -> Result<(), BaselineError> {
            for run in runs {
                if let Some(first) = origin.get(&run.scenario) {
                    return Err(BaselineError::Duplicate {
                        scenario: run.scenario,
                        first: first.clone(),
                        second: file.to_owned(),
                    });
                }
                origin.insert(run.scenario.clone(), file.to_owned());
                baseline.scenarios.insert(run.scenario.clone(), run);
            }
            Ok(())
        };
        if path.is_dir() {
            let mut files = Vec::new();
            let entries = std::fs::read_dir(path).map_err(|source| BaselineError::Read {
                path: path.to_owned(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| BaselineError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let name = entry.file_name();
                if name.to_string_lossy().ends_with(TIMINGS_SUFFIX) {
                    files.push(entry.path());
                }
            }
            if files.is_empty() {
                return Err(BaselineError::Empty {
                    path: path.to_owned(),
                });
            }
            files.sort();
            for file in files {
                add(read_file(&file)?, &file)?;
            }
        } else {
            add(read_file(path)?, path)?;
        }
        Ok(baseline)
    }

    /// Sets `runs` against the baseline, stage by stage.
    pub fn compare(&self, runs: &[Timings], policy: &Policy) -> Comparison {
        let mut comparison = Comparison::default();
        for run in runs {
            let Some(before) = self.scenarios.get(&run.scenario) else {
                comparison
                    .skipped
                    .push((run.scenario.clone(), Skipped::NotInBaseline));
                continue;
            };
            if !run.passed() || !before.passed() {
                comparison.skipped.push((run.scenario.clone(), Skipped::Failed));
                continue;
            }
            for stage in &run.stages {
                let then = before.stages.iter().find(|s| s.name == stage.name);
                let incomparable = then.and_then(|then| countdown_differs(then, stage));
                comparison.stages.push(StageComparison {
                    scenario: run.scenario.clone(),
                    stage: stage.name.clone(),
                    baseline: then.map(|s| s.duration),
                    now: Some(stage.duration),
                    regressed: incomparable.is_none()
                        && then.is_some_and(|then| policy.regressed(then.duration, stage.duration)),
                    incomparable,
                });
            }
            for then in &before.stages {
                if !run.stages.iter().any(|s| s.name == then.name) {
                    comparison.stages.push(StageComparison {
                        scenario: run.scenario.clone(),
                        stage: then.name.clone(),
                        baseline: Some(then.duration),
                        now: None,
                        regressed: false,
                        incomparable: None,
                    });
                }
            }
        }
        comparison
    }
}

/// Why a stage's two runs are not comparable: one skipped a countdown the other waited out.
fn countdown_differs(then: &StageRecord, now: &StageRecord) -> Option<String> {
    match (&then.skipped_wait, &now.skipped_wait) {
        (a, b) if a == b => None,
        (None, None) => None,
        (None, Some(wait)) => Some(format!("{wait} countdown skipped in this run only")),
        (Some(wait), None) => Some(format!("{wait} countdown skipped in the baseline only")),
        (Some(before), Some(now)) => Some(format!("{before} countdown skipped in the baseline, {now} now")),
    }
}

/// A timings file holds one run; a combined file says its format and holds several.
#[derive(Deserialize)]
#[serde(untagged)]
enum BaselineFile {
    Combined(CombinedTimings),
    Single(Timings),
}

fn read_file(path: &Path) -> Result<Vec<Timings>, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
        path: path.to_owned(),
        source,
    })?;
    // Tried as a combined file first so that its format mismatch is reported as such rather
    // than as "not a timings file".
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(format) = map.get("format") {
            if format != BASELINE_FORMAT {
                return Err(BaselineError::Version {
                    path: path.to_owned(),
                    found: format.as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    match serde_json::from_str::<BaselineFile>(&text) {
        Ok(BaselineFile::Combined(combined)) => Ok(combined.scenarios),
        Ok(BaselineFile::Single(single)) => Ok(vec![single]),
        Err(e) => Err(BaselineError::Format {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timings::TimingsVerdict;

    fn run(scenario: &str, verdict: &str, stages: &[(&str, f64)]) -> Timings {
        let mut start = 0.0;
        Timings {
            scenario: scenario.to_owned(),
            image: "r2s.img".to_owned(),
            verdict: if verdict == "pass" {
                TimingsVerdict::Pass
            } else {
                TimingsVerdict::Fail
            },
            total: stages.iter().map(|s| s.1).sum(),
            stages: stages
                .iter()
                .map(|(name, duration)| {
                    let record = StageRecord {
                        name: (*name).to_owned(),
                        start,
                        duration: *duration,
                        skipped_wait: None,
                    };
                    start += duration;
                    record
                })
                .collect(),
        }
    }

    fn baseline_of(runs: Vec<Timings>) -> Baseline {
        Baseline {
            source: "b.json".into(),
            scenarios: runs.into_iter().map(|r| (r.scenario.clone(), r)).collect(),
        }
    }

    fn regressed_stages(base: &[(&str, f64)], now: &[(&str, f64)], pct: f64) -> Vec<String> {
        let baseline = baseline_of(vec![run("s", "pass", base)]);
        let policy = Policy {
            max_regression: pct,
            ..Policy::default()
        };
        baseline
            .compare(&[run("s", "pass", now)], &policy)
            .regressions()
            .map(|s| s.stage.clone())
            .collect()
    }

    #[test]
    fn a_stage_over_the_percentage_and_the_floor_regresses() {
        assert_eq!(
            regressed_stages(&[("kernel", 2.0)], &[("kernel", 3.0)], 20.0),
            ["kernel"]
        );
    }

    #[test]
    fn a_stage_within_the_percentage_does_not_regress() {
        assert!(regressed_stages(&[("kernel", 10.0)], &[("kernel", 11.9)], 20.0).is_empty());
    }

    #[test]
    fn a_short_stage_does_not_regress_on_changes_under_the_floor() {
        // +150 %, but only 0.3 s: scheduling noise.
        assert!(regressed_stages(&[("menu", 0.2)], &[("menu", 0.5)], 20.0).is_empty());
    }

    #[test]
    fn a_short_stage_regresses_once_the_change_passes_the_floor() {
        assert_eq!(
            regressed_stages(&[("menu", 0.2)], &[("menu", 0.8)], 20.0),
            ["menu"]
        );
    }

    #[test]
    fn the_limit_follows_max_regression() {
        assert!(regressed_stages(&[("kernel", 2.0)], &[("kernel", 3.0)], 60.0).is_empty());
        assert_eq!(
            regressed_stages(&[("kernel", 2.0)], &[("kernel", 3.0)], 40.0),
            ["kernel"]
        );
    }

    #[test]
    fn faster_stages_never_regress() {
        assert!(regressed_stages(&[("kernel", 5.0)], &[("kernel", 1.0)], 0.0).is_empty());
    }

    #[test]
    fn failed_runs_and_unknown_scenarios_are_skipped_not_compared() {
        let baseline = baseline_of(vec![
            run("failed-before", "fail", &[("uboot", 1.0)]),
            run("passes", "pass", &[("uboot", 1.0)]),
        ]);
        let comparison = baseline.compare(
            &[
                run("failed-before", "pass", &[("uboot", 9.0)]),
                run("passes", "fail", &[("uboot", 9.0)]),
                run("new", "pass", &[("uboot", 9.0)]),
            ],
            &Policy::default(),
        );
        assert!(comparison.stages.is_empty());
        assert_eq!(
            comparison.skipped,
            [
                ("failed-before".to_owned(), Skipped::Failed),
                ("passes".to_owned(), Skipped::Failed),
                ("new".to_owned(), Skipped::NotInBaseline),
            ]
        );
    }

    #[test]
    fn stages_on_one_side_only_are_shown_but_do_not_regress() {
        let baseline = baseline_of(vec![run("s", "pass", &[("uboot", 1.0), ("menu", 1.0)])]);
        let comparison = baseline.compare(
            &[run("s", "pass", &[("uboot", 1.0), ("body", 9.0)])],
            &Policy::default(),
        );
        let rows: Vec<_> = comparison
            .stages
            .iter()
            .map(|s| (s.stage.as_str(), s.baseline, s.now, s.regressed))
            .collect();
        assert_eq!(
            rows,
            [
                ("uboot", Some(1.0), Some(1.0), false),
                ("body", None, Some(9.0), false),
                ("menu", Some(1.0), None, false),
            ]
        );
    }

    #[test]
    fn render_prints_both_numbers_and_marks_regressions() {
        let baseline = baseline_of(vec![run("boot", "pass", &[("uboot", 2.0), ("kernel", 2.0)])]);
        let policy = Policy::default();
        let text = baseline
            .compare(
                &[run("boot", "pass", &[("uboot", 2.1), ("kernel", 3.5)])],
                &policy,
            )
            .render(&policy);
        assert_eq!(
            text,
            "  boot uboot      2.00s ->    2.10s  +5%\n  boot kernel     2.00s ->    3.50s  +75%  REGRESSION\n\
             1 stage regression (limit +20% and +0.5s)\n"
        );
    }

    #[test]
    fn loads_a_single_file_a_directory_and_a_combined_file() {
        let dir = tempfile::tempdir().unwrap();
        let runs_dir = dir.path().join("run");
        std::fs::create_dir(&runs_dir).unwrap();
        let a = run("a", "pass", &[("uboot", 1.0)]);
        let b = run("b", "pass", &[("uboot", 2.0)]);
        a.write(&runs_dir, "a").unwrap();
        b.write(&runs_dir, "b").unwrap();
        std::fs::write(runs_dir.join("a.log"), "not json").unwrap();
        let combined = dir.path().join("baseline.json");
        CombinedTimings::new(vec![a.clone(), b.clone()])
            .write(&combined)
            .unwrap();

        let single = Baseline::load(&runs_dir.join("a.timings.json")).unwrap();
        assert_eq!(single.scenarios.keys().collect::<Vec<_>>(), ["a"]);
        for path in [&runs_dir, &combined] {
            let loaded = Baseline::load(path).unwrap();
            assert_eq!(loaded.scenarios["a"], a);
            assert_eq!(loaded.scenarios["b"], b);
        }
    }

    #[test]
    fn a_file_of_another_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(&path, r#"{"format": "r2s-harness-baseline/9", "scenarios": []}"#).unwrap();
        let err = Baseline::load(&path).unwrap_err().to_string();
        assert!(err.contains("r2s-harness-baseline/9"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_timings_is_a_format_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(&path, r#"{"scenario": "x"}"#).unwrap();
        let err = Baseline::load(&path).unwrap_err();
        assert!(matches!(err, BaselineError::Format { .. }), "{err}");
        assert!(err.to_string().contains("b.json"), "{err}");
    }

    #[test]
    fn a_scenario_twice_in_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        run("a", "pass", &[]).write(dir.path(), "a").unwrap();
        run("a", "pass", &[]).write(dir.path(), "a-again").unwrap();
        let err = Baseline::load(dir.path()).unwrap_err();
        assert!(matches!(err, BaselineError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn a_stage_whose_countdown_was_skipped_in_one_run_only_is_shown_but_not_compared() {
        // An old baseline waited 2 s of autoboot in `uboot`; this run skipped it and was
        // slower elsewhere in the stage: neither a speed-up nor a regression.
        let baseline = baseline_of(vec![run("s", "pass", &[("uboot", 2.4), ("kernel", 2.0)])]);
        let mut now = run("s", "pass", &[("uboot", 9.0), ("kernel", 2.0)]);
        now.stages[0].skipped_wait = Some("autoboot".to_owned());
        let comparison = baseline.compare(&[now], &Policy::default());
        assert_eq!(comparison.regressions().count(), 0);
        assert_eq!(
            comparison.stages[0].incomparable.as_deref(),
            Some("autoboot countdown skipped in this run only")
        );
        assert_eq!(comparison.stages[1].incomparable, None);
        assert!(comparison
            .render(&Policy::default())
            .contains("not compared: autoboot countdown skipped in this run only"));
    }

    #[test]
    fn stages_that_skipped_the_same_countdown_on_both_sides_are_compared() {
        let mark = |mut run: Timings| {
            run.stages[0].skipped_wait = Some("menu".to_owned());
            run
        };
        let baseline = baseline_of(vec![mark(run("s", "pass", &[("menu", 0.2)]))]);
        let comparison = baseline.compare(&[mark(run("s", "pass", &[("menu", 3.2)]))], &Policy::default());
        assert_eq!(comparison.regressions().count(), 1);
    }
}
