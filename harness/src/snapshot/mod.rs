//! Start-state snapshots on QEMU: reach a scenario's start state once (a root shell, U-Boot's
//! prompt, or a state another scenario's `save_state` step names), save the machine, and start
//! every scenario with that start from the saved state instead of a cold boot.
//!
//! An entry of the cache is a directory `<cache>/<key>/` (see [`CacheKey`]) holding qcow2 disks
//! in QEMU's attachment order — an overlay over the image (which stays read-only) and, when the
//! image is adapted, a standalone copy of the shim — as they were when the machine was saved,
//! the machine's state (RAM and devices) in `<tag>.state` ([`StateRecipe::tag`],
//! [`crate::targets::qmp::Qmp::save_state`]), and `entry.json` naming the key, the build and
//! where the console was. An entry of a saved state is built from its base's entry: the base's
//! disks are copied, the machine started from the base's state on them, the steps run and the
//! new state saved beside them. Entries are built in
//! `<key>.building/` and renamed into place, so a half-built entry never has the final name.
//! `<key>.lock` serialises building and reading across processes.
//!
//! The cache keeps entries; it does not boot anything. Reaching a state to save it (the
//! priming boot, which runs the scenario runner) and deciding when an entry is rebuilt are the
//! start-up strategy's (`suite::snapshots`): it locks an entry ([`SnapshotCache::lock`]),
//! opens it ([`SnapshotCache::open`]), and when it is missing fills an [`EntryBuild`]'s disks
//! and puts the entry in place ([`EntryBuild::finish`]).
//!
//! An entry is trusted only after checking it: its `entry.json` names its key, every disk has
//! the size and digest recorded when it was built, and so has the state file (see [`seal`]),
//! and `qemu-img check` passes on every disk. Anything else, and a restore
//! that does not reach a shell, makes the entry be rebuilt. The checks are made once per
//! version of the entry's disks, not once per process (see [`verified`]).

mod digests;
pub mod kept;
mod key;
mod lock;
mod seal;
mod trusted;
mod verified;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use digests::DigestStore;
pub use key::{
    content_digest, feed_data_extents, qemu_version, sparse_digest, CacheKey, SnapshotSource, StateBase,
    StateRecipe,
};
pub use lock::EntryLock;
pub use seal::SealBroken;

use crate::console::ConsoleState;
use crate::targets::qemu::{saved_state_name, QemuError};
use crate::targets::qemu_img;
use crate::targets::qmp::QmpError;

/// Entries kept in a cache directory, the most recently used first. An entry holds a qcow2
/// overlay with the machine's memory (about 120 MiB for a 1 GiB machine), so a cache that
/// kept every image and recipe it ever saw would grow without end. An image has an entry per
/// start state its scenarios use (login, uboot, each saved state), and the test suite uses
/// two images' states at once: eight leaves room for both.
pub const KEEP_ENTRIES: usize = 8;

