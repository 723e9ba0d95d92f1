//! The HTML report: one self-contained page per run (every script and style inline, nothing
//! fetched), written when the suite finishes. It shows the summary, each scenario's stages on
//! a timeline drawn to scale (against a baseline when the run has one), a failure's step,
//! reason and console excerpt, the whole transcript searchable, and a replay of the recording.
//!
//! Console text reaches the page only as JSON inside `<script type="application/json">`
//! ([`escape`]) and is put into the document by the page's script with `textContent`, so a
//! console that prints markup shows markup. Only the redacted transcripts (`.log`, `.cast`)
//! are read, never the `.raw` bytes.

pub mod escape;
pub mod excerpt;
mod interactive;
pub mod page;
pub mod scenario;
pub mod timeline;
pub mod transcript;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::baseline::{Baseline, Policy};
use crate::runner::ScenarioResult;
use crate::suite::ReportError;
use crate::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// The file name of the page in the transcripts directory, where `harness run` writes it by
/// default.
pub const REPORT_FILE: &str = "report.html";

/// What the page says about the run as a whole, beyond its results: what ran where.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    /// The image booted (or, on a board, the image its card was written from), if any.
    pub image: Option<String>,
    /// The board profile's name.
    pub board: String,
    /// What the scenarios ran on: `QEMU (qemu-system-aarch64, virt machine)`, a serial port.
    pub target: String,
    /// What was done before anything booted, one line each (the adaptation for QEMU).
    pub setup: Vec<String>,
}

/// A baseline the run is compared against, and the rule for a regression.
#[derive(Debug, Clone)]
pub struct BaselineView {
    pub baseline: Baseline,
    pub policy: Policy,
}

/// Writes the page at `path` when the suite finishes.
#[derive(Debug)]
pub struct HtmlReporter {
    path: PathBuf,
    info: RunInfo,
    baseline: Option<BaselineView>,
}

impl HtmlReporter {
    /// A reporter writing `path`, saying `info` about the run and drawing `baseline`'s bars.
    pub fn new(path: PathBuf, info: RunInfo, baseline: Option<BaselineView>) -> HtmlReporter {
        HtmlReporter { path, info, baseline }
    }
}

impl Reporter for HtmlReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        let SuiteEventKind::SuiteFinished { against, results } = &event.kind else {
            return Ok(());
        };
        let run = Run {
            info: &self.info,
            against,
            results,
            baseline: self.baseline.as_ref(),
        };
        write_report(&self.path, &run)
    }
}

/// Everything one page shows.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub info: &'a RunInfo,
    /// What the suite ran against (the image, a console port).
    pub against: &'a Path,
    /// The results in the scenarios' order.
    pub results: &'a [ScenarioResult],
    pub baseline: Option<&'a BaselineView>,
}

/// Writes the page of `run` at `path` (through a temporary file beside it, so a reader never
/// sees half a page).
pub fn write_report(path: &Path, run: &Run<'_>) -> Result<(), ReportError> {
    let error = |source| ReportError::Html {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let partial = path.with_extension("html.partial");
    let written = std::fs::File::create(&partial).and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        page::write(&mut out, run)?;
        std::io::Write::flush(&mut out)
    });
    match written.and_then(|()| std::fs::rename(&partial, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(error(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::{Stage, StageTiming, Verdict};
    use crate::suite::Reporters;

    fn passed(name: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            source: format!("scenarios/{name}.toml").into(),
            verdict: Verdict::Pass,
            duration: Duration::from_secs(2),
            stages: vec![StageTiming {
                name: Stage::Uboot,
                start: Duration::ZERO,
                duration: Duration::from_secs(2),
                skipped_wait: None,
            }],
            last_lines: vec![],
            failed_units: vec![],
            transcript: vec![],
            origin: Default::default(),
            earlier_tries: Vec::new(),
        }
    }

    #[test]
    fn the_page_is_written_when_the_suite_finishes_with_one_data_block_per_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out").join(REPORT_FILE);
        let mut reporters = Reporters::new();
        reporters.attach(HtmlReporter::new(path.clone(), RunInfo::default(), None));
        reporters.emit(SuiteEventKind::SuiteStarted {
            against: "r2s.img".into(),
            scenarios: 2,
        });
        reporters.emit(SuiteEventKind::ScenarioFinished {
            result: Box::new(passed("a")),
        });
        assert!(!path.exists(), "written before the suite finished");
        reporters.emit(SuiteEventKind::SuiteFinished {
            against: "r2s.img".into(),
            results: vec![passed("a"), passed("b")],
        });
        assert!(reporters.take_errors().is_empty());
        let page = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            page.matches("<script type=\"application/json\" class=\"r2s-scenario\">")
                .count(),
            2
        );
        assert!(!path.with_extension("html.partial").exists());
    }

    #[test]
    fn the_page_forbids_every_fetch_and_names_no_outside_resource() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REPORT_FILE);
        let info = RunInfo::default();
        let results = [passed("a")];
        let run = Run {
            info: &info,
            against: Path::new("r2s.img"),
            results: &results,
            baseline: None,
        };
        write_report(&path, &run).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(page.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            page::CONTENT_SECURITY_POLICY
        )));
        for outside in [
            "src=",
            "href=\"http",
            "<link",
            "url(",
            "@import",
            "fetch(",
            "XMLHttpRequest",
        ] {
            assert!(!page.contains(outside), "the page holds {outside:?}");
        }
    }

    #[test]
    fn a_page_that_cannot_be_written_is_a_report_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join(REPORT_FILE);
        let info = RunInfo::default();
        let run = Run {
            info: &info,
            against: Path::new("r2s.img"),
            results: &[],
            baseline: None,
        };
        let error = write_report(&path, &run).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot write HTML report {}", path.display())),
            "{error}"
        );
    }
}
