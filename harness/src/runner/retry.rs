//! Retrying a step until it passes, as the NixOS test driver's `wait_until_succeeds` does: the
//! step is tried, and while it fails its check (an exit status, an output regex) and the retry
//! window is open, it is tried again after a pause. Every try shows in the transcript.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::{secs, FailReason};
use super::session::Session;
use super::steps::{StepFailure, StepResult};

/// The pause between tries: long enough not to flood a slow console, short enough that a
/// service that came up is seen within a second.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Tries `attempt` until it passes or `window` (from now, and never past `deadline`) has no
/// room for another try. Each try gets the step's whole `deadline` to finish. Only a failed
/// check is retried: a timeout, a fatal console line or a closed console ends the step at
/// once. When the window closes, the last try's failure is returned, saying how many tries
/// were made and over how long. `what` names the step in the transcript's notes.
pub async fn until_passes<'a>(
    s: &mut Session<'a>,
    what: &str,
    window: Duration,
    deadline: Instant,
    mut attempt: impl AsyncFnMut(&mut Session<'a>) -> StepResult,
) -> StepResult {
    let started = Instant::now();
    let window_end = deadline.min(started + window);
    let mut tries = 0u32;
    loop {
        tries += 1;
        s.note(&format!("{what}: try {tries}"));
        let failure = match attempt(s).await {
            Ok(()) => {
                if tries > 1 {
                    s.note(&format!("{what}: passed on try {tries}"));
                }
                return Ok(());
            }
            Err(failure) => failure,
        };
        let FailReason::Check { detail } = failure.reason else {
            return Err(failure);
        };
        if Instant::now() + RETRY_PAUSE >= window_end {
            let detail = format!(
                "still failing after {tries} {} in {} (until = \"{}\"); the last try: {detail}",
                if tries == 1 { "try" } else { "tries" },
                secs(started.elapsed()),
                humantime::format_duration(window),
            );
            return Err(StepFailure {
                expected: failure.expected,
                reason: FailReason::Check { detail },
            });
        }
        s.note(&format!(
            "{what}: try {tries} failed ({}); trying again in {}",
            first_line(&detail),
            secs(RETRY_PAUSE)
        ));
        s.pause(RETRY_PAUSE).await.map_err(|reason| StepFailure {
            expected: failure.expected.clone(),
            reason,
        })?;
    }
}

/// The first line of a failure's detail, for a one-line note.
fn first_line(detail: &str) -> &str {
    let line = detail.lines().next().unwrap_or(detail);
    line.strip_suffix("; output:").unwrap_or(line)
}
