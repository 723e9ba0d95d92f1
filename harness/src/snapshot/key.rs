//! The cache key of a login-state snapshot: a SHA-256 over everything that decides what state
//! the priming boot reaches and whether QEMU can load it.
//!
//! Files are keyed by content. Disk images are sparse, so only their data extents are read
//! (`SEEK_DATA`/`SEEK_HOLE`): a 600 MiB fixture with 35 MiB of data hashes in a fraction of a
//! second, and a multi-GiB NixOS image is streamed, never held in memory.

use super::digests::DigestStore;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::SnapshotError;
use crate::adapt::Shim;
use crate::file_memo::FileMemo;
use crate::hex::lower_hex;
use crate::scenario::{Action, LoginRecipe, Password, SavedRecipe, SavedStart, Start, Step};
use crate::targets::qemu::{QemuConfig, QemuTarget};

/// Bumped when the layout of an entry or the way it is reached changes.
const FORMAT: &str = "r2s-start-snapshot/3";

/// What a snapshot is made from.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotSource<'a> {
    /// How QEMU is started (binary, firmware, machine, extra arguments).
    pub qemu: &'a QemuConfig,
    /// The raw disk image; read, never written.
    pub image: &'a Path,
    /// The compressed file the image was unpacked from, if it was: hashed instead of the
    /// image, whose bytes it names in fewer of its own.
    pub unpacked_from: Option<&'a Path>,
    /// The adaptation shim U-Boot boots from, if the image needs one (see [`crate::adapt`]).
    pub shim: Option<&'a Shim>,
    /// The state the snapshot holds.
    pub state: StateRecipe<'a>,
}

/// The state a snapshot holds and how it is reached.
#[derive(Debug, Clone, Copy)]
pub enum StateRecipe<'a> {
    /// A shell, reached by booting the default entry and logging in (`start = "login"`).
    Login(&'a LoginRecipe),
    /// U-Boot's prompt, reached by stopping autoboot (`start = "uboot"`).
    Uboot,
    /// A saved state: its saving scenario's start, then its steps (`start = "<name>"`).
    Saved(&'a SavedRecipe),
}

/// Where building a state begins.
pub enum StateBase<'a> {
    /// A cold boot.
    PowerOn,
    /// The snapshot of another state.
    Entry(StateRecipe<'a>),
}

impl<'a> StateRecipe<'a> {
    /// The recipe of a scenario's start, if it is one a snapshot can hold (all but power-on,
    /// and a saved state only once resolved).
    pub fn of(start: &'a Start) -> Option<StateRecipe<'a>> {
        match start {
            Start::PowerOn => None,
            Start::Login(recipe) => Some(StateRecipe::Login(recipe)),
            Start::Uboot => Some(StateRecipe::Uboot),
            Start::Saved(SavedStart { recipe, .. }) => recipe.as_deref().map(StateRecipe::Saved),
        }
    }

    /// The name of the state's file in an entry (`<tag>.state`).
    pub fn tag(&self) -> &'static str {
        match self {
            StateRecipe::Login(_) => "login",
            StateRecipe::Uboot => "uboot",
            StateRecipe::Saved(_) => "saved",
        }
    }

    /// What building this state starts from.
    pub fn base(&self) -> StateBase<'a> {
        match self {
            StateRecipe::Login(_) | StateRecipe::Uboot => StateBase::PowerOn,
            StateRecipe::Saved(recipe) => match StateRecipe::of(&recipe.base) {
                Some(base) => StateBase::Entry(base),
                None => StateBase::PowerOn,
            },
        }
    }

    /// How people call it: `login`, `uboot`, or the saved state's name.
    pub fn name(&self) -> &str {
        match self {
            StateRecipe::Login(_) => "login",
            StateRecipe::Uboot => "uboot",
            StateRecipe::Saved(recipe) => &recipe.name,
        }
    }
}

/// A cache key: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

