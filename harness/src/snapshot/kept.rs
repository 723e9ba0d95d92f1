//! Machines kept where a scenario failed (`harness run --keep-failed`), to open again with
//! `harness console --from failed-<scenario>` after the run: at the desk, or from a CI job's
//! cache. A kept state is a directory `<snapshot cache>/kept/<name>/` holding the failed
//! machine's qcow2 disks in attachment order, its saved machine state (`kept-failed.state`,
//! [`KEPT_TAG`]), and `state.json` saying which scenario failed where, on which image, and
//! when. Only the newest few are kept ([`KeptStates::evict`]).
//!
//! The disks depend on the image they were booted from (the first is an overlay over it): a
//! state is opened only while that image is unchanged (path, size, modification time).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::targets::qemu::{saved_disk_name as disk_name, saved_state_name};

/// The name a kept machine's state is saved under.
pub const KEPT_TAG: &str = "kept-failed";

/// The prefix of a kept state's name: `failed-<scenario>`.
pub const KEPT_PREFIX: &str = "failed-";

/// How many kept states a run leaves by default, the newest.
pub const DEFAULT_KEPT: usize = 5;

/// The most a `state.json` may hold.
const META_LIMIT: u64 = 64 * 1024;

/// The most disks a kept state has (the image's overlay and the shim's).
const MAX_DISKS: usize = 4;

/// What `state.json` says of a kept state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptMeta {
    /// Its name, `failed-<scenario>`.
    pub name: String,
    /// The scenario that failed.
    pub scenario: String,
    /// Where it failed: the failure's first line.
    pub failure: String,
    /// The image the machine booted, and its size and modification time then.
    pub image: ImageIdentity,
    /// When it was kept, in seconds since the Unix epoch.
    pub kept_at: u64,
    /// How many disks, `disk0.qcow2` …, in attachment order.
    pub disks: usize,
    /// The scenario's network, when the machine ran with the board's NICs: the guest ports
    /// forwarded (`tcp:22`, the `[network]` table's `forward`). A saved machine restores only
    /// with the devices it was saved with, so the console rebuilds them. Absent: no NICs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Vec<String>>,
}

/// An image file as it was when a state was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageIdentity {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u128,
}

impl ImageIdentity {
    /// `path` as it is now.
    pub fn of(path: &Path) -> io::Result<ImageIdentity> {
        let path = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&path)?;
        let modified_ns = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        Ok(ImageIdentity {
            path,
            size: meta.len(),
            modified_ns,
        })
    }
}

/// What a run does with a failed scenario's machine (`--keep-failed`): keeps it among
/// `states`, the newest `keep` of them.
#[derive(Debug, Clone)]
pub struct KeepFailed {
    pub states: KeptStates,
    pub keep: usize,
}

/// A kept state, read back.
#[derive(Debug, Clone)]
pub struct Kept {
    pub meta: KeptMeta,
    /// Its disks, in attachment order.
    pub disks: Vec<PathBuf>,
}

/// Why a kept state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    #[error("no kept state {name:?} in {dir} (kept states: {known}); `harness run --keep-failed` keeps one per failed scenario")]
    Missing {
        name: String,
        dir: PathBuf,
        known: String,
    },
    #[error("kept state {dir}: {detail}")]
    Damaged { dir: PathBuf, detail: String },
    #[error("kept state {name:?} was kept from {} as it was then; that file changed or is gone since ({detail})", kept.display())]
    ImageChanged {
        name: String,
        kept: PathBuf,
        detail: String,
    },
    #[error("kept states {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
}

/// The kept states of a snapshot cache.
#[derive(Debug, Clone)]
pub struct KeptStates {
    dir: PathBuf,
}

impl KeptStates {
    /// The kept states under the snapshot cache directory `cache`.
    pub fn in_cache(cache: &Path) -> KeptStates {
        KeptStates {
            dir: cache.join("kept"),
        }
    }

    /// Where they are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name a failed scenario's state is kept under: `failed-<scenario>`, with anything
    /// but letters, digits, `-`, `_` and `.` replaced by `_` (it is a directory name).
    pub fn name_for(scenario: &str) -> String {
        let safe: String = scenario
            .chars()
            .take(100)
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{KEPT_PREFIX}{safe}")
    }

