//! Which filesystem a boot entry's stage 1 mounts as the root, read from what decides it:
//!
//! 1. NixOS's scripted stage 1 mounts what its `fsInfo` lists for `/` (a store file in the
//!    initrd), whatever `root=` says;
//! 2. else a `root=` that names a device (initramfs-tools, dracut, systemd in an initrd all
//!    mount it); `root=fstab` and `root=gpt-auto` name none;
//! 3. else systemd in an initrd mounts its fstab's `/sysroot` (the initrd's `/etc/fstab`, or the
//!    store fstab NixOS names in `SYSTEMD_SYSROOT_FSTAB`, where the root is `/`);
//! 4. else the root filesystem's own `/etc/fstab` entry for `/` (the booted system's
//!    `<system>/etc/fstab` first: NixOS fills `/etc` only when it activates);
//! 5. else [`DEFAULT_ROOT_LABEL`], NixOS's sd-image label.
//!
//! Every read is bounded (the initrd by [`initrd::Limits`], fstab files by
//! [`FSTAB_LIMIT`]); what cannot be read is skipped, and the next source decides.

use std::fmt;
use std::path::Path;

use super::boot_config::Found;
use super::error::ImageError;
use super::extlinux::Label;
use super::fs::probe_filesystem;
use super::fs_kind::FsKind;
use super::initrd::{self, RootFiles};
use super::partition::{Partition, Table};
use super::volume::Volume;
use crate::file_memo::FileMemo;

/// The root filesystem's label when nothing on the image names the root: NixOS's sd-image
/// default.
pub const DEFAULT_ROOT_LABEL: &str = "NIXOS_SD";

/// The most an initrd read for its root files may be (as for its modules).
const INITRD_LIMIT: u64 = 512 << 20;
/// The most an `/etc/fstab` may be: a few lines.
const FSTAB_LIMIT: u64 = 64 << 10;

/// Where a root device was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// NixOS scripted stage 1's fsInfo in the initrd.
    InitrdFsInfo,
    /// `root=` on the kernel command line.
    CommandLine,
    /// The initrd's fstab, `/sysroot` (or a NixOS store fstab's `/`).
    InitrdFstab,
    /// The root filesystem's `/etc/fstab`, `/`.
    RootFstab,
    /// Nothing named it: [`DEFAULT_ROOT_LABEL`].
    Default,
}

impl fmt::Display for RootSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RootSource::InitrdFsInfo => "the initrd's fsInfo (NixOS's scripted stage 1)",
            RootSource::CommandLine => "root= on the kernel command line",
            RootSource::InitrdFstab => "the initrd's fstab (systemd stage 1)",
            RootSource::RootFstab => "the root filesystem's /etc/fstab",
            RootSource::Default => "NixOS's default, as nothing on the image names another",
        })
    }
}

/// The root device a boot entry's stage 1 mounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootDevice {
    /// As written where it was read: `/dev/disk/by-label/NIXOS_SD`, `LABEL=NIXOS_SD`,
    /// `PARTUUID=…`, `/dev/mmcblk0p2`.
    pub device: String,
    /// Where.
    pub source: RootSource,
    /// When nothing named the root ([`RootSource::Default`]) but an fstab that might have
    /// could not be read (a compressed f2fs file): why, so that the default is not mistaken
    /// for what the image says.
    pub unread_fstab: Option<String>,
}

/// What a device specification names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A filesystem label.
    Label(String),
    /// A filesystem UUID.
    Uuid(String),
    /// A partition's PARTUUID.
    PartUuid(String),
    /// A device path the image cannot say anything about (`/dev/mmcblk0p2`).
    Other,
}

impl RootDevice {
    /// The default root: [`DEFAULT_ROOT_LABEL`].
    pub fn default_label() -> RootDevice {
        RootDevice::new(
            format!("/dev/disk/by-label/{DEFAULT_ROOT_LABEL}"),
            RootSource::Default,
        )
    }

    /// `device`, read from `source`.
    pub fn new(device: String, source: RootSource) -> RootDevice {
        RootDevice {
            device,
            source,
            unread_fstab: None,
        }
    }

