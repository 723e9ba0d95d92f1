//! The page skeleton: the document, its Content-Security-Policy (nothing may be fetched; only
//! the page's own inline script and style run), the inline CSS and script, and the data they
//! draw from, one JSON block for the run and one per scenario.

use std::io::{self, Write};
use std::time::SystemTime;

use serde::Serialize;

use super::escape::{html_text, ScriptJson};
use super::scenario::scenario_view;
use super::Run;

/// Nothing is fetched: no scripts, styles, fonts, images (but inline `data:`), frames or
/// connections other than the page's own inline ones.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = include_str!("assets/report.css");
const SCRIPT: &str = include_str!("assets/report.js");
const PLAYER: &str = include_str!("assets/player.js");

/// The page's summary of the run.
#[derive(Serialize)]
struct RunView<'a> {
    harness_version: &'static str,
    generated: String,
    against: String,
    #[serde(flatten)]
    info: &'a super::RunInfo,
    passed: usize,
    failed: usize,
    /// Scenarios not run: the image does not meet what they require.
    skipped: usize,
    /// Scenarios the harness could not run.
    errors: usize,
    /// Passed scenarios that failed a try first (`--retries`).
    flaky: usize,
    baseline: Option<BaselineSummary>,
}

#[derive(Serialize)]
struct BaselineSummary {
    source: String,
    max_regression: f64,
    floor: f64,
}

/// Writes the whole page of `run` to `out`, one scenario's transcript in memory at a time.
pub fn write(out: &mut dyn Write, run: &Run<'_>) -> io::Result<()> {
    let passed = run.results.iter().filter(|r| r.passed()).count();
    let failed = run.results.iter().filter(|r| r.failed()).count();
    let skipped = run.results.iter().filter(|r| r.skipped().is_some()).count();
    let errors = run.results.iter().filter(|r| r.error().is_some()).count();
    let title = format!(
        "{} — {} — r2s-harness",
        run.against.display(),
        crate::report::text::totals(run.results)
    );
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report is drawn by its own inline script; allow scripts for this file to read it.</noscript>\n\
         <main id=\"report\"></main>\n",
        html_text(&title)
    )?;
    let summary = RunView {
        harness_version: env!("CARGO_PKG_VERSION"),
        generated: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        against: run.against.display().to_string(),
        info: run.info,
        passed,
        failed,
        skipped,
        errors,
        flaky: run.results.iter().filter(|r| r.flaky()).count(),
        baseline: run.baseline.map(|b| BaselineSummary {
            source: b.baseline.source.display().to_string(),
            max_regression: b.policy.max_regression,
            floor: b.policy.floor.as_secs_f64(),
        }),
    };
    data_block(out, "r2s-run", &summary)?;
    for result in run.results {
        let view = scenario_view(result, run.against, run.baseline);
        data_block(out, "r2s-scenario", &view)?;
    }
    write!(out, "<script>\n{PLAYER}\n{SCRIPT}</script>\n</body>\n</html>\n")
}

/// `<script type="application/json" class="CLASS">…</script>` holding `value`.
fn data_block<T: Serialize>(out: &mut dyn Write, class: &str, value: &T) -> io::Result<()> {
    write!(out, "<script type=\"application/json\" class=\"{class}\">")?;
    let mut json = ScriptJson::new(&mut *out);
    serde_json::to_writer(&mut json, value).map_err(io::Error::other)?;
    json.finish()?;
    out.write_all(b"</script>\n")
}
