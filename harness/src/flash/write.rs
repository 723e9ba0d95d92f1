//! Writing pieces of files to a device in aligned blocks, then reading every written byte back
//! and comparing SHA-256 digests.
//!
//! The write runs on a thread of its own and reports through a shared [`Progress`]; setting
//! its cancel flag stops it at the next block. Each block's digest is kept (32 bytes per
//! 4 MiB), so a mismatch found on read-back is located to the first differing byte by reading
//! only that block of the source again.
//!
//! A compressed image (`.img.zst`, …) is written as it unpacks, block by block, with no
//! unpacked copy anywhere: each block's digest is taken from the unpacked stream, so the
//! read-back checks the card against the image's unpacked bytes. The stream is bounded as
//! `image::packed` bounds every unpack (the partition table's end, a cap), and must come to
//! the length the piece says; a corrupt or cut-short archive stops the write naming the file
//! and the unpacked offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::image::packed::{self, Packing, UnpackError, UnpackLimits, UnpackStream};

/// Bytes per write: a multiple of every sector and erase-block size that matters.
pub const BLOCK: u64 = 4 << 20;

/// A range of a source file and where it goes on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// What it is, for messages (`the image`, `idbloader.img`).
    pub what: String,
    pub source: PathBuf,
    /// Bytes from the start of `source` (of its unpacked stream when it is compressed).
    pub len: u64,
    /// Byte offset on the device (a multiple of 512).
    pub at: u64,
    /// How `source` is compressed; `None` when its bytes are written as they are.
    pub packing: Option<Packing>,
}

/// How far a write or a read-back has got, shared with whoever draws a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    cancel: AtomicBool,
}

impl Progress {
    /// Bytes done so far in the current pass.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Asks the pass to stop at its next block.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn restart(&self) {
        self.done.store(0, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One written block: where it came from, where it went, and its digest.
#[derive(Debug, Clone)]
struct BlockDigest {
    piece: usize,
    /// Offset in the piece's source (and, added to the piece's `at`, on the device).
    offset: u64,
    len: u64,
    sha256: [u8; 32],
}

/// What was written: enough to verify it.
#[derive(Debug, Clone)]
pub struct Written {
    pieces: Vec<Piece>,
    blocks: Vec<BlockDigest>,
    /// SHA-256 of every written byte, pieces in order.
    pub sha256: [u8; 32],
    /// How many bytes were written.
    pub bytes: u64,
}

/// Why a write or its verification failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot read {what} ({}) at byte {offset}: {source}", path.display())]
    Source {
        what: String,
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("{what} ({}) is shorter than {len} bytes: it changed while being written", path.display())]
    SourceShrank { what: String, path: PathBuf, len: u64 },
    #[error("{what} ({}) unpacks to more than the {len} bytes it unpacked to before: it changed while being written", path.display())]
    SourceGrew { what: String, path: PathBuf, len: u64 },
    #[error("cannot unpack {what} ({}): {source}", path.display())]
    Unpack {
        what: String,
        path: PathBuf,
        source: UnpackError,
    },
    #[error("write failed at device byte {offset}: {source}")]
    Write { offset: u64, source: io::Error },
    #[error("flushing the device failed: {0}")]
    Sync(io::Error),
    #[error("read-back failed at device byte {offset}: {source}")]
    ReadBack { offset: u64, source: io::Error },
    #[error(
        "read-back differs from {what}: first bad byte at device offset {offset} (0x{offset:x}), wrote \
         0x{wrote:02x}, read 0x{read:02x}"
    )]
    Mismatch {
        what: String,
        offset: u64,
        wrote: u8,
        read: u8,
    },
    #[error("stopped after {done} of {total} bytes")]
    Cancelled { done: u64, total: u64 },
}

/// The bytes of `pieces` in total.
pub fn total(pieces: &[Piece]) -> u64 {
    pieces.iter().map(|p| p.len).sum()
}