    /// What [`RootDevice::device`] names.
    pub fn spec(&self) -> DeviceSpec {
        device_spec(&self.device)
    }

    /// The label it names, if it names one.
    pub fn label(&self) -> Option<String> {
        match self.spec() {
            DeviceSpec::Label(label) => Some(label),
            _ => None,
        }
    }

    /// The device path the initrd waits for (udev's by-label, by-uuid, by-partuuid links).
    pub fn wait_path(&self) -> Option<String> {
        match self.spec() {
            DeviceSpec::Label(label) => Some(format!("/dev/disk/by-label/{label}")),
            DeviceSpec::Uuid(uuid) => Some(format!("/dev/disk/by-uuid/{uuid}")),
            DeviceSpec::PartUuid(uuid) => Some(format!("/dev/disk/by-partuuid/{uuid}")),
            DeviceSpec::Other => None,
        }
    }

    /// Whether `partition`, holding `fs`, is this device; `None` when the image cannot tell
    /// (a device path, a filesystem UUID).
    pub fn is(&self, partition: &Partition, fs: &FsKind) -> Option<bool> {
        match self.spec() {
            DeviceSpec::Label(label) => Some(fs.label() == Some(label.as_str())),
            DeviceSpec::PartUuid(uuid) => Some(partition.partuuid.eq_ignore_ascii_case(&uuid)),
            DeviceSpec::Uuid(_) | DeviceSpec::Other => None,
        }
    }

    /// `/dev/disk/by-label/NIXOS_SD (from the initrd's fstab (systemd stage 1))`; the default
    /// with an fstab that could not be read says so and why.
    pub fn describe(&self) -> String {
        match &self.unread_fstab {
            Some(why) if self.source == RootSource::Default => format!(
                "{} (NixOS's default, but an fstab that may name another cannot be read: {why})",
                self.device
            ),
            _ => format!("{} (from {})", self.device, self.source),
        }
    }
}

/// What `device` names: `LABEL=`, `UUID=`, `PARTUUID=` or their `/dev/disk/by-*/` links
/// (`\x20`-style escapes in a link's name undone).
pub fn device_spec(device: &str) -> DeviceSpec {
    /// A `KEY=` prefix, the udev link directory of the same, and what they name.
    type Form = (&'static str, &'static str, fn(String) -> DeviceSpec);
    let pairs: [Form; 3] = [
        ("LABEL=", "/dev/disk/by-label/", DeviceSpec::Label),
        ("UUID=", "/dev/disk/by-uuid/", DeviceSpec::Uuid),
        ("PARTUUID=", "/dev/disk/by-partuuid/", DeviceSpec::PartUuid),
    ];
    for (key, link, make) in pairs {
        if let Some(value) = device.strip_prefix(key) {
            return make(value.trim_matches('"').to_owned());
        }
        if let Some(value) = device.strip_prefix(link) {
            return make(unescape_udev(value));
        }
    }
    DeviceSpec::Other
}

/// udev's link names escape characters as `\xNN`.
fn unescape_udev(name: &str) -> String {
    unescape(name, 4, |escape| {
        let hex = escape.strip_prefix(b"\\x")?;
        u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    })
}

/// `text` with each escape of `len` bytes that `decode` takes replaced by its byte.
fn unescape(text: &str, len: usize, decode: impl Fn(&[u8]) -> Option<u8>) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i..i + len).and_then(&decode) {
            Some(byte) => {
                out.push(byte);
                i += len;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the command line's last `root=` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLineRoot {
    /// No `root=`.
    Absent,
    /// `root=fstab`: systemd in the initrd mounts its fstab's `/sysroot` (NixOS ≥ 26.05's
    /// default, `boot.initrd.systemd.root`).
    Fstab,
    /// `root=gpt-auto`: systemd finds the root by its GPT partition type.
    GptAuto,
    /// A device.
    Device(String),
}

/// The last `root=` of `append`, as the kernel and the initrds take it.
pub fn command_line_root(append: &str) -> CommandLineRoot {
    match append
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("root="))
        .next_back()
    {
        None => CommandLineRoot::Absent,
        Some("fstab") => CommandLineRoot::Fstab,
        Some("gpt-auto") => CommandLineRoot::GptAuto,
        Some(device) => CommandLineRoot::Device(device.to_owned()),
    }
}

