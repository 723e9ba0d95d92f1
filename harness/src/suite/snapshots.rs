//! Starting a scenario from the snapshot of its start state: the start-up strategy's one place
//! for the snapshot cache, the priming boots and the retries.
//!
//! The entry for the state is looked up in the cache ([`crate::snapshot`]); missing or refused,
//! it is built by a priming boot through the runner ([`super::prime`]), from power-on or from
//! its base state's entry (looked up or built the same way first). The target then starts at
//! the entry's snapshot ([`Snapshots::start_at`]). A snapshot QEMU cannot load is discarded and
//! rebuilt once; so, once, is one whose restored console does not reach the state. A priming
//! boot that fails is the verdict of every scenario of the run that needed its entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::prime::{self, PrimeOutcome, PrimeStart, PrimingBoot};
pub use super::prime::{FailedBoot, Primed};
use super::recording::Recording;
use super::strategy::{from_power_on, judge};
use super::{Suite, SuiteError};
use crate::console::ConsoleState;
use crate::debug_timing::mark;
use crate::runner::{
    ConsoleAt, Failure, Observer, Origin, RunContext, RunOutput, ScenarioResult, StartReached, Verdict,
};
use crate::scenario::Scenario;
use crate::snapshot::{
    CacheKey, Checkout, Opened, SnapshotCache, SnapshotError, SnapshotSource, StateBase, StateRecipe,
};
use crate::targets::qemu::QemuError;
use crate::targets::{Console, Snapshots, Target, TargetError};

/// How much longer than a scenario's timeout waiting for an entry's lock may take: another run
/// may be building the entry, or discarding it.
const LOCK_GRACE: Duration = Duration::from_secs(60);

/// The snapshots of start states as a run uses them: the cache that keeps them, and the
/// priming boots that failed in this run. Cheap to clone; clones share both.
#[derive(Debug, Clone)]
pub struct StartSnapshots {
    cache: SnapshotCache,
    /// Keys whose priming boot failed in this process, so that the scenarios of one run that
    /// start from the same state get that boot's verdict instead of failing the same boot
    /// again, one after another.
    failed: Arc<Mutex<HashMap<CacheKey, Arc<FailedBoot>>>>,
}

/// What [`StartSnapshots::checkout`] found: a usable entry, or the priming boot's failure,
/// which is the verdict of every scenario that needed the entry.
#[derive(Debug)]
pub enum Prepared {
    Ready(Box<Ready>),
    BootFailed(Arc<FailedBoot>),
}

/// A usable entry, locked for as long as its checkout lives.
#[derive(Debug)]
pub struct Ready {
    pub checkout: Checkout,
    /// Set when this checkout booted to build the entry.
    pub primed: Option<Primed>,
}

impl Prepared {
    /// The entry, if the priming boot (if any) worked.
    pub fn ready(self) -> Option<Checkout> {
        match self {
            Prepared::Ready(ready) => Some(ready.checkout),
            Prepared::BootFailed(_) => None,
        }
    }
}

impl StartSnapshots {
    /// Start states kept in `cache`, no priming boot failed yet.
    pub fn new(cache: SnapshotCache) -> StartSnapshots {
        StartSnapshots {
            cache,
            failed: Arc::default(),
        }
    }

    /// The cache the snapshots are kept in.
    pub fn cache(&self) -> &SnapshotCache {
        &self.cache
    }

    /// A checked entry for `source`, built first if it is missing or fails its checks. Building
    /// boots QEMU from power-on (or from the base state's entry) within `boot_timeout`, reaches
    /// the state with the runner, saves the machine and writes the boot's transcript to
    /// `transcripts`. Only one process builds an entry; others wait for it (up to
    /// `boot_timeout` plus a minute).
    pub async fn checkout(
        &self,
        source: &SnapshotSource<'_>,
        context: &RunContext,
        transcripts: &Path,
        boot_timeout: Duration,
    ) -> Result<Prepared, SnapshotError> {
        let key = CacheKey::of(source, &self.cache.digests()).await?;
        mark("snapshot key computed");
        if let Some(failed) = self.earlier_failure(&key) {
            return Ok(Prepared::BootFailed(failed));
        }
        let locked = self.cache.lock(&key, boot_timeout + LOCK_GRACE).await?;
        mark("snapshot entry locked");
        // Asked again under the lock, for the scenarios that waited on the failed boot.
        if let Some(failed) = self.earlier_failure(&key) {
            return Ok(Prepared::BootFailed(failed));
        }
        let build = match self.cache.open(locked, source).await? {
            Opened::Ready(checkout) => {
                mark("snapshot entry checked");
                return Ok(Prepared::Ready(Box::new(Ready {
                    checkout: *checkout,
                    primed: None,
                })));
            }
            Opened::Missing(build) => build,
        };
        let from = match source.state.base() {
            StateBase::PowerOn => {
                build.from_power_on(source).await?;
                PrimeStart::PowerOn
            }
            StateBase::Entry(base) => {
                let base_source = SnapshotSource {
                    state: base,
                    ..*source
                };
                let prepared =
                    Box::pin(self.checkout(&base_source, context, transcripts, boot_timeout)).await?;
                let base = match prepared {
                    Prepared::Ready(base) => base.checkout,
                    Prepared::BootFailed(failed) => {
                        return Ok(self.failed_boot(key, (*failed).clone()));
                    }
                };
                build.copy_from(&base).await?;
                PrimeStart::Snapshot {
                    tag: base.tag,
                    console: base.console,
                    entry: self.cache.entry_dir(&base.key),
                    failed_units: base.failed_units.clone(),
                }
            }
        };
        let stem = format!("{}-snapshot-{}", source.state.name(), key.short());
        let boot = PrimingBoot {
            qemu: source.qemu,
            disks: build.disks(),
            state: source.state,
            from,
            context,
            transcripts,
            stem: &stem,
            timeout: boot_timeout,
        };
        let primed = match prime::reach_and_save(boot).await? {
            PrimeOutcome::Saved(primed) => primed,
            PrimeOutcome::BootFailed(failed) => {
                return Ok(self.failed_boot(key, *failed));
            }
        };
        let checkout = build
            .finish(source, primed.console, primed.failed_units.clone())
            .await?;
        Ok(Prepared::Ready(Box::new(Ready {
            checkout,
            primed: Some(primed),
        })))
    }

