//! Switching a board with the commands its profile gives: run directly from their argument
//! vectors (never through a shell, so nothing in them is interpreted), each within a timeout.

use std::io;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How much of a power command's stderr is kept for the report.
const STDERR_LIMIT: u64 = 16 * 1024;

/// A power command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// The program could not be started (not installed, not executable).
    #[error("power {what} command `{command}` could not be started: {source}")]
    Spawn {
        what: String,
        command: String,
        source: io::Error,
    },
    /// It exited unsuccessfully.
    #[error("power {what} command `{command}` failed ({status}): {stderr}")]
    Failed {
        what: String,
        command: String,
        status: std::process::ExitStatus,
        /// Its stderr, trimmed; `(no output on stderr)` when it printed nothing.
        stderr: String,
    },
    /// It ran longer than the profile's power `timeout` and was killed.
    #[error("power {what} command `{command}` did not finish within {}; killed", humantime::format_duration(*.timeout))]
    Timeout {
        what: String,
        command: String,
        timeout: Duration,
    },
}

/// Runs one power command (`what` is `on`, `off` or `cycle`, for messages) and waits for it to
/// succeed, at most `timeout`. Its stdout is ignored; its stderr goes into the error.
pub async fn switch(what: &str, argv: &[String], timeout: Duration) -> Result<(), PowerError> {
    let command_line = argv.join(" ");
    let (program, args) = argv.split_first().expect("board profiles refuse empty commands");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| PowerError::Spawn {
            what: what.to_owned(),
            command: command_line.clone(),
            source,
        })?;
    let mut stderr = child.stderr.take().expect("stderr was piped");
    let collect = async {
        let mut text = Vec::new();
        // Bounded: a chatty command must not grow memory; the start of its complaint says most.
        let _ = (&mut stderr).take(STDERR_LIMIT).read_to_end(&mut text).await;
        text
    };
    let waited = tokio::time::timeout(timeout, async { tokio::join!(child.wait(), collect) }).await;
    let (status, text) = match waited {
        Ok((status, text)) => (status, text),
        Err(_) => {
            let _ = child.kill().await;
            return Err(PowerError::Timeout {
                what: what.to_owned(),
                command: command_line,
                timeout,
            });
        }
    };
    let status = status.map_err(|source| PowerError::Spawn {
        what: what.to_owned(),
        command: command_line.clone(),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&text).trim().to_owned();
    Err(PowerError::Failed {
        what: what.to_owned(),
        command: command_line,
        status,
        stderr: if stderr.is_empty() {
            "(no output on stderr)".to_owned()
        } else {
            stderr
        },
    })
}

/// Powers the board off when dropped, unless disarmed: a run that ends early (Ctrl-C, SIGTERM,
/// a panic) leaves the board off, as a finished run does. The command runs synchronously, since
/// a drop cannot wait for a future, and is killed at its timeout.
pub struct OffOnDrop {
    argv: Option<Vec<String>>,
    timeout: Duration,
}

impl OffOnDrop {
    /// A guard for the profile's `off` command; `None` guards nothing.
    pub fn new(argv: Option<&[String]>, timeout: Duration) -> OffOnDrop {
        OffOnDrop {
            argv: argv.map(<[String]>::to_vec),
            timeout,
        }
    }

    /// Hands the command back for the caller to run (and report); the drop then does nothing.
    pub fn disarm(mut self) -> Option<Vec<String>> {
        self.argv.take()
    }
}

impl Drop for OffOnDrop {
    fn drop(&mut self) {
        let Some(argv) = self.argv.take() else { return };
        let Some((program, args)) = argv.split_first() else {
            return;
        };
        let child = std::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return };
        let deadline = std::time::Instant::now() + self.timeout;
        while std::time::Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[tokio::test]
    async fn succeeding_command_is_ok() {
        switch("on", &argv(&["true"]), Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn failing_command_reports_its_stderr() {
        let error = switch(
            "on",
            &argv(&["sh", "-c", "echo 'port 2: no such hub' >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "power on command `sh -c echo 'port 2: no such hub' >&2; exit 3` failed (exit status: 3): port 2: no such hub"
        );
    }

    #[tokio::test]
    async fn arguments_are_not_interpreted_by_a_shell() {
        // With a shell, `;` would end the echo and `false` would fail the command.
        switch("off", &argv(&["echo", "a;", "false"]), Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn hanging_command_is_killed_at_its_timeout() {
        let started = std::time::Instant::now();
        let error = switch("cycle", &argv(&["sleep", "30"]), Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "power cycle command `sleep 30` did not finish within 300ms; killed"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn missing_program_cannot_be_started() {
        let error = switch("on", &argv(&["/nonexistent/relay"]), Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("power on command `/nonexistent/relay` could not be started: "),
            "{error}"
        );
    }

    #[test]
    fn guard_switches_off_when_dropped_and_not_when_disarmed() {
        let dir = tempfile::tempdir().unwrap();
        let off = |name: &str| argv(&["touch", dir.path().join(name).to_str().unwrap()]);
        drop(OffOnDrop::new(Some(&off("dropped")), Duration::from_secs(5)));
        let disarmed = OffOnDrop::new(Some(&off("disarmed")), Duration::from_secs(5)).disarm();
        assert!(dir.path().join("dropped").exists());
        assert!(!dir.path().join("disarmed").exists());
        assert_eq!(disarmed, Some(off("disarmed")));
    }
}