/// Why a snapshot could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot cache: gave up after {}s waiting for {path}, held by another run", waited.as_secs())]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("snapshot cache: {0}")]
    Qemu(#[from] QemuError),
    #[error("saving the snapshot: {0}")]
    Qmp(#[from] QmpError),
    #[error("snapshot cache entry {entry} was just built but does not check out: {problem}")]
    Unusable {
        entry: PathBuf,
        #[source]
        problem: EntryProblem,
    },
    #[error("the priming boot could not start QEMU: {0}")]
    Start(#[source] Box<crate::targets::StartFailure>),
}

/// Why a cache entry is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("entry.json names key {key} and tag {tag}")]
    Names { key: String, tag: String },
    #[error("{found} disks, expected {expected}")]
    DiskCount { found: usize, expected: usize },
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Seal(#[from] SealBroken),
}

impl SnapshotError {
    /// Reading or writing `path` failed.
    pub fn io(path: &Path, source: io::Error) -> SnapshotError {
        SnapshotError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What `entry.json` says about an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EntryInfo {
    key: String,
    tag: String,
    disks: Vec<String>,
    /// Each disk's size and digest when the entry was built; absent in entries of older
    /// harnesses, which are then rebuilt.
    #[serde(default)]
    seals: Vec<seal::DiskSeal>,
    /// Distinguishes this build from a later rebuild under the same key, so that a run that
    /// found the entry unusable removes only the build it used.
    build: String,
    /// Where the console was when the state was saved.
    #[serde(default)]
    console: SavedConsole,
    /// The systemd units that failed in the boot the state was saved from.
    #[serde(default)]
    failed_units: Vec<String>,
}

impl EntryInfo {
    /// The files its seal covers: the disks, then the saved machine state.
    fn files(&self) -> Vec<String> {
        let mut files = self.disks.clone();
        files.push(saved_state_name(&self.tag));
        files
    }
}

/// [`ConsoleState`] as `entry.json` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SavedConsole {
    #[default]
    Shell,
    Uboot,
    Booting,
}

impl From<ConsoleState> for SavedConsole {
    fn from(state: ConsoleState) -> Self {
        match state {
            ConsoleState::Shell => SavedConsole::Shell,
            ConsoleState::UbootPrompt => SavedConsole::Uboot,
            ConsoleState::Booting => SavedConsole::Booting,
        }
    }
}

impl From<SavedConsole> for ConsoleState {
    fn from(saved: SavedConsole) -> Self {
        match saved {
            SavedConsole::Shell => ConsoleState::Shell,
            SavedConsole::Uboot => ConsoleState::UbootPrompt,
            SavedConsole::Booting => ConsoleState::Booting,
        }
    }
}

/// A directory of start-state snapshots, shared by every process that names it.
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    dir: PathBuf,
    /// Entries this process checked and whose files have not changed since.
    trusted: Arc<trusted::Trusted>,
}

/// An entry's lock, held: what [`SnapshotCache::lock`] returns and [`SnapshotCache::open`]
/// takes.
#[derive(Debug)]
pub struct LockedEntry {
    lock: EntryLock,
    key: CacheKey,
}

/// What [`SnapshotCache::open`] found: an entry that checks out, or none (missing, stale or
/// corrupt, and removed) and its build begun.
#[derive(Debug)]
pub enum Opened {
    Ready(Box<Checkout>),
    Missing(EntryBuild),
}

/// A usable entry, locked for as long as this lives: restore from [`Checkout::disks`] (QEMU
/// copies them; see [`crate::targets::QemuTarget::restore`]), then drop it so other runs can
/// proceed.
#[derive(Debug)]
pub struct Checkout {
    _lock: EntryLock,
    /// The entry's disks, in attachment order.
    pub disks: Vec<PathBuf>,
    /// The entry's key.
    pub key: CacheKey,
    /// Which build of the entry this is (for [`SnapshotCache::discard`]).
    pub build: String,
    /// The state to load, saved beside the disks as `<tag>.state`.
    pub tag: &'static str,
    /// Where the console was when the state was saved.
    pub console: ConsoleState,
    /// The systemd units that failed in the boot the state was saved from (bounded as the
    /// runner bounds its own list, whatever `entry.json` says).
    pub failed_units: Vec<String>,
    /// Whether the entry's disks were checked against their seal now (and how long that
    /// took), or earlier and unchanged since.
    pub verified: Verification,
    /// Why the entry found in the cache was not trusted, when one was there and this checkout
    /// rebuilt it.
    pub refused: Option<String>,
}

/// What [`SnapshotCache::check`] found in an entry that checks out: its info, its disks, and
/// when its seal was verified.
type Checked = (EntryInfo, Vec<PathBuf>, Verification);

/// When an entry's disks were checked (seal, `qemu-img check`, the snapshot's tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Now, in this long.
    Now(Duration),
    /// Earlier in this process; none of the disks changed since.
    EarlierInThisRun,
    /// By an earlier process, which recorded it in the entry; none of the disks changed since.
    Recorded,
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Now(took) => write!(f, "seal verified in {:.2}s", took.as_secs_f64()),
            Verification::EarlierInThisRun => {
                f.write_str("seal verified earlier in this run, files unchanged since")
            }
            Verification::Recorded => f.write_str("seal verified by an earlier run, files unchanged since"),
        }
    }
}

