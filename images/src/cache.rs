//! The fixture cache: one lock per cache directory, and a key per image that changes whenever
//! anything the image is made from changes.

use std::fs::{File, TryLockError};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::recipe::RecipeFile;
use crate::BuildError;

/// Bumped when images built by the same sources must nevertheless be rebuilt.
const FORMAT: u32 = 1;

/// The builder's own sources: a change to how images are put together invalidates them too.
const SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("lib.rs")),
    ("assemble.rs", include_str!("assemble.rs")),
    ("boot.rs", include_str!("boot.rs")),
    ("cache.rs", include_str!("cache.rs")),
    ("card.rs", include_str!("card.rs")),
    ("cpio.rs", include_str!("cpio.rs")),
    ("debian.rs", include_str!("debian.rs")),
    ("debootstrap.rs", include_str!("debootstrap.rs")),
    ("disk.rs", include_str!("disk.rs")),
    ("dracut.rs", include_str!("dracut.rs")),
    ("error.rs", include_str!("error.rs")),
    ("ext4.rs", include_str!("ext4.rs")),
    ("f2fs.rs", include_str!("f2fs.rs")),
    ("fixture.rs", include_str!("fixture.rs")),
    ("gpt.rs", include_str!("gpt.rs")),
    ("hex.rs", include_str!("hex.rs")),
    ("initramfs.rs", include_str!("initramfs.rs")),
    ("kernel.rs", include_str!("kernel.rs")),
    ("mbr.rs", include_str!("mbr.rs")),
    ("modules.rs", include_str!("modules.rs")),
    ("recipe.rs", include_str!("recipe.rs")),
    ("rootfs.rs", include_str!("rootfs.rs")),
    ("router.rs", include_str!("router.rs")),
    ("seccomp.rs", include_str!("seccomp.rs")),
    ("shared.rs", include_str!("shared.rs")),
    ("staging.rs", include_str!("staging.rs")),
    ("store.rs", include_str!("store.rs")),
    ("systemd.rs", include_str!("systemd.rs")),
    ("tool.rs", include_str!("tool.rs")),
    ("vfat.rs", include_str!("vfat.rs")),
];

/// What an image is made from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The fixture name.
    pub fixture: &'a str,
    /// Recipe files.
    pub recipes: &'a [RecipeFile],
    /// The builder's sources, `(name, text)`.
    pub sources: &'a [(&'a str, &'a str)],
    /// The .deb file names the parts came from (name and version).
    pub debs: &'a [&'a str],
}

impl KeyInputs<'_> {
    /// The inputs of this builder for `fixture` built from `debs`.
    pub fn current<'a>(fixture: &'a str, debs: &'a [&'a str]) -> KeyInputs<'a> {
        KeyInputs {
            fixture,
            recipes: crate::recipe::ALL,
            sources: SOURCES,
            debs,
        }
    }

    /// Hex SHA-256 over every input, each length-prefixed so no two input sets collide by
    /// concatenation.
    pub fn key(&self) -> String {
        let mut key = KeyHash::new();
        key.field(env!("CARGO_PKG_VERSION").as_bytes())
            .field(&FORMAT.to_le_bytes())
            .field(self.fixture.as_bytes())
            .recipes(self.recipes);
        for (name, text) in self.sources {
            key.field(name.as_bytes()).field(text.as_bytes());
        }
        for deb in self.debs {
            key.field(deb.as_bytes());
        }
        key.hex()
    }
}

/// A SHA-256 over fields, each length-prefixed so that no two lists of fields collide by
/// concatenation: the keys of images, trees and initrds.
pub(crate) struct KeyHash(Sha256);

impl KeyHash {
    pub(crate) fn new() -> KeyHash {
        KeyHash(Sha256::new())
    }

    /// Adds one field.
    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut KeyHash {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds each recipe file's path and text.
    pub(crate) fn recipes(&mut self, recipes: &[RecipeFile]) -> &mut KeyHash {
        for recipe in recipes {
            self.field(recipe.path.as_bytes()).field(recipe.text.as_bytes());
        }
        self
    }

    /// The hash in lower-case hex.
    pub(crate) fn hex(self) -> String {
        crate::hex::lower_hex(&self.0.finalize())
    }
}

/// An exclusive `flock` on `<cache>/lock`, released on drop (or when the process dies, so a
/// killed build never leaves the cache locked).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// How long a build waits for another to release the cache: a build of every fixture from
/// nothing takes well under a minute, and a tool inside it is killed after 10 minutes.
pub const LOCK_LIMIT: std::time::Duration = std::time::Duration::from_secs(900);

impl Lock {
    /// Waits until this process holds the cache, at most [`LOCK_LIMIT`]. Polled with
    /// [`File::try_lock`]: a blocking lock could not be given a limit.
    pub fn acquire(cache_dir: &Path) -> Result<Lock, BuildError> {
        Self::acquire_within(cache_dir, LOCK_LIMIT)
    }

    /// [`Lock::acquire`] waiting at most `limit`, for caches whose builds take longer.
    pub fn acquire_within(cache_dir: &Path, limit: std::time::Duration) -> Result<Lock, BuildError> {
        let path = cache_dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| BuildError::Lock {
                path: path.clone(),
                source,
            })?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) if source.kind() == ErrorKind::Interrupted => {}
                Err(TryLockError::Error(source)) => return Err(BuildError::Lock { path, source }),
            }
            if started.elapsed() >= limit {
                return Err(BuildError::LockTimeout { path, waited: limit });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// The image and key-file paths of a fixture in the cache.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The finished image, `<cache>/<name>.img`.
    pub image: PathBuf,
    key_file: PathBuf,
}

