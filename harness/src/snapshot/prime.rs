//! The priming boot: QEMU on an entry's disks, booted from power-on to a root shell with the
//! scenario's login recipe, saved as [`TAG`] and shut down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::{SnapshotError, TAG};
use crate::console::Transcript;
use crate::runner::{self, Quiet, RunContext, RunOutput, Verdict};
use crate::scenario::LoginRecipe;
use crate::target::qemu::{QemuConfig, QemuMachine};
use crate::target::qmp::{Qmp, SnapshotJob};
use crate::target::{NoLog, StartFailure, Target};

/// Saving a 1 GiB guest takes a fraction of a second; this is for a loaded machine.
const SAVE_LIMIT: Duration = Duration::from_secs(120);

/// What a priming boot needs.
pub(super) struct PrimingBoot<'a> {
    pub qemu: &'a QemuConfig,
    /// The entry's disks being built, in attachment order; QEMU writes to them.
    pub disks: &'a [PathBuf],
    pub recipe: &'a LoginRecipe,
    pub context: &'a RunContext,
    /// Where the boot's transcript goes, as `<stem>.{log,raw,cast}`.
    pub transcripts: &'a Path,
    pub stem: &'a str,
    pub timeout: Duration,
}

/// How a priming boot ended, when the harness itself worked.
pub(super) enum PrimeOutcome {
    /// The machine reached a shell and was saved.
    Saved(Primed),
    /// The image did not boot to a shell: a verdict on the image.
    BootFailed(Box<FailedBoot>),
}

/// What building an entry took.
#[derive(Debug, Clone)]
pub struct Primed {
    /// The priming boot's transcript log.
    pub transcript: PathBuf,
    /// From QEMU's start to the shell prompt.
    pub to_shell: Duration,
    /// How long `snapshot-save` took.
    pub save: Duration,
}

/// A priming boot that did not reach a shell: the verdict of every scenario that needed its
/// snapshot.
#[derive(Debug, Clone)]
pub struct FailedBoot {
    /// That boot's verdict, stages and last console lines.
    pub output: RunOutput,
    /// Its transcript log.
    pub transcript: PathBuf,
}

/// Boots, logs in and saves. QEMU is gone when this returns, on every path.
pub(super) async fn boot_and_save(boot: PrimingBoot<'_>) -> Result<PrimeOutcome, SnapshotError> {
    std::fs::create_dir_all(boot.transcripts).map_err(|e| SnapshotError::io(boot.transcripts, e))?;
    let mut transcript = Transcript::create(boot.transcripts, boot.stem, "boot to the login snapshot")
        .map_err(|e| SnapshotError::io(boot.transcripts, e))?;
    let log = transcript.paths().log;

    let started = Instant::now();
    let mut target = QemuMachine::on_disks(boot.qemu.clone(), boot.disks.to_vec());
    let mut console = match target.start(None, &mut NoLog).await {
        Ok(console) => console,
        Err(StartFailure::Error(crate::target::TargetError::Qemu(e))) => return Err(e.into()),
        Err(other) => return Err(SnapshotError::Start(Box::new(other))),
    };
    let reached = runner::reach_login_shell(
        &mut console,
        &mut transcript,
        boot.context,
        boot.recipe,
        boot.timeout,
        &mut Quiet,
    )
    .await;
    let to_shell = started.elapsed();
    let outcome = match reached.verdict {
        Verdict::Pass => {
            let save_started = Instant::now();
            let saved = save_and_quit(&mut target).await;
            let _ = transcript.note(
                started.elapsed(),
                &match &saved {
                    Ok(()) => format!(
                        "snapshot-save {TAG} took {:.2}s",
                        save_started.elapsed().as_secs_f64()
                    ),
                    Err(e) => format!("snapshot-save {TAG} failed: {e}"),
                },
            );
            saved.map(|()| {
                PrimeOutcome::Saved(Primed {
                    transcript: log.clone(),
                    to_shell,
                    save: save_started.elapsed(),
                })
            })
        }
        Verdict::Fail(_) => Ok(PrimeOutcome::BootFailed(Box::new(FailedBoot {
            output: reached,
            transcript: log,
        }))),
    };
    drop(console);
    let _ = target.stop(&mut NoLog).await;
    let _ = transcript.finish();
    outcome
}

/// Saves the machine as [`TAG`] and asks QEMU to quit, so that its disks are closed cleanly.
async fn save_and_quit(target: &mut QemuMachine) -> Result<(), SnapshotError> {
    let Some(running) = target.running() else {
        return Ok(());
    };
    let mut qmp = Qmp::connect(&running.qmp_socket()).await?;
    qmp.snapshot(SnapshotJob::Save, TAG, SAVE_LIMIT).await?;
    // QEMU may close the socket before it replies to quit; either way it is leaving.
    let _ = qmp
        .execute("quit", serde_json::json!({}), Duration::from_secs(10))
        .await;
    running.wait_exit(Duration::from_secs(10)).await;
    Ok(())
}
