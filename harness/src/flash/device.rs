//! What the DEVICE argument is: a regular file (a copy of the card, a test's target), or a
//! whole-disk block device as sysfs describes it (size, removability, bus, model, partitions,
//! holders).
//!
//! Everything is read under a [`Sysroot`], `/` unless `R2S_FLASH_SYSROOT` names a test root
//! with its own `sys/class/block/…`, `proc/self/mountinfo` and `proc/swaps`. In a test root a
//! regular file `ROOT/dev/NAME` stands for the block device `NAME` that
//! `ROOT/sys/class/block/NAME` describes, so the device guards are tested without real disks.

use std::fmt;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

/// The environment variable that points the harness at a test root instead of `/`.
pub const SYSROOT_ENV: &str = "R2S_FLASH_SYSROOT";

/// Where sysfs and procfs are read: `/`, or a test root.
#[derive(Debug, Clone)]
pub struct Sysroot {
    root: PathBuf,
}

impl Sysroot {
    /// `R2S_FLASH_SYSROOT` if it is set and not empty, else `/`.
    pub fn from_env() -> Sysroot {
        match std::env::var_os(SYSROOT_ENV) {
            Some(root) if !root.is_empty() => Sysroot::new(PathBuf::from(root)),
            _ => Sysroot::new(PathBuf::from("/")),
        }
    }

    /// The system as seen from `root`.
    pub fn new(root: PathBuf) -> Sysroot {
        Sysroot { root }
    }

    /// Whether this is the running system's own root.
    pub fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `relative` (e.g. `proc/swaps`) under the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The sysfs directory of block device `name`, with symlinks resolved.
    fn block_dir(&self, name: &str) -> io::Result<PathBuf> {
        self.path("sys/class/block").join(name).canonicalize()
    }

    /// Block device `name` of a test root, if `path` is its stand-in `ROOT/dev/NAME`.
    fn stand_in(&self, path: &Path) -> Option<String> {
        if self.is_real() || path.parent() != Some(self.path("dev").as_path()) {
            return None;
        }
        let name = path.file_name()?.to_str()?.to_owned();
        self.path("sys/class/block").join(&name).exists().then_some(name)
    }
}

/// What a DEVICE path is.
#[derive(Debug, Clone)]
pub enum DeviceKind {
    /// A regular file; `exists` is false for one the harness would create.
    File { exists: bool },
    /// A whole-disk block device.
    Block(BlockDevice),
}

/// The bus a disk hangs off, as far as its sysfs path tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// A USB card reader or stick.
    Usb,
    /// An SD/MMC slot.
    Mmc,
    /// An NVMe SSD.
    Nvme,
    /// SATA/SAS/SCSI.
    Ata,
    /// Loop, device-mapper, zram: no hardware.
    Virtual,
    /// Anything else (virtio, …).
    Other,
}

impl Bus {
    /// Where removable cards usually sit: a USB reader or an SD slot.
    pub fn carries_cards(self) -> bool {
        matches!(self, Bus::Usb | Bus::Mmc)
    }
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bus::Usb => "USB",
            Bus::Mmc => "MMC/SD",
            Bus::Nvme => "NVMe",
            Bus::Ata => "SATA/SCSI",
            Bus::Virtual => "virtual",
            Bus::Other => "other",
        })
    }
}

/// A whole-disk block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// The kernel's name, `sdb`, `mmcblk0`.
    pub name: String,
    /// `major:minor`.
    pub dev: String,
    /// Size in bytes (0: no medium).
    pub size: u64,
    /// sysfs `removable` is 1.
    pub removable: bool,
    pub bus: Bus,
    /// Vendor and model (or an SD card's name), when sysfs has them.
    pub model: Option<String>,
    /// Its partitions, in sysfs order.
    pub partitions: Vec<BlockPartition>,
    /// What holds the disk itself (an md array or dm device built on it).
    pub holders: Vec<String>,
}

/// A partition of a [`BlockDevice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPartition {
    /// `sdb1`.
    pub name: String,
    /// `major:minor`.
    pub dev: String,
    /// First 512-byte sector.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// What holds it (md, LVM, dm-crypt).
    pub holders: Vec<String>,
}

/// Why a DEVICE path cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{}: no such device: is the card (or its reader) plugged in?", .0.display())]
    Missing(PathBuf),
    #[error("{}: {kind}, not a disk or a regular file", path.display())]
    NotADisk { path: PathBuf, kind: &'static str },
    #[error("{}: is partition {name} of {disk}: give the whole disk, /dev/{disk}", path.display())]
    Partition {
        path: PathBuf,
        name: String,
        disk: String,
    },
    #[error("{}: cannot read {what}: {source}", path.display())]
    Read {
        path: PathBuf,
        what: String,
        source: io::Error,
    },
}

