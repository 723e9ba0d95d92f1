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

/// How many failed units a degraded system's failure quotes the status of.
const STATUS_SHOWN: usize = 5;

/// `system_running`: waits until systemd ends the boot (`systemctl is-system-running --wait`)
/// and checks it says `running`. A `degraded` system's failure lists its failed units, each
/// with its `systemctl status` (the first [`STATUS_SHOWN`]).
pub async fn system_running(s: &mut Session<'_>, deadline: Instant, seq: usize) -> StepResult {
    let expected = "systemd to end the boot `running`".to_owned();
    let with_expected = |failure: StepFailure| StepFailure {
        expected: expected.clone(),
        ..failure
    };
    let (_, said) = capture(s, "systemctl is-system-running --wait", deadline, seq)
        .await
        .map_err(with_expected)?;
    let state = said.lines().last().unwrap_or("").trim().to_owned();
    let detail = match state.as_str() {
        "running" => return Ok(()),
        "degraded" => {
            let (_, listed) = capture(
                s,
                "systemctl --failed --no-legend --plain --no-pager",
                deadline,
                seq,
            )
            .await
            .map_err(with_expected)?;
            let failed = failed_unit_names(&listed);
            let mut detail = format!(
                "the system is degraded: {} failed unit{}: {}",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" },
                failed.join(", ")
            );
            for unit in failed.iter().take(STATUS_SHOWN) {
                let status = status_of(s, unit, deadline, seq).await.map_err(with_expected)?;
                detail.push_str(&format!(
                    "

systemctl status {unit}:
{status}"
                ));
            }
            detail
        }
        "" => "`systemctl is-system-running --wait` printed nothing: is this a systemd system?".to_owned(),
        other => format!("`systemctl is-system-running --wait` says {other:?}, not \"running\""),
    };
    Err(StepFailure {
        expected,
        reason: FailReason::Check { detail },
    })
}

/// The unit names of `systemctl --failed --no-legend --plain` (the first word of each line),
/// only those that are unit names.
fn failed_unit_names(listed: &str) -> Vec<String> {
    listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            name.contains('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
        })
        .map(str::to_owned)
        .collect()
}

/// What `systemctl status` says of `unit` (its last ten journal lines included).
async fn status_of(
    s: &mut Session<'_>,
    unit: &str,
    deadline: Instant,
    seq: usize,
) -> Result<String, StepFailure> {
    let command = format!("systemctl status --no-pager --full -n 10 {unit}");
    let (_, status) = capture(s, &command, deadline, seq).await?;
    Ok(status.trim_end().to_owned())
}

/// The properties [`unit_healthy`] judges a unit by.
const UNIT_PROPERTIES: &str =
    "-p LoadState -p ActiveState -p SubState -p Result -p ConditionResult -p Type -p RemainAfterExit";

/// `unit_healthy`: checks that `unit` did what it is for (see [`judge_unit`]); an unhealthy
/// unit's failure names it and quotes its `systemctl status`.
pub async fn unit_healthy(s: &mut Session<'_>, unit: &str, deadline: Instant, seq: usize) -> StepResult {
    let expected = format!("unit {unit} healthy");
    let with_expected = |failure: StepFailure| StepFailure {
        expected: expected.clone(),
        ..failure
    };
    let (_, shown) = capture(
        s,
        &format!("systemctl show {UNIT_PROPERTIES} {unit}"),
        deadline,
        seq,
    )
    .await
    .map_err(with_expected)?;
    let Err(why) = judge_unit(&shown) else {
        return Ok(());
    };
    let status = status_of(s, unit, deadline, seq).await.map_err(with_expected)?;
    Err(StepFailure {
        expected,
        reason: FailReason::Check {
            detail: format!(
                "unit {unit} {why}; systemctl status {unit}:
{status}"
            ),
        },
    })
}

