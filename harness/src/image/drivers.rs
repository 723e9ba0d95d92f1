//! What an image's kernel and initrd can drive, by driver name, without booting them: the
//! kernel's embedded configuration ([`super::ikconfig`]), the kernel's `modules.builtin` list
//! (from the initrd, else from the root filesystem), and the modules the initrd carries
//! ([`super::initrd`]). Stage 1 can only use a driver that is built in or in the initrd.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::boot_config::{self, Found};
use super::extlinux::Label;
use super::ikconfig::{self, KernelConfig};
use super::initrd;
use super::{probe_filesystem, FsKind, ImageError, Table, Volume};
use crate::file_memo::FileMemo;

/// The largest kernel read for its configuration: an R2S kernel must fit below the initrd's load
/// address (62 MiB on the stock U-Boot, 94 MiB on one that loads the initrd at 0x08000000), so
/// a larger one is no kernel U-Boot can boot.
const KERNEL_READ: u64 = 128 << 20;
/// The largest initrd read: the R2S has 1 GiB of memory for it and the unpacked archive.
const INITRD_READ: u64 = 512 << 20;

/// A Linux driver: its module name and the configuration option that builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Driver {
    /// Canonical module name, e.g. `virtio_blk`.
    pub module: &'static str,
    /// Its `CONFIG_…` option.
    pub option: &'static str,
}

/// Whether the kernel and initrd provide a driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    /// Built into the kernel; says how that is known (`CONFIG_X=y`, `modules.builtin`).
    BuiltIn(&'static str),
    /// A module in the initrd.
    InInitrd,
    /// Neither: stage 1 cannot use it.
    Missing,
    /// Not in the initrd, and what is built into the kernel is not known.
    Unknown,
}

impl Support {
    /// Whether stage 1 can use the driver.
    pub fn available(&self) -> bool {
        matches!(self, Support::BuiltIn(_) | Support::InInitrd)
    }
}

/// What is known about an image's kernel and initrd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drivers {
    /// Where they were read: `LABEL nixos-default`.
    pub entry: String,
    /// The kernel's embedded configuration, if it has one.
    pub config: Option<KernelConfig>,
    /// The kernel's modules.builtin list, if one was found.
    pub builtin: Option<BTreeSet<String>>,
    /// Where [`Drivers::builtin`] came from.
    pub builtin_from: Option<String>,
    /// The modules the initrd carries.
    pub initrd: BTreeSet<String>,
    /// The kernel image holds the PL011 driver's names (`uart-pl011`, `ttyAMA`): the driver
    /// is built in, though its console support cannot be told apart.
    pub pl011_in_kernel: bool,
    /// What could not be read and why (the initrd, the kernel), for messages.
    pub unread: Vec<String>,
}

impl Drivers {
    /// Whether `driver` is built in, in the initrd, missing or unknown.
    pub fn support(&self, driver: &Driver) -> Support {
        if let Some(config) = &self.config {
            if config.get(driver.option) == Some("y") {
                return Support::BuiltIn("CONFIG");
            }
        }
        if self.builtin.as_ref().is_some_and(|b| b.contains(driver.module)) {
            return Support::BuiltIn("modules.builtin");
        }
        if self.initrd.contains(driver.module) {
            return Support::InInitrd;
        }
        if self.config.is_some() || self.builtin.is_some() {
            Support::Missing
        } else {
            Support::Unknown
        }
    }

    /// Whether anything says what is built into the kernel.
    pub fn knows_builtins(&self) -> bool {
        self.config.is_some() || self.builtin.is_some()
    }

    /// What was read, in a phrase: `the kernel's embedded configuration, modules.builtin from
    /// the initrd, 11 modules in the initrd`.
    pub fn sources(&self) -> String {
        let mut parts = Vec::new();
        if self.config.is_some() {
            parts.push("the kernel's embedded configuration".to_owned());
        }
        if let Some(from) = &self.builtin_from {
            parts.push(format!("modules.builtin from {from}"));
        }
        parts.push(format!("{} module(s) in the initrd", self.initrd.len()));
        parts.join(", ")
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::BuiltIn(how) => write!(f, "built in ({how})"),
            Support::InInitrd => f.write_str("in the initrd"),
            Support::Missing => f.write_str("missing"),
            Support::Unknown => f.write_str("not in the initrd; built in or not is unknown"),
        }
    }
}

