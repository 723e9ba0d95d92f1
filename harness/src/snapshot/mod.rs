//! Login-state snapshots on QEMU: boot once to a root shell, save the machine, and start every
//! `start = "login"` scenario from the saved state instead of a cold boot.
//!
//! An entry of the cache is a directory `<cache>/<key>/` (see [`CacheKey`]) holding qcow2 disks
//! in QEMU's attachment order — an overlay over the image (which stays read-only) and, when the
//! image is adapted, a standalone copy of the shim — each carrying the internal snapshot
//! [`TAG`], and `entry.json` naming the key and the build. Entries are built in
//! `<key>.building/` and renamed into place, so a half-built entry never has the final name.
//! `<key>.lock` serialises building and reading across processes.
//!
//! An entry is trusted only after checking it: its `entry.json` names its key, `qemu-img check`
//! passes on every disk, every disk has the tag and one holds the VM state. Anything else, and
//! a restore that does not reach a shell, makes the entry be rebuilt.

mod key;
mod lock;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use key::{content_digest, CacheKey, SnapshotSource};
pub use lock::EntryLock;

use crate::console::Transcript;
use crate::runner::{self, Quiet, RunContext, RunOutput, Verdict};
use crate::target::qemu::{QemuError, QemuTarget};
use crate::target::qemu_img;
use crate::target::qmp::{Qmp, QmpError};

/// The internal snapshot's name in every disk of an entry.
pub const TAG: &str = "login";

/// `savevm` of a 1 GiB guest takes a fraction of a second (design.md §4); this is for a loaded
/// machine.
const SAVEVM_LIMIT: Duration = Duration::from_secs(120);

/// Entries kept in a cache directory, the most recently used first. An entry holds a qcow2
/// overlay with the machine's memory (about 120 MiB for a 1 GiB machine), so a cache that
/// kept every image and recipe it ever saw would grow without end.
pub const KEEP_ENTRIES: usize = 4;

