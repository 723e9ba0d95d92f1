//! The unpacker on disks compressed by the real zstd, xz, gzip and bzip2 tools, and on hostile
//! ones.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::image::test_tools::pipe;

const MIB: u64 = 1 << 20;

fn compress(packing: Packing, bytes: &[u8]) -> Vec<u8> {
    match packing {
        Packing::Zstd => pipe("zstd", &["-q", "-c"], bytes),
        Packing::Xz => pipe("xz", &["-c"], bytes),
        Packing::Gzip => pipe("gzip", &["-c"], bytes),
        Packing::Bzip2 => pipe("bzip2", &["-c"], bytes),
    }
}

const ALL: [Packing; 4] = [Packing::Zstd, Packing::Xz, Packing::Gzip, Packing::Bzip2];

/// A disk of `size` bytes whose MBR has one Linux partition from sector 2048 to `table_end`,
/// with data in its first MiB and its last block, zeros between.
fn mbr_disk(size: u64, table_end: u64) -> Vec<u8> {
    let mut disk = vec![0u8; size as usize];
    disk[446 + 4] = 0x83;
    disk[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    disk[446 + 12..446 + 16].copy_from_slice(&((table_end / 512 - 2048) as u32).to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    for (i, byte) in disk[MIB as usize..MIB as usize + 4096].iter_mut().enumerate() {
        *byte = i as u8 | 1;
    }
    let last = disk.len() - 100;
    disk[last..].fill(0xee);
    disk
}

fn unpack_to_file(
    packing: Packing,
    packed: &[u8],
    limits: UnpackLimits,
) -> (Result<Unpacked, UnpackError>, tempfile::NamedTempFile) {
    let mut out = tempfile::NamedTempFile::new().unwrap();
    let result = unpack(packing, packed, out.as_file_mut(), limits);
    (result, out)
}

#[test]
fn each_compression_is_told_by_its_magic_bytes_and_a_raw_disk_by_none() {
    let disk = mbr_disk(4 * MIB, 4 * MIB);
    for packing in ALL {
        assert_eq!(detect(&compress(packing, &disk)), Some(packing));
    }
    assert_eq!(detect(&disk), None);
    assert_eq!(detect(&[]), None);
}

#[test]
fn every_compression_unpacks_to_the_same_disk_with_its_zeros_as_holes() {
    let disk = mbr_disk(8 * MIB, 8 * MIB);
    for packing in ALL {
        let (result, out) = unpack_to_file(packing, &compress(packing, &disk), UnpackLimits::default());
        let unpacked = result.unwrap_or_else(|e| panic!("{packing}: {e}"));
        assert_eq!(unpacked.size, 8 * MIB);
        assert_eq!(std::fs::read(out.path()).unwrap(), disk, "{packing}");
        let allocated = out.as_file().metadata().unwrap().blocks() * 512;
        assert!(
            allocated <= 2 * MIB,
            "{packing}: {allocated} bytes allocated for 8 MiB of mostly zeros"
        );
        assert_eq!(
            unpacked.data,
            3 * (64 << 10),
            "{packing}: the MBR's, the data's and the last block"
        );
    }
}

#[test]
fn an_archive_cut_inside_a_frame_is_corrupt_and_says_where() {
    let disk = mbr_disk(8 * MIB, 8 * MIB);
    for packing in ALL {
        let packed = compress(packing, &disk);
        let cut = &packed[..packed.len() - 20];
        let (result, _out) = unpack_to_file(packing, cut, UnpackLimits::default());
        match result {
            Err(UnpackError::Corrupt { packing: p, .. }) => assert_eq!(p, packing),
            other => panic!("{packing}: {other:?}"),
        }
    }
}

#[test]
fn an_archive_cut_between_frames_is_short_of_its_partition_table() {
    let disk = mbr_disk(8 * MIB, 8 * MIB);
    // Two zstd frames, as pzstd writes them; the second one is lost.
    let first = compress(Packing::Zstd, &disk[..4 * MIB as usize]);
    let (result, _out) = unpack_to_file(Packing::Zstd, &first, UnpackLimits::default());
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "it unpacks to 4194304 bytes, short of the 8388608 its partition table says the disk has: \
         the archive is cut short"
    );
}

#[test]
fn a_bomb_stops_where_its_partition_table_says_the_disk_ends() {
    // A table for 4 MiB, then 256 MiB of zeros: a few hundred KiB compressed.
    let disk = mbr_disk(260 * MIB, 4 * MIB);
    let packed = compress(Packing::Zstd, &disk);
    assert!(packed.len() < 1 << 20, "{} bytes", packed.len());
    let limits = UnpackLimits {
        slack: MIB,
        ..UnpackLimits::default()
    };
    let (result, out) = unpack_to_file(Packing::Zstd, &packed, limits);
    assert_eq!(
        result.unwrap_err().to_string(),
        "it unpacks past 4194304 bytes, where its partition table says the disk ends (with 1048576 bytes to spare)"
    );
    assert!(out.as_file().metadata().unwrap().len() <= 5 * MIB);
}

#[test]
fn data_without_a_partition_table_is_refused_at_its_first_block() {
    let packed = compress(Packing::Gzip, &vec![0u8; 4 * MIB as usize]);
    let (result, _out) = unpack_to_file(Packing::Gzip, &packed, UnpackLimits::default());
    assert_eq!(
        result.unwrap_err().to_string(),
        "the unpacked data has no partition table in its first 17408 bytes (no GPT header, no MBR boot signature)"
    );
}

#[test]
fn no_image_unpacks_past_the_cap_whatever_its_table_says() {
    let disk = mbr_disk(8 * MIB, 8 * MIB);
    let limits = UnpackLimits {
        most: 2 * MIB,
        ..UnpackLimits::default()
    };
    let (result, _out) = unpack_to_file(Packing::Xz, &compress(Packing::Xz, &disk), limits);
    assert_eq!(
        result.unwrap_err().to_string(),
        "it unpacks to more than 2097152 bytes"
    );
}

#[test]
fn a_gpt_disk_ends_at_its_backup_header() {
    let mut start = vec![0u8; 34 * 512];
    start[510] = 0x55;
    start[511] = 0xaa;
    start[512..520].copy_from_slice(b"EFI PART");
    start[512 + 32..512 + 40].copy_from_slice(&2_000_000u64.to_le_bytes());
    start[512 + 48..512 + 56].copy_from_slice(&1_999_966u64.to_le_bytes());
    assert_eq!(table_end(&start), Some(2_000_001 * 512));
    assert_eq!(table_end(&start[..100]), None);
}
