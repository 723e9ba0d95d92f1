//! Running the external tools the build relies on (apt, dpkg, mke2fs), with failures that show the
//! command, where it ran and what it said.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::BuildError;

/// Runs `command` in `cwd` and returns its stdout; any failure becomes a [`BuildError`] carrying
/// the command line and its stderr.
pub(crate) fn run(command: &mut Command, cwd: &Path) -> Result<String, BuildError> {
    run_bytes(command, cwd).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// How long one tool may run. The slowest step is `apt-get download` of the kernel package
/// (about 60 MiB); a mirror that stops answering must not hang the build, and the tests with it.
const TOOL_LIMIT: Duration = Duration::from_secs(600);

/// [`run`] for tools whose output is binary.
pub(crate) fn run_bytes(command: &mut Command, cwd: &Path) -> Result<Vec<u8>, BuildError> {
    run_within(command, cwd, TOOL_LIMIT)
}

/// [`run_bytes`] with its own time limit, for steps known to take longer than [`TOOL_LIMIT`].
pub(crate) fn run_within(command: &mut Command, cwd: &Path, limit: Duration) -> Result<Vec<u8>, BuildError> {
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = describe(command);
    let mut child = command.spawn().map_err(|source| BuildError::ToolMissing {
        command: line.clone(),
        source,
    })?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BuildError::ToolTimeout {
                    command: line,
                    cwd: cwd.to_owned(),
                    limit,
                });
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        return Ok(stdout);
    }
    let stdout = String::from_utf8_lossy(&stdout);
    let stderr = String::from_utf8_lossy(&stderr).trim_end().to_owned();
    Err(BuildError::ToolFailed {
        command: line,
        cwd: cwd.to_owned(),
        status: status.to_string(),
        stderr: if stderr.is_empty() {
            stdout.trim_end().to_owned()
        } else {
            stderr
        },
    })
}

/// The command as one would type it (environment overrides first), for error messages.
fn describe(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push(command.get_program().to_string_lossy().into_owned());
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_reports_command_and_stderr() {
        let dir = std::env::temp_dir();
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]), &dir).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`sh -c echo oops >&2; exit 3`"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.ends_with("oops"), "{text}");
    }

    #[test]
    fn a_tool_that_hangs_is_killed_at_its_limit() {
        let dir = std::env::temp_dir();
        let started = Instant::now();
        let err = run_within(Command::new("sleep").arg("30"), &dir, Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            err.to_string(),
            format!(
                "`sleep 30` (in {}) did not finish within 0 s; killed",
                dir.display()
            )
        );
    }

    #[test]
    fn missing_program_is_reported_as_missing() {
        let err = run(&mut Command::new("no-such-tool-r2s"), &std::env::temp_dir()).unwrap_err();
        assert!(matches!(err, BuildError::ToolMissing { .. }), "{err}");
    }
}
