//! Booting R2S images under QEMU without modifying them.
//!
//! QEMU has no RK3328 machine. The harness shows U-Boot (`qemu_arm64`) an extlinux
//! configuration equivalent to the image's — every label, menu label, default and timeout —
//! with only what QEMU's virt machine cannot honour replaced: the serial console and the device
//! tree. The kernel, initrd and root filesystem are the image's own.

mod append;
mod cache;
mod config;
pub mod disk_bus;
pub mod load_addresses;
mod shim;

use std::path::Path;

pub use crate::disk_cache::default_cache_dir;
pub use append::{adapt_append, ArgChange, QEMU_CONSOLE, QEMU_EARLYCON};
pub use cache::{ShimCache, ShimInUse};
pub use config::{adapt_config, Change};
pub use shim::{Shim, ShimError, SHIM_LABEL};

use crate::image::{boot_config, ImageError};

/// What adapting an image for QEMU changed, and the disk that carries the change.
#[derive(Debug)]
pub struct Adapted {
    /// Where the image's extlinux.conf is: `partition N:/path`.
    pub source: String,
    pub changes: Vec<Change>,
    pub shim: Shim,
}

/// Plans and builds the adaptation of `image`. `Ok(None)` when the image's configuration needs
/// no change (it already boots on QEMU virt as it is), or when there is none this harness can
/// read (then U-Boot boots the image as it is).
pub fn adapt(image: &Path) -> Result<Option<Adapted>, ShimError> {
    adapt_cached(image, None)
}

/// [`adapt`], reusing the shim of an earlier run of the same, unchanged image from `cache` and
/// putting a new one there.
pub fn adapt_cached(image: &Path, cache: Option<&ShimCache>) -> Result<Option<Adapted>, ShimError> {
    let found = match boot_config::find(image) {
        Ok(found) => found,
        // No extlinux.conf where U-Boot looks, on a filesystem this harness reads (ext4, FAT):
        // nothing to adapt, and U-Boot finds nothing either, which the run then shows.
        Err(ImageError::NoBootConfig { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (adapted, changes) = adapt_config(&found.config);
    if changes.is_empty() {
        return Ok(None);
    }
    let shim = match cache {
        Some(cache) => cached_shim(cache, image, &found, &adapted)?,
        None => shim::build(image, &found, &adapted)?,
    };
    Ok(Some(Adapted {
        source: format!("partition {}:{}", found.partition, found.path),
        changes,
        shim,
    }))
}

fn cached_shim(
    cache: &ShimCache,
    image: &Path,
    found: &boot_config::Found,
    adapted: &crate::image::extlinux::Config,
) -> Result<Shim, ShimError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ShimError::Io { path, source }
    };
    let key = ShimCache::key(image, adapted).map_err(io(image))?;
    if let Some(held) = cache.get(&key) {
        return Ok(Shim::cached(held, shim::shows(found, adapted)));
    }
    let built = shim::build(image, found, adapted)?;
    // An unwritable cache costs speed, not the run: keep the private shim.
    match cache.put(&key, built.disk()) {
        Ok(held) => Ok(Shim::cached(held, built.shows().to_owned())),
        Err(_) => Ok(built),
    }
}
