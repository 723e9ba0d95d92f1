//! A scenario's transcript files read back for the page, bounded: the timestamped `.log`
//! (searchable lines) and the `.cast` recording (the replay). Only these redacted files are
//! read, never the `.raw` bytes, which hold what was typed at a password prompt.
//!
//! A file larger than its cap keeps its first quarter and its last three quarters (the end is
//! where a failure is), cut at line boundaries, and says how much was left out.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::escape::{escape_console_line, escape_control};

/// How much of a scenario's `.log` the page embeds. The page is built in memory, several
/// copies of this deep (read, parsed, escaped), and the harness must stay within tens of MB on
/// a console that floods: 1 MiB of head and tail is what a reader scrolls anyway.
pub const LOG_CAP: u64 = 1 << 20;
/// How much of a scenario's `.cast` the page embeds.
pub const CAST_CAP: u64 = 1 << 20;

/// What a transcript line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// Console output.
    Out,
    /// What the harness typed (`>> `), passwords already redacted.
    In,
    /// The harness's own remark (`-- `): a step, a stage, a reconnect, the verdict.
    Note,
    /// Where part of the file was left out.
    Cut,
}

/// One line of the `.log`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Seconds from the target's start.
    pub t: f64,
    pub kind: LineKind,
    pub text: String,
}

/// A file's text as embedded: whole, or its head and tail with what was cut between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded {
    pub head: String,
    /// The end of the file, when its middle was cut, and how many bytes were left out.
    pub tail: Option<(u64, String)>,
}

/// Reads `path`, at most `cap` bytes of it (see the module notes). Invalid UTF-8 becomes
/// U+FFFD.
pub fn read_bounded(path: &Path, cap: u64) -> io::Result<Bounded> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len <= cap {
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(cap).read_to_end(&mut bytes)?;
        return Ok(Bounded {
            head: String::from_utf8_lossy(&bytes).into_owned(),
            tail: None,
        });
    }
    let head_len = cap / 4;
    let tail_len = cap - head_len;
    let mut head = Vec::with_capacity(head_len as usize);
    (&mut file).take(head_len).read_to_end(&mut head)?;
    head.truncate(head.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1));
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail)?;
    let from = tail
        .iter()
        .position(|&b| b == b'\n')
        .map_or(tail.len(), |n| n + 1);
    let tail = tail.split_off(from);
    let cut = len - head.len() as u64 - tail.len() as u64;
    Ok(Bounded {
        head: String::from_utf8_lossy(&head).into_owned(),
        tail: Some((cut, String::from_utf8_lossy(&tail).into_owned())),
    })
}

/// The lines of a `.log` (`[  12.345] text`, `>> input`, `-- note`).
pub fn log_lines(log: &Bounded) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = log.head.lines().map(parse_log_line).collect();
    if let Some((cut, tail)) = &log.tail {
        let t = lines.last().map_or(0.0, |l| l.t);
        lines.push(LogLine {
            t,
            kind: LineKind::Cut,
            text: format!(
                "… {} of the transcript left out here (the page embeds at most {}) …",
                size(*cut),
                size(LOG_CAP)
            ),
        });
        lines.extend(tail.lines().map(parse_log_line));
    }
    lines
}

/// One `.log` line, its text escaped ([`escape_control`]): the `.log` keeps the console's
/// control characters, bidi overrides and line separators, which the page shows as escapes
/// rather than let them reorder or break what a reader sees.
fn parse_log_line(line: &str) -> LogLine {
    let stamped = line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .and_then(|(time, text)| Some((time.trim().parse::<f64>().ok()?, text)));
    let Some((t, text)) = stamped else {
        // A line the writer did not stamp (a file from elsewhere): shown as it is.
        return LogLine {
            t: 0.0,
            kind: LineKind::Out,
            text: escape_console_line(line).into_owned(),
        };
    };
    let (kind, text) = if let Some(note) = text.strip_prefix("-- ") {
        (LineKind::Note, note)
    } else if let Some(input) = text.strip_prefix(">> ") {
        (LineKind::In, input)
    } else {
        (LineKind::Out, text)
    };
    LogLine {
        t,
        kind,
        text: escape_console_line(text).into_owned(),
    }
}

/// An asciicast v2 recording as the page's player reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cast {
    pub width: u16,
    pub height: u16,
    /// `[seconds, "o" | "i" | "m", text]`, in time order.
    pub events: Vec<(f64, String, String)>,
    /// What was left out, if anything: a cut middle, lines that are not events.
    pub cut: Option<String>,
}

