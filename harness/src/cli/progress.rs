//! The progress line shown on a terminal while scenarios run: each running scenario, its
//! current stage and its elapsed time, side by side when several run at once.
//!
//! On a terminal that takes no control sequences (`TERM=dumb`) or for a user who asked for
//! none (`NO_COLOR`), the line is not redrawn: each stage a scenario enters is a plain line of
//! its own, with no escape sequence and no carriage return.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use r2s_harness::escape::escape_control;
use r2s_harness::suite::ReportError;
use r2s_harness::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Nothing (stderr is not a terminal, or `-q`); requests to the operator still are.
    Off,
    /// One line, rewritten in place with `\r` and erase-line.
    Redraw,
    /// A line per stage entered, never rewritten (`NO_COLOR`, `TERM=dumb`).
    Plain,
}

impl Style {
    /// The style for a stderr that `is_terminal`, under `-q` (`quiet`), with the environment's
    /// `NO_COLOR` and `TERM`. `NO_COLOR` counts when set to anything but the empty string, as
    /// its convention says.
    pub fn choose(is_terminal: bool, quiet: bool, no_color: Option<&str>, term: Option<&str>) -> Style {
        if !is_terminal || quiet {
            Style::Off
        } else if no_color.is_some_and(|v| !v.is_empty()) || term == Some("dumb") {
            Style::Plain
        } else {
            Style::Redraw
        }
    }

    /// The style for this process's stderr and environment.
    pub fn of_stderr(quiet: bool) -> Style {
        let var = |name| std::env::var(name).ok();
        Style::choose(
            std::io::stderr().is_terminal(),
            quiet,
            var("NO_COLOR").as_deref(),
            var("TERM").as_deref(),
        )
    }
}

/// Whether escape sequences may be written to stderr (the log's colours): a terminal that
/// takes them, and no `NO_COLOR`.
pub fn colour_allowed() -> bool {
    Style::of_stderr(false) == Style::Redraw
}

/// Shows progress on stderr (or the writer given); requests to the operator are always
/// printed.
pub struct ProgressLine {
    style: Style,
    out: Box<dyn Write>,
    /// Running scenarios in the order they started: name, stage, elapsed.
    running: Vec<(String, String, Duration)>,
    last_draw: Option<Instant>,
}

impl ProgressLine {
    /// A progress line on stderr, `-q` (`quiet`) turning it off.
    pub fn new(quiet: bool) -> Self {
        ProgressLine::with(Style::of_stderr(quiet), Box::new(std::io::stderr()))
    }

    /// Progress in `style`, written to `out`.
    pub fn with(style: Style, out: Box<dyn Write>) -> Self {
        ProgressLine {
            style,
            out,
            running: Vec::new(),
            last_draw: None,
        }
    }

    fn draw(&mut self) {
        // A console holds the terminal: the person there is reading it, not this line.
        if self.style != Style::Redraw || r2s_harness::terminal::held() {
            return;
        }
        let line = self
            .running
            .iter()
            .map(|(name, stage, elapsed)| shown(name, stage, *elapsed))
            .collect::<Vec<_>>()
            .join("  |  ");
        let _ = write!(self.out, "\r\x1b[K  {line}");
        self.last_draw = Some(Instant::now());
    }

    /// Erases the line before results are printed.
    fn clear(&mut self) {
        if self.style == Style::Redraw && self.last_draw.is_some() && !r2s_harness::terminal::held() {
            let _ = write!(self.out, "\r\x1b[K");
            self.last_draw = None;
        }
    }

    fn entry(&mut self, scenario: &str) -> Option<&mut (String, String, Duration)> {
        self.running.iter_mut().find(|(name, _, _)| name == scenario)
    }
}

/// `name · stage · 1.2s`, escaped: names and stages come from scenario files.
fn shown(name: &str, stage: &str, elapsed: Duration) -> String {
    format!(
        "{} · {} · {:.1}s",
        escape_control(name),
        escape_control(stage),
        elapsed.as_secs_f64()
    )
}