/// Why a snapshot could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot cache: gave up after {}s waiting for {path}, held by another run", waited.as_secs())]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("snapshot cache: {0}")]
    Qemu(#[from] QemuError),
    #[error("saving the login snapshot: {0}")]
    Qmp(#[from] QmpError),
    /// The priming boot did not reach a shell: a verdict on the image, not a harness error.
    /// `boot` holds that boot's failing verdict, stages and last console lines.
    #[error("the boot to the login state failed (transcript {})", transcript.display())]
    Boot {
        boot: Box<RunOutput>,
        transcript: PathBuf,
    },
    #[error("snapshot cache entry {entry} was just built but does not check out: {detail}")]
    Unusable { entry: PathBuf, detail: String },
}

impl SnapshotError {
    fn io(path: &Path, source: io::Error) -> SnapshotError {
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
    /// Distinguishes this build from a later rebuild under the same key, so that a run that
    /// found the entry unusable removes only the build it used.
    build: String,
}

/// A directory of login-state snapshots, shared by every process that names it.
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    dir: PathBuf,
    /// Keys whose priming boot failed in this process, with the failure and its transcript.
    /// Shared by clones, so that the scenarios of one run that start from the same state get
    /// that boot's verdict instead of failing the same boot again, one after another.
    failed: Arc<Mutex<HashMap<CacheKey, (RunOutput, PathBuf)>>>,
}

/// A usable entry, locked for as long as this lives: restore from [`Checkout::disks`] (QEMU
/// copies them; see [`QemuTarget::restore`]), then drop it so other runs can proceed.
#[derive(Debug)]
pub struct Checkout {
    _lock: EntryLock,
    /// The entry's disks, in attachment order.
    pub disks: Vec<PathBuf>,
    /// The entry's key.
    pub key: CacheKey,
    /// Which build of the entry this is (for [`SnapshotCache::discard`]).
    pub build: String,
    /// Set when this checkout booted to build the entry.
    pub primed: Option<Primed>,
}

/// What building an entry took.
#[derive(Debug, Clone)]
pub struct Primed {
    /// The priming boot's transcript log.
    pub transcript: PathBuf,
    /// From QEMU's start to the shell prompt.
    pub to_shell: Duration,
    /// How long `savevm` took.
    pub save: Duration,
}

impl SnapshotCache {
    /// A cache in `dir`, created when first used.
    pub fn new(dir: impl Into<PathBuf>) -> SnapshotCache {
        SnapshotCache {
            dir: dir.into(),
            failed: Arc::default(),
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

    /// The entry's directory for `key`.
    pub fn entry_dir(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(&key.0)
    }

    /// A checked entry for `source`, built first if it is missing or fails its checks. Building
    /// boots QEMU from power-on within `boot_timeout`, logs in with the recipe, saves the
    /// machine and writes the boot's transcript to `transcripts`. Only one process builds an
    /// entry; others wait for it (up to `boot_timeout` plus a minute).
    pub async fn checkout(
        &self,
        source: &SnapshotSource<'_>,
        context: &RunContext,
        transcripts: &Path,
        boot_timeout: Duration,
    ) -> Result<Checkout, SnapshotError> {
        let key = CacheKey::of(source).await?;
        self.no_earlier_failure(&key)?;
        crate::private::create_dir_all(&self.dir).map_err(|e| SnapshotError::io(&self.dir, e))?;
        let lock_path = self.dir.join(format!("{}.lock", key.0));
        let lock = EntryLock::acquire(&lock_path, boot_timeout + Duration::from_secs(60)).await?;
        self.no_earlier_failure(&key)?;
        let entry = self.entry_dir(&key);
        if let Ok((info, disks)) = self.check(source, &key, &entry).await {
            mark_used(&entry);
            return Ok(Checkout {
                _lock: lock,
                disks,
                key,
                build: info.build,
                primed: None,
            });
        }
        // Missing, stale or corrupt: rebuild from scratch, never repair.
        remove_dir(&entry)?;
        let built = self.build(source, context, &key, transcripts, boot_timeout).await;
        if built.is_err() {
            // A half-built entry (tens of MB of overlay) is of no use to anyone.
            let _ = remove_dir(&self.dir.join(format!("{}.building", key.0)));
        }
        let primed = match built {
            Ok(primed) => primed,
            Err(SnapshotError::Boot { boot, transcript }) => {
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), ((*boot).clone(), transcript.clone()));
                return Err(SnapshotError::Boot { boot, transcript });
            }
            Err(other) => return Err(other),
        };
        self.evict(&key).await;
        let (info, disks) =
            self.check(source, &key, &entry)
                .await
                .map_err(|detail| SnapshotError::Unusable {
                    entry: entry.clone(),
                    detail,
                })?;
        Ok(Checkout {
            _lock: lock,
            disks,
            key,
            build: info.build,
            primed: Some(primed),
        })
    }

    /// The failure of this process's earlier priming boot for `key`, if there was one. Asked
    /// again after taking the lock, for the scenarios that waited on the failed boot.
    fn no_earlier_failure(&self, key: &CacheKey) -> Result<(), SnapshotError> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match failed.get(key) {
            Some((boot, transcript)) => Err(SnapshotError::Boot {
                boot: Box::new(boot.clone()),
                transcript: transcript.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Removes the entry for `key` if it is still build `build`: a restore from it failed, so
    /// the next checkout rebuilds it. A build made since by another run is left alone.
    pub async fn discard(&self, key: &CacheKey, build: &str, limit: Duration) -> Result<(), SnapshotError> {
        let lock_path = self.dir.join(format!("{}.lock", key.0));
        let _lock = EntryLock::acquire(&lock_path, limit).await?;
        let entry = self.entry_dir(key);
        match read_info(&entry) {
            Ok(info) if info.build != build => Ok(()),
            _ => remove_dir(&entry),
        }
    }

    /// Removes the least recently used entries beyond [`KEEP_ENTRIES`], never `keep` and never
    /// one another process holds (its lock is taken without waiting first). Best effort: an
    /// entry that cannot be removed now is left for a later run.
    async fn evict(&self, keep: &CacheKey) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, String)> = read
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let is_entry = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
                if !is_entry || name == keep.0 {
                    return None;
                }
                let used = std::fs::metadata(e.path().join("entry.json"))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                Some((used, name))
            })
            .collect();
        // Newest first; the kept entry counts as one of the KEEP_ENTRIES.
        entries.sort_by(|a, b| b.cmp(a));
        for (_, name) in entries.iter().skip(KEEP_ENTRIES.saturating_sub(1)) {
            let lock_path = self.dir.join(format!("{name}.lock"));
            if let Ok(_lock) = EntryLock::acquire(&lock_path, Duration::ZERO).await {
                let _ = remove_dir(&self.dir.join(name));
            }
        }
    }

    /// The entry's info and disks if every check passes; otherwise why not.
    async fn check(
        &self,
        source: &SnapshotSource<'_>,
        key: &CacheKey,
        entry: &Path,
    ) -> Result<(EntryInfo, Vec<PathBuf>), String> {
        let info = read_info(entry)?;
        if info.key != key.0 || info.tag != TAG {
            return Err(format!("entry.json names key {} and tag {}", info.key, info.tag));
        }
        let expected_disks = 1 + usize::from(source.shim.is_some());
        if info.disks.len() != expected_disks {
            return Err(format!("{} disks, expected {expected_disks}", info.disks.len()));
        }
        let mut disks = Vec::new();
        let mut vm_state = false;
        for name in &info.disks {
            let disk = entry.join(name);
            qemu_img::check(source.qemu, &disk)
                .await
                .map_err(|e| e.to_string())?;
            let snapshots = qemu_img::snapshots(source.qemu, &disk)
                .await
                .map_err(|e| e.to_string())?;
            let Some(ours) = snapshots.iter().find(|s| s.name == TAG) else {
                return Err(format!("{} has no snapshot {TAG:?}", disk.display()));
            };
            vm_state |= ours.vm_state_size > 0;
            disks.push(disk);
        }
        if !vm_state {
            return Err(format!("no disk holds the VM state of snapshot {TAG:?}"));
        }
        Ok((info, disks))
    }

    /// Boots to the login state in `<key>.building/`, saves it and renames the directory into
    /// place. QEMU is gone when this returns, on every path.
    async fn build(
        &self,
        source: &SnapshotSource<'_>,
        context: &RunContext,
        key: &CacheKey,
        transcripts: &Path,
        boot_timeout: Duration,
    ) -> Result<Primed, SnapshotError> {
        let building = self.dir.join(format!("{}.building", key.0));
        remove_dir(&building)?;
        crate::private::create_dir_all(&building).map_err(|e| SnapshotError::io(&building, e))?;
        let image = std::fs::canonicalize(source.image).map_err(|e| SnapshotError::io(source.image, e))?;
        let mut names = vec!["disk0.qcow2".to_owned()];
        qemu_img::create_overlay(source.qemu, &image, "raw", &building.join(&names[0])).await?;
        if let Some(shim) = source.shim {
            // A standalone copy: the shim itself lives in a temporary directory of this run.
            names.push("disk1.qcow2".to_owned());
            qemu_img::convert_to_qcow2(source.qemu, shim.disk(), &building.join(&names[1])).await?;
        }
        let disks: Vec<PathBuf> = names.iter().map(|n| building.join(n)).collect();
        // savevm writes the guest's memory into these disks.
        for disk in &disks {
            crate::private::restrict_file(disk).map_err(|e| SnapshotError::io(disk, e))?;
        }

        std::fs::create_dir_all(transcripts).map_err(|e| SnapshotError::io(transcripts, e))?;
        let stem = format!("login-snapshot-{}", key.short());
        let mut transcript = Transcript::create(transcripts, &stem, "boot to the login snapshot")
            .map_err(|e| SnapshotError::io(transcripts, e))?;
        let log = transcript.paths().log;

        let started = Instant::now();
        let (mut target, mut console) = QemuTarget::start_on_disks(source.qemu, &disks).await?;
        let reached = runner::reach_login_shell(
            &mut console,
            &mut transcript,
            context,
            source.recipe,
            boot_timeout,
            &mut Quiet,
        )
        .await;
        let to_shell = started.elapsed();
        let saved = match reached.verdict {
            Verdict::Pass => {
                let save_started = Instant::now();
                let saved = save_and_quit(&mut target).await;
                let _ = transcript.note(
                    started.elapsed(),
                    &match &saved {
                        Ok(()) => format!("savevm {TAG} took {:.2}s", save_started.elapsed().as_secs_f64()),
                        Err(e) => format!("savevm {TAG} failed: {e}"),
                    },
                );
                saved.map(|()| save_started.elapsed())
            }
            Verdict::Fail(_) => Err(SnapshotError::Boot {
                boot: Box::new(reached),
                transcript: log.clone(),
            }),
        };
        drop(console);
        target.shutdown().await;
        let _ = transcript.finish();
        let save = saved?;

        let info = EntryInfo {
            key: key.0.clone(),
            tag: TAG.to_owned(),
            disks: names,
            build: build_id(),
        };
        let info_path = building.join("entry.json");
        let json = serde_json::to_vec_pretty(&info).expect("entry info serialises");
        std::fs::write(&info_path, json).map_err(|e| SnapshotError::io(&info_path, e))?;
        let entry = self.entry_dir(key);
        std::fs::rename(&building, &entry).map_err(|e| SnapshotError::io(&entry, e))?;
        Ok(Primed {
            transcript: log,
            to_shell,
            save,
        })
    }
}

