//! What an image declares about the system it boots, read from the image itself: its
//! extlinux.conf's entries and the system each boots (`init=`), the hostname that system sets,
//! and whether it runs systemd. Scenarios take their expected values from these instead of
//! naming one image's hostname or generations, and state what they need of an image.
//!
//! NixOS keeps a system's files in its store path: `<system>/etc/hostname` is a symlink chain
//! into the `etc` derivation, followed inside the root filesystem. Before the first boot the
//! root's own `/etc` is empty (activation fills it), so the system's copy comes first.

use std::path::Path;

use super::autologin;
use super::boot_config;
use super::error::ImageError;
use super::extlinux::Config;
use super::fs::probe_filesystem;
use super::listen_stream::{listen_streams, ListenStream};
use super::modules::on_root;
use super::partition::Table;
use super::root_device::{self, RootDevice};
use super::volume::Volume;
use crate::file_memo::FileMemo;

pub use super::root_device::DEFAULT_ROOT_LABEL;

/// The most a hostname file may hold (a hostname is at most 253 characters).
const HOSTNAME_FILE_LIMIT: u64 = 4096;

/// What an image declares, each fact `None` (or empty) when the image does not tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The extlinux.conf's entries, in menu order.
    pub entries: Vec<EntryFacts>,
    /// The hostname the default entry's system sets (`<system>/etc/hostname`), else the root
    /// filesystem's `/etc/hostname`.
    pub hostname: Option<String>,
    /// Whether the default entry's system runs systemd (`<system>/systemd`, or a
    /// `/lib/systemd/systemd` on the root filesystem); `None` when the root cannot be read.
    pub systemd: Option<bool>,
    /// The units the system enables for a default boot (the `.wants` and `.requires` of
    /// [`BOOT_TARGETS`]),
    /// by name, when it runs systemd.
    pub units: Vec<UnitFacts>,
    /// The user the serial console's getty logs in by itself (agetty's `--autologin`, NixOS's
    /// `services.getty.autologinUser`), read from the system's unit files ([`autologin`]).
    pub autologin: Option<String>,
    /// The udev link of the root filesystem the default entry mounts
    /// (`/dev/disk/by-label/NIXOS_SD`, `/dev/disk/by-partuuid/…`), from where stage 1 reads
    /// it ([`root_device::read_default`]); `None` when it names a device path, which differs
    /// between a board and QEMU.
    pub root_device: Option<String>,
    /// Why facts are missing, for the reasons a skipped scenario gives.
    pub unread: Vec<String>,
}

/// A unit the system enables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFacts {
    /// Its name, e.g. `sshd.service`.
    pub name: String,
    /// The target whose `.wants` or `.requires` holds it.
    pub wanted_by: String,
    /// The TCP sockets of its `ListenStream=` lines (a socket unit's).
    pub listen: Vec<ListenStream>,
}

/// The targets a default boot reaches whose `.wants` and `.requires` the health check reads.
pub const BOOT_TARGETS: [&str; 5] = [
    "sysinit.target",
    "sockets.target",
    "timers.target",
    "getty.target",
    "multi-user.target",
];

/// The directories of a target's dependencies that enable units.
const DEPENDENCY_DIRS: [&str; 2] = ["wants", "requires"];

/// The most units read from the image: a NixOS router enables a few dozen.
const MAX_UNITS: usize = 256;

/// The most a unit file may hold.
const UNIT_FILE_LIMIT: u64 = 64 * 1024;

/// One extlinux.conf entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFacts {
    /// Its `LABEL`.
    pub label: String,
    /// The store name of the system its `init=` names (`<hash>-nixos-system-<host>-<version>`),
    /// when it names one.
    pub system: Option<String>,
    /// Whether that system is a NixOS system, whose boot records itself at
    /// `/run/booted-system`: its store path holds `nixos-version`, as every NixOS system's
    /// does. `Some(false)` when `init=` names no store path; `None` when the root filesystem
    /// cannot be read to tell.
    pub nixos: Option<bool>,
}

impl ImageFacts {
    /// Reads what `image` declares. Nothing here fails a run: a fact that cannot be read is
    /// left out, and [`ImageFacts::unread`] says why. Remembered per version of the file for
    /// the rest of the process ([`FileMemo`]).
    pub fn read(image: &Path) -> ImageFacts {
        static SEEN: FileMemo<ImageFacts> = FileMemo::new();
        SEEN.get_or(image, "", || ImageFacts::read_now(image))
    }

