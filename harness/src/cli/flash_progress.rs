//! The progress bar of a card write or read-back: bytes done, rate and time left, redrawn on
//! one stderr line while on a terminal that takes it (not under `NO_COLOR`, `TERM=dumb` or
//! `-q`), and one summary line either way.

use std::io::Write;
use std::time::{Duration, Instant};

use r2s_harness::flash::device::human_size;

/// How often the bar is redrawn.
pub const REDRAW: Duration = Duration::from_millis(250);

const WIDTH: usize = 30;

/// A bar for one pass over `total` bytes.
pub struct TransferBar {
    verb: &'static str,
    total: u64,
    started: Instant,
    enabled: bool,
}

impl TransferBar {
    /// A bar for `verb` (`writing`, `verifying`) over `total` bytes; drawn only where the
    /// progress line would be redrawn (see [`super::progress::Style`]).
    pub fn new(verb: &'static str, total: u64) -> TransferBar {
        TransferBar {
            verb,
            total,
            started: Instant::now(),
            enabled: super::progress::Style::of_stderr(super::human::get().quiet)
                == super::progress::Style::Redraw,
        }
    }

    /// Redraws the bar for `done` bytes.
    pub fn draw(&self, done: u64) {
        if !self.enabled {
            return;
        }
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{}",
            self.line(done, self.started.elapsed())
        );
    }

    /// `writing  [#########---------]  300.0 MiB / 600.0 MiB  45.0 MiB/s  ETA 7s`
    fn line(&self, done: u64, elapsed: Duration) -> String {
        let fraction = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        let rate = rate(done, elapsed);
        let eta = if rate > 0.0 {
            format!(
                "{}s",
                ((self.total - done.min(self.total)) as f64 / rate).ceil() as u64
            )
        } else {
            "?".to_owned()
        };
        format!(
            "{:<9} [{}{}]  {} / {}  {}/s  ETA {eta}",
            self.verb,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            human_size(done),
            human_size(self.total),
            human_size(rate as u64),
        )
    }

    /// Clears the bar and prints what the pass did.
    pub fn finish(&self, summary: &str) {
        let elapsed = self.started.elapsed();
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        super::human::show(format!(
            "{summary} {} in {:.1}s ({}/s)",
            human_size(self.total),
            elapsed.as_secs_f64(),
            human_size(rate(self.total, elapsed) as u64)
        ));
    }

    /// Clears the bar without a summary (the pass failed; the error says why).
    pub fn abandon(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_bytes_rate_and_time_left() {
        let bar = TransferBar {
            verb: "writing",
            total: 600 << 20,
            started: Instant::now(),
            enabled: false,
        };
        assert_eq!(
            bar.line(300 << 20, Duration::from_secs(10)),
            "writing   [###############---------------]  300.0 MiB / 600.0 MiB  30.0 MiB/s  ETA 10s"
        );
    }
}