impl Checkout {
    fn of(
        lock: EntryLock,
        key: CacheKey,
        tag: &'static str,
        (info, disks, verified): Checked,
        refused: Option<String>,
    ) -> Checkout {
        Checkout {
            _lock: lock,
            disks,
            key,
            build: info.build,
            tag,
            console: info.console.into(),
            failed_units: bounded_units(info.failed_units),
            verified,
            refused,
        }
    }
}

impl SnapshotCache {
    /// A cache in `dir`, created when first used.
    pub fn new(dir: impl Into<PathBuf>) -> SnapshotCache {
        SnapshotCache {
            dir: dir.into(),
            trusted: Arc::default(),
        }
    }

    /// The default directory for the command line: `snapshots` in the harness's cache
    /// directory ([`crate::adapt::default_cache_dir`]), else under the system's temporary
    /// directory.
    pub fn default_dir() -> PathBuf {
        crate::adapt::default_cache_dir()
            .unwrap_or_else(|| std::env::temp_dir().join("r2s-harness"))
            .join("snapshots")
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The digests of the images and firmware its keys hash, kept in its `digests/` folder so
    /// that each file version is hashed once, not once per process.
    pub fn digests(&self) -> DigestStore {
        DigestStore::new(self.dir.join("digests"))
    }

    /// The entry's directory for `key`.
    pub fn entry_dir(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(&key.0)
    }

    /// The lock file of the entry named `key`, beside its directory (it must exist before the
    /// entry does).
    fn lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    /// Where the entry named `key` is built before it is renamed into place.
    fn build_dir(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.building"))
    }

    /// Takes the lock of the entry named `key`, waiting up to `limit` for another run that
    /// builds or reads it.
    pub async fn lock(&self, key: &CacheKey, limit: Duration) -> Result<LockedEntry, SnapshotError> {
        crate::private::create_dir_all(&self.dir).map_err(|e| SnapshotError::io(&self.dir, e))?;
        let lock = EntryLock::acquire(&self.lock_path(&key.0), limit).await?;
        Ok(LockedEntry {
            lock,
            key: key.clone(),
        })
    }

    /// The locked entry for `source`, if it checks out; otherwise (missing, stale or corrupt)
    /// it is removed, never repaired, and its build begun in `<key>.building/`.
    pub async fn open(
        &self,
        locked: LockedEntry,
        source: &SnapshotSource<'_>,
    ) -> Result<Opened, SnapshotError> {
        let LockedEntry { lock, key } = locked;
        let entry = self.entry_dir(&key);
        let tag = source.state.tag();
        let refused = match self.check(source, &key, &entry).await {
            Ok(checked) => {
                mark_used(&entry);
                return Ok(Opened::Ready(Box::new(Checkout::of(
                    lock, key, tag, checked, None,
                ))));
            }
            Err(problem) => entry.exists().then(|| problem.to_string()),
        };
        self.trusted.forget(&entry);
        remove_dir(&entry)?;
        let dir = self.build_dir(&key.0);
        let mut names = vec!["disk0.qcow2".to_owned()];
        if source.shim.is_some() {
            names.push("disk1.qcow2".to_owned());
        }
        let disks = names.iter().map(|n| dir.join(n)).collect();
        // From here a failure removes the half-built directory (tens of MB of overlay).
        let build = EntryBuild {
            cache: self.clone(),
            lock: Some(lock),
            key,
            dir,
            names,
            disks,
            refused,
        };
        remove_dir(&build.dir)?;
        crate::private::create_dir_all(&build.dir).map_err(|e| SnapshotError::io(&build.dir, e))?;
        Ok(Opened::Missing(build))
    }

    /// Removes the entry for `key` if it is still build `build`: a restore from it failed, so
    /// the next checkout rebuilds it. A build made since by another run is left alone.
    pub async fn discard(&self, key: &CacheKey, build: &str, limit: Duration) -> Result<(), SnapshotError> {
        let _lock = EntryLock::acquire(&self.lock_path(&key.0), limit).await?;
        let entry = self.entry_dir(key);
        self.trusted.forget(&entry);
        match read_info(&entry) {
            Ok(info) if info.build != build => Ok(()),
            _ => remove_dir(&entry),
        }
    }

    /// Removes the least recently used entries beyond [`KEEP_ENTRIES`], never `keep` and never
    /// one another process holds (its lock is taken without waiting first), with their lock
    /// files; then what killed builds left (`<key>.building/`) and the lock files left without
    /// an entry (a build that failed, or a harness that kept them). Best effort: what cannot be
    /// removed now is left for a later run.
    async fn evict(&self, keep: &CacheKey) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let is_key = |name: &str| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let mut entries: Vec<(std::time::SystemTime, String)> = Vec::new();
        // Keys with a build directory, or with a lock file and no entry: what killed or failed
        // builds left. Gathered before any entry is evicted, whose lock file goes with it.
        let mut leftovers: std::collections::BTreeSet<String> = Default::default();
        for found in read.flatten() {
            let Ok(name) = found.file_name().into_string() else {
                continue;
            };
            if let Some(key) = name.strip_suffix(".building") {
                if is_key(key) && key != keep.0 {
                    leftovers.insert(key.to_owned());
                }
                continue;
            }
            if let Some(key) = name.strip_suffix(".lock") {
                if is_key(key) && key != keep.0 && !self.dir.join(key).exists() {
                    leftovers.insert(key.to_owned());
                }
                continue;
            }
            if !is_key(&name) || name == keep.0 {
                continue;
            }
            let used = std::fs::metadata(found.path().join("entry.json"))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            entries.push((used, name));
        }
        // Newest first; the kept entry counts as one of the KEEP_ENTRIES.
        entries.sort_by(|a, b| b.cmp(a));
        let kept = entries.len().min(KEEP_ENTRIES.saturating_sub(1));
        for (_, name) in &entries[kept..] {
            let lock_path = self.lock_path(name);
            if let Ok(lock) = EntryLock::acquire(&lock_path, Duration::ZERO).await {
                if remove_dir(&self.dir.join(name)).is_ok() {
                    let _ = lock.remove(&lock_path);
                }
            }
        }
        for key in leftovers {
            let lock_path = self.lock_path(&key);
            // A build whose lock nobody holds is over; looked at under the lock, because a run
            // may have built the entry since the listing.
            if let Ok(lock) = EntryLock::acquire(&lock_path, Duration::ZERO).await {
                let _ = remove_dir(&self.build_dir(&key));
                if !self.dir.join(&key).exists() {
                    let _ = lock.remove(&lock_path);
                }
            }
        }
    }