    /// The failure of this process's earlier priming boot for `key`, if there was one.
    fn earlier_failure(&self, key: &CacheKey) -> Option<Arc<FailedBoot>> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.get(key).cloned()
    }

    /// Remembers that the priming boot for `key` failed, and returns that verdict.
    fn failed_boot(&self, key: CacheKey, failed: FailedBoot) -> Prepared {
        let failed = Arc::new(failed);
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, failed.clone());
        Prepared::BootFailed(failed)
    }
}

/// A target started from the snapshot of a start state.
struct Restored {
    /// Its console, in the saved state (if the restore worked).
    console: Console,
    /// Where the console was when the state was saved.
    at: ConsoleState,
    /// The systemd units that failed in the boot the snapshot was taken from.
    failed_units: Vec<String>,
    /// Where the snapshot came from, for the transcript.
    how: String,
    /// Whether this restore booted to build the snapshot.
    primed: bool,
    /// The priming boot's transcript, when this restore built the snapshot.
    priming_transcript: Option<PathBuf>,
    /// The entry restored, and which build of it, to discard it if the restore did not work.
    key: CacheKey,
    build: String,
}

/// Why a target could not be started from its snapshot.
enum RestoreFailure {
    /// The priming boot did not reach the state: a verdict on the image, shared by every
    /// scenario that needed that snapshot.
    Boot(Arc<FailedBoot>),
    /// The snapshot could not be made or used for another reason.
    Error(SuiteError),
}

impl From<SnapshotError> for RestoreFailure {
    fn from(e: SnapshotError) -> Self {
        RestoreFailure::Error(e.into())
    }
}

impl From<TargetError> for RestoreFailure {
    fn from(e: TargetError) -> Self {
        RestoreFailure::Error(e.into())
    }
}

/// A scenario restored from the snapshot of `state`, its first `steps_done` steps already
/// done by the snapshot's priming run. A restore that does not reach the state discards the
/// snapshot and tries once more with a rebuilt one.
pub(super) async fn from_snapshot(
    suite: &Suite,
    target: &mut dyn Target,
    state: StateRecipe<'_>,
    steps_done: usize,
    scenario: &Scenario,
    context: &RunContext,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let mut earlier_attempt: Option<String> = None;
    loop {
        let (Some(snapshots), Some(machine)) = (&suite.snapshots, target.snapshots()) else {
            return from_power_on(suite, target, scenario, context, observer).await;
        };
        let restored = match restore(
            snapshots,
            machine,
            state,
            context,
            &suite.transcripts,
            scenario.timeout,
        )
        .await
        {
            Ok(restored) => restored,
            // The image did not boot to a shell: that is the scenario's verdict.
            Err(RestoreFailure::Boot(failed)) => return Ok(priming_failed(scenario, state.name(), &failed)),
            Err(RestoreFailure::Error(e)) => return Err(e),
        };
        let mut recording = Recording::start(&suite.transcripts, scenario)?;
        if let Some(note) = &earlier_attempt {
            recording.note(note);
        }
        recording.note(&format!("start = {:?}: {}", state.name(), restored.how));
        let at = ConsoleAt::Restored {
            console: restored.at,
            steps_done,
        };
        mark("restored: console attached");
        let mut out = judge(
            target,
            restored.console,
            at,
            scenario,
            context,
            &mut recording,
            observer,
        )
        .await;
        mark("steps done, QEMU stopped");
        if out.start == StartReached::No && earlier_attempt.is_none() {
            if let Verdict::Fail(f) = &out.verdict {
                earlier_attempt = Some(format!(
                    "an earlier restore from build {} failed ({}); the entry was discarded and rebuilt",
                    restored.build, f.reason
                ));
            }
            recording.discard();
            snapshots
                .cache()
                .discard(&restored.key, &restored.build, scenario.timeout + LOCK_GRACE)
                .await?;
            continue;
        }
        with_snapshot_boot_units(&mut out, &restored.failed_units, state.name(), &mut recording);
        let origin = Origin::Snapshot {
            primed: restored.primed,
        };
        let extra = restored.priming_transcript.into_iter().collect();
        return recording.finish(scenario, out, origin, extra);
    }
}