/// The device of `mount_point` in fstab `text` (comments and malformed lines skipped, the
/// last entry winning, `\040`-style escapes undone).
pub fn fstab_device(text: &str, mount_point: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let point = fields.next()?;
            (normal_mount_point(&unescape_octal(point)) == normal_mount_point(mount_point))
                .then(|| unescape_octal(device))
        })
        .next_back()
}

/// A mount point without trailing slashes (`/` stays `/`).
fn normal_mount_point(point: &str) -> &str {
    match point.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// fstab's `\040` (octal) escapes undone.
fn unescape_octal(field: &str) -> String {
    unescape(field, 4, |escape| {
        let octal = escape.strip_prefix(b"\\")?;
        u8::from_str_radix(std::str::from_utf8(octal).ok()?, 8).ok()
    })
}

/// The device NixOS's scripted stage 1 mounts at `/`: fsInfo is four lines per filesystem,
/// mount point, device, type, options.
pub fn fs_info_device(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(4)
        .find(|group| group.len() >= 2 && group[0] == "/")
        .map(|group| group[1].to_owned())
}

/// Decides the root device from what was read, in the order of this module's description.
/// `root_fstab` is the root filesystem's fstab, read only when the others do not say.
pub fn decide(
    initrd: Option<&RootFiles>,
    append: &str,
    root_fstab: impl FnOnce() -> Option<String>,
) -> RootDevice {
    let found = RootDevice::new;
    if let Some(device) = initrd.and_then(|f| f.fs_info.as_deref()).and_then(fs_info_device) {
        return found(device, RootSource::InitrdFsInfo);
    }
    if let CommandLineRoot::Device(device) = command_line_root(append) {
        return found(device, RootSource::CommandLine);
    }
    let initrd_fstab = initrd.and_then(|files| {
        files
            .fstab
            .as_deref()
            .and_then(|text| fstab_device(text, "/sysroot"))
            .or_else(|| {
                files
                    .store_fstab
                    .as_deref()
                    .and_then(|text| fstab_device(text, "/"))
            })
    });
    if let Some(device) = initrd_fstab {
        return found(device, RootSource::InitrdFstab);
    }
    match root_fstab().and_then(|text| fstab_device(&text, "/")) {
        Some(device) => found(device, RootSource::RootFstab),
        None => RootDevice::default_label(),
    }
}

/// The root device of boot entry `label` of `found` on `image` (whose partition `table` is
/// given): its initrd's files, its command line, the root filesystem's fstab.
pub fn read(image: &Path, table: &Table, found: &Found, label: &Label) -> RootDevice {
    let append = label.append.as_deref().unwrap_or("");
    decide_reading(image, table, found, label, append)
}

/// [`decide`] for entry `label` with `append` as its command line, from the initrd's files and
/// the root filesystem's fstab; a default chosen while an fstab could not be read says why.
fn decide_reading(image: &Path, table: &Table, found: &Found, label: &Label, append: &str) -> RootDevice {
    let initrd = read_initrd(image, table, found, label);
    let entry_append = label.append.as_deref().unwrap_or("");
    let mut unread = None;
    let mut root = decide(initrd.as_ref(), append, || {
        let (text, why) = read_root_fstab(image, table, entry_append);
        unread = why;
        text
    });
    if root.source == RootSource::Default {
        root.unread_fstab = unread;
    }
    root
}

/// What the image itself names as the root filesystem for entry `label`: [`read`] without its
/// command line's `root=` (which is the entry's, not the image's).
pub fn read_image_root(image: &Path, table: &Table, found: &Found, label: &Label) -> RootDevice {
    decide_reading(image, table, found, label, "")
}

/// The root device of the entry U-Boot boots by default (the first, without a default).
/// Remembered per version of the file for the rest of the process ([`FileMemo`]): the facts
/// and the root-disk hints both ask.
pub fn read_default(image: &Path, table: &Table, found: &Found) -> RootDevice {
    static SEEN: FileMemo<RootDevice> = FileMemo::new();
    let detail = format!("{} {}", found.partition, found.path);
    SEEN.get_or(image, &detail, || {
        match found.config.default_label().or(found.config.labels.first()) {
            Some(label) => read(image, table, found, label),
            None => RootDevice::default_label(),
        }
    })
}

/// The root files of the entry's initrds (a later one's replace an earlier one's, as the
/// kernel unpacks them); `None` when none can be read.
fn read_initrd(image: &Path, table: &Table, found: &Found, label: &Label) -> Option<RootFiles> {
    let volume = Volume::open_index(image, table, found.partition).ok()?;
    let mut files: Option<RootFiles> = None;
    for part in label.initrd.iter().flat_map(|i| i.split(',')) {
        let path = found.resolve(part.trim());
        let Ok(bytes) = volume.read_limited(&path, INITRD_LIMIT, "an initrd read for its root files") else {
            continue;
        };
        let Ok(index) = initrd::read(&bytes) else {
            continue;
        };
        let merged = files.get_or_insert_with(RootFiles::default);
        let read = index.root_files;
        merged.fstab = read.fstab.or(merged.fstab.take());
        merged.store_fstab = read.store_fstab.or(merged.store_fstab.take());
        merged.fs_info = read.fs_info.or(merged.fs_info.take());
    }
    files
}

/// The first `/etc/fstab` with an entry for `/` on a partition of the image: the booted
/// system's (`<system>/etc/fstab`, the directory of the command line's `init=`) before the
/// root's own; and, when none is found, why an fstab that is there could not be read (the
/// reader lacks what it needs: a compressed or encrypted f2fs file).
fn read_root_fstab(image: &Path, table: &Table, append: &str) -> (Option<String>, Option<String>) {
    let system = super::modules::on_root::init_of(Some(append))
        .and_then(|init| init.strip_suffix("/init"))
        .filter(|dir| dir.starts_with("/nix/store/"));
    let mut unreadable = None;
    let paths: Vec<String> = system
        .map(|dir| format!("{dir}/etc/fstab"))
        .into_iter()
        .chain(std::iter::once("/etc/fstab".to_owned()))
        .collect();
    for partition in &table.partitions {
        let Ok(kind) = probe_filesystem(image, partition) else {
            continue;
        };
        let Ok(Some(volume)) = Volume::open(image, partition, &kind) else {
            continue;
        };
        for path in &paths {
            match volume.read_text(path, FSTAB_LIMIT, "an fstab") {
                Ok(text) if fstab_device(&text, "/").is_some() => return (Some(text), None),
                Ok(_) => {}
                Err(e @ ImageError::Unsupported { .. }) => {
                    unreadable.get_or_insert_with(|| e.detail());
                }
                // Not there (on the boot partition, or before activation): nothing to say.
                Err(_) => {}
            }
        }
    }
    (None, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initrd(fstab: Option<&str>, store_fstab: Option<&str>, fs_info: Option<&str>) -> RootFiles {
        RootFiles {
            fstab: fstab.map(str::to_owned),
            store_fstab: store_fstab.map(str::to_owned),
            fs_info: fs_info.map(str::to_owned),
        }
    }

    fn never() -> Option<String> {
        panic!("the root filesystem's fstab was read although the initrd or command line said")
    }

    const FS_INFO: &str = "/\n/dev/disk/by-label/NIXOS_SD_USB\next4\ndefaults\n/boot\n/dev/disk/by-label/FIRMWARE\nvfat\nnofail";

    #[test]
    fn scripted_stage_1_mounts_what_its_fs_info_lists_for_the_root_whatever_root_says() {
        let files = initrd(None, None, Some(FS_INFO));
        let root = decide(Some(&files), "root=LABEL=OTHER init=/x/init", never);
        assert_eq!(
            root,
            RootDevice::new(
                "/dev/disk/by-label/NIXOS_SD_USB".to_owned(),
                RootSource::InitrdFsInfo
            )
        );
        assert_eq!(root.label().as_deref(), Some("NIXOS_SD_USB"));
    }

    #[test]
    fn a_root_parameter_naming_a_device_comes_before_an_initrd_fstab() {
        let files = initrd(Some("/dev/disk/by-label/A /sysroot ext4 defaults"), None, None);
        let root = decide(Some(&files), "root=PARTUUID=1234-02 rootwait", never);
        assert_eq!(root.device, "PARTUUID=1234-02");
        assert_eq!(root.source, RootSource::CommandLine);
        assert_eq!(root.spec(), DeviceSpec::PartUuid("1234-02".to_owned()));
    }

    #[test]
    fn root_fstab_or_no_root_takes_the_initrd_fstab_s_sysroot() {
        let files = initrd(
            Some("# comment\n/dev/disk/by-label/EFI /sysroot/boot vfat defaults\nLABEL=NIXOS_SD /sysroot ext4 defaults 0 1\n"),
            None,
            None,
        );
        for append in ["root=fstab init=/x/init", "init=/x/init"] {
            let root = decide(Some(&files), append, never);
            assert_eq!(root.device, "LABEL=NIXOS_SD", "{append}");
            assert_eq!(root.source, RootSource::InitrdFstab, "{append}");
        }
    }

    #[test]
    fn a_nixos_store_fstab_names_the_root_at_slash() {
        let files = initrd(
            None,
            Some("/dev/disk/by-label/NIXOS_SD / ext4 x-initrd.mount 0 1\n"),
            None,
        );
        let root = decide(Some(&files), "root=fstab", never);
        assert_eq!(root.device, "/dev/disk/by-label/NIXOS_SD");
        assert_eq!(root.source, RootSource::InitrdFstab);
    }

    #[test]
    fn the_root_filesystem_s_fstab_decides_when_the_initrd_and_command_line_do_not() {
        let root = decide(Some(&initrd(None, None, None)), "root=fstab", || {
            Some("UUID=44444444-4444-4444-8888-888888888888 / ext4 defaults 0 1\n".to_owned())
        });
        assert_eq!(root.source, RootSource::RootFstab);
        assert_eq!(
            root.spec(),
            DeviceSpec::Uuid("44444444-4444-4444-8888-888888888888".to_owned())
        );
    }

    #[test]
    fn nixos_sd_is_the_root_only_when_nothing_names_one() {
        let root = decide(None, "init=/x/init", || {
            Some("proc /proc proc defaults\n".to_owned())
        });
        assert_eq!(root, RootDevice::default_label());
        assert_eq!(root.label().as_deref(), Some(DEFAULT_ROOT_LABEL));
        assert_eq!(root.source, RootSource::Default);
    }

    #[test]
    fn escaped_names_are_unescaped() {
        assert_eq!(
            device_spec("/dev/disk/by-label/MY\\x20ROOT"),
            DeviceSpec::Label("MY ROOT".to_owned())
        );
        assert_eq!(
            fstab_device("LABEL=MY\\040ROOT /sysroot ext4 defaults", "/sysroot").as_deref(),
            Some("LABEL=MY ROOT")
        );
        assert_eq!(device_spec("/dev/mmcblk0p2"), DeviceSpec::Other);
    }

    #[test]
    fn the_last_root_parameter_counts_and_fstab_and_gpt_auto_name_no_device() {
        assert_eq!(
            command_line_root("root=/dev/sda2 root=fstab"),
            CommandLineRoot::Fstab
        );
        assert_eq!(command_line_root("root=gpt-auto"), CommandLineRoot::GptAuto);
        assert_eq!(command_line_root("rootwait"), CommandLineRoot::Absent);
        assert_eq!(
            command_line_root("root=fstab root=LABEL=X"),
            CommandLineRoot::Device("LABEL=X".to_owned())
        );
    }

    #[test]
    fn the_wait_path_is_udev_s_link() {
        let root = RootDevice::new("LABEL=NIXOS_SD".to_owned(), RootSource::CommandLine);
        assert_eq!(root.wait_path().as_deref(), Some("/dev/disk/by-label/NIXOS_SD"));
    }
}