impl CacheKey {
    /// Computes the key of `source`. Reads the image and the firmware once per file version,
    /// keeping their digests in `store` for later processes, and asks QEMU its version (once
    /// per process).
    pub async fn of(source: &SnapshotSource<'_>, store: &DigestStore) -> Result<CacheKey, SnapshotError> {
        let image = std::fs::canonicalize(source.image).map_err(|e| SnapshotError::io(source.image, e))?;
        let version = qemu_version(&source.qemu.qemu).await?;
        crate::debug_timing::mark("snapshot key: QEMU's version");
        let content = source.unpacked_from.map_or_else(|| image.clone(), Path::to_owned);
        let files = [content, source.qemu.firmware.clone()];
        let blocking_store = store.clone();
        let digests = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|f| blocking_store.digest(f).map_err(|e| SnapshotError::io(f, e)))
                .collect::<Result<Vec<_>, SnapshotError>>()
        })
        .await
        .map_err(|e| SnapshotError::io(source.image, io::Error::other(e)))??;
        crate::debug_timing::mark("snapshot key: image and firmware digests");

        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            // Length-prefixed, so that no two different field lists hash alike.
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(FORMAT.as_bytes());
        field(version.as_bytes());
        // The path too: the entry's overlay refers to the image by path, so the same bytes
        // elsewhere would leave it pointing at a file that may change or vanish.
        field(image.as_os_str().as_encoded_bytes());
        for digest in &digests {
            field(digest);
        }
        // The shim by what it shows, not its disk's bytes: mkfs makes those differ on every
        // build, and the rest of its files are the image's own (see `Shim::shows`).
        field(source.shim.map_or("", Shim::shows).as_bytes());
        let disks: Vec<PathBuf> = (0..1 + usize::from(source.shim.is_some()))
            .map(|i| PathBuf::from(format!("disk{i}.qcow2")))
            .collect();
        for arg in QemuTarget::args(source.qemu, &disks, Path::new("qmp.sock")) {
            field(arg.as_encoded_bytes());
        }
        field(source.state.tag().as_bytes());
        match source.state {
            StateRecipe::Login(recipe) => {
                field(recipe.user.as_bytes());
                field(password_source(&recipe.password).as_bytes());
                field(format!("{:?}", recipe.prompt.as_ref().map(|p| p.pattern().to_string())).as_bytes());
            }
            StateRecipe::Uboot => {}
            StateRecipe::Saved(recipe) => {
                // Everything the state depends on: the state it starts from (its own key covers
                // the image and QEMU too) and each step before `save_state`, with what a step
                // reads from the host.
                let base = match source.state.base() {
                    StateBase::PowerOn => "power-on".to_owned(),
                    StateBase::Entry(base) => {
                        let base_source = SnapshotSource {
                            state: base,
                            ..*source
                        };
                        Box::pin(CacheKey::of(&base_source, store)).await?.0
                    }
                };
                field(base.as_bytes());
                field(recipe.name.as_bytes());
                field(&(recipe.steps.len() as u64).to_le_bytes());
                for step in &recipe.steps {
                    field(step_fingerprint(step)?.as_bytes());
                }
                // A fatal pattern the steps were watched for decides whether the state was
                // reached at all. The forwards do not: they are the host's side, added when a
                // machine starts, and the NICs they need are in the QEMU arguments above.
                for pattern in &recipe.fatal {
                    field(pattern.to_string().as_bytes());
                }
            }
        }
        let digest = hash.finalize();
        Ok(CacheKey(lower_hex(&digest)))
    }

    /// The first 12 digits, for file names people read.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

/// A password's source, never its value: a snapshot's state does not depend on where the
/// password came from, but a recipe that names another variable is another recipe. (Hashing
/// the value into a cache name would let anyone who sees the name guess a weak password.)
fn password_source(password: &Password) -> String {
    match password {
        Password::None => "none".to_owned(),
        Password::Env(name) => format!("env:{name}"),
        Password::Literal(_) => "literal".to_owned(),
    }
}

/// What a step does, for a key: its action, timeout and stage (not where it is in its file),
/// and the content of a file it copies in. `Debug` prints a literal password as `[redacted]`.
fn step_fingerprint(step: &Step) -> Result<String, SnapshotError> {
    let mut text = format!("{:?}|{:?}|{:?}", step.action, step.timeout, step.stage);
    if let Action::CopyTo(copy) = &step.action {
        let digest = content_digest(&copy.from).map_err(|e| SnapshotError::io(&copy.from, e))?;
        text.push_str(&format!("|{}", lower_hex(&digest)));
    }
    Ok(text)
}

/// `qemu --version`, asked once per binary per process (a run may ask early, beside its other
/// setup, so that computing the first key does not wait for it).
pub async fn qemu_version(qemu: &Path) -> Result<String, SnapshotError> {
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.lock().unwrap_or_else(|p| p.into_inner()).get(qemu) {
        return Ok(v.clone());
    }
    let mut command = tokio::process::Command::new(qemu);
    command.arg("--version").kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .map_err(|_| {
            SnapshotError::io(
                qemu,
                io::Error::new(io::ErrorKind::TimedOut, "--version timed out"),
            )
        })?
        .map_err(|e| SnapshotError::io(qemu, e))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(qemu.to_owned(), version.clone());
    Ok(version)
}