    /// The entry's info and disks if every check passes; otherwise why not.
    async fn check(
        &self,
        source: &SnapshotSource<'_>,
        key: &CacheKey,
        entry: &Path,
    ) -> Result<Checked, EntryProblem> {
        let tag = source.state.tag();
        let info = read_info(entry)?;
        if info.key != key.0 || info.tag != tag {
            return Err(EntryProblem::Names {
                key: info.key,
                tag: info.tag,
            });
        }
        let expected = 1 + usize::from(source.shim.is_some());
        if info.disks.len() != expected {
            return Err(EntryProblem::DiskCount {
                found: info.disks.len(),
                expected,
            });
        }
        let files = info.files();
        let earlier = if self.trusted.still(entry, &info.build, &files) {
            Some(Verification::EarlierInThisRun)
        } else if verified::still(entry, &info.build, &info.seals, &files) {
            self.trusted.remember(entry, &info.build, &files);
            Some(Verification::Recorded)
        } else {
            None
        };
        if let Some(earlier) = earlier {
            let disks = info.disks.iter().map(|name| entry.join(name)).collect();
            return Ok((info, disks, earlier));
        }
        verified::forget(entry);
        // The versions the checks below are of: recorded only if nothing changed meanwhile.
        let versions = trusted::versions(entry, &files).map_err(|source| EntryProblem::Read {
            path: entry.to_owned(),
            source,
        })?;
        // Before anything reads the files: a changed byte anywhere, or a missing state, is
        // refused.
        let verifying = std::time::Instant::now();
        let (dir, names, seals) = (entry.to_owned(), files.clone(), info.seals.clone());
        tokio::task::spawn_blocking(move || seal::verify(&dir, &names, &seals))
            .await
            .map_err(|e| EntryProblem::Read {
                path: entry.to_owned(),
                source: io::Error::other(e),
            })??;
        let verified = verifying.elapsed();
        crate::debug_timing::mark("snapshot entry: seal verified");
        let mut disks = Vec::new();
        for name in &info.disks {
            let disk = entry.join(name);
            qemu_img::check(source.qemu, &disk).await?;
            disks.push(disk);
        }
        crate::debug_timing::mark("snapshot entry: qemu-img check");
        self.trusted.remember(entry, &info.build, &files);
        verified::remember(
            entry,
            &info.build,
            &info.seals,
            &files,
            &versions,
            verified::SETTLED,
            std::time::SystemTime::now(),
        );
        Ok((info, disks, Verification::Now(verified)))
    }
}

