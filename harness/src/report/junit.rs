//! JUnit XML, the format CI systems read test results in.

use std::fmt::Write;

use std::path::PathBuf;

use super::text;
use crate::escape::push_escaped;
use crate::runner::{ScenarioResult, Verdict};
use crate::suite::ReportError;
use crate::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// Writes the JUnit file when the suite finishes, with every result in the scenarios' order,
/// grouped under the name of what they ran against (the image's file name).
#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
}

impl JunitReporter {
    /// A reporter writing `path`.
    pub fn new(path: PathBuf) -> JunitReporter {
        JunitReporter { path }
    }
}

impl Reporter for JunitReporter {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        let SuiteEventKind::SuiteFinished { against, results, .. } = &event.kind else {
            return Ok(());
        };
        let suite_name = against
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::write(&self.path, render(&suite_name, results)).map_err(|source| ReportError::Junit {
            path: self.path.clone(),
            source,
        })
    }
}

/// A `<testsuites>` document with one `<testcase>` per scenario, grouped under `suite` (the
/// image's name).
pub fn render(suite: &str, results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| r.failed()).count();
    let skipped = results.iter().filter(|r| r.skipped().is_some()).count();
    let errors = results.iter().filter(|r| r.error().is_some()).count();
    let total: f64 = results.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{total:.3}\">",
        results.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape_attribute(suite),
        results.len()
    );
    for r in results {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\" file=\"{}\">",
            escape_attribute(suite),
            escape_attribute(&r.name),
            r.duration.as_secs_f64(),
            escape_attribute(&r.source.display().to_string())
        );
        match &r.verdict {
            // Retried (`--retries`) as nextest and Surefire report it: the first try is the
            // `<failure>`, each later one a `<rerunFailure>`.
            Verdict::Fail(_) => {
                let tries = r.earlier_tries.iter().chain(std::iter::once(r));
                for (index, try_result) in tries.enumerate() {
                    let element = if index == 0 { "failure" } else { "rerunFailure" };
                    push_failure(&mut out, element, try_result);
                }
                out.push_str("\n    ");
            }
            // Passed on a later try: flaky, each failed try a `<flakyFailure>`.
            Verdict::Pass if r.flaky() => {
                for failed in &r.earlier_tries {
                    push_failure(&mut out, "flakyFailure", failed);
                }
                out.push_str("\n    ");
            }
            Verdict::Skip(reason) => {
                let _ = write!(
                    out,
                    "\n      <skipped message=\"{}\"/>\n    ",
                    escape_attribute(reason)
                );
            }
            Verdict::Error(reason) => {
                let _ = write!(
                    out,
                    "\n      <error message=\"{}\" type=\"could not run\">{}</error>\n    ",
                    escape_attribute(reason),
                    escape(reason)
                );
            }
            Verdict::Pass => {}
        }
        let mut system_out = format!("stages: {}", text::stages(&r.stages));
        let units = text::failed_units(r);
        if !units.is_empty() {
            system_out.push('\n');
            system_out.push_str(units.trim_end());
        }
        let _ = writeln!(out, "<system-out>{}</system-out></testcase>", escape(&system_out));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `<element message type time>`, the failure details of `result` (one failed try) inside:
/// in `<stackTrace>` for the retry elements, as Surefire's schema has it, directly in a
/// `<failure>`.
fn push_failure(out: &mut String, element: &str, result: &ScenarioResult) {
    let Verdict::Fail(f) = &result.verdict else {
        return;
    };
    let details = escape(&text::failure_details(result));
    let (time, body) = if element == "failure" {
        (String::new(), details)
    } else {
        (
            format!(" time=\"{:.3}\"", result.duration.as_secs_f64()),
            format!("<stackTrace>{details}</stackTrace>"),
        )
    };
    let _ = write!(
        out,
        "\n      <{element} message=\"{}\" type=\"{}\"{time}>{body}</{element}>",
        escape_attribute(&f.reason.to_string()),
        escape_attribute(&f.expected),
    );
}

/// XML-escapes text. Every other character
/// [`needs_escape`](crate::escape::needs_escape) picks but `\n` and `\t` is written as the
/// text report writes it (`\u{9b}`, `\r`), so no control character, bidi override or line
/// separator from the console reaches a CI page, and the two reports agree. A tab, which the
/// text report keeps in console lines, is written `&#9;`: an XML parser turns a literal tab in
/// an attribute (the failure's `message`) into a space. U+FFFE and U+FFFF, which XML 1.0
/// cannot carry, become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push(c),
            '\t' => out.push_str("&#9;"),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// [`escape`] for an attribute's value, where an XML parser reads a literal newline as a
