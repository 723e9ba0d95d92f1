//! `wait_for_unit`: waits at a shell until a systemd unit is active, as the NixOS test driver's
//! `wait_for_unit` does. A unit that failed will not become active by waiting, so that ends the
//! step at once, with what `systemctl status` says about it.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::{secs, FailReason};
use super::session::Session;
use super::steps::{capture, StepFailure, StepResult};

/// How long to wait before asking again about a unit that is not active yet.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// The states `systemctl is-active` prints that may still become `active`.
const ON_ITS_WAY: [&str; 4] = ["activating", "inactive", "reloading", "deactivating"];

/// Waits until `systemctl is-active <unit>` says `active`, asking every [`ASK_AGAIN`] until
/// `deadline`; `seq` numbers the commands' markers.
pub async fn wait_for_unit(s: &mut Session<'_>, unit: &str, deadline: Instant, seq: usize) -> StepResult {
    let started = Instant::now();
    let expected = format!("unit {unit} active");
    loop {
        let (_, said) = capture(s, &format!("systemctl is-active {unit}"), deadline, seq).await?;
        let state = said.trim();
        match state {
            "active" => return Ok(()),
            "failed" => {
                let (_, status) = capture(s, &format!("systemctl status --no-pager --full {unit}"), deadline, seq)
                    .await
                    .map_err(|failure| StepFailure {
                        expected: expected.clone(),
                        ..failure
                    })?;
                return Err(StepFailure {
                    expected,
                    reason: FailReason::Check {
                        detail: format!("unit {unit} failed; systemctl status {unit}:\n{status}"),
                    },
                });
            }
            state if ON_ITS_WAY.contains(&state) => {}
            _ => {
                return Err(StepFailure {
                    expected,
                    reason: FailReason::Check {
                        detail: format!(
                            "`systemctl is-active {unit}` printed {said:?}, not a unit state: is this a systemd system?"
                        ),
                    },
                })
            }
        }
        if Instant::now() + ASK_AGAIN >= deadline {
            return Err(StepFailure {
                expected,
                reason: FailReason::Check {
                    detail: format!("unit {unit} still {state} after {}", secs(started.elapsed())),
                },
            });
        }
        s.note(&format!(
            "unit {unit} is {state}; asking again in {}",
            secs(ASK_AGAIN)
        ));
        s.pause(ASK_AGAIN).await.map_err(|reason| StepFailure {
            expected: expected.clone(),
            reason,
        })?;
    }
}
