//! A QEMU run set up from an image, as `harness run`, `harness console` and the nextest image
//! variable all set it up: the image checked bootable, adapted for QEMU (shim extlinux.conf,
//! disk drivers added to the initrd) unless told not to, its root disk's bus chosen, the root
//! device it waits for looked for, and the firmware's load addresses moved above a kernel that
//! outgrows them. What was done is said in [`QemuSetup::lines`], for the caller to print and
//! for the HTML report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::adapt::{self, disk_bus, Shim, ShimCache};
use crate::board::Board;
use crate::image::{self, drivers, ImageError};
use crate::qemu_devices::DiskBus;
use crate::runner::{AbsentRoot, CountdownPolicy, RunContext};
use crate::targets::qemu::QemuConfig;

use super::load_addresses;

/// What a QEMU run is set up from.
#[derive(Debug, Clone)]
pub struct QemuSetupRequest {
    /// The disk QEMU boots (a compressed image's unpacked copy).
    pub image: PathBuf,
    /// The board profile (`qemu-virt`, or a file): whether initrd modules are added, its
    /// pacing, its load addresses.
    pub board: Board,
    /// QEMU and its firmware; the root disk and firmware are filled in here.
    pub config: QemuConfig,
    /// Where the shim disks and changed firmware are kept (`None`: built for this run only,
    /// and the firmware not moved).
    pub cache: Option<PathBuf>,
    /// `--no-adapt`: the image's extlinux.conf, initrd and the firmware's addresses as they are.
    pub no_adapt: bool,
    /// `--disk-bus`: the root disk's bus, chosen by the caller.
    pub disk_bus: Option<DiskBus>,
    /// Whether the boot's countdowns are skipped (unless `--real-time-boot`).
    pub skip_countdowns: bool,
}

/// One line of what the set-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupLine {
    /// A remark (what was adapted, the root disk's bus): shown unless quiet.
    Remark(String),
    /// Something likely to make the run fail: always shown.
    Warning(String),
}

impl SetupLine {
    /// The line as the HTML report shows it.
    pub fn text(&self) -> &str {
        match self {
            SetupLine::Remark(text) | SetupLine::Warning(text) => text,
        }
    }
}

/// A QEMU run, set up.
#[derive(Debug)]
pub struct QemuSetup {
    /// QEMU's configuration: the root disk's bus, the (possibly moved) firmware, the notes
    /// every transcript starts with.
    pub config: QemuConfig,
    /// The shim disk U-Boot boots instead of the image's own extlinux.conf, if adapted.
    pub shim: Option<Arc<Shim>>,
    /// What the runner knows of the image: menu labels, countdowns, pacing, root disk hints.
    pub context: RunContext,
    /// What was done, in order.
    pub lines: Vec<SetupLine>,
}

impl QemuSetup {
    /// The lines as the HTML report lists them.
    pub fn report_lines(&self) -> Vec<String> {
        self.lines.iter().map(|line| line.text().to_owned()).collect()
    }
}

/// Why a QEMU run could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QemuSetupError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot adapt {image} for QEMU: {detail}")]
    Adapt { image: PathBuf, detail: String },
}