/// An entry being built in `<key>.building/`, its lock held: its disks are made (an overlay
/// over the image, or copies of the base state's entry), a priming boot reaches the state and
/// saves it in them, and [`EntryBuild::finish`] puts the entry in place. Dropped unfinished,
/// the half-built directory is removed.
#[derive(Debug)]
pub struct EntryBuild {
    cache: SnapshotCache,
    /// Taken by [`EntryBuild::finish`], into the entry's [`Checkout`].
    lock: Option<EntryLock>,
    key: CacheKey,
    dir: PathBuf,
    names: Vec<String>,
    disks: Vec<PathBuf>,
    /// Why the entry found in the cache was not trusted, when one was there.
    refused: Option<String>,
}

impl EntryBuild {
    /// The key of the entry being built.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The entry's disks being built, in attachment order; the priming boot's QEMU writes to
    /// them.
    pub fn disks(&self) -> &[PathBuf] {
        &self.disks
    }

    /// Makes the disks for a state reached from power-on: an overlay over the image and a
    /// standalone copy of the shim.
    pub async fn from_power_on(&self, source: &SnapshotSource<'_>) -> Result<(), SnapshotError> {
        let image = std::fs::canonicalize(source.image).map_err(|e| SnapshotError::io(source.image, e))?;
        qemu_img::create_overlay(source.qemu, &image, "raw", &self.disks[0]).await?;
        if let Some(shim) = source.shim {
            // A standalone copy: the shim itself lives in a temporary directory of this run.
            qemu_img::convert_to_qcow2(source.qemu, shim.disk(), &self.disks[1]).await?;
        }
        self.restrict()
    }

    /// Makes the disks for a state reached from another state's snapshot: copies of that
    /// state's entry, which may be used or evicted again once this returns.
    pub async fn copy_from(&self, base: &Checkout) -> Result<(), SnapshotError> {
        for (from, to) in base.disks.iter().zip(&self.disks) {
            tokio::fs::copy(from, to)
                .await
                .map_err(|e| SnapshotError::io(from, e))?;
        }
        self.restrict()
    }

    /// The disks hold what the guest wrote, and the state file beside them its memory.
    fn restrict(&self) -> Result<(), SnapshotError> {
        for disk in &self.disks {
            crate::private::restrict_file(disk).map_err(|e| SnapshotError::io(disk, e))?;
        }
        Ok(())
    }

    /// The state is saved beside the disks ([`saved_state_name`]), with the console at `console`
    /// after a boot in which `failed_units` failed: seals the disks and the state, writes
    /// `entry.json`, renames the directory into place, evicts old entries and checks the new
    /// one, which is returned locked.
    pub async fn finish(
        mut self,
        source: &SnapshotSource<'_>,
        console: ConsoleState,
        failed_units: Vec<String>,
    ) -> Result<Checkout, SnapshotError> {
        let building = self.dir.clone();
        let seals = {
            let mut names = self.names.clone();
            names.push(saved_state_name(source.state.tag()));
            let dir = building.clone();
            tokio::task::spawn_blocking(move || seal::seal(&dir, &names))
                .await
                .map_err(|e| SnapshotError::io(&building, io::Error::other(e)))?
                .map_err(|problem| SnapshotError::Unusable {
                    entry: building.clone(),
                    problem: problem.into(),
                })?
        };
        let info = EntryInfo {
            key: self.key.0.clone(),
            tag: source.state.tag().to_owned(),
            disks: self.names.clone(),
            seals,
            build: build_id(),
            console: console.into(),
            failed_units,
        };
        let info_path = building.join("entry.json");
        let json = serde_json::to_vec_pretty(&info).expect("entry info serialises");
        std::fs::write(&info_path, json).map_err(|e| SnapshotError::io(&info_path, e))?;
        let cache = self.cache.clone();
        let entry = cache.entry_dir(&self.key);
        std::fs::rename(&building, &entry).map_err(|e| SnapshotError::io(&entry, e))?;
        cache.evict(&self.key).await;
        let checked =
            cache
                .check(source, &self.key, &entry)
                .await
                .map_err(|problem| SnapshotError::Unusable {
                    entry: entry.clone(),
                    problem,
                })?;
        let lock = self.lock.take().expect("an unfinished build holds its lock");
        Ok(Checkout::of(
            lock,
            self.key.clone(),
            source.state.tag(),
            checked,
            self.refused.take(),
        ))
    }
}

