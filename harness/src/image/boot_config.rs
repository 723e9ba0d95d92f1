//! Finding the extlinux.conf U-Boot's distro boot would use, and the files it names.

use std::path::Path;

use super::error::ImageError;
use super::extlinux::Config;
use super::fs::probe_filesystem;
use super::limits;
use super::partition::Table;
use super::volume::Volume;

/// Where distro boot looks in each candidate partition, in order (`boot_prefixes` "/ /boot/").
pub const SEARCH_PATHS: [&str; 2] = ["/extlinux/extlinux.conf", "/boot/extlinux/extlinux.conf"];

/// The extlinux.conf U-Boot would boot from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The partition holding it (1-based).
    pub partition: u32,
    /// Its path inside the partition, one of [`SEARCH_PATHS`].
    pub path: String,
    /// Its text as stored.
    pub text: String,
    /// Its parsed form.
    pub config: Config,
}

impl Found {
    /// Where a path written in this config (`LINUX`, `INITRD`, `FDT`, …) points inside the
    /// partition; see [`resolve`].
    pub fn resolve(&self, file_path: &str) -> String {
        resolve(&self.path, file_path)
    }
}

/// Finds the extlinux.conf U-Boot's distro boot would use: in the bootable partitions in order
/// (MBR active flag, GPT legacy-BIOS-bootable attribute), or in partition 1 when none is
/// bootable; in each, `/extlinux/extlinux.conf` before `/boot/extlinux/extlinux.conf`.
/// Partitions that hold neither ext4 nor FAT are skipped, as U-Boot skips filesystems it
/// cannot read.
pub fn find(image: &Path) -> Result<Found, ImageError> {
    match search(image)? {
        Search::Found(found) => Ok(*found),
        Search::Missing { searched } => Err(ImageError::NoBootConfig {
            image: image.to_owned(),
            searched,
        }),
    }
}

enum Search {
    Found(Box<Found>),
    Missing {
        /// One entry per candidate partition, for the error message.
        searched: Vec<String>,
    },
}

fn search(image: &Path) -> Result<Search, ImageError> {
    let table = Table::read(image)?;
    let mut searched = Vec::new();
    for partition in table.boot_candidates() {
        let kind = probe_filesystem(image, partition)?;
        let Some(volume) = Volume::open(image, partition, &kind)? else {
            searched.push(format!("partition {} ({kind})", partition.index));
            continue;
        };
        for path in SEARCH_PATHS {
            if !volume.is_file(path)? {
                continue;
            }
            let text = volume.read_text(path, limits::EXTLINUX_CONF, "an extlinux.conf")?;
            let config = Config::parse(&text).map_err(|error| ImageError::Extlinux {
                image: image.to_owned(),
                partition: partition.index,
                path: path.to_owned(),
                error,
            })?;
            return Ok(Search::Found(Box::new(Found {
                partition: partition.index,
                path: path.to_owned(),
                text,
                config,
            })));
        }
        searched.push(format!(
            "partition {} ({kind}) at {}",
            partition.index,
            SEARCH_PATHS.join(" and ")
        ));
    }
    if searched.is_empty() {
        searched.push("nothing: the partition table is empty".to_owned());
    }
    Ok(Search::Missing { searched })
}

/// Resolves a path written in an extlinux.conf the way U-Boot's pxe code does: an absolute
/// path counts from the partition root; a relative one (`../nixos/x-Image`) from the directory
/// holding the extlinux.conf. `.` and `..` are folded, `..` stopping at the root.
pub fn resolve(config_path: &str, file_path: &str) -> String {
    let joined = if file_path.starts_with('/') {
        file_path.to_owned()
    } else {
        let dir = config_path.rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{dir}/{file_path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Checks that an image can be booted as U-Boot would, before spending a boot on it: it has a
/// partition table and an extlinux.conf where distro boot looks. Returns the config's LABEL
/// names in menu order.
pub fn check_bootable_image(image: &Path) -> Result<Vec<String>, ImageError> {
    Ok(find(image)?.config.labels.into_iter().map(|l| l.name).collect())
}
