//! `harness flash --bootloader IDBLOADER ITB DEVICE`: the RK3328 bootloader alone, written to
//! its two regions (the idbloader at sector 64, u-boot.itb at sector 16384) after checking
//! that each file is what it claims, fits below the next region, and that no partition of the
//! device lies in sectors 64–32767.

use std::path::{Path, PathBuf};

use super::write::Piece;
use crate::image::{ImageError, Table};
use crate::inspect::bootloader::{fit_at, idbloader_at, SECTOR};
use crate::inspect::Board;

/// Why the bootloader files or the device are refused.
#[derive(Debug, thiserror::Error)]
pub enum BootloaderError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
    #[error(
        "{} is {len} bytes, more than the {limit} bytes from sector {sector} to sector {next}, where {overlaps} begins",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        len: u64,
        limit: u64,
        sector: u64,
        next: u64,
        overlaps: &'static str,
    },
    #[error("{} is not an RK3328 idbloader (no header 3b 8c dc fc with RK32 at +0x800)", .0.display())]
    NotIdbloader(PathBuf),
    #[error("{} is not a U-Boot FIT image (no d0 0d fe ed device tree with an /images node)", .0.display())]
    NotFit(PathBuf),
    #[error(
        "partition {index} of {} (sectors {first}–{last}) overlaps the bootloader area, sectors {}–{}; \
         writing the bootloader would destroy it",
        device.display(), area_first, area_last
    )]
    Overlap {
        device: PathBuf,
        index: u32,
        first: u64,
        last: u64,
        area_first: u64,
        area_last: u64,
    },
    #[error("cannot read the partition table of {}: {source}; refusing to write blind", device.display())]
    Table { device: PathBuf, source: ImageError },
}

/// The two pieces to write, after checking both files.
pub fn pieces(idbloader: &Path, itb: &Path) -> Result<Vec<Piece>, BootloaderError> {
    let profile = Board::NanopiR2s.profile();
    let idb = checked(
        idbloader,
        profile.idbloader_sector,
        profile.itb_sector,
        "u-boot.itb",
        |bytes| idbloader_at(bytes, 0),
        BootloaderError::NotIdbloader,
    )?;
    let fit = checked(
        itb,
        profile.itb_sector,
        profile.first_free_sector,
        "the first partition",
        |bytes| fit_at(bytes, 0),
        BootloaderError::NotFit,
    )?;
    Ok(vec![
        Piece {
            what: "idbloader".to_owned(),
            source: idbloader.to_owned(),
            len: idb,
            at: profile.idbloader_sector * SECTOR,
            packing: None,
        },
        Piece {
            what: "u-boot.itb".to_owned(),
            source: itb.to_owned(),
            len: fit,
            at: profile.itb_sector * SECTOR,
            packing: None,
        },
    ])
}

/// Checks one file for region `sector..next` and returns its length.
fn checked(
    path: &Path,
    sector: u64,
    next: u64,
    overlaps: &'static str,
    is_it: impl Fn(&[u8]) -> bool,
    not_it: fn(PathBuf) -> BootloaderError,
) -> Result<u64, BootloaderError> {
    let read_error = |source| BootloaderError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_error)?.len();
    let limit = (next - sector) * SECTOR;
    if len == 0 {
        return Err(BootloaderError::Empty(path.to_owned()));
    }
    // Checked before reading: the file is read whole only once it is known to be small.
    if len > limit {
        return Err(BootloaderError::TooLarge {
            path: path.to_owned(),
            len,
            limit,
            sector,
            next,
            overlaps,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    if !is_it(&bytes) {
        return Err(not_it(path.to_owned()));
    }
    Ok(bytes.len() as u64)
}

/// Refuses a device one of whose partitions lies in the bootloader area. A device without a
/// partition table (a blank card) has none there.
pub fn check_partitions(device: &Path) -> Result<(), BootloaderError> {
    let profile = Board::NanopiR2s.profile();
    let table = match Table::read(device) {
        Ok(table) => table,
        Err(ImageError::NoPartitionTable { .. }) => return Ok(()),
        Err(source) => {
            return Err(BootloaderError::Table {
                device: device.to_owned(),
                source,
            })
        }
    };
    let area = profile.idbloader_sector * SECTOR..profile.first_free_sector * SECTOR;
    for p in &table.partitions {
        let range = p.byte_range();
        if range.start < area.end && area.start < range.end {
            return Err(BootloaderError::Overlap {
                device: device.to_owned(),
                index: p.index,
                first: range.start / SECTOR,
                last: range.end / SECTOR - 1,
                area_first: profile.idbloader_sector,
                area_last: profile.first_free_sector - 1,
            });
        }
    }
    Ok(())
}
