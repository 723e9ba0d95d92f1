//! The hint for a boot whose stage 1 did not find its root filesystem under QEMU: which root
//! device the image's stage 1 waits for when no filesystem of the image is it, or when its
//! disk is on a bus the image's kernel and initrd cannot drive ([`AbsentRoot`], which also ends
//! the run as soon as systemd says it waits for it), which bus the image's disk
//! was on and what the image's kernel and initrd can drive, as [`RunContext::root_disk`] says
//! (the command line fills it in from [`crate::adapt::disk_bus`]).

use std::path::Path;

use super::watch::{Diagnosis, Watch, WatchKind};
use super::{Failure, RunContext, Stage};
use crate::console::Pattern;
use crate::image::fs::probe_filesystem;
use crate::image::root_device::{self, RootDevice};
use crate::image::{boot_config, Table};

/// What initrds print when they give up on the root device (NixOS, initramfs-tools, dracut,
/// systemd).
const GAVE_UP: [&str; 7] = [
    "An error occurred in stage 1",
    "Timed out waiting for device",
    "Gave up waiting for root",
    "does not exist.  Dropping to a shell",
    "Dropping to a shell",
    "dracut-initqueue timeout",
    "Entering emergency mode",
];

/// The root device the image's stage 1 waits for, when it can never appear: no filesystem of
/// the image is it, or its disk is on a bus stage 1 cannot drive. Under QEMU the image is the
/// run's only disk, so systemd in an initrd would wait 90 s (`Timed out waiting for device`),
/// NixOS's scripted stage 1 20 s, initramfs-tools 180 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsentRoot {
    /// The root device and where it was read.
    pub root: RootDevice,
    /// The path the initrd waits for: `/dev/disk/by-label/NIXOS_SD`.
    pub wait_path: String,
    /// Why it never appears.
    pub why: Absence,
}

/// Why a root device never appears under QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Absence {
    /// No filesystem of the image is it; the image's filesystems, `1 "NIXOS_BOOT", 2 "nixos"`.
    NoFilesystem { labels: String },
    /// The image's disk is on `bus`, which the image's kernel and initrd cannot drive: these
    /// drivers are neither built in nor in the initrd.
    Undrivable { bus: String, missing: String },
}

impl AbsentRoot {
    /// The absent root of `root` on an image whose partitions hold the filesystems `labels`
    /// (`(partition, label, whether it is the root device)`); `None` when one of them is it, or
    /// when the image cannot tell (a device path, a filesystem UUID).
    pub fn of(root: RootDevice, filesystems: &[(u32, Option<String>, Option<bool>)]) -> Option<AbsentRoot> {
        let wait_path = root.wait_path()?;
        if filesystems.iter().any(|(_, _, is)| *is != Some(false)) {
            return None;
        }
        let labels: Vec<String> = filesystems
            .iter()
            .map(|(index, label, _)| match label {
                Some(label) => format!("{index} {label:?}"),
                None => format!("{index} unlabelled"),
            })
            .collect();
        Some(AbsentRoot {
            root,
            wait_path,
            why: Absence::NoFilesystem {
                labels: if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(", ")
                },
            },
        })
    }

    /// Reads `image`: the root device of its default boot entry, and whether a filesystem of
    /// the image is it. `None` when it is there, or the image cannot be read so far.
    pub fn of_image(image: &Path) -> Option<AbsentRoot> {
        let (root, filesystems) = read_root(image)?;
        AbsentRoot::of(root, &filesystems)
    }

    /// The root device of `image`'s default boot entry, on a disk attached on `bus` that the
    /// image's kernel and initrd cannot drive (`missing` drivers): it never appears, wherever it
    /// is. `None` when the image does not say which device stage 1 waits for.
    pub fn undrivable(image: &Path, bus: &str, missing: &[&str]) -> Option<AbsentRoot> {
        let (root, _) = read_root(image)?;
        Some(AbsentRoot {
            wait_path: root.wait_path()?,
            root,
            why: Absence::Undrivable {
                bus: bus.to_owned(),
                missing: missing.join(", "),
            },
        })
    }

    /// The watch that ends a run as soon as systemd says it waits for the device: `Expecting
    /// device dev-disk-…m - /dev/disk/by-label/NIXOS_SD...` when it queues the wait, `A start
    /// job is running for …` while it waits. systemd shortens these status lines to the
    /// console's width by cutting out their middle (`…`), so the path is also taken when only
    /// its end is left after the cut (the whole label), or its start and end around one
    /// ([`waiting_for`]).
    pub fn watch(&self) -> Watch {
        Watch {
            kind: WatchKind::Diagnosed(Diagnosis::RootAbsent),
            pattern: Pattern::regex(&waiting_for(&self.wait_path))
                .expect("an escaped path makes a valid pattern"),
        }
    }

    /// Whether console line `line` says that stage 1 waits for the device.
    pub fn waited_for_in(&self, line: &str) -> bool {
        match self.watch().pattern {
            Pattern::Regex(re) => re.is_match(line.as_bytes()),
            Pattern::Literal(text) => line.contains(&text),
        }
    }

    /// What the report says: the device, where it was named, the image's filesystems, and how
    /// to fix it.
    pub fn hint(&self) -> String {
        match &self.why {
            Absence::NoFilesystem { labels } => {
                let fix = match self.root.label() {
                    Some(label) => format!(
                        "label the root filesystem {label} (`e2label /dev/sdX2 {label}`), or name its label in \
                         fileSystems.\"/\".device"
                    ),
                    None => "name the root filesystem's device in fileSystems.\"/\".device".to_owned(),
                };
                format!(
                    "stage 1 waits for {} (named by {}), and no filesystem of the image is it (the image's \
                     filesystems: {labels}): {fix}",
                    self.wait_path, self.root.source
                )
            }
            Absence::Undrivable { bus, missing } => format!(
                "stage 1 waits for {} (named by {}) on the root disk on {bus}, which the image's kernel \
                 and initrd cannot drive (missing: {missing}): put its drivers in the initrd \
                 (boot.initrd.availableKernelModules), or let the harness add them (without --no-adapt)",
                self.wait_path, self.root.source
            ),
        }
    }
}