    /// A directory to save a machine's disks into before [`KeptStates::commit`]; removed when
    /// dropped uncommitted.
    pub fn staging(&self) -> Result<tempfile::TempDir, KeptError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| self.io(source))?;
        tempfile::Builder::new()
            .prefix(".keeping-")
            .tempdir_in(&self.dir)
            .map_err(|source| self.io(source))
    }

    /// Puts the disks saved in `staging` in place as the state `meta` describes, replacing a
    /// state of the same name.
    pub fn commit(&self, staging: tempfile::TempDir, meta: &KeptMeta) -> Result<PathBuf, KeptError> {
        let text = serde_json::to_string_pretty(meta).expect("the metadata serialises");
        std::fs::write(staging.path().join("state.json"), text).map_err(|source| self.io(source))?;
        let target = self.dir.join(&meta.name);
        let staged = staging.keep();
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|source| self.io(source))?;
        }
        std::fs::rename(&staged, &target).map_err(|source| {
            let _ = std::fs::remove_dir_all(&staged);
            self.io(source)
        })?;
        Ok(target)
    }

    /// Removes all but the `keep` newest states; returns the names removed.
    pub fn evict(&self, keep: usize) -> Result<Vec<String>, KeptError> {
        let mut states: Vec<KeptMeta> = self.list().into_iter().filter_map(Result::ok).collect();
        states.sort_by(|a, b| b.kept_at.cmp(&a.kept_at).then_with(|| a.name.cmp(&b.name)));
        let mut removed = Vec::new();
        for old in states.into_iter().skip(keep) {
            std::fs::remove_dir_all(self.dir.join(&old.name)).map_err(|source| self.io(source))?;
            removed.push(old.name);
        }
        Ok(removed)
    }

    /// Every kept state's metadata (or why it cannot be read), by name.
    pub fn list(&self) -> Vec<Result<KeptMeta, KeptError>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(KEPT_PREFIX))
            .collect();
        names.sort();
        names
            .iter()
            .map(|name| self.read(name).map(|kept| kept.meta))
            .collect()
    }

    /// The kept state `name`, checked: its metadata reads, names it, and its disks are there.
    pub fn read(&self, name: &str) -> Result<Kept, KeptError> {
        let dir = self.dir.join(name);
        if name.contains('/') || !dir.is_dir() {
            let known: Vec<String> = self
                .list()
                .into_iter()
                .filter_map(Result::ok)
                .map(|meta| meta.name)
                .collect();
            return Err(KeptError::Missing {
                name: name.to_owned(),
                dir: self.dir.clone(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
        let damaged = |detail: String| KeptError::Damaged {
            dir: dir.clone(),
            detail,
        };
        let meta_path = dir.join("state.json");
        let size = std::fs::metadata(&meta_path)
            .map_err(|e| damaged(format!("state.json: {e}")))?
            .len();
        if size > META_LIMIT {
            return Err(damaged(format!(
                "state.json is {size} bytes, more than {META_LIMIT}"
            )));
        }
        let text = std::fs::read_to_string(&meta_path).map_err(|e| damaged(format!("state.json: {e}")))?;
        let meta: KeptMeta = serde_json::from_str(&text).map_err(|e| damaged(format!("state.json: {e}")))?;
        if meta.name != name {
            return Err(damaged(format!("state.json names {:?}", meta.name)));
        }
        if meta.disks == 0 || meta.disks > MAX_DISKS {
            return Err(damaged(format!(
                "{} disks; a kept machine has 1 to {MAX_DISKS}",
                meta.disks
            )));
        }
        let disks: Vec<PathBuf> = (0..meta.disks).map(|i| dir.join(disk_name(i))).collect();
        let state = dir.join(saved_state_name(KEPT_TAG));
        if let Some(missing) = disks.iter().chain([&state]).find(|file| !file.is_file()) {
            return Err(damaged(format!("{} is missing", missing.display())));
        }
        Ok(Kept { meta, disks })
    }

    /// The kept state `name`, when the image it was kept from is unchanged.
    pub fn open(&self, name: &str) -> Result<Kept, KeptError> {
        let kept = self.read(name)?;
        let kept_from = &kept.meta.image;
        let changed = |detail: String| KeptError::ImageChanged {
            name: name.to_owned(),
            kept: kept_from.path.clone(),
            detail,
        };
        let now = ImageIdentity::of(&kept_from.path).map_err(|e| changed(e.to_string()))?;
        if now != *kept_from {
            return Err(changed(format!(
                "{} bytes modified at {} ns then, {} bytes modified at {} ns now",
                kept_from.size, kept_from.modified_ns, now.size, now.modified_ns
            )));
        }
        Ok(kept)
    }

    fn io(&self, source: io::Error) -> KeptError {
        KeptError::Io {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(states: &KeptStates, image: &Path, scenario: &str, kept_at: u64) -> PathBuf {
        let staging = states.staging().unwrap();
        std::fs::write(staging.path().join(disk_name(0)), b"qcow2").unwrap();
        std::fs::write(staging.path().join(saved_state_name(KEPT_TAG)), b"ram").unwrap();
        let meta = KeptMeta {
            name: KeptStates::name_for(scenario),
            scenario: scenario.to_owned(),
            failure: "step 1 failed".to_owned(),
            image: ImageIdentity::of(image).unwrap(),
            kept_at,
            disks: 1,
            network: None,
        };
        states.commit(staging, &meta).unwrap()
    }

    #[test]
    fn a_kept_state_reads_back_by_name_while_its_image_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.img");
        std::fs::write(&image, b"image").unwrap();
        let states = KeptStates::in_cache(&dir.path().join("cache"));
        keep(&states, &image, "shell checks", 10);
        let kept = states.open("failed-shell_checks").unwrap();
        assert_eq!(kept.meta.scenario, "shell checks");
        assert_eq!(kept.disks, [states.dir().join("failed-shell_checks/disk0.qcow2")]);
        std::fs::write(&image, b"image, rebuilt").unwrap();
        assert!(matches!(
            states.open("failed-shell_checks"),
            Err(KeptError::ImageChanged { .. })
        ));
    }

    #[test]
    fn only_the_newest_are_kept_and_a_missing_name_lists_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.img");
        std::fs::write(&image, b"image").unwrap();
        let states = KeptStates::in_cache(dir.path());
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            keep(&states, &image, name, 100 + i as u64);
        }
        assert_eq!(states.evict(2).unwrap(), ["failed-a"]);
        let names: Vec<String> = states.list().into_iter().map(|m| m.unwrap().name).collect();
        assert_eq!(names, ["failed-b", "failed-c"]);
        let missing = states.open("failed-a").unwrap_err().to_string();
        assert!(missing.contains("(kept states: failed-b, failed-c)"), "{missing}");
    }

    #[test]
    fn damaged_metadata_or_a_missing_disk_or_state_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.img");
        std::fs::write(&image, b"image").unwrap();
        let states = KeptStates::in_cache(dir.path());
        let kept = keep(&states, &image, "x", 1);
        std::fs::remove_file(kept.join("kept-failed.state")).unwrap();
        assert!(matches!(states.open("failed-x"), Err(KeptError::Damaged { .. })));
        let kept = keep(&states, &image, "x", 1);
        std::fs::remove_file(kept.join("disk0.qcow2")).unwrap();
        assert!(matches!(states.open("failed-x"), Err(KeptError::Damaged { .. })));
        std::fs::write(kept.join("state.json"), "{\"name\": 1}").unwrap();
        assert!(matches!(states.open("failed-x"), Err(KeptError::Damaged { .. })));
        assert!(matches!(states.open("../x"), Err(KeptError::Missing { .. })));
    }

    #[test]
    fn a_state_of_the_same_name_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.img");
        std::fs::write(&image, b"image").unwrap();
        let states = KeptStates::in_cache(dir.path());
        keep(&states, &image, "x", 1);
        keep(&states, &image, "x", 2);
        assert_eq!(states.open("failed-x").unwrap().meta.kept_at, 2);
        assert_eq!(states.list().len(), 1);
    }
}
