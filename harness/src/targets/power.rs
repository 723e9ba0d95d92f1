//! Switching a board with the commands its profile gives: run directly from their argument
//! vectors (never through a shell, so nothing in them is interpreted), each within a timeout.
//!
//! One thing is expanded: `${NAME}` in an argument is the environment variable NAME, so a smart
//! plug's password or token stays out of the profile. Reports and transcripts show the command
//! as written, `${NAME}` and all, never the value.

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
    /// An argument names an environment variable that is not set.
    #[error("power {what} command `{command}` needs environment variable {name}, which is not set")]
    Unset {
        what: String,
        command: String,
        name: String,
    },
    /// It ran longer than the profile's power `timeout` and was killed.
    #[error("power {what} command `{command}` did not finish within {}; killed", humantime::format_duration(*.timeout))]
    Timeout {
        what: String,
        command: String,
        timeout: Duration,
    },
}

/// `arg` with every `${NAME}` replaced by `lookup(NAME)`; the first name without a value is the
/// error. A `$` not followed by `{NAME}` is kept as it is.
fn expand(arg: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_len = after.find('}').filter(|&end| {
            let name = &after[..end];
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match name_len {
            Some(end) => {
                let name = &after[..end];
                out.push_str(&lookup(name).ok_or_else(|| name.to_owned())?);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs one power command (`what` is `on`, `off` or `cycle`, for messages) and waits for it to
/// succeed, at most `timeout`. Its stdout is ignored; its stderr goes into the error.
pub async fn switch(what: &str, argv: &[String], timeout: Duration) -> Result<(), PowerError> {
    let command_line = argv.join(" ");
    let argv = argv
        .iter()
        .map(|arg| expand(arg, |name| std::env::var(name).ok()))
        .collect::<Result<Vec<String>, String>>()
        .map_err(|name| PowerError::Unset {
            what: what.to_owned(),
            command: command_line.clone(),
            name,
        })?;
    // As written, `${VAR}` unexpanded: a variable may hold a secret (a PDU's password).
    tracing::debug!(target: "power", "{what}: {command_line}");
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

    #[test]
    fn placeholders_are_replaced_from_the_environment_and_other_dollars_kept() {
        let lookup = |name: &str| (name == "PLUG_TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(
            expand("--token=${PLUG_TOKEN}", lookup),
            Ok("--token=s3cret".to_owned())
        );
        assert_eq!(
            expand("$HOME ${ x} ${1A} $", lookup),
            Ok("$HOME ${ x} ${1A} $".to_owned())
        );
        assert_eq!(expand("${NOPE}", lookup), Err("NOPE".to_owned()));
    }

    #[tokio::test]
    async fn a_secret_from_the_environment_reaches_the_command_but_not_the_report() {
        // SAFETY (set_var): this variable is read by this test only.
        unsafe { std::env::set_var("R2S_POWER_TEST_SECRET", "hunter2") };
        let error = switch(
            "on",
            &argv(&[
                "sh",
                "-c",
                "echo \"refused $0\" >&2; exit 3",
                "${R2S_POWER_TEST_SECRET}",
            ]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err()
        .to_string();
        // The command saw the value (its own stderr says so); the command line shown does not.
        assert!(
            error.contains("`sh -c echo \"refused $0\" >&2; exit 3 ${R2S_POWER_TEST_SECRET}`"),
            "{error}"
        );
        assert!(error.ends_with("refused hunter2"), "{error}");
        let unset = switch(
            "off",
            &argv(&["true", "${R2S_POWER_TEST_UNSET}"]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            unset,
            "power off command `true ${R2S_POWER_TEST_UNSET}` needs environment variable R2S_POWER_TEST_UNSET, which is not set"
        );
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
