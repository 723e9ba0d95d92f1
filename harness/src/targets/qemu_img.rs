//! The `qemu-img` operations the QEMU target and the snapshot cache need. Each runs with a
//! timeout and is killed if it overruns.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::qemu::{QemuConfig, QemuError};

/// Generous for files of a few hundred MiB on a busy machine; these take well under a second.
const LIMIT: Duration = Duration::from_secs(60);

/// Creates `overlay`, a qcow2 file whose reads fall through to `backing` (of `backing_format`)
/// and which takes every write, so the backing file is never written.
pub async fn create_overlay(
    config: &QemuConfig,
    backing: &Path,
    backing_format: &str,
    overlay: &Path,
) -> Result<(), QemuError> {
    let args: Vec<OsString> = vec![
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-F".into(),
        backing_format.into(),
        "-b".into(),
        backing.into(),
        overlay.into(),
    ];
    run(config, &args).await.map(drop)
}

/// Writes `raw`'s content into a new standalone qcow2 file `out` (no backing file).
pub async fn convert_to_qcow2(config: &QemuConfig, raw: &Path, out: &Path) -> Result<(), QemuError> {
    let args: Vec<OsString> = vec![
        "convert".into(),
        "-q".into(),
        "-f".into(),
        "raw".into(),
        "-O".into(),
        "qcow2".into(),
        raw.into(),
        out.into(),
    ];
    run(config, &args).await.map(drop)
}

/// `qemu-img check`: the qcow2 metadata of `file` is consistent and its backing file opens.
pub async fn check(config: &QemuConfig, file: &Path) -> Result<(), QemuError> {
    let args: Vec<OsString> = vec![
        "check".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        file.into(),
    ];
    run(config, &args).await.map(drop)
}

/// Runs qemu-img with `args`; its stdout on success.
async fn run(config: &QemuConfig, args: &[OsString]) -> Result<Vec<u8>, QemuError> {
    let mut command = Command::new(&config.qemu_img);
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(LIMIT, command.output())
        .await
        .map_err(|_| QemuError::QemuImg {
            command: show(config, args),
            stderr: format!("timed out after {} s", LIMIT.as_secs()),
        })?
        .map_err(|source| QemuError::Spawn {
            program: config.qemu_img.clone(),
            source,
        })?;
    if !output.status.success() {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.is_empty() {
            // `check -q` says nothing; its exit status is the verdict.
            stderr = format!("exit status {}", output.status);
        }
        return Err(QemuError::QemuImg {
            command: show(config, args),
            stderr,
        });
    }
    Ok(output.stdout)
}

fn show(config: &QemuConfig, args: &[OsString]) -> String {
    let mut text = config.qemu_img.display().to_string();
    for arg in args {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
