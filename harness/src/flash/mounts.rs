//! The running system's mounts and swap areas, from `proc/self/mountinfo` and `proc/swaps`, and
//! the block devices each one rests on through device-mapper, LVM and md (sysfs `slaves/`).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use super::device::Sysroot;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device number of the mounted filesystem, `major:minor`.
    pub dev: String,
    /// Where it is mounted.
    pub point: String,
    /// What was mounted, as the kernel says (`/dev/sdb1`).
    pub source: String,
}

/// Something the running system uses: a mount or a swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InUse {
    Mount(Mount),
    /// A swap partition or device, by its path in `proc/swaps`.
    Swap(String),
}

/// The mounts of `text`, a `mountinfo` file. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                dev: (*fields.get(2)?).to_owned(),
                point: unescape(fields.get(4)?),
                source: unescape(fields.get(separator + 2)?),
            })
        })
        .collect()
}

/// The swap devices of `text`, a `proc/swaps` file (header line first); swap files are left
/// out, since the filesystem holding them is a mount.
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            (fields.next()? == "partition").then(|| unescape(name))
        })
        .collect()
}

/// mountinfo and swaps write a space as `\040`, a tab as `\011`, a backslash as `\134`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything the running system uses, read under `sysroot`.
pub fn in_use(sysroot: &Sysroot) -> io::Result<Vec<InUse>> {
    let mountinfo = std::fs::read_to_string(sysroot.path("proc/self/mountinfo"))?;
    let mut used: Vec<InUse> = parse_mountinfo(&mountinfo)
        .into_iter()
        .map(InUse::Mount)
        .collect();
    // No swap file means no swap (a kernel without swap support has none).
    if let Ok(swaps) = std::fs::read_to_string(sysroot.path("proc/swaps")) {
        used.extend(parse_swaps(&swaps).into_iter().map(InUse::Swap));
    }
    Ok(used)
}

/// The block devices (by kernel name) under `used`: the one it names, and every device that
/// one is built on, through sysfs `slaves/`, down to the disks' partitions and the disks.
pub fn resting_on(used: &InUse, sysroot: &Sysroot) -> BTreeSet<String> {
    let start = match used {
        InUse::Mount(mount) => {
            name_of_dev(&mount.dev, sysroot).or_else(|| name_of_path(&mount.source, sysroot))
        }
        InUse::Swap(path) => name_of_path(path, sysroot),
    };
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = start.into_iter().collect();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Ok(dir) = sysroot.path("sys/class/block").join(&name).canonicalize() else {
            continue;
        };
        // A partition rests on its disk.
        if dir.join("partition").exists() {
            if let Some(disk) = dir.parent().and_then(Path::file_name) {
                queue.push(disk.to_string_lossy().into_owned());
            }
        }
        if let Ok(slaves) = std::fs::read_dir(dir.join("slaves")) {
            queue.extend(
                slaves
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    seen
}

/// The block device whose `dev` attribute is `major:minor`.
fn name_of_dev(dev: &str, sysroot: &Sysroot) -> Option<String> {
    let link = sysroot.path("sys/dev/block").join(dev);
    if let Ok(target) = link.canonicalize() {
        return target.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    // A test root may list devices only under class/block.
    std::fs::read_dir(sysroot.path("sys/class/block"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_to_string(e.path().join("dev")).is_ok_and(|d| d.trim() == dev))
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// The block device a `/dev/…` path names (following `/dev/mapper/…` and `by-uuid` links on
/// the real system).
fn name_of_path(path: &str, sysroot: &Sysroot) -> Option<String> {
    if !path.starts_with("/dev/") {
        return None;
    }
    let resolved = if sysroot.is_real() {
        PathBuf::from(path).canonicalize().ok()?
    } else {
        PathBuf::from(path)
    };
    let name = resolved.file_name()?.to_string_lossy().into_owned();
    sysroot
        .path("sys/class/block")
        .join(&name)
        .exists()
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_device_mount_point_and_source() {
        let text = "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n\
                    40 22 8:17 / /media/my\\040card rw - vfat /dev/sdb1 rw\n\
                    garbage\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                Mount {
                    dev: "8:2".into(),
                    point: "/".into(),
                    source: "/dev/sda2".into()
                },
                Mount {
                    dev: "8:17".into(),
                    point: "/media/my card".into(),
                    source: "/dev/sdb1".into()
                },
            ]
        );
    }

    #[test]
    fn swap_partitions_are_listed_and_swap_files_left_out() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/sda3                               partition\t8388604\t\t0\t\t-2\n\
                    /swapfile                               file\t\t1048572\t\t0\t\t-3\n";
        assert_eq!(parse_swaps(text), vec!["/dev/sda3".to_owned()]);
    }
}
