//! Stage timings as JSON: one `<scenario>.timings.json` beside each transcript, and the combined
//! baseline file `harness run --write-baseline` writes.
//!
//! Times are seconds (floating point, millisecond precision) from the moment the target was
//! started, so that other tools can read them without knowing Rust's duration format.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runner::{ScenarioResult, StageTiming};
use crate::scenario::transcript_stem;
use crate::suite::ReportError;
use crate::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// The `format` value of a combined baseline file.
pub const BASELINE_FORMAT: &str = "r2s-harness-baseline/1";

/// The file name suffix of a scenario's timings.
pub const TIMINGS_SUFFIX: &str = ".timings.json";

/// One scenario run's timings: what `<scenario>.timings.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The scenario's name.
    pub scenario: String,
    /// The image it ran against, as given to the harness.
    pub image: String,
    /// `"pass"` or `"fail"`.
    pub verdict: TimingsVerdict,
    /// Seconds from the target's start to the end of the scenario.
    pub total: f64,
    /// The stages in the order they began.
    pub stages: Vec<StageRecord>,
}

/// A run's verdict as timings files write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingsVerdict {
    Pass,
    Fail,
}

/// One stage of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// `uboot`, `menu`, `kernel`, `stage-1`, `stage-2`, `login`, `body`, or a stage a scenario
    /// file names.
    pub name: String,
    /// Seconds from the target's start to the stage's beginning.
    pub start: f64,
    /// Seconds the stage lasted.
    pub duration: f64,
    /// The countdown the harness skipped in this stage (`autoboot`, `menu`); absent when the
    /// stage ran in real time, as every stage did before the harness skipped any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_wait: Option<String>,
}

/// Several runs' timings in one file, as `--write-baseline` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinedTimings {
    /// Always [`BASELINE_FORMAT`].
    pub format: String,
    /// One entry per scenario.
    pub scenarios: Vec<Timings>,
}

/// Reading or writing a timings file failed.
#[derive(Debug, thiserror::Error)]
pub enum TimingsError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl From<TimingsError> for ReportError {
    fn from(error: TimingsError) -> ReportError {
        match error {
            TimingsError::Write { path, source } => ReportError::Write { path, source },
        }
    }
}

impl Timings {
    /// The timings of `result`, a run against `image`.
    pub fn of(result: &ScenarioResult, image: &Path) -> Timings {
        Timings {
            scenario: result.name.clone(),
            image: image.display().to_string(),
            verdict: if result.passed() {
                TimingsVerdict::Pass
            } else {
                TimingsVerdict::Fail
            },
            total: seconds(result.duration),
            stages: result.stages.iter().map(StageRecord::of).collect(),
        }
    }

    /// Whether the run passed; only passed runs are compared against a baseline.
    pub fn passed(&self) -> bool {
        self.verdict == TimingsVerdict::Pass
    }

    /// Writes `<dir>/<stem>.timings.json` and returns its path.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<PathBuf, TimingsError> {
        let path = dir.join(format!("{stem}{TIMINGS_SUFFIX}"));
        write_json(&path, self)?;
        Ok(path)
    }
}

impl StageRecord {
    fn of(stage: &StageTiming) -> StageRecord {
        StageRecord {
            name: stage.name.to_string(),
            start: seconds(stage.start),
            duration: seconds(stage.duration),
            skipped_wait: stage.skipped_wait.map(|w| w.as_str().to_owned()),
        }
    }
}

impl CombinedTimings {
    /// A combined file of `runs`.
    pub fn new(runs: Vec<Timings>) -> CombinedTimings {
        CombinedTimings {
            format: BASELINE_FORMAT.to_owned(),
            scenarios: runs,
        }
    }

    /// Writes the file at `path`.
    pub fn write(&self, path: &Path) -> Result<(), TimingsError> {
        write_json(path, self)
    }
}

/// Writes `<scenario>.timings.json` beside each transcript as each scenario finishes, and, when
/// asked, every scenario's timings into one combined baseline file when the suite finishes.
#[derive(Debug)]
pub struct TimingsReporter {
    dir: PathBuf,
    combined: Option<PathBuf>,
    /// What the suite runs against, from its start.
    against: PathBuf,
}