impl Entry {
    /// The entry for fixture `name`.
    pub fn new(cache_dir: &Path, name: &str) -> Entry {
        Entry {
            image: cache_dir.join(format!("{name}.img")),
            key_file: cache_dir.join(format!("{name}.img.key")),
        }
    }

    /// A scratch directory for building fixture `name` into this entry, beside it so that
    /// [`Entry::commit`]'s rename stays on one filesystem; removed when dropped.
    pub fn work_dir(&self, name: &str) -> Result<tempfile::TempDir, BuildError> {
        let dir = self.image.parent().expect("cache entries live in a directory");
        tempfile::Builder::new()
            .prefix(&format!(".build-{name}-"))
            .tempdir_in(dir)
            .map_err(BuildError::io("creating a temporary directory in", dir))
    }

    /// Whether the cached image was built from inputs with this key.
    pub fn is_fresh(&self, key: &str) -> bool {
        self.image.is_file() && std::fs::read_to_string(&self.key_file).is_ok_and(|k| k.trim() == key)
    }

    /// Moves a finished image into place and records its key. The old key goes first, so an
    /// interruption between the steps leaves an image that is rebuilt rather than trusted.
    pub fn commit(&self, built: &Path, key: &str) -> Result<(), BuildError> {
        match std::fs::remove_file(&self.key_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BuildError::io("removing", &self.key_file)(e));
            }
            _ => {}
        }
        std::fs::rename(built, &self.image).map_err(BuildError::io("renaming into", &self.image))?;
        let dir = self.image.parent().expect("cache entries live in a directory");
        write_atomically(dir, &self.key_file, format!("{key}\n").as_bytes())
    }
}

/// Writes `path` (mode 0644, so a shared cache stays readable) through a temporary file in
/// `dir` and a rename: readers see the old contents or the new, never a part.
pub fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(BuildError::io("creating a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(BuildError::io("writing", tmp.path().to_owned()))?;
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(BuildError::io("setting mode of", tmp.path().to_owned()))?;
    tmp.persist(path)
        .map_err(|e| BuildError::io("renaming into", path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPES: &[RecipeFile] = &[RecipeFile {
        path: "a",
        text: "one",
    }];
    const SOURCES: &[(&str, &str)] = &[("lib.rs", "fn main() {}")];

    fn inputs<'a>(fixture: &'a str, recipes: &'a [RecipeFile], debs: &'a [&'a str]) -> KeyInputs<'a> {
        KeyInputs {
            fixture,
            recipes,
            sources: SOURCES,
            debs,
        }
    }

    #[test]
    fn key_is_stable_for_the_same_inputs() {
        let debs = ["busybox-static_1.35_arm64.deb"];
        assert_eq!(
            inputs("r2s-busybox", RECIPES, &debs).key(),
            inputs("r2s-busybox", RECIPES, &debs).key()
        );
    }

    #[test]
    fn key_changes_with_recipe_text() {
        let debs = ["x.deb"];
        let changed = [RecipeFile {
            path: "a",
            text: "two",
        }];
        assert_ne!(
            inputs("f", RECIPES, &debs).key(),
            inputs("f", &changed, &debs).key()
        );
    }

    #[test]
    fn key_changes_with_deb_names() {
        let old = ["linux-image-6.1.0-55-arm64_6.1.190-1_arm64.deb"];
        let new = ["linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb"];
        assert_ne!(inputs("f", RECIPES, &old).key(), inputs("f", RECIPES, &new).key());
    }

    #[test]
    fn key_changes_with_fixture_name_and_sources() {
        let debs = ["x.deb"];
        let base = inputs("f", RECIPES, &debs);
        assert_ne!(base.key(), inputs("g", RECIPES, &debs).key());
        let other_sources = KeyInputs {
            sources: &[("lib.rs", "fn main() { }")],
            ..base
        };
        assert_ne!(base.key(), other_sources.key());
    }

    #[test]
    fn key_does_not_collide_by_concatenation() {
        let a = [RecipeFile {
            path: "ab",
            text: "c",
        }];
        let b = [RecipeFile {
            path: "a",
            text: "bc",
        }];
        assert_ne!(inputs("f", &a, &[]).key(), inputs("f", &b, &[]).key());
    }

    #[test]
    fn committed_entry_is_fresh_only_for_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let entry = Entry::new(dir.path(), "fixture");
        assert!(!entry.is_fresh("k1"));
        let built = dir.path().join("built");
        std::fs::write(&built, b"image").unwrap();
        entry.commit(&built, "k1").unwrap();
        assert!(entry.is_fresh("k1"));
        assert!(!entry.is_fresh("k2"));
        assert_eq!(std::fs::read(&entry.image).unwrap(), b"image");
    }

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Lock::acquire(dir.path()).unwrap();
        let other = File::options().write(true).open(dir.path().join("lock")).unwrap();
        assert!(
            matches!(other.try_lock(), Err(TryLockError::WouldBlock)),
            "a second lock must not be granted while the first is held"
        );
    }

    #[test]
    fn every_source_file_is_hashed() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "main.rs")
            .collect();
        on_disk.sort();
        let mut hashed: Vec<String> = super::SOURCES.iter().map(|(n, _)| n.to_string()).collect();
        hashed.sort();
        assert_eq!(on_disk, hashed);
    }
}