/// Reads what the default boot entry of `image`'s extlinux.conf (the first entry if none is
/// the default) boots with. Files that cannot be read are listed in [`Drivers::unread`].
pub fn read(image: &Path) -> Result<Drivers, ImageError> {
    let found = boot_config::find(image)?;
    let Some(label) = found.config.default_label().or(found.config.labels.first()) else {
        return Ok(Drivers {
            unread: vec!["extlinux.conf has no boot entry".to_owned()],
            ..Drivers::default()
        });
    };
    let table = Table::read(image)?;
    read_entry(image, &table, &found, label)
}

/// [`read`] for one entry of `found`. Remembered per version of the image file (device,
/// inode, size, mtime, ctime) for the rest of the process: a run reads the same entry for the
/// adaptation and again to choose the root disk's bus, and each read searches the kernel and
/// unpacks the initrd.
pub fn read_entry(image: &Path, table: &Table, found: &Found, label: &Label) -> Result<Drivers, ImageError> {
    static SEEN: FileMemo<Drivers> = FileMemo::new();
    let detail = format!("{} {} {label:?}", found.partition, found.path);
    SEEN.get_or_try(image, &detail, || read_entry_now(image, table, found, label))
}

fn read_entry_now(image: &Path, table: &Table, found: &Found, label: &Label) -> Result<Drivers, ImageError> {
    let mut drivers = Drivers {
        entry: format!("LABEL {}", label.name),
        ..Drivers::default()
    };
    let volume = Volume::open_index(image, table, found.partition)?;
    if let Some(kernel) = &label.kernel {
        let path = found.resolve(kernel.split('#').next().unwrap_or(kernel).trim());
        match volume.read_limited(&path, KERNEL_READ, "a kernel read for its configuration") {
            Ok(bytes) => {
                drivers.pl011_in_kernel = holds_pl011(&bytes);
                match ikconfig::extract(&bytes) {
                    Ok(text) => drivers.config = Some(KernelConfig::parse(&text)),
                    Err(e) => drivers.unread.push(format!("kernel {path}: {e}")),
                }
            }
            Err(e) => drivers.unread.push(e.to_string()),
        }
    }
    let mut releases = BTreeSet::new();
    for part in label.initrd.iter().flat_map(|i| i.split(',')) {
        let path = found.resolve(part.trim());
        let index = volume
            .read_limited(&path, INITRD_READ, "an initrd read for its modules")
            .map_err(|e| e.to_string())
            .and_then(|bytes| initrd::read(&bytes).map_err(|e| format!("initrd {path}: {e}")));
        match index {
            Ok(index) => {
                drivers.initrd.extend(index.modules);
                releases.extend(index.releases);
                if let Some(list) = index.builtin {
                    drivers.builtin.get_or_insert_with(BTreeSet::new).extend(list);
                    drivers.builtin_from = Some("the initrd".to_owned());
                }
            }
            Err(e) => drivers.unread.push(e),
        }
    }
    if drivers.builtin.is_none() {
        let init = super::modules::on_root::init_of(label.append.as_deref());
        builtin_from_root(image, table, found.partition, &releases, init, &mut drivers);
    }
    Ok(drivers)
}

/// Whether `kernel` holds the names the PL011 driver registers (its driver name and the tty
/// device name): a kernel without the driver built in has neither.
fn holds_pl011(kernel: &[u8]) -> bool {
    memchr::memmem::find(kernel, b"uart-pl011\0").is_some()
        && memchr::memmem::find(kernel, b"ttyAMA\0").is_some()
}

/// modules.builtin of one of `releases` on an ext4 or f2fs partition other than the boot one: in the
/// `init=` system's module tree (NixOS), or where Debian and the kernel's `make
/// modules_install` put it.
fn builtin_from_root(
    image: &Path,
    table: &Table,
    boot: u32,
    releases: &BTreeSet<String>,
    init: Option<&str>,
    drivers: &mut Drivers,
) {
    for partition in table.partitions.iter().filter(|p| p.index != boot) {
        let kind = match probe_filesystem(image, partition) {
            Ok(kind @ (FsKind::Ext4 { .. } | FsKind::F2fs { .. })) => kind,
            _ => continue,
        };
        let Ok(Some(volume)) = Volume::open(image, partition, &kind) else {
            continue;
        };
        for release in releases {
            for (dir, _) in super::modules::on_root::candidate_dirs(init, release) {
                let path = format!("{dir}/modules.builtin");
                if let Ok(text) = volume.read_text(&path, 4 << 20, "modules.builtin") {
                    drivers.builtin = Some(initrd::parse_builtin_list(&text).collect());
                    drivers.builtin_from = Some(format!("partition {}: {path}", partition.index));
                    return;
                }
            }
        }
    }
}