impl TimingsReporter {
    /// Per-scenario files in `dir`; the combined file at `combined`, if given.
    pub fn new(dir: PathBuf, combined: Option<PathBuf>) -> TimingsReporter {
        TimingsReporter {
            dir,
            combined,
            against: PathBuf::new(),
        }
    }
}

impl Reporter for TimingsReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        match &event.kind {
            SuiteEventKind::SuiteStarted { against, .. } => self.against = against.clone(),
            // A skipped scenario, or one that could not run, has no timings.
            SuiteEventKind::ScenarioFinished { result } if result.ran() => {
                std::fs::create_dir_all(&self.dir).map_err(|source| TimingsError::Write {
                    path: self.dir.clone(),
                    source,
                })?;
                Timings::of(result, &self.against).write(&self.dir, &transcript_stem(&result.name))?;
            }
            SuiteEventKind::SuiteFinished { against, results, .. } => {
                if let Some(path) = &self.combined {
                    let runs = results
                        .iter()
                        .filter(|r| r.ran())
                        .map(|r| Timings::of(r, against))
                        .collect();
                    CombinedTimings::new(runs).write(path)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TimingsError> {
    let mut text = serde_json::to_string_pretty(value).expect("timings serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|source| TimingsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Seconds rounded to the millisecond: finer digits are noise and make files hard to read.
fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::Verdict;

    fn result() -> ScenarioResult {
        let stage = |name: &str, start: u64, duration: u64| StageTiming {
            name: crate::runner::Stage::named(name),
            start: Duration::from_millis(start),
            duration: Duration::from_millis(duration),
            skipped_wait: None,
        };
        ScenarioResult {
            name: "boot-to-login".into(),
            source: "scenarios/boot-to-login.toml".into(),
            verdict: Verdict::Pass,
            duration: Duration::from_micros(9_812_345),
            stages: vec![stage("uboot", 0, 2_900), stage("menu", 2_900, 612)],
            last_lines: vec![],
            failed_units: vec![],
            transcript: vec![],
            origin: Default::default(),
            earlier_tries: Vec::new(),
        }
    }

    #[test]
    fn timings_json_has_the_documented_fields_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = Timings::of(&result(), Path::new("img/r2s.img"))
            .write(dir.path(), "boot-to-login")
            .unwrap();
        assert_eq!(path, dir.path().join("boot-to-login.timings.json"));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "scenario": "boot-to-login",
                "image": "img/r2s.img",
                "verdict": "pass",
                "total": 9.812,
                "stages": [
                    {"name": "uboot", "start": 0.0, "duration": 2.9},
                    {"name": "menu", "start": 2.9, "duration": 0.612},
                ],
            })
        );
    }

    #[test]
    fn combined_file_names_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        CombinedTimings::new(vec![Timings::of(&result(), Path::new("a.img"))])
            .write(&path)
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["format"], BASELINE_FORMAT);
        assert_eq!(json["scenarios"][0]["scenario"], "boot-to-login");
    }

    #[test]
    fn the_reporter_writes_each_scenarios_file_as_it_finishes_and_the_combined_file_at_the_end() {
        use crate::suite::{Reporters, SuiteEventKind};
        let dir = tempfile::tempdir().unwrap();
        let transcripts = dir.path().join("transcripts");
        let combined = dir.path().join("baseline.json");
        let mut reporters = Reporters::new();
        reporters.attach(TimingsReporter::new(transcripts.clone(), Some(combined.clone())));
        reporters.emit(SuiteEventKind::SuiteStarted {
            against: "img/r2s.img".into(),
            scenarios: 1,
        });
        reporters.emit(SuiteEventKind::ScenarioFinished {
            result: Box::new(result()),
        });
        let file = transcripts.join("boot-to-login.timings.json");
        let written: Timings = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(written, Timings::of(&result(), Path::new("img/r2s.img")));
        assert!(!combined.exists(), "written before the suite finished");
        reporters.emit(SuiteEventKind::SuiteFinished {
            against: "img/r2s.img".into(),
            results: vec![result()],
        });
        let all: CombinedTimings = serde_json::from_slice(&std::fs::read(&combined).unwrap()).unwrap();
        assert_eq!(all.scenarios, vec![written]);
        assert!(reporters.take_errors().is_empty());
    }
}