/// Sets a QEMU run of `request.image` up (see the module's documentation).
pub async fn set_up(request: QemuSetupRequest) -> Result<QemuSetup, QemuSetupError> {
    let QemuSetupRequest {
        image,
        board,
        mut config,
        cache,
        no_adapt,
        disk_bus: forced_bus,
        skip_countdowns,
    } = request;
    let labels = image::check_bootable_image(&image)?;
    crate::debug_timing::mark("image checked: bootable, menu labels");
    let countdowns = CountdownPolicy::for_image(Some(&image), skip_countdowns);
    let adapting = async {
        if no_adapt {
            let off =
                "adaptation for QEMU: off (--no-adapt); the image's extlinux.conf is booted as written \
                       and its initrd as built";
            return Ok((None, Vec::new(), vec![SetupLine::Remark(off.to_owned())]));
        }
        let options = adapt::Options {
            initrd_modules: board.adapt_initrd_modules,
        };
        let (shim, added, mut told) = adapt_told(&image, cache.clone(), options).await?;
        if !options.initrd_modules {
            told.push(SetupLine::Remark(format!(
                "adding disk drivers to the initrd: off (board profile {}: adapt_initrd_modules = false)",
                board.name
            )));
        }
        crate::debug_timing::mark("adapted for QEMU");
        Ok::<_, QemuSetupError>((shim, added, told))
    };
    let looking_for_root = async {
        let owned = image.clone();
        let found = tokio::task::spawn_blocking(move || AbsentRoot::of_image(&owned))
            .await
            .ok()
            .flatten();
        crate::debug_timing::mark("root device looked for");
        found
    };
    let (adapted, mut absent_root) = tokio::join!(adapting, looking_for_root);
    let (shim, added, mut lines) = adapted?;
    let choice = choose_root_disk(&image, forced_bus, &added).await;
    crate::debug_timing::mark("root disk bus chosen (kernel and initrd drivers read)");
    lines.extend(root_disk_lines(&choice));
    if let Some(absent) = &absent_root {
        lines.push(SetupLine::Warning(format!("warning: {}", absent.hint())));
    } else if let disk_bus::Drivable::Missing(missing) = &choice.drivable {
        // Warned about above; the root device on that disk never appears either, and the run
        // ends as soon as stage 1 says it waits for it.
        let (owned, bus, missing) = (image.clone(), choice.disk.bus.to_string(), missing.clone());
        absent_root = tokio::task::spawn_blocking(move || AbsentRoot::undrivable(&owned, &bus, &missing))
            .await
            .ok()
            .flatten();
    }
    config.root_disk = choice.disk.clone();
    lines.extend(
        load_addresses::adapt_load_addresses(&image, &mut config, Some(&board), cache, no_adapt)
            .await
            .into_iter()
            .map(SetupLine::Remark),
    );
    crate::debug_timing::mark("load addresses checked");
    let context = RunContext {
        countdowns,
        menu_labels: Some(labels),
        pacing: board.pacing,
        root_disk: Some(choice.root_hint()),
        absent_root,
        ..RunContext::default()
    };
    Ok(QemuSetup {
        config,
        shim,
        context,
        lines,
    })
}

/// The bus to attach `image` on: `forced` (`--disk-bus`), else the first its kernel and initrd
/// (with the modules `added` to it by the adaptation) can drive.
pub async fn choose_root_disk(image: &Path, forced: Option<DiskBus>, added: &[String]) -> disk_bus::Choice {
    let owned = image.to_owned();
    let drivers = tokio::task::spawn_blocking(move || drivers::read(&owned))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()))
        .map(|mut drivers| {
            drivers.initrd.extend(added.iter().cloned());
            drivers
        });
    match (forced, drivers) {
        (Some(bus), drivers) => disk_bus::forced(bus, drivers.as_ref().ok()),
        (None, Ok(drivers)) => disk_bus::choose(&drivers),
        (None, Err(e)) => disk_bus::unread(&e),
    }
}

/// The bus `choice` chose and why, and a warning if stage 1 cannot drive it.
pub fn root_disk_lines(choice: &disk_bus::Choice) -> Vec<SetupLine> {
    let mut lines = vec![SetupLine::Remark(format!(
        "root disk on {}: {}",
        choice.disk.bus, choice.disk.reason
    ))];
    if let Some(warning) = choice.warning() {
        lines.push(SetupLine::Warning(format!("warning: {warning}")));
    }
    lines
}

/// Builds (or takes from `cache`) the shim disk that shows U-Boot a QEMU-ready copy of the
/// image's extlinux.conf; `None` when the image boots on QEMU as it is. With it, the modules
/// added to the initrd and the lines saying what changed.
async fn adapt_told(
    image: &Path,
    cache: Option<PathBuf>,
    options: adapt::Options,
) -> Result<(Option<Arc<Shim>>, Vec<String>, Vec<SetupLine>), QemuSetupError> {
    let owned = image.to_owned();
    let adapt_error = |detail: String| QemuSetupError::Adapt {
        image: image.to_owned(),
        detail,
    };
    let adapted = tokio::task::spawn_blocking(move || {
        let cache = cache.map(|dir| ShimCache::new(&dir));
        adapt::adapt_cached(&owned, cache.as_ref(), options)
    })
    .await
    .map_err(|e| adapt_error(e.to_string()))?;
    match adapted {
        Ok(Some(adapted)) => {
            let mut told = vec![
                "adapted for QEMU (the image is not modified; turn off with --no-adapt):".to_owned(),
                format!("  extlinux.conf from {}", adapted.source),
            ];
            told.extend(adapted.changes.iter().map(|change| format!("  {change}")));
            told.extend(adapted.modules.notes().iter().map(|line| format!("  {line}")));
            let added = match &adapted.modules {
                adapt::InitrdModules::Added(addition) => addition.names(),
                adapt::InitrdModules::NotNeeded | adapt::InitrdModules::Refused(_) => Vec::new(),
            };
            let told = told.into_iter().map(SetupLine::Remark).collect();
            Ok((adapted.shim.map(Arc::new), added, told))
        }
        Ok(None) => Ok((None, Vec::new(), Vec::new())),
        Err(e) => Err(adapt_error(e.to_string())),
    }
}