/// The recording in a `.cast` file's text. Lines that are not events are skipped and counted.
pub fn cast(text: &Bounded) -> Cast {
    let mut cast = Cast {
        width: crate::console::transcript::CAST_WIDTH,
        height: crate::console::transcript::CAST_HEIGHT,
        ..Cast::default()
    };
    let mut lines = text.head.lines();
    if let Some(header) = lines.next() {
        if let Ok(header) = serde_json::from_str::<serde_json::Value>(header) {
            let dim =
                |key: &str, default: u16| header[key].as_u64().map_or(default, |v| v.clamp(1, 500) as u16);
            cast.width = dim("width", cast.width);
            cast.height = dim("height", cast.height);
        }
    }
    let mut skipped = 0usize;
    let tail = text.tail.as_ref().map(|(_, tail)| tail.lines());
    for line in lines.chain(tail.into_iter().flatten()) {
        match serde_json::from_str::<(f64, String, String)>(line) {
            // A marker is the harness's note (which may quote the console), shown beside the
            // player as one line of text; output stays as it was: the player is a terminal.
            Ok((t, kind, data)) if t.is_finite() && kind == "m" => {
                let data = escape_control(&data).into_owned();
                cast.events.push((t, kind, data));
            }
            Ok(event) if event.0.is_finite() => cast.events.push(event),
            _ => skipped += 1,
        }
    }
    let mut cut = Vec::new();
    if let Some((bytes, _)) = &text.tail {
        cut.push(format!(
            "{} of the recording left out in the middle (the page embeds at most {})",
            size(*bytes),
            size(CAST_CAP)
        ));
    }
    if skipped > 0 {
        cut.push(format!("{skipped} line(s) that are not asciicast events skipped"));
    }
    cast.cut = (!cut.is_empty()).then(|| cut.join("; "));
    cast
}

/// `3.2 MiB`, `512 bytes`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> Bounded {
        Bounded {
            head: text.to_owned(),
            tail: None,
        }
    }

    #[test]
    fn log_lines_are_split_into_time_kind_and_text() {
        let lines = log_lines(&whole(
            "[   0.000] -- step 1: expect \"U-Boot\"\n[   1.250] U-Boot 2023.01\n[  12.003] >> root\nbare\n",
        ));
        assert_eq!(
            lines,
            vec![
                LogLine {
                    t: 0.0,
                    kind: LineKind::Note,
                    text: "step 1: expect \"U-Boot\"".into()
                },
                LogLine {
                    t: 1.25,
                    kind: LineKind::Out,
                    text: "U-Boot 2023.01".into()
                },
                LogLine {
                    t: 12.003,
                    kind: LineKind::In,
                    text: "root".into()
                },
                LogLine {
                    t: 0.0,
                    kind: LineKind::Out,
                    text: "bare".into()
                },
            ]
        );
    }

    #[test]
    fn a_file_over_its_cap_keeps_head_and_tail_on_line_boundaries_and_says_what_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let text: String = (0..1000).map(|i| format!("[{i:4}.000] line {i:04}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let bounded = read_bounded(&path, 4000).unwrap();
        let (cut, tail) = bounded.tail.clone().expect("cut");
        assert!(bounded.head.starts_with("[   0.000] line 0000\n") && bounded.head.ends_with('\n'));
        assert!(tail.ends_with("line 0999\n"));
        assert!(bounded.head.len() <= 1000 && tail.len() <= 3000);
        assert_eq!(
            bounded.head.len() as u64 + cut + tail.len() as u64,
            text.len() as u64
        );
        let lines = log_lines(&bounded);
        let marker = lines.iter().find(|l| l.kind == LineKind::Cut).expect("marker");
        assert!(marker.text.contains(&size(cut)), "{}", marker.text);
    }

    #[test]
    fn invalid_utf8_is_read_as_replacement_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.log");
        std::fs::write(&path, b"[   1.000] a\xff\xfeb\n").unwrap();
        let lines = log_lines(&read_bounded(&path, LOG_CAP).unwrap());
        assert_eq!(lines[0].text, "a\u{FFFD}\u{FFFD}b");
    }

    /// Asserts that `raw` in a console line of the `.log` is read back as `escaped`.
    fn assert_read_escaped(raw: &str, escaped: &str) {
        let lines = log_lines(&whole(&format!("[   1.000] a{raw}b\n[   2.000] >> c{raw}\n")));
        assert_eq!(lines[0].text, format!("a{escaped}b"));
        assert_eq!(lines[1].text, format!("c{escaped}"));
    }

    crate::escape::shows_each_control_class_escaped!(assert_read_escaped);

    #[test]
    fn a_cast_keeps_its_output_raw_and_escapes_its_markers() {
        let cast = cast(&whole(
            "{\"version\":2}\n[0.5,\"o\",\"\\u001b[31m\\u202e\\u009b\"]\n[1.0,\"m\",\"FAIL: \\u202e\\u0007\"]\n",
        ));
        assert_eq!(
            cast.events,
            vec![
                (0.5, "o".into(), "\u{1b}[31m\u{202e}\u{9b}".into()),
                (1.0, "m".into(), "FAIL: \\u{202e}\\u{7}".into())
            ]
        );
    }

    #[test]
    fn cast_events_are_read_and_broken_lines_counted() {
        let cast = cast(&whole("{\"version\":2,\"width\":100,\"height\":30}\n[0.5,\"o\",\"hi\\r\\n\"]\nnot json\n[1.0,\"m\",\"step 2\"]\n"));
        assert_eq!((cast.width, cast.height), (100, 30));
        assert_eq!(
            cast.events,
            vec![
                (0.5, "o".into(), "hi\r\n".into()),
                (1.0, "m".into(), "step 2".into())
            ]
        );
        assert_eq!(
            cast.cut.as_deref(),
            Some("1 line(s) that are not asciicast events skipped")
        );
    }
}
