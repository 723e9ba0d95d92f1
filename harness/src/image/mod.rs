//! Disk images read without mounting: partition tables, filesystems in partitions, files from
//! ext4, and the extlinux.conf U-Boot would boot from.

pub mod boot_config;
mod error;
pub mod extlinux;
pub mod fs;
pub mod partition;
pub mod vfat;
pub mod volume;

pub use boot_config::{check_bootable_image, resolve, Found};
pub use error::ImageError;
pub use extlinux::{Config, Label};
pub use fs::{exists, probe_filesystem, read_file, Ext4Volume, FsKind};
pub use partition::{Guid, Partition, PartitionType, Scheme, Table};
pub use vfat::FatVolume;
pub use volume::Volume;
