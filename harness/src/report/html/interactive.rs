//! The interactive parts of a transcript (`--attach-on-failure`, `--pause-at`, a `pause`
//! step), each its own section of the page: what the person was handed and why, and what they
//! and the console did, between the runner's `interactive session begins (…)` and
//! `interactive session ends: …` notes.

use serde::Serialize;

use super::transcript::{LineKind, LogLine};

/// The note that opens an interactive part, as the runner writes it.
const BEGINS: &str = "interactive session begins (";
/// The note that closes one.
const ENDS: &str = "interactive session ends: ";

/// One interactive part of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractiveView {
    /// Why the console was handed over: `debug-me: step 1 failed: …`.
    pub why: String,
    /// How it ended (`left with Ctrl-]`), or `None` when the transcript stops inside it.
    pub ended: Option<String>,
    /// What happened meanwhile.
    pub lines: Vec<LogLine>,
}

/// The interactive parts of `lines`, in order.
pub fn interactive_parts(lines: &[LogLine]) -> Vec<InteractiveView> {
    let mut parts = Vec::new();
    let mut open: Option<InteractiveView> = None;
    for line in lines {
        if line.kind == LineKind::Note {
            if let Some(rest) = line.text.strip_prefix(BEGINS) {
                parts.extend(open.take());
                let why = rest.rsplit_once("): ").map_or(rest, |(why, _)| why);
                open = Some(InteractiveView {
                    why: why.to_owned(),
                    ended: None,
                    lines: Vec::new(),
                });
                continue;
            }
            if let Some(ended) = line.text.strip_prefix(ENDS) {
                if let Some(mut part) = open.take() {
                    part.ended = Some(ended.to_owned());
                    parts.push(part);
                }
                continue;
            }
        }
        if let Some(part) = &mut open {
            part.lines.push(line.clone());
        }
    }
    parts.extend(open);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: f64, kind: LineKind, text: &str) -> LogLine {
        LogLine {
            t,
            kind,
            text: text.to_owned(),
        }
    }

    #[test]
    fn each_interactive_part_is_cut_out_with_why_and_how_it_ended() {
        let lines = [
            line(1.0, LineKind::Note, "FAIL: \"false\" exited with status 1"),
            line(
                1.1,
                LineKind::Note,
                "interactive session begins (debug-me: step 1 failed: \"false\" exited with status 1): what follows was typed by a person, until it ends",
            ),
            line(2.0, LineKind::In, "ls\\r"),
            line(2.1, LineKind::Out, "bin etc"),
            line(3.0, LineKind::Note, "interactive session ends: left with Ctrl-]"),
            line(3.1, LineKind::Note, "PASS"),
        ];
        let parts = interactive_parts(&lines);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].why,
            "debug-me: step 1 failed: \"false\" exited with status 1"
        );
        assert_eq!(parts[0].ended.as_deref(), Some("left with Ctrl-]"));
        assert_eq!(parts[0].lines, lines[2..4]);
    }

    #[test]
    fn a_transcript_that_stops_inside_a_part_still_shows_it_unended() {
        let lines = [
            line(
                1.0,
                LineKind::Note,
                "interactive session begins (s: paused at step 2 (a pause step)): what follows …",
            ),
            line(2.0, LineKind::Out, "still here"),
        ];
        let parts = interactive_parts(&lines);
        assert_eq!(parts[0].why, "s: paused at step 2 (a pause step)");
        assert_eq!(parts[0].ended, None);
        assert_eq!(parts[0].lines.len(), 1);
    }

    #[test]
    fn console_text_that_looks_like_the_note_is_not_a_part() {
        let lines = [line(1.0, LineKind::Out, "interactive session begins (x): y")];
        assert!(interactive_parts(&lines).is_empty());
    }
}