    fn read_now(image: &Path) -> ImageFacts {
        let mut facts = ImageFacts::default();
        let found = match boot_config::find(image) {
            Ok(found) => found,
            Err(e) => {
                facts
                    .unread
                    .push(format!("no extlinux.conf read: {}", e.detail()));
                return facts;
            }
        };
        let config = &found.config;
        facts.entries = entries_of(config);
        let default = config.default_label().or(config.labels.first());
        let append = default.and_then(|label| label.append.as_deref()).unwrap_or("");
        let table = match Table::read(image) {
            Ok(table) => table,
            Err(e) => {
                facts.unread.push(format!("no partition table: {}", e.detail()));
                return facts;
            }
        };
        let root_device = root_device::read_default(image, &table, &found);
        facts.root_device = root_device.wait_path();
        if root_device.unread_fstab.is_some() {
            facts
                .unread
                .push(format!("the root device is taken as {}", root_device.describe()));
        }
        if facts.root_device.is_none() {
            facts.unread.push(format!(
                "the root device {} is a device path, not a label or UUID that names it on any machine",
                root_device.describe()
            ));
        }
        let root = match open_root(image, &table, &root_device) {
            Ok(root) => root,
            Err(reason) => {
                facts.unread.push(reason);
                return facts;
            }
        };
        for entry in &mut facts.entries {
            if let Some(name) = &entry.system {
                entry.nixos = Some(is_nixos_system(&root, name));
            }
        }
        let system = init_system(append).map(|(dir, _)| dir.to_owned());
        match read_hostname(&root, system.as_deref()) {
            Ok(Some(hostname)) => facts.hostname = Some(hostname),
            Ok(None) => facts
                .unread
                .push("no hostname file in the system or at /etc/hostname".to_owned()),
            Err(reason) => facts
                .unread
                .push(format!("the hostname cannot be read: {reason}")),
        }
        facts.systemd = Some(runs_systemd(&root, system.as_deref()));
        if facts.systemd == Some(true) {
            facts.units = enabled_units(&root, system.as_deref(), &mut facts.unread);
        }
        facts.autologin = autologin::read(&root, system.as_deref());
        facts
    }
}

/// The system directory and its store name of the command line's `init=`
/// ([`on_root::init_of`]), when it is a store path's `init`:
/// `init=/nix/store/abc-nixos-system-ivy-25.05/init` → (`/nix/store/abc-nixos-system-ivy-25.05`,
/// `abc-nixos-system-ivy-25.05`).
fn init_system(append: &str) -> Option<(&str, &str)> {
    let dir = on_root::init_of(Some(append))?.strip_suffix("/init")?;
    let name = dir
        .strip_prefix("/nix/store/")
        .filter(|n| !n.is_empty() && !n.contains('/'))?;
    Some((dir, name))
}

/// The root filesystem: the ext4 or f2fs partition of `table` that is `root`, the default
/// entry's root device ([`root_device::read_default`]: its initrd, `root=`, the root's fstab,
/// else [`DEFAULT_ROOT_LABEL`]).
fn open_root(image: &Path, table: &Table, root: &RootDevice) -> Result<Volume, String> {
    let device = &root.device;
    for partition in &table.partitions {
        let Ok(kind) = probe_filesystem(image, partition) else {
            continue;
        };
        if root.is(partition, &kind) != Some(true) {
            continue;
        }
        return match Volume::open(image, partition, &kind) {
            Ok(Some(volume)) => Ok(volume),
            Ok(None) => Err(format!(
                "the root filesystem {device} is {kind}, which the harness cannot read"
            )),
            Err(e) => Err(format!(
                "the root filesystem {device} cannot be read: {}",
                e.detail()
            )),
        };
    }
    Err(format!("no filesystem is the root device {}", root.describe()))
}

/// The first line of the system's hostname file, else the root's; only a name a scenario can
/// quote as it is (letters, digits, `-`, `.`; at most 253 characters).
/// `Err` says why a hostname file that is there cannot be read (the reader lacks what it
/// needs, e.g. an encrypted f2fs directory).
fn read_hostname(root: &Volume, system: Option<&str>) -> Result<Option<String>, String> {
    let candidates = system
        .map(|dir| format!("{dir}/etc/hostname"))
        .into_iter()
        .chain(std::iter::once("/etc/hostname".to_owned()));
    for path in candidates {
        if let Some(text) = read_text(root, &path, HOSTNAME_FILE_LIMIT)? {
            let name = text.lines().next().unwrap_or("").trim();
            if is_hostname(name) {
                return Ok(Some(name.to_owned()));
            }
        }
    }
    Ok(None)
}

