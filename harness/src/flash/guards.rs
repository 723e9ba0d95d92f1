//! The refusals that keep `harness flash` off disks that are not the card: a disk the running
//! system uses (its root, /boot, swap, any mount), one inside an md/LVM/dm stack, one that is
//! not removable, one larger than any card is likely to be.

use std::collections::BTreeSet;

use super::device::{human_size, BlockDevice, Sysroot};
use super::mounts::{self, InUse};

/// Disks above this size are refused unless allowed: few SD cards are larger.
pub const LARGE: u64 = 256 << 30;

/// What the user allowed on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// `--allow-fixed`: a disk that is not removable.
    pub fixed: bool,
    /// `--allow-large`: a disk above [`LARGE`].
    pub large: bool,
}

/// Why a disk is not written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("/dev/{disk} holds the running system's {what} ({point} on {device}): refusing to write it")]
    RunningSystem {
        disk: String,
        what: &'static str,
        point: String,
        device: String,
    },
    #[error("/dev/{disk} holds the running system's swap ({device}): refusing to write it")]
    Swap { disk: String, device: String },
    #[error("/dev/{disk} is mounted: {device} on {point}; unmount it first (umount {point})")]
    Mounted {
        disk: String,
        device: String,
        point: String,
    },
    #[error("/dev/{disk} is part of an md/LVM/dm stack: {member} is held by {holders}; stop that first")]
    Held {
        disk: String,
        member: String,
        holders: String,
    },
    #[error("/dev/{disk} has no medium (size 0): is a card in the reader?")]
    NoMedium { disk: String },
    #[error(
        "/dev/{disk} is not removable (sysfs removable = 0, on {bus}): it looks like a fixed disk, not a \
         card; pass --allow-fixed if it is the card"
    )]
    Fixed { disk: String, bus: String },
    #[error("/dev/{disk} is {size}, larger than 256 GiB, which few cards are; pass --allow-large if it is the card")]
    Large { disk: String, size: String },
    #[error("cannot read the mount table {path}: {reason}")]
    MountTable { path: String, reason: String },
}

/// Checks `disk` against the running system under `sysroot`; the first refusal wins, the most
/// dangerous first.
pub fn check(disk: &BlockDevice, sysroot: &Sysroot, allow: Allow) -> Result<(), Refusal> {
    let used = mounts::in_use(sysroot).map_err(|e| Refusal::MountTable {
        path: sysroot.path("proc/self/mountinfo").display().to_string(),
        reason: e.to_string(),
    })?;
    let ours: BTreeSet<&str> = std::iter::once(disk.name.as_str())
        .chain(disk.partitions.iter().map(|p| p.name.as_str()))
        .collect();
    let on_disk = |use_: &InUse| {
        mounts::resting_on(use_, sysroot)
            .iter()
            .any(|name| ours.contains(name.as_str()))
    };
    let ours_in_use: Vec<&InUse> = used.iter().filter(|u| on_disk(u)).collect();
    for use_ in &ours_in_use {
        match use_ {
            InUse::Mount(mount) => {
                if let Some(what) = system_mount(&mount.point) {
                    return Err(Refusal::RunningSystem {
                        disk: disk.name.clone(),
                        what,
                        point: mount.point.clone(),
                        device: mount.source.clone(),
                    });
                }
            }
            InUse::Swap(source) => {
                return Err(Refusal::Swap {
                    disk: disk.name.clone(),
                    device: source.clone(),
                })
            }
        }
    }
    let held = std::iter::once((disk.name.as_str(), &disk.holders))
        .chain(disk.partitions.iter().map(|p| (p.name.as_str(), &p.holders)))
        .find(|(_, holders)| !holders.is_empty());
    if let Some((member, holders)) = held {
        return Err(Refusal::Held {
            disk: disk.name.clone(),
            member: member.to_owned(),
            holders: holders
                .iter()
                .map(|h| describe_holder(h, sysroot))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(InUse::Mount(mount)) = ours_in_use.first() {
        return Err(Refusal::Mounted {
            disk: disk.name.clone(),
            device: mount.source.clone(),
            point: mount.point.clone(),
        });
    }
    if disk.size == 0 {
        return Err(Refusal::NoMedium {
            disk: disk.name.clone(),
        });
    }
    if !disk.removable && !disk.bus.carries_cards() && !allow.fixed {
        return Err(Refusal::Fixed {
            disk: disk.name.clone(),
            bus: disk.bus.to_string(),
        });
    }
    if disk.size > LARGE && !allow.large {
        return Err(Refusal::Large {
            disk: disk.name.clone(),
            size: human_size(disk.size),
        });
    }
    Ok(())
}

/// What of the running system a mount point is, if it is the root or /boot.
fn system_mount(point: &str) -> Option<&'static str> {
    match point {
        "/" => Some("root filesystem"),
        "/boot" => Some("/boot"),
        _ if point.starts_with("/boot/") => Some("/boot"),
        _ => None,
    }
}

/// `dm-0 (vg-root)`: a holder with its device-mapper name, when it has one.
fn describe_holder(holder: &str, sysroot: &Sysroot) -> String {
    let dm_name = std::fs::read_to_string(sysroot.path("sys/class/block").join(holder).join("dm/name"));
    match dm_name {
        Ok(name) if !name.trim().is_empty() => format!("{holder} ({})", name.trim()),
        _ => holder.to_owned(),
    }
}
