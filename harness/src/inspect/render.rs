//! A [`Report`] as people read it and as programs read it. The JSON shape is documented in the
//! README ("Inspecting an image before flashing") and versioned by its `version` field.

use serde::Serialize;

use super::report::{Check, Report, Status};
use crate::escape::escape_control;

/// The version of the JSON shape; raised when a field changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

/// How many checks ended how.
#[derive(Debug, Serialize)]
struct Summary {
    pass: usize,
    warn: usize,
    fail: usize,
}

/// The JSON document: the report, or the reason there is none.
#[derive(Debug, Serialize)]
struct Document<'a> {
    version: u32,
    image: String,
    board: &'a str,
    /// `pass`, `warn`, `fail`, or `error` when the image could not be read.
    result: &'a str,
    /// Why the image could not be read; `null` otherwise.
    error: Option<String>,
    summary: Summary,
    checks: &'a [Check],
}

/// The report as one JSON object (pretty-printed, newline-terminated).
pub fn json(report: &Report) -> String {
    let document = Document {
        version: JSON_VERSION,
        image: report.image.display().to_string(),
        board: report.board,
        result: report.status().as_str(),
        error: None,
        summary: Summary {
            pass: report.count(Status::Pass),
            warn: report.count(Status::Warn),
            fail: report.count(Status::Fail),
        },
        checks: &report.checks,
    };
    to_json(&document)
}

/// The JSON document for an image that could not be read at all: `result` is `error`, `error`
/// says why, and there are no checks.
pub fn json_error(image: &std::path::Path, board: &str, error: &str) -> String {
    let document = Document {
        version: JSON_VERSION,
        image: image.display().to_string(),
        board,
        result: "error",
        error: Some(error.to_owned()),
        summary: Summary {
            pass: 0,
            warn: 0,
            fail: 0,
        },
        checks: &[],
    };
    to_json(&document)
}

fn to_json(document: &Document<'_>) -> String {
    let mut text =
        serde_json::to_string_pretty(document).expect("the report serialises: no maps with non-string keys");
    text.push('\n');
    text
}

/// The report as text: one block per check, problems with their fix, then a summary line.
/// Every field quoting the image (a LABEL, a path, an APPEND line) is shown escaped, so that
/// nothing in the image can start a line of the report or move the terminal's cursor.
pub fn text(report: &Report) -> String {
    let mut out = format!(
        "image: {}\nboard: {}\n\n",
        escape_control(&report.image.display().to_string()),
        report.board
    );
    let titles: Vec<String> = report
        .checks
        .iter()
        .map(|c| escape_control(&title(c)).into_owned())
        .collect();
    let width = titles.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    for (check, title) in report.checks.iter().zip(&titles) {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            check.status.as_str().to_uppercase(),
            title,
            escape_control(&check.message)
        ));
        let indent = " ".repeat(6 + width + 2);
        out.push_str(&format!("{indent}where: {}\n", escape_control(&check.location)));
        if let Some(hint) = &check.hint {
            out.push_str(&format!("{indent}fix: {}\n", escape_control(hint)));
        }
    }
    out.push('\n');
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// `result: FAIL (2 failed, 1 warning, 30 passed)`.
pub fn summary_line(report: &Report) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "result: {} ({} failed, {}, {} passed)",
        report.status().as_str().to_uppercase(),
        report.count(Status::Fail),
        plural(report.count(Status::Warn), "warning"),
        report.count(Status::Pass)
    )
}

/// `kernel [nixos-default]`, or the bare name for image-wide checks.
fn title(check: &Check) -> String {
    match &check.label {
        Some(label) => format!("{} [{label}]", check.name),
        None => check.name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::report::CheckName;

    fn report() -> Report {
        Report {
            image: "r2s.img".into(),
            board: "nanopi-r2s",
            checks: vec![
                Check::pass(CheckName::PartitionTable, "sectors 0–33", "GPT with 2 partitions"),
                Check::fail(
                    CheckName::Kernel,
                    "LINUX /Image",
                    "/Image does not exist",
                    "copy it",
                )
                .for_label("a"),
                Check::warn(
                    CheckName::ExtlinuxKeywords,
                    "p1",
                    "U-Boot ignores UI",
                    "remove it",
                ),
            ],
        }
    }

    #[test]
    fn text_lists_each_check_with_where_and_fix_then_the_result() {
        assert_eq!(
            text(&report()),
            "image: r2s.img\nboard: nanopi-r2s\n\n\
             PASS  partition-table    GPT with 2 partitions\n\
             \x20                        where: sectors 0–33\n\
             FAIL  kernel [a]         /Image does not exist\n\
             \x20                        where: LINUX /Image\n\
             \x20                        fix: copy it\n\
             WARN  extlinux-keywords  U-Boot ignores UI\n\
             \x20                        where: p1\n\
             \x20                        fix: remove it\n\
             \nresult: FAIL (1 failed, 1 warning, 1 passed)\n"
        );
    }

    #[test]
    fn json_has_the_documented_fields() {
        let value: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["image"], "r2s.img");
        assert_eq!(value["board"], "nanopi-r2s");
        assert_eq!(value["result"], "fail");
        assert_eq!(value["error"], serde_json::Value::Null);
        assert_eq!(
            value["summary"],
            serde_json::json!({"pass": 1, "warn": 1, "fail": 1})
        );
        assert_eq!(
            value["checks"][1],
            serde_json::json!({
                "check": "kernel",
                "label": "a",
                "status": "fail",
                "where": "LINUX /Image",
                "found": "/Image does not exist",
                "hint": "copy it"
            })
        );
        assert_eq!(value["checks"][0]["hint"], serde_json::Value::Null);
        assert_eq!(value["checks"][0]["label"], serde_json::Value::Null);
    }

    #[test]
    fn json_error_has_no_checks() {
        let value: serde_json::Value = serde_json::from_str(&json_error(
            "x.img".as_ref(),
            "nanopi-r2s",
            "x.img: no partition table",
        ))
        .unwrap();
        assert_eq!(value["result"], "error");
        assert_eq!(value["error"], "x.img: no partition table");
        assert_eq!(value["checks"], serde_json::json!([]));
    }

    #[test]
    fn the_readme_documents_every_check_in_report_order() {
        let readme = include_str!("../../../README.md");
        let documented: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(name, _)| name))
            .filter(|name| CheckName::ALL.iter().any(|c| c.as_str() == *name))
            .collect();
        let all: Vec<&str> = CheckName::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, all);
    }

    #[test]
    fn every_check_name_serialises_as_its_report_name() {
        for name in CheckName::ALL {
            assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
        }
    }
}