/// BLAKE3 of a file's content, holes read as zeros but not read at all: each data extent is
/// hashed with its offset and length. The same bytes with another hole layout give another
/// digest; that only costs a rebuild, never a wrong match. BLAKE3 rather than SHA-256: the first
/// run on a multi-GiB image waits for this, and BLAKE3 hashes it in a third of the time
/// (BENCHMARKS.md, "Hashing an image").
///
/// Memoised per file version within the process ([`FileMemo`]), because `harness run` asks for the same image
/// once per scenario. The version is device, inode, size, mtime and ctime: ctime cannot be set
/// back by a user, so a file rewritten in place shows up as a new version.
pub fn content_digest(path: &Path) -> io::Result<[u8; 32]> {
    static SEEN: FileMemo<[u8; 32]> = FileMemo::new();
    SEEN.get_or_try(path, "", || {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        sparse_digest(&file, len)
    })
}

/// [`content_digest`] without the memo.
pub fn sparse_digest(file: &File, len: u64) -> io::Result<[u8; 32]> {
    let mut hash = blake3::Hasher::new();
    feed_data_extents(file, len, &mut |bytes| {
        hash.update(bytes);
    })?;
    Ok(*hash.finalize().as_bytes())
}

/// Feeds what a content digest covers to `update`: the length, then each data extent's offset,
/// length and bytes, read in 1 MiB pieces. Public for the benchmark that compares hashes over
/// the same reads.
pub fn feed_data_extents(file: &File, len: u64, update: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    update(&len.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let (start, end) = match data_extent(file, pos)? {
            Some(extent) => extent,
            None => break,
        };
        update(&start.to_le_bytes());
        update(&(end - start).to_le_bytes());
        let mut at = start;
        while at < end {
            let want = buf.len().min((end - at) as usize);
            let n = file.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            update(&buf[..n]);
            at += n as u64;
        }
        pos = end;
    }
    Ok(())
}

/// The next data extent at or after `pos`: `[start, end)`. Where the filesystem cannot say,
/// the rest of the file is one extent.
pub(super) fn data_extent(file: &File, pos: u64) -> io::Result<Option<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let len = file.metadata()?.len();
    // SAFETY: lseek on a descriptor `file` owns; no memory is passed.
    let start = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
    if start < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            // ENXIO: no data after pos.
            Some(libc::ENXIO) => Ok(None),
            Some(libc::EINVAL) => Ok(Some((pos, len))),
            _ => Err(error),
        };
    }
    // SAFETY: as above.
    let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
    if end < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some((start as u64, (end as u64).min(len))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn sparse_and_dense_files_with_other_content_differ_and_equal_ones_agree() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, at: u64, data: &[u8]| {
            let path = dir.path().join(name);
            let mut f = File::create(&path).unwrap();
            f.set_len(8 << 20).unwrap();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(data).unwrap();
            path
        };
        let a = write("a", 4 << 20, b"hello");
        let b = write("b", 4 << 20, b"hello");
        let c = write("c", 4 << 20, b"hellO");
        let da = sparse_digest(&File::open(&a).unwrap(), 8 << 20).unwrap();
        let db = sparse_digest(&File::open(&b).unwrap(), 8 << 20).unwrap();
        let dc = sparse_digest(&File::open(&c).unwrap(), 8 << 20).unwrap();
        assert_eq!(da, db);
        assert_ne!(da, dc);
    }

    /// The key of booting `image` (unpacked from `packed`, if given) to U-Boot's prompt, with
    /// an empty file as the firmware.
    fn uboot_key(dir: &Path, image: &Path, packed: Option<&Path>) -> String {
        let firmware = dir.join("firmware.bin");
        std::fs::write(&firmware, b"").unwrap();
        let qemu = QemuConfig {
            firmware,
            ..QemuConfig::default()
        };
        let source = SnapshotSource {
            qemu: &qemu,
            image,
            unpacked_from: packed,
            shim: None,
            state: StateRecipe::Uboot,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = DigestStore::new(dir.join("digests"));
        runtime.block_on(CacheKey::of(&source, &store)).unwrap().0
    }

    #[test]
    fn an_unpacked_image_is_keyed_by_the_compressed_file_it_came_from_not_its_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        let packed = dir.path().join("disk.img.zst");
        std::fs::write(&image, b"disk one").unwrap();
        std::fs::write(&packed, b"packed one").unwrap();
        let first = uboot_key(dir.path(), &image, Some(&packed));
        // The disk's bytes are not what the key is made of...
        std::fs::write(&image, b"disk two").unwrap();
        assert_eq!(uboot_key(dir.path(), &image, Some(&packed)), first);
        // ...the compressed file's are.
        std::fs::write(&packed, b"packed two").unwrap();
        assert_ne!(uboot_key(dir.path(), &image, Some(&packed)), first);
        // A raw image is keyed by its own bytes.
        let raw = uboot_key(dir.path(), &image, None);
        std::fs::write(&image, b"disk three").unwrap();
        assert_ne!(uboot_key(dir.path(), &image, None), raw);
    }
}