/// What `path` is, under `sysroot`.
pub fn resolve(path: &Path, sysroot: &Sysroot) -> Result<DeviceKind, DeviceError> {
    if let Some(name) = sysroot.stand_in(path) {
        return describe_disk(path, &name, sysroot).map(DeviceKind::Block);
    }
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        // A path under /dev that is not there is a card that is not there, never a new file.
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.starts_with("/dev") => {
            return Err(DeviceError::Missing(path.to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DeviceKind::File { exists: false }),
        Err(source) => {
            return Err(DeviceError::Read {
                path: path.to_owned(),
                what: "it".to_owned(),
                source,
            })
        }
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(DeviceKind::File { exists: true });
    }
    if !file_type.is_block_device() {
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_char_device() {
            "a character device"
        } else {
            "a special file"
        };
        return Err(DeviceError::NotADisk {
            path: path.to_owned(),
            kind,
        });
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = metadata.rdev();
    let dev = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let link = sysroot.path("sys/dev/block").join(&dev);
    let sys = link.canonicalize().map_err(|source| DeviceError::Read {
        path: path.to_owned(),
        what: link.display().to_string(),
        source,
    })?;
    describe_disk(path, &file_name(&sys), sysroot).map(DeviceKind::Block)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The sysfs facts of disk `name`; `path` is what the user gave, for errors. A partition is
/// refused: an SD image is a whole disk.
fn describe_disk(path: &Path, name: &str, sysroot: &Sysroot) -> Result<BlockDevice, DeviceError> {
    let read_error = |what: &Path, source| DeviceError::Read {
        path: path.to_owned(),
        what: what.display().to_string(),
        source,
    };
    let dir = sysroot
        .block_dir(name)
        .map_err(|e| read_error(&sysroot.path("sys/class/block").join(name), e))?;
    if dir.join("partition").exists() {
        return Err(DeviceError::Partition {
            path: path.to_owned(),
            name: name.to_owned(),
            disk: dir.parent().map(file_name).unwrap_or_default(),
        });
    }
    let read = |file: &str| attribute(&dir.join(file)).map_err(|e| read_error(&dir.join(file), e));
    let sectors: u64 = read("size")?.parse().unwrap_or(0);
    let mut partitions = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| read_error(&dir, e))?;
    for entry in entries.flatten() {
        let sub = entry.path();
        if !sub.join("partition").exists() {
            continue;
        }
        let part = |file: &str| attribute(&sub.join(file)).map_err(|e| read_error(&sub.join(file), e));
        partitions.push(BlockPartition {
            name: file_name(&sub),
            dev: part("dev")?,
            start: part("start")?.parse().unwrap_or(0),
            size: part("size")?.parse::<u64>().unwrap_or(0).saturating_mul(512),
            holders: holders(&sub),
        });
    }
    partitions.sort_by(|a, b| (a.name.len(), &a.name).cmp(&(b.name.len(), &b.name)));
    let relative = dir.strip_prefix(sysroot.path("sys")).unwrap_or(&dir).to_owned();
    Ok(BlockDevice {
        name: name.to_owned(),
        dev: read("dev")?,
        size: sectors.saturating_mul(512),
        removable: read("removable").is_ok_and(|r| r == "1"),
        bus: bus_of(name, &relative),
        model: model(&dir),
        partitions,
        holders: holders(&dir),
    })
}

/// A sysfs attribute, trimmed.
fn attribute(path: &Path) -> io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// The names in `dir/holders`.
fn holders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("holders"))
        .map(|entries| entries.flatten().map(|e| file_name(&e.path())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The bus, from the device's path under sysfs (`devices/pci…/usb2/2-1/…/block/sdb`).
fn bus_of(name: &str, sys_path: &Path) -> Bus {
    let parts: Vec<String> = sys_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let any = |test: &dyn Fn(&str) -> bool| parts.iter().any(|p| test(p));
    if any(&|p| p.starts_with("usb")) {
        Bus::Usb
    } else if name.starts_with("mmcblk") || any(&|p| p.starts_with("mmc")) {
        Bus::Mmc
    } else if name.starts_with("nvme") {
        Bus::Nvme
    } else if any(&|p| p == "virtual") {
        Bus::Virtual
    } else if any(&|p| p.starts_with("ata") || p.starts_with("host") || p.starts_with("target")) {
        Bus::Ata
    } else {
        Bus::Other
    }
}

/// `vendor model` of a SCSI/USB disk, or an SD card's `name`.
fn model(dir: &Path) -> Option<String> {
    let get = |file: &str| {
        attribute(&dir.join("device").join(file))
            .ok()
            .filter(|s| !s.is_empty())
    };
    let words: Vec<String> = [get("vendor"), get("model").or_else(|| get("name"))]
        .into_iter()
        .flatten()
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `1.5 GiB`, `512.0 MiB`: sizes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_is_read_from_the_sysfs_path() {
        let bus = |name: &str, path: &str| bus_of(name, Path::new(path));
        assert_eq!(
            bus(
                "sdb",
                "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
            ),
            Bus::Usb
        );
        assert_eq!(
            bus(
                "mmcblk0",
                "devices/platform/fe320000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0"
            ),
            Bus::Mmc
        );
        assert_eq!(
            bus(
                "nvme0n1",
                "devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1"
            ),
            Bus::Nvme
        );
        assert_eq!(
            bus(
                "sda",
                "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
            ),
            Bus::Ata
        );
        assert_eq!(bus("loop0", "devices/virtual/block/loop0"), Bus::Virtual);
        assert_eq!(
            bus("vda", "devices/pci0000:00/0000:00:02.0/virtio1/block/vda"),
            Bus::Other
        );
    }

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(600 << 20), "600.0 MiB");
        assert_eq!(human_size(256 << 30), "256.0 GiB");
    }

    #[test]
    fn a_new_file_outside_dev_is_a_file_to_create_and_one_inside_is_a_missing_card() {
        let dir = tempfile::tempdir().unwrap();
        let sysroot = Sysroot::new(PathBuf::from("/"));
        assert!(matches!(
            resolve(&dir.path().join("copy.img"), &sysroot),
            Ok(DeviceKind::File { exists: false })
        ));
        assert!(matches!(
            resolve(Path::new("/dev/r2s-unit-test-no-such-card"), &sysroot),
            Err(DeviceError::Missing(_))
        ));
        assert!(matches!(
            resolve(dir.path(), &sysroot),
            Err(DeviceError::NotADisk {
                kind: "a directory",
                ..
            })
        ));
    }
}
