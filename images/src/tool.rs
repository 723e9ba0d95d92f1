//! Running the external tools the build relies on (apt, dpkg, mke2fs), with failures that show the
//! command, where it ran and what it said.

use std::path::Path;
use std::process::Command;

use crate::BuildError;

/// Runs `command` in `cwd` and returns its stdout; any failure becomes a [`BuildError`] carrying
/// the command line and its stderr.
pub(crate) fn run(command: &mut Command, cwd: &Path) -> Result<String, BuildError> {
    run_bytes(command, cwd).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// [`run`] for tools whose output is binary.
pub(crate) fn run_bytes(command: &mut Command, cwd: &Path) -> Result<Vec<u8>, BuildError> {
    command.current_dir(cwd);
    let line = describe(command);
    let output = command.output().map_err(|source| BuildError::ToolMissing {
        command: line.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_owned();
    Err(BuildError::ToolFailed {
        command: line,
        cwd: cwd.to_owned(),
        status: output.status.to_string(),
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
    fn missing_program_is_reported_as_missing() {
        let err = run(&mut Command::new("no-such-tool-r2s"), &std::env::temp_dir()).unwrap_err();
        assert!(matches!(err, BuildError::ToolMissing { .. }), "{err}");
    }
}
