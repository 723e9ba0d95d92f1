//! Booting R2S images under QEMU without modifying them.
//!
//! QEMU has no RK3328 machine. The harness shows U-Boot (`qemu_arm64`) an extlinux
//! configuration equivalent to the image's — every label, menu label, default and timeout —
//! with only what QEMU's virt machine cannot honour replaced: the serial console and the device
//! tree. The kernel, initrd and root filesystem are the image's own; when they can drive none
//! of QEMU's disk buses, the image's own disk drivers are added to the copy of the initrd
//! U-Boot loads ([`initrd_modules`]).

mod append;
mod cache;
mod config;
pub mod disk_bus;
pub mod initrd_modules;
pub mod load_addresses;
mod shim;

use std::path::Path;

pub use crate::disk_cache::default_cache_dir;
pub use append::{adapt_append, ArgChange, QEMU_CONSOLE, QEMU_EARLYCON};
pub use cache::{ShimCache, ShimInUse};
pub use config::{adapt_config, Change};
pub use initrd_modules::{Addition, InitrdModules};
pub use shim::{Shim, ShimError, SHIM_LABEL};

use crate::image::{boot_config, ImageError};

/// What adapting an image for QEMU changed, and the disk that carries the change.
#[derive(Debug)]
pub struct Adapted {
    /// Where the image's extlinux.conf is: `partition N:/path`.
    pub source: String,
    pub changes: Vec<Change>,
    /// Disk drivers added to the initrd, or why none were when stage 1 needs them.
    pub modules: InitrdModules,
    /// The disk U-Boot boots from; `None` when the configuration needed no change and modules
    /// were refused (the refusal is all there is to say).
    pub shim: Option<Shim>,
}

/// What to adapt besides the console and device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Add the image's own disk drivers to the initrd when it can drive none of QEMU's buses
    /// (off with a board profile's `adapt_initrd_modules = false`).
    pub initrd_modules: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { initrd_modules: true }
    }
}

/// Plans and builds the adaptation of `image`. `Ok(None)` when the image's configuration needs
/// no change and its initrd no modules (it already boots on QEMU virt as it is), or when there
/// is no configuration this harness can read (then U-Boot boots the image as it is).
pub fn adapt(image: &Path) -> Result<Option<Adapted>, ShimError> {
    adapt_cached(image, None, Options::default())
}

/// [`adapt`] with `options`, reusing the shim of an earlier run of the same, unchanged image
/// from `cache` and putting a new one there.
pub fn adapt_cached(
    image: &Path,
    cache: Option<&ShimCache>,
    options: Options,
) -> Result<Option<Adapted>, ShimError> {
    let found = match boot_config::find(image) {
        Ok(found) => found,
        // No extlinux.conf where U-Boot looks, on a filesystem this harness reads (ext4, FAT):
        // nothing to adapt, and U-Boot finds nothing either, which the run then shows.
        Err(ImageError::NoBootConfig { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (adapted, changes) = adapt_config(&found.config);
    tracing::debug!(
        target: "adapt",
        "extlinux.conf at partition {}:{}: {} change(s) for QEMU: {:?}",
        found.partition,
        found.path,
        changes.len(),
        changes
    );
    let modules = if options.initrd_modules {
        // Not reading the kernel, initrd or root for drivers costs this run nothing it had
        // before: say why, and boot as without the addition.
        initrd_modules::plan(image, &found)
            .unwrap_or_else(|e| InitrdModules::Refused(format!("the image's boot files cannot be read: {e}")))
    } else {
        InitrdModules::NotNeeded
    };
    tracing::debug!(target: "adapt", "initrd modules: {:?}", modules.notes());
    let addition = match &modules {
        InitrdModules::Added(addition) => Some(addition),
        InitrdModules::NotNeeded | InitrdModules::Refused(_) => None,
    };
    if changes.is_empty() && addition.is_none() {
        return Ok(match modules {
            InitrdModules::Refused(_) => Some(Adapted {
                source: format!("partition {}:{}", found.partition, found.path),
                changes,
                modules,
                shim: None,
            }),
            InitrdModules::NotNeeded | InitrdModules::Added(_) => None,
        });
    }
    tracing::debug!(
        target: "adapt",
        "shim disk: {}",
        if cache.is_some() { "from the cache (built if missing)" } else { "built for this run" }
    );
    let shim = match cache {
        Some(cache) => cached_shim(cache, image, &found, &adapted, addition)?,
        None => shim::build(image, &found, &adapted, addition)?,
    }
    .with_notes(modules.notes());
    Ok(Some(Adapted {
        source: format!("partition {}:{}", found.partition, found.path),
        changes,
        modules,
        shim: Some(shim),
    }))
}

fn cached_shim(
    cache: &ShimCache,
    image: &Path,
    found: &boot_config::Found,
    adapted: &crate::image::extlinux::Config,
    addition: Option<&Addition>,
) -> Result<Shim, ShimError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ShimError::Io { path, source }
    };
    let shows = shim::shows(found, adapted, addition);
    let key = ShimCache::key(image, &shows).map_err(io(image))?;
    if let Some(held) = cache.get(&key) {
        return Ok(Shim::cached(held, shows));
    }
    let built = shim::build(image, found, adapted, addition)?;
    // An unwritable cache costs speed, not the run: keep the private shim.
    match cache.put(&key, built.disk()) {
        Ok(held) => Ok(Shim::cached(held, built.shows().to_owned())),
        Err(_) => Ok(built),
    }
}