/// Writes `pieces` to `device` block by block, then flushes it to the medium.
pub fn write(device: &File, pieces: &[Piece], progress: &Progress) -> Result<Written, WriteError> {
    progress.restart();
    let total = total(pieces);
    let mut buffer = vec![0u8; BLOCK as usize];
    let mut whole = Sha256::new();
    let mut blocks = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        let mut source = Source::open(piece)?;
        let mut offset = 0;
        while offset < piece.len {
            if progress.cancelled() {
                return Err(WriteError::Cancelled {
                    done: progress.done(),
                    total,
                });
            }
            let len = BLOCK.min(piece.len - offset);
            let chunk = &mut buffer[..len as usize];
            source.read_block(piece, chunk, offset)?;
            device
                .write_all_at(chunk, piece.at + offset)
                .map_err(|source| WriteError::Write {
                    offset: piece.at + offset,
                    source,
                })?;
            whole.update(&*chunk);
            blocks.push(BlockDigest {
                piece: index,
                offset,
                len,
                sha256: Sha256::digest(&*chunk).into(),
            });
            offset += len;
            progress.advance(len);
        }
        source.check_end(piece)?;
    }
    device.sync_all().map_err(WriteError::Sync)?;
    Ok(Written {
        pieces: pieces.to_vec(),
        blocks,
        sha256: whole.finalize().into(),
        bytes: total,
    })
}

/// Reads every byte `written` put on `device` back from the medium (the page cache is dropped
/// first) and compares each block's SHA-256 with the one taken while writing; a mismatch names
/// the first differing byte.
pub fn verify(device: &File, written: &Written, progress: &Progress) -> Result<(), WriteError> {
    progress.restart();
    device.sync_all().map_err(WriteError::Sync)?;
    drop_cache(device);
    let mut buffer = vec![0u8; BLOCK as usize];
    for block in &written.blocks {
        if progress.cancelled() {
            return Err(WriteError::Cancelled {
                done: progress.done(),
                total: written.bytes,
            });
        }
        let piece = &written.pieces[block.piece];
        let at = piece.at + block.offset;
        let chunk = &mut buffer[..block.len as usize];
        device
            .read_exact_at(chunk, at)
            .map_err(|source| WriteError::ReadBack { offset: at, source })?;
        if <[u8; 32]>::from(Sha256::digest(&*chunk)) != block.sha256 {
            return Err(locate_mismatch(piece, block, chunk));
        }
        progress.advance(block.len);
    }
    Ok(())
}

/// The first byte of `read` (block `block` of `piece`, read back) that differs from the source.
fn locate_mismatch(piece: &Piece, block: &BlockDigest, read: &[u8]) -> WriteError {
    let at = piece.at + block.offset;
    let mut wrote = vec![0u8; read.len()];
    if let Err(e) = Source::open(piece).and_then(|mut source| {
        source.skip_to(piece, block.offset, &mut wrote)?;
        source.read_block(piece, &mut wrote, block.offset)
    }) {
        return e;
    }
    // The source can have changed since; then the first byte of the block is all we know.
    let first = wrote.iter().zip(read).position(|(w, r)| w != r).unwrap_or(0);
    WriteError::Mismatch {
        what: piece.what.clone(),
        offset: at + first as u64,
        wrote: wrote[first],
        read: read[first],
    }
}

/// Where a piece's bytes come from: the file itself, or the stream unpacked from it.
enum Source {
    Raw(File),
    Unpacked(UnpackStream<Box<dyn io::Read + Send>>),
}

impl Source {
    fn open(piece: &Piece) -> Result<Source, WriteError> {
        match piece.packing {
            None => File::open(&piece.source)
                .map(Source::Raw)
                .map_err(|e| source_error(piece, 0, e)),
            Some(packing) => packed::open_stream(packing, &piece.source, UnpackLimits::default())
                .map(Source::Unpacked)
                .map_err(|e| source_error(piece, 0, e)),
        }
    }