/// The regex of a systemd status line saying it waits for `path` (`/dev/disk/by-label/L`):
/// the whole path, or what systemd's cut in the middle (`…`) leaves of it: its whole last
/// component after the cut (`…bel/NIXOS_SD_USB...`), or its start and the last component's
/// last two characters around the cut (`/dev/disk/by-la…SD_USB (1min 2s / 1min 30s)`). A
/// shortened form must be followed by what ends the line (`...`, ` (`): a line the matcher has
/// seen only part of is not taken.
fn waiting_for(path: &str) -> String {
    let whole = regex::escape(path);
    let last = path.rsplit('/').next().unwrap_or(path);
    let tail: String = {
        let chars: Vec<char> = last.chars().collect();
        chars[chars.len().saturating_sub(2)..].iter().collect()
    };
    let (last, tail) = (regex::escape(last), regex::escape(&tail));
    format!(
        r"(Expecting device|A start job is running for) .*(?:{whole}(\.\.\.| |$)|(?:…(?:\S*[/-])?{last}|/dev/\S*…\S*{tail})(?:\.\.\.| \())"
    )
}

/// Per partition of an image: its index, its filesystem's label, and whether it is the root
/// device (`None`: cannot tell).
type Filesystems = Vec<(u32, Option<String>, Option<bool>)>;

/// The root device of `image`'s default boot entry and its [`Filesystems`]; `None` when the
/// image cannot be read so far.
fn read_root(image: &Path) -> Option<(RootDevice, Filesystems)> {
    let found = boot_config::find(image).ok()?;
    let table = Table::read(image).ok()?;
    let root = root_device::read_default(image, &table, &found);
    let filesystems = table
        .partitions
        .iter()
        .map(|partition| {
            let fs = probe_filesystem(image, partition).ok();
            let label = fs.as_ref().and_then(|fs| fs.label().map(str::to_owned));
            let is = fs.as_ref().and_then(|fs| root.is(partition, fs));
            (partition.index, label, is)
        })
        .collect();
    Some((root, filesystems))
}