/// Letters, digits, `-` and `.`, 1 to 253 characters.
fn is_hostname(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether the store path `name` is a NixOS system: NixOS's toplevel holds `nixos-version`
/// (and its boot links `/run/booted-system` to it); a store-shaped directory whose `init` is
/// another system's init (the systemd fixtures' Debian) has none.
fn is_nixos_system(root: &Volume, name: &str) -> bool {
    root.exists(&format!("/nix/store/{name}/nixos-version"))
        .unwrap_or(false)
}

/// Whether the system runs systemd: a NixOS system links its systemd at `<system>/systemd`;
/// another layout has systemd's binary on the root filesystem.
fn runs_systemd(root: &Volume, system: Option<&str>) -> bool {
    let system_link = system.map(|dir| format!("{dir}/systemd"));
    let found = system_link
        .iter()
        .map(String::as_str)
        .chain(["/lib/systemd/systemd", "/usr/lib/systemd/systemd"])
        .any(|path| root.exists(path).unwrap_or(false));
    found
}

/// The units in the `.wants` and `.requires` of [`BOOT_TARGETS`]: the system's own (`<system>/etc/systemd/system`,
/// NixOS), else the root filesystem's (`/etc/systemd/system`), at most [`MAX_UNITS`], each
/// named only once, and only names a scenario can quote. A socket unit that cannot be read is
/// listed without its sockets, and `unread` says why.
fn enabled_units(root: &Volume, system: Option<&str>, unread: &mut Vec<String>) -> Vec<UnitFacts> {
    let dirs = system
        .map(|dir| format!("{dir}/etc/systemd/system"))
        .into_iter()
        .chain(std::iter::once("/etc/systemd/system".to_owned()));
    for dir in dirs {
        let mut units: Vec<UnitFacts> = Vec::new();
        let mut any = false;
        for (target, kind) in BOOT_TARGETS
            .iter()
            .flat_map(|target| DEPENDENCY_DIRS.iter().map(move |kind| (*target, *kind)))
        {
            let wants = format!("{dir}/{target}.{kind}");
            let Ok(names) = root.list_dir(&wants) else {
                continue;
            };
            any = true;
            let mut names: Vec<String> = names.into_iter().filter(|n| is_unit_name(n)).collect();
            names.sort();
            for name in names {
                if units.len() >= MAX_UNITS || units.iter().any(|u| u.name == name) {
                    continue;
                }
                let listen = if name.ends_with(".socket") {
                    let path = format!("{wants}/{name}");
                    match root.read_text(&path, UNIT_FILE_LIMIT, "a socket unit") {
                        Ok(text) => listen_streams(&text),
                        Err(e) => {
                            unread.push(format!(
                                "the socket unit {name} cannot be read, so its ListenStream= ports are not \
                                 checked: {}",
                                e.detail()
                            ));
                            Vec::new()
                        }
                    }
                } else {
                    Vec::new()
                };
                units.push(UnitFacts {
                    name,
                    wanted_by: target.to_owned(),
                    listen,
                });
            }
        }
        if any {
            return units;
        }
    }
    Vec::new()
}

/// A text file of at most `limit` bytes; `None` when it cannot be read or is not UTF-8, `Err`
/// with the reason when it is there but the reader lacks what it needs.
fn read_text(root: &Volume, path: &str, limit: u64) -> Result<Option<String>, String> {
    match root.read_limited(path, limit, "text file") {
        Ok(bytes) => Ok(String::from_utf8(bytes).ok()),
        Err(e @ ImageError::Unsupported { .. }) => Err(e.detail()),
        Err(_) => Ok(None),
    }
}

/// A unit name: a known suffix, and letters, digits and `:-_.\@` only.
fn is_unit_name(name: &str) -> bool {
    const SUFFIXES: [&str; 11] = [
        ".service",
        ".socket",
        ".timer",
        ".target",
        ".path",
        ".mount",
        ".automount",
        ".swap",
        ".slice",
        ".scope",
        ".device",
    ];
    name.len() <= 256
        && SUFFIXES
            .iter()
            .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// The entries of a parsed extlinux.conf.
pub fn entries_of(config: &Config) -> Vec<EntryFacts> {
    config
        .labels
        .iter()
        .map(|label| {
            let system = label
                .append
                .as_deref()
                .and_then(init_system)
                .map(|(_, name)| name.to_owned());
            EntryFacts {
                label: label.name.clone(),
                // Told once the root is read; without a store path's init it is no NixOS system.
                nixos: if system.is_some() { None } else { Some(false) },
                system,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_is_the_directory_of_the_last_init() {
        assert_eq!(
            init_system("root=LABEL=NIXOS_SD init=/nix/store/a-old/init init=/nix/store/b-nixos-system-ivy-25.05/init"),
            Some(("/nix/store/b-nixos-system-ivy-25.05", "b-nixos-system-ivy-25.05"))
        );
        assert_eq!(init_system("init=/sbin/init"), None);
        assert_eq!(init_system("init=/nix/store/a/b/init"), None);
        assert_eq!(init_system("root=/dev/sda"), None);
        assert_eq!(init_system("init=/bin/sh"), None);
    }

    #[test]
    fn unit_names_have_a_known_suffix_and_quotable_characters() {
        assert!(is_unit_name("sshd.service"));
        assert!(is_unit_name("getty@tty1.service"));
        assert!(is_unit_name("dev-disk-by\\x2dlabel-NIXOS_SD.device"));
        for bad in ["sshd", ".service", "a b.service", "a\"b.service", "x.conf"] {
            assert!(!is_unit_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_names_a_scenario_can_quote_are_hostnames() {
        assert!(is_hostname("ivy"));
        assert!(is_hostname("nixos-r2s.lan"));
        for bad in ["", "a b", "a$b", "a/b", "ä", &"x".repeat(254)] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }
}