    /// Fills `chunk` with the piece's bytes from `offset`: read there in a file, the stream's
    /// next bytes (which start at `offset`) when unpacked.
    fn read_block(&mut self, piece: &Piece, chunk: &mut [u8], offset: u64) -> Result<(), WriteError> {
        let shrank = || WriteError::SourceShrank {
            what: piece.what.clone(),
            path: piece.source.clone(),
            len: piece.len,
        };
        match self {
            Source::Raw(file) => file.read_exact_at(chunk, offset).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => shrank(),
                _ => source_error(piece, offset, e),
            }),
            Source::Unpacked(stream) => {
                let filled = stream
                    .next_block(chunk)
                    .map_err(|source| unpack_error(piece, source))?;
                if filled < chunk.len() {
                    return Err(shrank());
                }
                Ok(())
            }
        }
    }

    /// Moves an unpacked stream to `offset`, through `scratch`; a file needs no moving.
    fn skip_to(&mut self, piece: &Piece, offset: u64, scratch: &mut [u8]) -> Result<(), WriteError> {
        while let Source::Unpacked(stream) = self {
            let Some(left) = offset.checked_sub(stream.size()).filter(|left| *left > 0) else {
                break;
            };
            let len = scratch.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.read_block(piece, &mut scratch[..len], 0)?;
        }
        Ok(())
    }

    /// After the piece's last byte: an unpacked stream must end there, with its own checks
    /// (its partition table's end) passed.
    fn check_end(&mut self, piece: &Piece) -> Result<(), WriteError> {
        let Source::Unpacked(stream) = self else {
            return Ok(());
        };
        let mut probe = [0u8; 1];
        match stream.next_block(&mut probe) {
            Ok(0) => Ok(()),
            Ok(_) => Err(WriteError::SourceGrew {
                what: piece.what.clone(),
                path: piece.source.clone(),
                len: piece.len,
            }),
            Err(source) => Err(unpack_error(piece, source)),
        }
    }
}

fn unpack_error(piece: &Piece, source: UnpackError) -> WriteError {
    WriteError::Unpack {
        what: piece.what.clone(),
        path: piece.source.clone(),
        source,
    }
}

fn source_error(piece: &Piece, offset: u64, source: io::Error) -> WriteError {
    WriteError::Source {
        what: piece.what.clone(),
        path: piece.source.clone(),
        offset,
        source,
    }
}

