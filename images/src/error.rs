//! Everything that can stop a fixture build, each naming what failed and where.

use std::path::PathBuf;

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The name is not one of [`crate::fixtures`].
    #[error("unknown fixture `{name}`; known fixtures: {known}")]
    UnknownFixture {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },

    /// A file or directory operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "writing".
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// An external tool could not be started (usually: not installed).
    #[error("cannot run `{command}`: {source} (is it installed?)")]
    ToolMissing {
        /// The command line.
        command: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// An external tool ran and failed.
    #[error("`{command}` (in {}) failed with {status}:\n{stderr}", cwd.display())]
    ToolFailed {
        /// The command line.
        command: String,
        /// The directory it ran in.
        cwd: PathBuf,
        /// How it ended, e.g. "exit status: 100".
        status: String,
        /// What it printed on stderr (stdout when stderr was empty).
        stderr: String,
    },

    /// An external tool ran longer than a build step may take, and was killed.
    #[error("`{command}` (in {}) did not finish within {} s; killed", cwd.display(), limit.as_secs())]
    ToolTimeout {
        /// The command line.
        command: String,
        /// The directory it ran in.
        cwd: PathBuf,
        /// How long it was given.
        limit: std::time::Duration,
    },

    /// The package index has no arm64 candidate for a package the fixtures need.
    #[error("no arm64 candidate for package `{package}` in the apt cache ({detail}); is the arm64 foreign architecture added and `apt-get update` run?")]
    PackageUnavailable {
        /// The package name, without architecture.
        package: String,
        /// What apt said.
        detail: String,
    },

    /// `apt-get download` succeeded but the expected .deb is not where it should be.
    #[error("downloaded `{package}` but {} does not exist", deb.display())]
    DebMissing {
        /// The package name.
        package: String,
        /// The file that was expected.
        deb: PathBuf,
    },

    /// An unpacked package lacks a file the fixtures are built from.
    #[error("package `{package}` has no {}", path.display())]
    PartMissing {
        /// The package the file should come from.
        package: String,
        /// Where in the unpacked package it was looked for.
        path: PathBuf,
    },

    /// The kernel file is not an arm64 Image in a format this builder can unpack.
    #[error("{}: {source}", path.display())]
    KernelImage {
        /// The kernel file (vmlinuz).
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KernelImageError,
    },

    /// A kernel module the initrd needs, or one it depends on, cannot be found or read.
    #[error("kernel module `{module}`: {source}")]
    Module {
        /// The module name, e.g. `virtio_blk`.
        module: String,
        /// What is wrong.
        #[source]
        source: ModuleError,
    },

    /// gptman refused or failed to write a GUID partition table.
    #[error("writing the GPT of {}: {source}", path.display())]
    Gpt {
        /// The disk image.
        path: PathBuf,
        /// gptman's reason.
        #[source]
        source: gptman::Error,
    },

    /// mbrman refused or failed to write a DOS partition table.
    #[error("writing the MBR of {}: {source}", path.display())]
    Mbr {
        /// The disk image.
        path: PathBuf,
        /// mbrman's reason.
        #[source]
        source: mbrman::Error,
    },

    /// A fixture's bootloader could not be changed as its recipe says.
    #[error("changing the bootloader: {what}")]
    BootloaderPatch { what: String },

    /// The root password could not be hashed for /etc/shadow.
    #[error("hashing root's password for /etc/shadow: {0:?}")]
    PasswordHash(sha_crypt::CryptError),

    /// Another build held the cache directory longer than any build takes.
    #[error("{} is still locked by another build after {} s", path.display(), waited.as_secs())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this build waited.
        waited: std::time::Duration,
    },

    /// The cache directory could not be locked.
    #[error("locking {}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// An [`BuildError::Io`] builder for `map_err`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}

/// Why a kernel file is not an arm64 Image this builder can unpack.
#[derive(Debug, thiserror::Error)]
pub enum KernelImageError {
    /// No format this builder knows.
    #[error("neither an arm64 Image (ARM\\x64 at 0x38), gzip data, nor an EFI zboot image")]
    Unrecognised,
    /// An EFI zboot image whose payload is not gzip.
    #[error("EFI zboot image compressed with {0:?}; only gzip is supported")]
    ZbootCompression(String),
    /// An EFI zboot header whose payload offset and size reach past the file.
    #[error("EFI zboot payload lies outside the file")]
    ZbootPayloadOutside,
    /// The gzip data did not decompress.
    #[error("gunzip: {0}")]
    Gunzip(#[source] std::io::Error),
    /// What the gzip data holds is no arm64 Image either.
    #[error("decompressed data has no arm64 Image magic (ARM\\x64 at 0x38)")]
    NoMagicInside,
}

/// What is wrong with a kernel module the initrd needs.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// No module file has the name, and the kernel does not have it built in.
    #[error("not in {} and not built in{}", dir.display(), needed_by.as_ref().map_or(String::new(), |parent| format!(" (needed by {parent})")))]
    NotFound {
        /// The kernel release's module directory.
        dir: PathBuf,
        /// The module that depends on it, if any.
        needed_by: Option<String>,
    },

    /// The module depends on itself through others.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),

    /// The module file's `.modinfo` section (where its dependencies are) cannot be read.
    #[error("{}: {source}", path.display())]
    Modinfo {
        /// The module file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ModinfoError,
    },
}

/// Why a module's `.modinfo` section cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ModinfoError {
    /// The file is not an ELF file, or its headers point outside it.
    #[error("reading the ELF file: {0}")]
    Elf(#[from] object::Error),
    /// The ELF file has no `.modinfo` section.
    #[error("no .modinfo section")]
    Missing,
}