/// space (attribute-value normalisation): a failure's message keeps its lines as `&#10;`.
pub fn escape_attribute(text: &str) -> String {
    escape(text).replace('\n', "&#10;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The elements inside the one test case of `xml`, by name, in order.
    fn elements_in_testcase(xml: &str) -> Vec<&str> {
        let case = &xml[xml.find("<testcase").unwrap()..xml.find("</testcase>").unwrap()];
        case.match_indices('<')
            .skip(1)
            .filter_map(|(at, _)| {
                let name = &case[at + 1..];
                let end = name.find([' ', '>', '/'])?;
                (!name.starts_with('/')).then_some(&name[..end])
            })
            .collect()
    }

    #[test]
    fn a_scenario_passing_on_a_retry_is_a_passing_case_with_a_flaky_failure_per_failed_try() {
        let failed = text::result_failed_on_console("x");
        let flaky = ScenarioResult {
            earlier_tries: vec![failed.clone(), failed],
            ..text::result_with_failed_units(&[])
        };
        let xml = render("img", &[flaky]);
        assert_eq!(
            elements_in_testcase(&xml),
            [
                "flakyFailure",
                "stackTrace",
                "flakyFailure",
                "stackTrace",
                "system-out"
            ]
        );
        assert!(xml.contains("failures=\"0\""), "{xml}");
        assert!(
            xml.contains("<flakyFailure message=\"output did not match /nope/:&#10;x\" type=\"output matching /nope/\" time=\"90.000\"><stackTrace>  step 1: run"),
            "{xml}"
        );
    }

    #[test]
    fn a_scenario_failing_every_try_is_a_failure_then_a_rerun_failure_per_later_try() {
        let failed = text::result_failed_on_console("x");
        let every_try = ScenarioResult {
            earlier_tries: vec![failed.clone(), failed.clone()],
            ..failed
        };
        let xml = render("img", &[every_try]);
        assert_eq!(
            elements_in_testcase(&xml),
            [
                "failure",
                "rerunFailure",
                "stackTrace",
                "rerunFailure",
                "stackTrace",
                "system-out"
            ]
        );
        assert!(xml.contains("failures=\"1\""), "{xml}");
    }

    #[test]
    fn failed_units_are_listed_in_the_testcase_output() {
        let result = text::result_with_failed_units(&["systemd-networkd.service - Network Configuration"]);
        let xml = render("img", &[result]);
        assert!(
            xml.contains(
                "<system-out>stages: \n  failed units (1):\n    [FAILED] systemd-networkd.service - Network Configuration</system-out>"
            ),
            "{xml}"
        );
        assert!(xml.contains("failures=\"0\""), "{xml}");
    }

    #[test]
    fn escape_replaces_markup_and_writes_control_characters_as_escapes() {
        assert_eq!(
            escape("a<b & \"c\"\u{1b}[0m\r\t\u{FFFE}"),
            "a&lt;b &amp; &quot;c&quot;\\u{1b}[0m\\r&#9;\u{FFFD}"
        );
    }

    /// Asserts that `raw` in a console line is shown as `escaped` in the failure's message
    /// and its text, and never as itself.
    fn assert_shown_escaped(raw: &str, escaped: &str) {
        let result = text::result_failed_on_console(&format!("a{raw}b"));
        let xml = render("img", &[result]);
        assert!(!xml.contains(raw), "{xml:?}");
        assert!(
            xml.contains(&format!(
                "<failure message=\"output did not match /nope/:&#10;a{escaped}b\""
            )),
            "message: {xml}"
        );
        assert!(xml.contains(&format!("\n    a{escaped}b\n")), "reason: {xml}");
        assert!(xml.contains(&format!("\n    | a{escaped}b\n")), "excerpt: {xml}");
    }

    crate::escape::shows_each_control_class_escaped!(assert_shown_escaped);

    #[test]
    fn a_tab_in_console_text_stays_a_tab_as_in_the_text_report() {
        // U-Boot's menu: `1:\tNixOS`. As a character reference it survives an attribute, where
        // an XML parser would make a literal tab a space.
        let result = text::result_failed_on_console("1:\tNixOS");
        let xml = render("img", &[result]);
        assert!(
            xml.contains("<failure message=\"output did not match /nope/:&#10;1:&#9;NixOS\""),
            "{xml}"
        );
        assert!(xml.contains("\n    | 1:&#9;NixOS\n"), "{xml}");
        assert!(!xml.contains("\\t"), "{xml}");
    }

    #[test]
    fn a_failure_message_keeps_its_lines_in_the_attribute_and_the_text_keeps_them_as_newlines() {
        // A parser normalises a literal newline in an attribute to a space; `&#10;` survives.
        let result = text::result_failed_on_console("first\nsecond");
        let xml = render("img", &[result]);
        let message = xml
            .split("<failure message=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a failure message attribute");
        assert!(!message.contains('\n'), "{message:?}");
        assert!(message.contains("&#10;"), "{message:?}");
        assert!(
            xml.contains("\n    first\n    second\n"),
            "the failure text keeps its lines: {xml}"
        );
    }

    #[test]
    fn the_failure_text_is_the_text_reports_failure_details() {
        let result = text::result_failed_on_console("a\u{9b}<b>\u{202e}");
        let xml = render("img", std::slice::from_ref(&result));
        let details = escape(&text::failure_details(&result));
        assert!(xml.contains(&format!("\">{details}</failure>")), "{xml}");
    }
}
