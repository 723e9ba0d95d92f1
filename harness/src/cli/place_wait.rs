//! `--place-wait`: the place of `--place`, waited for through a labgrid reservation when
//! someone holds it, with the wait shown on stderr: one line rewritten in place on a terminal;
//! elsewhere (a CI log) a line when the wait begins, when the holder changes, and at
//! doubling intervals, so that a long wait writes a few lines, not one per look.

use std::io::Write;
use std::time::Duration;

use r2s_harness::board::Board;
use r2s_harness::escape::escape_control;
use r2s_harness::targets::labgrid::reservation::Waiting;
use r2s_harness::targets::labgrid::{Labgrid, PlaceError};
use r2s_harness::targets::TargetSpec;

use super::progress::Style;

/// The first interval between repeated lines in a log; it doubles up to [`LONGEST_QUIET`].
const FIRST_REPEAT: Duration = Duration::from_secs(15);

/// The longest a log goes without a line while the wait lasts.
const LONGEST_QUIET: Duration = Duration::from_secs(10 * 60);

/// The place `labgrid` names, acquired now, or within `wait` when that is given.
pub async fn place_spec(
    labgrid: Labgrid,
    board: Board,
    wait: Option<Duration>,
) -> Result<TargetSpec, PlaceError> {
    let Some(limit) = wait else {
        return TargetSpec::place(labgrid, board);
    };
    let mut shown = WaitShown::new(Style::of_stderr(super::human::get().quiet), limit);
    let spec = TargetSpec::place_waiting(labgrid, board, limit, &mut |waiting| shown.show(waiting)).await;
    shown.finish();
    spec
}

/// What the wait has shown so far.
struct WaitShown {
    style: Style,
    limit: Duration,
    /// The holder last written to the log, and when the next reminder is due.
    logged: Option<(String, Duration)>,
    repeat: Duration,
    drawn: bool,
}

impl WaitShown {
    fn new(style: Style, limit: Duration) -> WaitShown {
        WaitShown {
            style,
            limit,
            logged: None,
            repeat: FIRST_REPEAT,
            drawn: false,
        }
    }

    fn line(&self, waiting: &Waiting) -> String {
        format!(
            "waiting for place {}: held by {}; waited {} of {}",
            escape_control(&waiting.place),
            escape_control(&waiting.holder),
            humantime::format_duration(Duration::from_secs(waiting.waited.as_secs())),
            humantime::format_duration(self.limit)
        )
    }

    fn show(&mut self, waiting: &Waiting) {
        let mut err = std::io::stderr();
        match self.style {
            Style::Redraw => {
                let _ = write!(err, "\r\x1b[K  {}", self.line(waiting));
                self.drawn = true;
            }
            // Under -q nothing is shown; the expiry's error names the holder.
            Style::Off if super::human::get().quiet => {}
            Style::Off | Style::Plain => {
                if self.due(waiting) {
                    let _ = writeln!(err, "harness: {}", self.line(waiting));
                }
            }
        }
    }

    /// Whether a log line is due: the first look, a new holder, or a reminder.
    fn due(&mut self, waiting: &Waiting) -> bool {
        let due = match &self.logged {
            None => true,
            Some((holder, next)) => holder != &waiting.holder || waiting.waited >= *next,
        };
        if due {
            let next = waiting.waited + self.repeat;
            self.repeat = (self.repeat * 2).min(LONGEST_QUIET);
            self.logged = Some((waiting.holder.clone(), next));
        }
        due
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(holder: &str, secs: u64) -> Waiting {
        Waiting {
            place: "r2s".to_owned(),
            holder: holder.to_owned(),
            waited: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_log_gets_the_first_look_each_new_holder_and_reminders_at_doubling_intervals() {
        let mut shown = WaitShown::new(Style::Off, Duration::from_secs(3600));
        let logged: Vec<u64> = (0..=600)
            .step_by(2)
            .filter(|&s| shown.due(&at(if s < 100 { "a/alice" } else { "b/bob" }, s)))
            .collect();
        // The first look, +15 s, +30 s; bob's first look at 100 s; then +120 s, +240 s.
        assert_eq!(logged, [0, 16, 46, 100, 220, 460]);
    }

    #[test]
    fn the_line_names_the_place_the_holder_and_the_wait() {
        let shown = WaitShown::new(Style::Off, Duration::from_secs(120));
        assert_eq!(
            shown.line(&at("ci-2/alice", 75)),
            "waiting for place r2s: held by ci-2/alice; waited 1m 15s of 2m"
        );
    }
}