/// Saves the machine as [`TAG`] and asks QEMU to quit, so that its disks are closed cleanly.
async fn save_and_quit(target: &mut QemuTarget) -> Result<(), SnapshotError> {
    let mut qmp = Qmp::connect(&target.qmp_socket()).await?;
    qmp.human_command(&format!("savevm {TAG}"), SAVEVM_LIMIT).await?;
    // QEMU may close the socket before it replies to quit; either way it is leaving.
    let _ = qmp
        .execute("quit", serde_json::json!({}), Duration::from_secs(10))
        .await;
    target.wait_exit(Duration::from_secs(10)).await;
    Ok(())
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

fn read_info(entry: &Path) -> Result<EntryInfo, String> {
    let path = entry.join("entry.json");
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
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

    #[tokio::test]
    async fn eviction_keeps_the_most_recently_used_entries_and_those_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(dir.path());
        let newest = entry(&cache, 'a', 6_000);
        let second = entry(&cache, 'b', 5_000);
        let third = entry(&cache, 'c', 4_000);
        let old = entry(&cache, 'd', 3_000);
        let in_use = entry(&cache, 'e', 2_000);
        let oldest = entry(&cache, 'f', 1_000);
        let kept = entry(&cache, '0', 0);
        std::fs::create_dir_all(dir.path().join("unrelated")).unwrap();
        let _held = EntryLock::acquire(&dir.path().join(format!("{in_use}.lock")), Duration::ZERO)
            .await
            .unwrap();

        cache.evict(&CacheKey(kept.clone())).await;

        let left = |name: &str| dir.path().join(name).exists();
        for name in [&kept, &newest, &second, &third, &in_use] {
            assert!(left(name), "{name} was removed");
        }
        for name in [&old, &oldest] {
            assert!(!left(name), "{name} was kept");
        }
        assert!(left("unrelated"));
    }
}
