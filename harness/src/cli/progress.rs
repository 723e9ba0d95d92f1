//! The progress line shown on a terminal while scenarios run: each running scenario, its
//! current stage and its elapsed time, side by side when several run at once.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use r2s_harness::escape::escape_control;
use r2s_harness::suite::ReportError;
use r2s_harness::suite::{Reporter, SuiteEvent, SuiteEventKind};

/// Rewrites one stderr line; silent when stderr is not a terminal, except for requests to the
/// operator, which are always printed.
pub struct ProgressLine {
    enabled: bool,
    /// Running scenarios in the order they started: name, stage, elapsed.
    running: Vec<(String, String, Duration)>,
    last_draw: Option<Instant>,
}

impl ProgressLine {
    /// A progress line on stderr.
    pub fn new() -> Self {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            running: Vec::new(),
            last_draw: None,
        }
    }

    fn draw(&mut self) {
        // A console holds the terminal: the person there is reading it, not this line.
        if !self.enabled || r2s_harness::terminal::held() {
            return;
        }
        let line = self
            .running
            .iter()
            .map(|(name, stage, elapsed)| {
                format!(
                    "{} · {} · {:.1}s",
                    escape_control(name),
                    escape_control(stage),
                    elapsed.as_secs_f64()
                )
            })
            .collect::<Vec<_>>()
            .join("  |  ");
        let _ = write!(std::io::stderr(), "\r\x1b[K  {line}");
        self.last_draw = Some(Instant::now());
    }

    /// Erases the line before results are printed.
    fn clear(&mut self) {
        if self.enabled && self.last_draw.is_some() && !r2s_harness::terminal::held() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.last_draw = None;
        }
    }

    fn entry(&mut self, scenario: &str) -> Option<&mut (String, String, Duration)> {
        self.running.iter_mut().find(|(name, _, _)| name == scenario)
    }
}

impl Reporter for ProgressLine {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        match &event.kind {
            SuiteEventKind::ScenarioStarted { scenario } => {
                self.running
                    .push((scenario.clone(), "uboot".to_owned(), Duration::ZERO));
            }
            SuiteEventKind::StageEntered { scenario, stage, at } => {
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
                eprintln!("harness: {}", escape_control(request));
            }
            SuiteEventKind::ScenarioFinished { result } => {
                self.running.retain(|(name, _, _)| *name != result.name);
                self.clear();
            }
            SuiteEventKind::Note { .. } | SuiteEventKind::SuiteFinished { .. } => self.clear(),
            _ => {}
        }
        Ok(())
    }
}