impl Drop for EntryBuild {
    fn drop(&mut self) {
        if self.lock.is_some() {
            // Unfinished, or finished but not checked out: a half-built entry is of no use to
            // anyone. Still under the entry's lock.
            let _ = remove_dir(&self.dir);
        }
    }
}

/// At most as many units, each at most as long, as a run lists itself: `entry.json` is a file
/// anyone with the cache directory can edit.
fn bounded_units(mut units: Vec<String>) -> Vec<String> {
    const UNIT_CHARS: usize = 512;
    units.truncate(crate::console::MAX_FAILED_UNITS + 1);
    for unit in &mut units {
        if let Some((cut, _)) = unit.char_indices().nth(UNIT_CHARS) {
            unit.truncate(cut);
        }
    }
    units
}

/// Records that `entry` was just used, for [`SnapshotCache::evict`]: its `entry.json`'s
/// modification time is the entry's last use.
fn mark_used(entry: &Path) {
    if let Ok(file) = std::fs::File::options()
        .append(true)
        .open(entry.join("entry.json"))
    {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

fn read_info(entry: &Path) -> Result<EntryInfo, EntryProblem> {
    let path = entry.join("entry.json");
    let text = std::fs::read(&path).map_err(|source| EntryProblem::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| EntryProblem::Parse { path, source })
}

fn remove_dir(dir: &Path) -> Result<(), SnapshotError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SnapshotError::io(dir, e)),
        _ => Ok(()),
    }
}