/// The hint for `failure`, if the run was on QEMU and the failure looks like stage 1 not
/// finding its root: it failed in stage 1 (or the initramfs stage), or the console's last
/// lines show an initrd giving up, or waiting for the absent root. The hint of a root absent
/// from the image's filesystems comes first when there is one.
pub fn missing_root_hint(ctx: &RunContext, failure: &Failure, last_lines: &[String]) -> Option<String> {
    let bus = ctx.root_disk.as_ref()?;
    let in_stage_1 = matches!(failure.stage, Stage::Stage1 | Stage::Initramfs);
    let reason = failure.reason.to_string();
    let mut lines = last_lines
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(reason.as_str()));
    let gave_up = lines.any(|line| {
        GAVE_UP.iter().any(|phrase| line.contains(phrase))
            || ctx
                .absent_root
                .as_ref()
                .is_some_and(|absent| absent.waited_for_in(line))
    });
    if !(in_stage_1 || gave_up) {
        return None;
    }
    Some(match &ctx.absent_root {
        // A disk stage 1 cannot drive is what the bus's hint says already.
        Some(absent) if matches!(absent.why, Absence::NoFilesystem { .. }) => {
            format!("{}; {bus}", absent.hint())
        }
        _ => bus.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::root_device::RootSource;
    use crate::runner::FailReason;

    fn initrd_fstab_root(device: &str) -> RootDevice {
        RootDevice::new(device.to_owned(), RootSource::InitrdFstab)
    }

    fn relabelled() -> Vec<(u32, Option<String>, Option<bool>)> {
        vec![
            (1, Some("NIXOS_BOOT".to_owned()), Some(false)),
            (2, Some("nixos".to_owned()), Some(false)),
        ]
    }

    #[test]
    fn a_label_no_filesystem_carries_is_absent_and_the_hint_names_it_and_its_source() {
        let absent = AbsentRoot::of(initrd_fstab_root("/dev/disk/by-label/NIXOS_SD"), &relabelled()).unwrap();
        assert_eq!(
            absent.hint(),
            "stage 1 waits for /dev/disk/by-label/NIXOS_SD (named by the initrd's fstab (systemd stage 1)), and no \
             filesystem of the image is it (the image's filesystems: 1 \"NIXOS_BOOT\", 2 \"nixos\"): label the root \
             filesystem NIXOS_SD (`e2label /dev/sdX2 NIXOS_SD`), or name its label in fileSystems.\"/\".device"
        );
    }

    #[test]
    fn a_root_one_filesystem_is_or_the_image_cannot_judge_is_not_absent() {
        let mut present = relabelled();
        present[1].2 = Some(true);
        assert_eq!(AbsentRoot::of(initrd_fstab_root("LABEL=nixos"), &present), None);
        assert_eq!(
            AbsentRoot::of(initrd_fstab_root("/dev/mmcblk0p2"), &relabelled()),
            None
        );
        let mut unknown = relabelled();
        unknown[1].2 = None;
        assert_eq!(AbsentRoot::of(initrd_fstab_root("UUID=abc"), &unknown), None);
    }

    fn timed_out_in(stage: Stage) -> Failure {
        Failure {
            step: 1,
            step_description: "expect \"login:\"".to_owned(),
            expected: "login:".to_owned(),
            reason: FailReason::Timeout {
                waited: std::time::Duration::from_secs(60),
            },
            at: std::time::Duration::from_secs(70),
            stage,
            hint: None,
        }
    }

    #[test]
    fn a_failure_in_an_initrd_s_stage_gets_the_disk_hint_and_one_after_it_does_not() {
        let ctx = RunContext {
            root_disk: Some("the root disk was on virtio-blk".to_owned()),
            ..RunContext::default()
        };
        for stage in [Stage::Initramfs, Stage::Stage1] {
            assert_eq!(
                missing_root_hint(&ctx, &timed_out_in(stage.clone()), &[]).as_deref(),
                Some("the root disk was on virtio-blk"),
                "{stage}"
            );
        }
        assert_eq!(missing_root_hint(&ctx, &timed_out_in(Stage::Systemd), &[]), None);
    }

    #[test]
    fn the_absent_root_s_hint_comes_before_the_disk_s_once_systemd_waited_for_it() {
        let ctx = RunContext {
            root_disk: Some("the root disk was on virtio-blk".to_owned()),
            absent_root: AbsentRoot::of(initrd_fstab_root("LABEL=NIXOS_SD"), &relabelled()),
            ..RunContext::default()
        };
        let waited = ["         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD...".to_owned()];
        let hint = missing_root_hint(&ctx, &timed_out_in(Stage::Kernel), &waited).unwrap();
        assert!(
            hint.starts_with("stage 1 waits for /dev/disk/by-label/NIXOS_SD (named by the initrd's fstab")
                && hint.ends_with("; the root disk was on virtio-blk"),
            "{hint}"
        );
    }

    #[test]
    fn a_root_on_a_disk_stage_1_cannot_drive_is_waited_for_pointlessly_and_the_bus_s_hint_says_why() {
        let root = initrd_fstab_root("LABEL=NIXOS_SD");
        let absent = AbsentRoot {
            wait_path: root.wait_path().unwrap(),
            root,
            why: Absence::Undrivable {
                bus: "virtio-blk (virtio-mmio)".to_owned(),
                missing: "virtio_blk, virtio_mmio".to_owned(),
            },
        };
        let waited = ["         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD...".to_owned()];
        assert!(absent.waited_for_in(&waited[0]));
        let ctx = RunContext {
            root_disk: Some("the root disk was on virtio-blk (virtio-mmio) (no bus …)".to_owned()),
            absent_root: Some(absent),
            ..RunContext::default()
        };
        let hint = missing_root_hint(&ctx, &timed_out_in(Stage::Initramfs), &waited).unwrap();
        assert_eq!(hint, "the root disk was on virtio-blk (virtio-mmio) (no bus …)");
    }

    #[test]
    fn the_watch_takes_systemd_s_expecting_and_start_job_lines_for_the_device_only() {
        let absent = AbsentRoot::of(initrd_fstab_root("LABEL=NIXOS_SD"), &relabelled()).unwrap();
        for line in [
            "         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD...",
            "[  *** ] A start job is running for /dev/disk/by-label/NIXOS_SD (5s / 1min 30s)",
            "Expecting device /dev/disk/by-label/NIXOS_SD...",
        ] {
            assert!(absent.waited_for_in(line), "{line}");
        }
        for line in [
            "         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD_USB...",
            "         Expecting device dev-ttyAMA0.device - /dev/ttyAMA0...",
            "waiting for device /dev/disk/by-label/NIXOS_SD to appear...",
            "[  *** ] A start job is running for /dev/disk/by-label/NIXOS_BOOT (5s / 1min 30s)",
            "[  *** ] A start job is running for /dev/disk/by-la…OOT (5s / 1min 30s)",
            "         Expecting device dev-disk-by…bel/NIXOS_SD_USB...",
        ] {
            assert!(!absent.waited_for_in(line), "{line}");
        }
    }

    /// systemd 252's status lines for a longer label on an 80-column console: it cuts out the
    /// middle of a line too long for the console (the `m` is what the cut left of a colour
    /// sequence), so the path may lose its start, or its middle.
    #[test]
    fn the_watch_takes_systemd_s_lines_shortened_to_the_console_s_width() {
        let absent = AbsentRoot::of(initrd_fstab_root("LABEL=NIXOS_SD_USB"), &relabelled()).unwrap();
        for line in [
            "         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD_USB...",
            "         Expecting device dev-disk-by…bel/NIXOS_SD_USB...",
            "         Expecting device dev-disk-by\\x2dlabel-NIXOS_S…NIXOS_SD_USB...",
            "[  *** ] A start job is running for /dev/disk/by-label/NIXOS_SD_USB (1min 2s / 1min 30s)",
            "[  *** ] A start job is running for /dev/disk/by-la…SD_USB (1min 2s / 1min 30s)",
            "[ ***  ] A start job is running for /dev/…SB (12s / 1min 30s)",
        ] {
            assert!(absent.waited_for_in(line), "{line}");
        }
        for line in [
            "         Expecting device dev-disk-…m - /dev/disk/by-label/NIXOS_SD...",
            "[  *** ] A start job is running for /dev/disk/by-la…OOT (1min 2s / 1min 30s)",
            // Only part of the line has arrived: the label may go on.
            "[  *** ] A start job is running for /dev/disk/by-la…SD_U",
        ] {
            assert!(!absent.waited_for_in(line), "{line}");
        }
    }
}
