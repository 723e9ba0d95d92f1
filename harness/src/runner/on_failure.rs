//! Diagnostics on failure: the scenario's (and board profile's) `on_failure` commands, run at
//! the shell after a step failed, each bounded, their output saved beside the transcript.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::FailReason;
use super::session::{ConsoleState, Session};
use super::steps::capture;

/// How long one diagnostic command may take.
pub const EACH_LIMIT: Duration = Duration::from_secs(30);

/// Runs `commands` if the console is at a shell that still answers: a command the failed step
/// left running is interrupted first (Ctrl-C). The failure that ended the run decides whether
/// there is a shell to talk to. Each command's output goes to `<stem>.on-failure-<n>.txt`.
pub async fn diagnose(s: &mut Session<'_>, commands: &[String], reason: &FailReason) {
    if commands.is_empty() {
        return;
    }
    let reachable = s.state == ConsoleState::Shell
        && !matches!(
            reason,
            FailReason::ConsoleClosed { .. } | FailReason::Fatal { .. }
        );
    if !reachable {
        s.note("on_failure: no shell to run the diagnostics in; skipped");
        return;
    }
    // A step that timed out may have left its command running; Ctrl-C gets the prompt back.
    let _ = s.send(b"\x03", b"").await;
    for (i, command) in commands.iter().enumerate() {
        let deadline = Instant::now() + EACH_LIMIT;
        // Numbers far from the steps', so no marker repeats.
        let seq = 10_000 + i;
        let mut text = format!("$ {command}\n");
        let mut closed = false;
        match capture(s, command, deadline, seq).await {
            Ok((status, output)) => {
                let _ = writeln!(text, "{output}\n(exit status {status})");
            }
            Err(failure) => {
                closed = matches!(failure.reason, FailReason::ConsoleClosed { .. });
                let _ = writeln!(text, "(did not complete: {})", failure.reason);
            }
        }
        let path = s.artifact_path(&format!("on-failure-{}.txt", i + 1));
        match std::fs::write(&path, &text) {
            Ok(()) => {
                s.note(&format!("on_failure {command:?}: saved to {}", path.display()));
                s.add_artifact(path);
            }
            Err(e) => s.note(&format!(
                "on_failure {command:?}: cannot save {}: {e}",
                path.display()
            )),
        }
        if closed {
            break;
        }
    }
}