/// Unique enough to tell two builds of one entry apart: process and time.
fn build_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), now.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn entry(cache: &SnapshotCache, digit: char, used_secs: u64) -> String {
        let name: String = std::iter::repeat_n(digit, 64).collect();
        let dir = cache.dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::File::create(dir.join("entry.json")).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(used_secs))
            .unwrap();
        name
    }

    /// A real entry of state `uboot` in `cache`: an overlay over a blank 1 MiB raw disk `image`,
    /// and the machine QEMU ran on it (U-Boot, 128 MiB of RAM) saved beside it through QMP.
    async fn real_entry(cache: &SnapshotCache, source: &SnapshotSource<'_>, key: &CacheKey) -> Checkout {
        use crate::targets::qemu::QemuTarget;
        use crate::targets::qmp::Qmp;
        std::fs::File::create(source.image)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let locked = cache.lock(key, Duration::ZERO).await.unwrap();
        let Opened::Missing(build) = cache.open(locked, source).await.unwrap() else {
            panic!("an empty cache has no entry");
        };
        build.from_power_on(source).await.unwrap();
        let (target, console) = QemuTarget::start_on_disks(source.qemu, build.disks())
            .await
            .unwrap();
        let mut qmp = Qmp::connect(&target.qmp_socket()).await.unwrap();
        let state = build.dir.join(saved_state_name(source.state.tag()));
        qmp.save_state(&state, Duration::from_secs(120)).await.unwrap();
        // Quit, not killed: a killed QEMU leaves clusters `qemu-img check` reports as leaked.
        let _ = qmp
            .execute("quit", serde_json::json!({}), Duration::from_secs(10))
            .await;
        let mut target = target;
        assert!(
            target.wait_exit(Duration::from_secs(10)).await,
            "QEMU did not quit"
        );
        drop(console);
        build
            .finish(source, ConsoleState::UbootPrompt, Vec::new())
            .await
            .unwrap()
    }

    /// How a process of its own (a cache with nothing checked yet) finds the entry `key`.
    async fn opened_by_a_new_process(dir: &Path, source: &SnapshotSource<'_>, key: &CacheKey) -> Opened {
        let cache = SnapshotCache::new(dir);
        let locked = cache.lock(key, Duration::ZERO).await.unwrap();
        cache.open(locked, source).await.unwrap()
    }

    fn verification(opened: Opened) -> Verification {
        match opened {
            Opened::Ready(checkout) => checkout.verified,
            Opened::Missing(build) => panic!("the entry was refused: {:?}", build.refused),
        }
    }

    fn small_machine() -> crate::targets::QemuConfig {
        crate::targets::QemuConfig {
            memory_mib: 128,
            smp: 1,
            ..Default::default()
        }
    }

    /// The source of a `uboot` entry of `image`.
    fn uboot_source<'a>(qemu: &'a crate::targets::QemuConfig, image: &'a Path) -> SnapshotSource<'a> {
        SnapshotSource {
            qemu,
            image,
            unpacked_from: None,
            shim: None,
            state: StateRecipe::Uboot,
        }
    }

    #[tokio::test]
    async fn a_verified_version_of_an_entry_is_not_hashed_again_by_later_processes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(dir.path().join("cache"));
        let (qemu, image) = (small_machine(), dir.path().join("image.raw"));
        let source = uboot_source(&qemu, &image);
        let key = CacheKey("b".repeat(64));
        let built = real_entry(&cache, &source, &key).await;
        assert!(matches!(built.verified, Verification::Now(_)));
        drop(built);
        // Disks written less than a clock tick ago are not recorded (see `verified`).
        tokio::time::sleep(verified::SETTLED).await;

        let first = opened_by_a_new_process(cache.dir(), &source, &key).await;
        assert!(matches!(verification(first), Verification::Now(_)));
        for _ in 0..2 {
            let later = opened_by_a_new_process(cache.dir(), &source, &key).await;
            assert_eq!(verification(later), Verification::Recorded);
        }
    }

    #[tokio::test]
    async fn a_rewritten_state_is_hashed_again_and_one_changed_byte_in_it_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(dir.path().join("cache"));
        let (qemu, image) = (small_machine(), dir.path().join("image.raw"));
        let source = uboot_source(&qemu, &image);
        let key = CacheKey("c".repeat(64));
        let entry = real_entry(&cache, &source, &key).await;
        let state = cache.entry_dir(&key).join(saved_state_name(entry.tag));
        drop(entry);
        tokio::time::sleep(verified::SETTLED).await;
        let first = opened_by_a_new_process(cache.dir(), &source, &key).await;
        assert!(matches!(verification(first), Verification::Now(_)));

        // The same bytes written again through the file system: a new version, hashed again.
        let bytes = std::fs::read(&state).unwrap();
        std::fs::write(&state, &bytes).unwrap();
        let rewritten = opened_by_a_new_process(cache.dir(), &source, &key).await;
        assert!(matches!(verification(rewritten), Verification::Now(_)));

        // One bit of the saved RAM flipped, the file's times put back as they were. The first
        // data after the file's middle is a RAM page QEMU wrote.
        let meta = std::fs::metadata(&state).unwrap();
        let mut changed = bytes;
        let middle = changed.len() / 2;
        let page = middle + changed[middle..].iter().position(|&b| b != 0).expect("RAM data");
        changed[page] ^= 0x01;
        std::fs::write(&state, &changed).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&state)
            .unwrap()
            .set_times(
                std::fs::FileTimes::new()
                    .set_modified(meta.modified().unwrap())
                    .set_accessed(meta.accessed().unwrap()),
            )
            .unwrap();
        let Opened::Missing(build) = opened_by_a_new_process(cache.dir(), &source, &key).await else {
            panic!("an entry with a changed byte was trusted");
        };
        assert_eq!(
            build.refused.as_deref(),
            Some(
                format!(
                    "{} does not match the digest recorded when the entry was built",
                    state.display()
                )
                .as_str()
            )
        );
    }

    #[tokio::test]
    async fn a_missing_entry_is_built_in_its_own_directory_which_goes_if_the_build_is_not_finished() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(dir.path());
        let qemu = crate::targets::QemuConfig::default();
        let source = SnapshotSource {
            qemu: &qemu,
            image: Path::new("image.raw"),
            unpacked_from: None,
            shim: None,
            state: StateRecipe::Uboot,
        };
        let key = CacheKey(std::iter::repeat_n('a', 64).collect());
        let locked = cache.lock(&key, Duration::ZERO).await.unwrap();
        let Opened::Missing(build) = cache.open(locked, &source).await.unwrap() else {
            panic!("an empty cache has no entry");
        };
        let building = dir.path().join(format!("{}.building", key.0));
        assert_eq!(build.disks(), [building.join("disk0.qcow2")]);
        assert!(building.is_dir());
        assert!(
            EntryLock::acquire(&cache.lock_path(&key.0), Duration::ZERO)
                .await
                .is_err(),
            "the build holds the entry's lock"
        );

        drop(build);

        assert!(!building.exists());
        assert!(!cache.entry_dir(&key).exists());
        EntryLock::acquire(&cache.lock_path(&key.0), Duration::ZERO)
            .await
            .expect("the lock is released with the build");
    }

    #[tokio::test]
    async fn eviction_keeps_the_most_recently_used_entries_and_those_in_use_and_removes_the_others_lock_files(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(dir.path());
        // Newest first: the kept entry counts as one of KEEP_ENTRIES, so the KEEP_ENTRIES - 1
        // newest others stay, and so does an older one in use; the rest go.
        let digits = ['a', 'b', 'c', 'd', 'e', 'f', '1', '2', '3', '4', '5'];
        assert!(digits.len() >= KEEP_ENTRIES + 2);
        let others: Vec<String> = digits
            .iter()
            .enumerate()
            .map(|(age, digit)| entry(&cache, *digit, 10_000 - 100 * age as u64))
            .collect();
        let kept = entry(&cache, '0', 0);
        let in_use = &others[KEEP_ENTRIES];
        std::fs::create_dir_all(dir.path().join("unrelated")).unwrap();
        let _held = EntryLock::acquire(&dir.path().join(format!("{in_use}.lock")), Duration::ZERO)
            .await
            .unwrap();

        // Lock files: every entry's, one whose build failed (no entry), one being built.
        let lock_of = |name: &str| dir.path().join(format!("{name}.lock"));
        for name in others.iter().chain([&kept]) {
            std::fs::File::create(lock_of(name)).unwrap();
        }
        let failed: String = std::iter::repeat_n('9', 64).collect();
        std::fs::File::create(lock_of(&failed)).unwrap();
        let building: String = std::iter::repeat_n('8', 64).collect();
        let _building = EntryLock::acquire(&lock_of(&building), Duration::ZERO)
            .await
            .unwrap();
        let build_of = |name: &str| dir.path().join(format!("{name}.building"));
        std::fs::create_dir_all(build_of(&building)).unwrap();
        // A build killed half-way: its directory, and its lock file nobody holds.
        let killed: String = std::iter::repeat_n('7', 64).collect();
        std::fs::create_dir_all(build_of(&killed)).unwrap();
        std::fs::File::create(lock_of(&killed)).unwrap();

        cache.evict(&CacheKey(kept.clone())).await;

        let left = |name: &str| dir.path().join(name).exists();
        assert!(left(&kept));
        assert!(lock_of(&kept).exists());
        for (age, name) in others.iter().enumerate() {
            let expected = age < KEEP_ENTRIES - 1 || name == in_use;
            assert_eq!(left(name), expected, "entry {age} (newest is 0)");
            assert_eq!(lock_of(name).exists(), expected, "lock file of entry {age}");
        }
        assert!(!lock_of(&failed).exists(), "a lock file without an entry goes");
        assert!(lock_of(&building).exists(), "a held lock file stays");
        assert!(build_of(&building).exists(), "a build in progress stays");
        assert!(!build_of(&killed).exists(), "a killed build's directory goes");
        assert!(!lock_of(&killed).exists(), "and its lock file");
        assert!(left("unrelated"));
    }
}