/// Drops the clean cached pages of `device`, so the read-back comes from the medium and not
/// from memory. Best effort: without it the comparison still checks what the kernel holds.
fn drop_cache(device: &File) {
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open.
    unsafe {
        libc::posix_fadvise(device.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &tempfile::TempDir, name: &str, len: usize) -> PathBuf {
        let path = dir.path().join(name);
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn piece(source: PathBuf, len: u64, at: u64) -> Piece {
        Piece {
            what: "the image".into(),
            source,
            len,
            at,
            packing: None,
        }
    }

    #[test]
    fn pieces_land_at_their_offsets_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let image = source(&dir, "img", (BLOCK + 1000) as usize);
        let device_path = dir.path().join("dev");
        std::fs::write(&device_path, vec![0xeeu8; 16 << 20]).unwrap();
        let device = File::options().read(true).write(true).open(&device_path).unwrap();
        let pieces = [
            piece(image.clone(), BLOCK + 1000, 0),
            piece(image.clone(), 512, 8 << 20),
        ];
        let progress = Progress::default();
        let written = write(&device, &pieces, &progress).unwrap();
        assert_eq!(progress.done(), BLOCK + 1512);
        verify(&device, &written, &progress).unwrap();
        let on_device = std::fs::read(&device_path).unwrap();
        let original = std::fs::read(&image).unwrap();
        assert_eq!(&on_device[..original.len()], &original[..]);
        assert_eq!(&on_device[8 << 20..(8 << 20) + 512], &original[..512]);
        assert!(on_device[original.len()..8 << 20].iter().all(|b| *b == 0xee));
    }

    #[test]
    fn a_changed_byte_on_the_device_is_named_by_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let image = source(&dir, "img", 3 * 4096);
        let device_path = dir.path().join("dev");
        let device = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&device_path)
            .unwrap();
        let progress = Progress::default();
        let written = write(&device, &[piece(image, 3 * 4096, 512)], &progress).unwrap();
        device.write_all_at(&[0x55], 512 + 5000).unwrap();
        let error = verify(&device, &written, &progress).unwrap_err().to_string();
        let wrote = (5000 * 7 % 251) as u8;
        assert_eq!(
            error,
            format!(
                "read-back differs from the image: first bad byte at device offset 5512 (0x1588), wrote 0x{wrote:02x}, read 0x55"
            )
        );
    }

    #[test]
    fn a_cancelled_write_stops_before_the_next_block() {
        let dir = tempfile::tempdir().unwrap();
        let image = source(&dir, "img", 4096);
        let device = tempfile::tempfile().unwrap();
        let progress = Progress::default();
        progress.cancel();
        let error = write(&device, &[piece(image, 4096, 0)], &progress).unwrap_err();
        assert_eq!(error.to_string(), "stopped after 0 of 4096 bytes");
        assert_eq!(device.metadata().unwrap().len(), 0);
    }

    /// A 9 MiB disk (three blocks of writing, the last short) with an MBR whose one partition
    /// fills it and a pattern that leaves no block of zeros.
    fn disk() -> Vec<u8> {
        let len: usize = (9 << 20) + 4096;
        let mut disk: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        disk[446..512].fill(0);
        disk[446 + 4] = 0x83;
        disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&(len as u32 / 512 - 1).to_le_bytes());
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        disk
    }

    /// `disk` compressed by the real zstd into `dir`/`name`; its path.
    fn zstd_file(dir: &tempfile::TempDir, name: &str, disk: &[u8]) -> PathBuf {
        let raw = dir.path().join("raw");
        std::fs::write(&raw, disk).unwrap();
        let path = dir.path().join(name);
        let status = std::process::Command::new("zstd")
            .args(["-q", "-f", "-o"])
            .arg(&path)
            .arg(&raw)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(raw).unwrap();
        path
    }

    fn packed_piece(source: PathBuf, len: u64) -> Piece {
        Piece {
            packing: Some(Packing::Zstd),
            ..piece(source, len, 0)
        }
    }

    #[test]
    fn a_compressed_piece_is_written_unpacked_and_verified_against_the_streams_digest() {
        let dir = tempfile::tempdir().unwrap();
        let image = zstd_file(&dir, "disk.img.zst", &disk());
        let device = tempfile::tempfile().unwrap();
        let progress = Progress::default();
        let written = write(&device, &[packed_piece(image, disk().len() as u64)], &progress).unwrap();
        assert_eq!(written.bytes, disk().len() as u64);
        assert_eq!(written.sha256, <[u8; 32]>::from(Sha256::digest(disk())));
        verify(&device, &written, &progress).unwrap();
        let mut on_device = vec![0u8; disk().len()];
        device.read_exact_at(&mut on_device, 0).unwrap();
        assert!(on_device == disk(), "the device does not hold the unpacked disk");
    }

    #[test]
    fn a_changed_byte_after_a_compressed_write_is_named_by_its_offset_and_the_unpacked_byte() {
        let dir = tempfile::tempdir().unwrap();
        let image = zstd_file(&dir, "disk.img.zst", &disk());
        let device = tempfile::tempfile().unwrap();
        let progress = Progress::default();
        let written = write(&device, &[packed_piece(image, disk().len() as u64)], &progress).unwrap();
        let at = (8 << 20) + 5000;
        device.write_all_at(&[0x55], at).unwrap();
        let error = verify(&device, &written, &progress).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "read-back differs from the image: first bad byte at device offset {at} (0x{at:x}), wrote 0x{:02x}, read 0x55",
                disk()[at as usize]
            )
        );
    }

    #[test]
    fn a_cut_short_archive_stops_the_write_naming_the_file_and_the_unpacked_offset() {
        let dir = tempfile::tempdir().unwrap();
        let image = zstd_file(&dir, "disk.img.zst", &disk());
        let bytes = std::fs::read(&image).unwrap();
        std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
        let device = tempfile::tempfile().unwrap();
        let error = write(
            &device,
            &[packed_piece(image.clone(), disk().len() as u64)],
            &Progress::default(),
        )
        .unwrap_err()
        .to_string();
        let prefix = format!(
            "cannot unpack the image ({}): the zstd data does not decode at unpacked byte ",
            image.display()
        );
        assert!(error.starts_with(&prefix), "{error}");
        let at: u64 = error[prefix.len()..].split(':').next().unwrap().parse().unwrap();
        assert!(at > 0 && at < disk().len() as u64, "{error}");
    }

    #[test]
    fn a_compressed_image_that_unpacks_to_more_than_before_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let image = zstd_file(&dir, "disk.img.zst", &disk());
        let device = tempfile::tempfile().unwrap();
        let len = disk().len() as u64 - 4096;
        let error = write(&device, &[packed_piece(image.clone(), len)], &Progress::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "the image ({}) unpacks to more than the {len} bytes it unpacked to before: it changed while being written",
                image.display()
            )
        );
    }
}
