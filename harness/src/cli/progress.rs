//! The progress line shown on a terminal while a scenario runs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use r2s_harness::runner::Observer;

/// Rewrites one stderr line with the scenario, its stage and the elapsed time; silent when
/// stderr is not a terminal.
pub struct ProgressLine {
    enabled: bool,
    scenario: String,
    stage: String,
    last_draw: Option<Instant>,
}

impl ProgressLine {
    /// A progress line for `scenario`.
    pub fn new(scenario: &str) -> Self {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            scenario: scenario.to_owned(),
            stage: "uboot".to_owned(),
            last_draw: None,
        }
    }

    fn draw(&mut self, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K  {} · {} · {:.1}s",
            self.scenario,
            self.stage,
            elapsed.as_secs_f64()
        );
        self.last_draw = Some(Instant::now());
    }

    /// Erases the line before results are printed.
    pub fn clear(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

impl Observer for ProgressLine {
    fn stage(&mut self, name: &str, at: Duration) {
        self.stage = name.to_owned();
        self.draw(at);
    }

    fn ask_operator(&mut self, request: &str) {
        self.clear();
        // Asked whether or not stderr is a terminal: the operator may be watching a log.
        eprintln!("harness: {request}");
        self.last_draw = None;
    }

    fn tick(&mut self, elapsed: Duration) {
        if self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.draw(elapsed);
        }
    }
}
