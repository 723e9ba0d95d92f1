//! Disk images read without mounting: partition tables, filesystems in partitions, files from
//! ext4, FAT and f2fs, and the extlinux.conf U-Boot would boot from.
//!
//! Every size read from an image (partition entry arrays, file and directory sizes) is checked
//! against the image and against a limit ([`limits`]) before anything is allocated, and every
//! call into a third-party filesystem reader runs under [`guard`], so a hostile image is an
//! [`ImageError`], never an abort or a panic.

pub mod autologin;
pub mod boot_config;
pub mod budget;
pub mod drivers;
mod error;
pub mod extlinux;
pub mod f2fs;
pub mod facts;
pub mod fs;
pub mod fs_kind;
pub mod gpt;
pub mod guard;
pub mod ikconfig;
pub mod initrd;
pub mod limits;
pub mod listen_stream;
pub mod load_layout;
pub mod mbr;
pub mod modules;
pub mod packed;
pub mod partition;
pub mod read_at;
pub mod root_device;
#[cfg(test)]
mod test_tools;
pub mod uboot_env;
pub mod vfat;
pub mod volume;

pub use boot_config::{check_bootable_image, resolve, Found};
pub use error::ImageError;
pub use extlinux::{Config, Label};
pub use f2fs::F2fsVolume;
pub use fs::{exists, probe_filesystem, read_file, Ext4Volume};
pub use fs_kind::FsKind;
pub use partition::{Guid, Partition, PartitionType, Scheme, Table};
pub use vfat::FatVolume;
pub use volume::Volume;