impl Reporter for ProgressLine {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        match &event.kind {
            SuiteEventKind::ScenarioStarted { scenario } => {
                self.running
                    .push((scenario.clone(), "uboot".to_owned(), Duration::ZERO));
            }
            SuiteEventKind::StageEntered { scenario, stage, at } => {
                if self.style == Style::Plain {
                    let _ = writeln!(self.out, "  {}", shown(scenario, &stage.to_string(), *at));
                }
                if let Some(entry) = self.entry(scenario) {
                    entry.1 = stage.to_string();
                    entry.2 = *at;
                }
                self.draw();
            }
            SuiteEventKind::Tick { scenario, elapsed } => {
                if let Some(entry) = self.entry(scenario) {
                    entry.2 = *elapsed;
                }
                if self
                    .last_draw
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
                {
                    self.draw();
                }
            }
            SuiteEventKind::OperatorAsked { request, .. } => {
                self.clear();
                // Asked whether or not stderr is a terminal: the operator may be watching a log.
                let _ = writeln!(self.out, "harness: {}", escape_control(request));
            }
            SuiteEventKind::ScenarioFinished { result } => {
                self.running.retain(|(name, _, _)| *name != result.name);
                self.clear();
            }
            // The text report prints a line for each of these: the progress line makes room.
            SuiteEventKind::Note { .. }
            | SuiteEventKind::ScenarioRetried { .. }
            | SuiteEventKind::SuiteFinished { .. } => self.clear(),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::SystemTime;

    use r2s_harness::runner::Stage;

    use super::*;

    #[test]
    fn no_color_or_a_dumb_terminal_gets_plain_lines_and_no_terminal_or_quiet_none() {
        assert_eq!(
            Style::choose(true, false, None, Some("xterm-256color")),
            Style::Redraw
        );
        assert_eq!(Style::choose(true, false, Some("1"), Some("xterm")), Style::Plain);
        assert_eq!(Style::choose(true, false, None, Some("dumb")), Style::Plain);
        // The convention: an empty NO_COLOR is as if unset.
        assert_eq!(Style::choose(true, false, Some(""), Some("xterm")), Style::Redraw);
        assert_eq!(Style::choose(false, false, None, Some("xterm")), Style::Off);
        assert_eq!(Style::choose(true, true, None, Some("xterm")), Style::Off);
    }

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `style` writes for a scenario that starts, enters two stages and ticks.
    fn drawn(style: Style) -> String {
        let out = Shared::default();
        let mut line = ProgressLine::with(style, Box::new(out.clone()));
        let event = |kind| SuiteEvent {
            timestamp: SystemTime::now(),
            elapsed: Duration::ZERO,
            kind,
        };
        let scenario = "boot".to_owned();
        for kind in [
            SuiteEventKind::ScenarioStarted {
                scenario: scenario.clone(),
            },
            SuiteEventKind::StageEntered {
                scenario: scenario.clone(),
                stage: Stage::Kernel,
                at: Duration::from_millis(1500),
            },
            SuiteEventKind::Tick {
                scenario: scenario.clone(),
                elapsed: Duration::from_secs(2),
            },
            SuiteEventKind::StageEntered {
                scenario,
                stage: Stage::Login,
                at: Duration::from_secs(3),
            },
        ] {
            line.report(&event(kind)).unwrap();
        }
        let bytes = out.0.borrow().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_progress_is_a_line_per_stage_without_escapes_or_carriage_returns() {
        assert_eq!(
            drawn(Style::Plain),
            "  boot · kernel · 1.5s\n  boot · login · 3.0s\n"
        );
    }

    #[test]
    fn redrawn_progress_rewrites_one_line_in_place() {
        let drawn = drawn(Style::Redraw);
        assert!(drawn.starts_with("\r\x1b[K  boot · kernel · 1.5s"), "{drawn:?}");
        assert!(!drawn.contains('\n'), "{drawn:?}");
    }

    #[test]
    fn progress_that_is_off_writes_nothing() {
        assert_eq!(drawn(Style::Off), "");
    }
}