/// Whether a unit, by its `systemctl show` properties (`Key=value` lines), did what it is for:
/// active; or ended with success where that is its job (a oneshot without `RemainAfterExit`);
/// or skipped by its own condition. `Err` says what it is instead.
pub fn judge_unit(shown: &str) -> Result<(), String> {
    let property = |key: &str| {
        shown
            .lines()
            .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .trim()
    };
    let (load, active, sub, result) = (
        property("LoadState"),
        property("ActiveState"),
        property("SubState"),
        property("Result"),
    );
    let state = if sub.is_empty() {
        active.to_owned()
    } else {
        format!("{active} ({sub})")
    };
    if load != "loaded" {
        return Err(format!(
            "is not loaded (LoadState={})",
            if load.is_empty() { "none shown" } else { load }
        ));
    }
    match active {
        "active" => return Ok(()),
        "failed" => return Err(format!("failed (result {result})")),
        _ => {}
    }
    if !result.is_empty() && result != "success" {
        return Err(format!("is {state} with result {result}"));
    }
    if active == "inactive" {
        if property("ConditionResult") == "no" {
            return Ok(());
        }
        if property("Type") == "oneshot" && property("RemainAfterExit") != "yes" {
            return Ok(());
        }
    }
    Err(format!("is {state}, not active"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pairs: &[(&str, &str)]) -> String {
        let mut all = vec![
            ("LoadState", "loaded"),
            ("Result", "success"),
            ("ConditionResult", "yes"),
            ("RemainAfterExit", "no"),
        ];
        for (key, value) in pairs {
            all.retain(|(k, _)| k != key);
            all.push((key, value));
        }
        all.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    #[test]
    fn an_active_unit_is_healthy() {
        assert_eq!(
            judge_unit(&shown(&[
                ("ActiveState", "active"),
                ("SubState", "running"),
                ("Type", "notify")
            ])),
            Ok(())
        );
    }

    #[test]
    fn a_oneshot_that_ended_with_success_or_a_unit_skipped_by_its_condition_is_healthy() {
        let oneshot = shown(&[
            ("ActiveState", "inactive"),
            ("SubState", "dead"),
            ("Type", "oneshot"),
        ]);
        assert_eq!(judge_unit(&oneshot), Ok(()));
        let skipped = shown(&[
            ("ActiveState", "inactive"),
            ("SubState", "dead"),
            ("Type", "simple"),
            ("ConditionResult", "no"),
        ]);
        assert_eq!(judge_unit(&skipped), Ok(()));
    }

    #[test]
    fn a_failed_unit_says_its_result() {
        let failed = shown(&[
            ("ActiveState", "failed"),
            ("SubState", "failed"),
            ("Result", "exit-code"),
            ("Type", "simple"),
        ]);
        assert_eq!(judge_unit(&failed), Err("failed (result exit-code)".to_owned()));
    }

    #[test]
    fn a_daemon_that_is_not_running_or_not_loaded_is_unhealthy() {
        let stopped = shown(&[
            ("ActiveState", "inactive"),
            ("SubState", "dead"),
            ("Type", "simple"),
        ]);
        assert_eq!(
            judge_unit(&stopped),
            Err("is inactive (dead), not active".to_owned())
        );
        let kept = shown(&[
            ("ActiveState", "inactive"),
            ("SubState", "dead"),
            ("Type", "oneshot"),
            ("RemainAfterExit", "yes"),
        ]);
        assert_eq!(
            judge_unit(&kept),
            Err("is inactive (dead), not active".to_owned())
        );
        let missing = shown(&[("LoadState", "not-found"), ("ActiveState", "inactive")]);
        assert_eq!(
            judge_unit(&missing),
            Err("is not loaded (LoadState=not-found)".to_owned())
        );
        let stuck = shown(&[
            ("ActiveState", "activating"),
            ("SubState", "start"),
            ("Result", "success"),
        ]);
        assert_eq!(
            judge_unit(&stuck),
            Err("is activating (start), not active".to_owned())
        );
    }

    #[test]
    fn failed_units_are_the_first_words_that_name_units() {
        let listed = "ssh.service loaded failed failed OpenBSD Secure Shell server\n\
                      getty@tty1.service loaded failed failed Getty on tty1\n\
                      0 loaded units listed.\n";
        assert_eq!(failed_unit_names(listed), ["ssh.service", "getty@tty1.service"]);
    }
}