/// Starts `target` from the snapshot of `state`, reaching and saving it first (the priming
/// run) when the cache has none that checks out. A snapshot QEMU cannot load (its job says
/// why) is discarded and rebuilt, once.
async fn restore(
    snapshots: &StartSnapshots,
    target: &mut dyn Snapshots,
    state: StateRecipe<'_>,
    context: &RunContext,
    transcripts: &Path,
    boot_timeout: Duration,
) -> Result<Restored, RestoreFailure> {
    let spec = target.spec();
    let source = SnapshotSource {
        qemu: &spec.config,
        image: &spec.image,
        unpacked_from: spec.unpacked_from.as_deref(),
        shim: spec.shim.as_deref(),
        state,
    };
    let cache = snapshots.cache();
    let mut earlier: Option<String> = None;
    loop {
        let (checkout, primed) = match snapshots
            .checkout(&source, context, transcripts, boot_timeout)
            .await?
        {
            Prepared::Ready(ready) => (ready.checkout, ready.primed),
            Prepared::BootFailed(failed) => return Err(RestoreFailure::Boot(failed)),
        };
        let how = match &primed {
            Some(p) => format!(
                "built by this run: {:.1}s to reach the state, saved in {:.2}s; boot transcript {}{}",
                p.to_state.as_secs_f64(),
                p.save.as_secs_f64(),
                p.transcript.display(),
                checkout
                    .refused
                    .as_ref()
                    .map(|why| format!("; the entry in the cache was refused: {why}"))
                    .unwrap_or_default()
            ),
            None => "reused from the cache".to_owned(),
        };
        let (console, loaded) = match target.start_at(&checkout.disks, checkout.tag).await {
            Ok(started) => started,
            Err(TargetError::Qemu(QemuError::Snapshot(e))) if earlier.is_none() => {
                let (key, build) = (checkout.key.clone(), checkout.build.clone());
                drop(checkout);
                cache.discard(&key, &build, boot_timeout + LOCK_GRACE).await?;
                earlier = Some(format!(
                    "an earlier restore from build {build} failed ({e}); the entry was discarded and rebuilt; "
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let how = format!(
            "{}restoring snapshot {} of {} ({how}; {}; state loaded in {:.2}s)",
            earlier.unwrap_or_default(),
            checkout.tag,
            cache.entry_dir(&checkout.key).display(),
            checkout.verified,
            loaded.as_secs_f64()
        );
        // QEMU has its own copies now; `checkout` drops here, and other runs may use or
        // rebuild the entry.
        return Ok(Restored {
            console,
            at: checkout.console,
            failed_units: checkout.failed_units.clone(),
            how,
            primed: primed.is_some(),
            priming_transcript: primed.map(|p| p.transcript),
            key: checkout.key.clone(),
            build: checkout.build.clone(),
        });
    }
}

/// A restored scenario did not see the boot its snapshot was taken from, so the units that
/// failed in that boot are listed with its result too, before its own, each saying where it
/// was seen.
fn with_snapshot_boot_units(out: &mut RunOutput, units: &[String], state: &str, recording: &mut Recording) {
    if units.is_empty() {
        return;
    }
    recording.note(&format!(
        "{} unit(s) failed while the {state:?} snapshot was made (the boot and the steps before it), listed with this result",
        units.len()
    ));
    let mut all: Vec<String> = units
        .iter()
        .map(|unit| format!("{unit} (seen while the {state:?} snapshot was made)"))
        .collect();
    all.append(&mut out.failed_units);
    out.failed_units = all;
}

/// The result of a scenario whose start state's priming run did not reach it.
fn priming_failed(scenario: &Scenario, state: &str, failed: &FailedBoot) -> ScenarioResult {
    let boot = &failed.output;
    let verdict = match &boot.verdict {
        Verdict::Fail(failure) => Verdict::Fail(Failure {
            step_description: format!(
                "start = {state:?} ({}, {})",
                failure.step_description,
                scenario.source.display()
            ),
            ..failure.clone()
        }),
        other => other.clone(),
    };
    ScenarioResult {
        name: scenario.name.clone(),
        source: scenario.source.clone(),
        duration: boot.duration,
        verdict,
        stages: boot.stages.clone(),
        last_lines: boot.last_lines.clone(),
        failed_units: boot.failed_units.clone(),
        transcript: vec![failed.transcript.clone()],
        origin: Origin::Snapshot { primed: true },
        earlier_tries: Vec::new(),
    }
}
