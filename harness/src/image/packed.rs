//! Compressed disk images, as `nix build` leaves them (`result/sd-image/*.img.zst`: nixpkgs'
//! sd-image ends with `zstd --rm`) or as people pass them around (`.img.xz`, `.img.gz`,
//! `.img.bz2`). The compression is told by the file's magic bytes, never by its name.
//!
//! [`unpack`] streams one into a file, writing runs of zero blocks as holes, within bounds
//! checked as it goes: the disk's own partition table says how large the disk is (a stream
//! that runs on past it is not that disk, or is a bomb), and [`UnpackLimits::most`] caps any
//! image. Errors say where in the unpacked stream they happened.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

/// How a disk image file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// Zstandard: NixOS's sd-image default.
    Zstd,
    /// xz (LZMA2).
    Xz,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
}

impl fmt::Display for Packing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Packing::Zstd => "zstd",
            Packing::Xz => "xz",
            Packing::Gzip => "gzip",
            Packing::Bzip2 => "bzip2",
        })
    }
}

/// The compression whose magic bytes `start` (a file's first bytes) begins with; `None` for
/// anything else, a raw disk image included (its first sector is boot code or zeros).
pub fn detect(start: &[u8]) -> Option<Packing> {
    const MAGICS: [(&[u8], Packing); 4] = [
        (&[0x28, 0xb5, 0x2f, 0xfd], Packing::Zstd),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Packing::Xz),
        (&[0x1f, 0x8b], Packing::Gzip),
        (b"BZh", Packing::Bzip2),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| start.starts_with(magic))
        .map(|&(_, packing)| packing)
}

/// The compression of the file at `path`, told by its first bytes ([`detect`]); `None` for a
/// raw image.
pub fn packing_of(path: &std::path::Path) -> io::Result<Option<Packing>> {
    let mut start = [0u8; 8];
    let read = read_full(&mut std::fs::File::open(path)?, &mut start)?;
    Ok(detect(&start[..read]))
}

/// A streaming decoder of `packing` over `source`.
pub fn decoder<'a>(packing: Packing, source: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
    let source = io::BufReader::with_capacity(1 << 20, source);
    Ok(match packing {
        Packing::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(source)?;
            // zstd's --long images use windows up to 2 GiB; the default limit refuses them.
            decoder.window_log_max(31)?;
            Box::new(decoder)
        }
        Packing::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(source)),
        Packing::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(source)),
        Packing::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(source)),
    })
}

/// How far an unpacked image may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// No image unpacks to more than this: the largest SD card an R2S is flashed from, with
    /// room to spare.
    pub most: u64,
    /// Bytes an image may run past the end its partition table implies: tools round images up
    /// (to a MiB, to a card's size).
    pub slack: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            most: 256 << 30,
            slack: 64 << 20,
        }
    }
}

/// Why an image could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The compressed data does not decode (corrupt, or cut short: a truncated archive ends
    /// inside a frame).
    #[error("the {packing} data does not decode at unpacked byte {at}: {detail}")]
    Corrupt {
        packing: Packing,
        /// Bytes unpacked before the decoder failed.
        at: u64,
        detail: String,
    },
    /// The first bytes hold no partition table, so the size the disk must have is unknown.
    #[error("the unpacked data has no partition table in its first {looked} bytes (no GPT header, no MBR boot signature)")]
    NoPartitionTable { looked: u64 },
    /// More data than the partition table says the disk holds.
    #[error("it unpacks past {end} bytes, where its partition table says the disk ends (with {slack} bytes to spare)")]
    PastTable { end: u64, slack: u64 },
    /// Less data than the partition table says the disk holds: an archive cut short between
    /// two of its frames.
    #[error("it unpacks to {size} bytes, short of the {end} its partition table says the disk has: the archive is cut short")]
    ShortOfTable { size: u64, end: u64 },
    /// More than [`UnpackLimits::most`].
    #[error("it unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    /// Writing the unpacked image failed.
    #[error("writing the unpacked image: {0}")]
    Write(#[source] io::Error),
}

/// What [`unpack`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// The disk's size in bytes.
    pub size: u64,
    /// Bytes written as data, not holes.
    pub data: u64,
}

/// The first bytes read before the partition table is checked: the MBR, the GPT header and a
/// full 128-entry GPT array.
pub const TABLE_PREFIX: usize = 34 * 512;
/// Blocks all of zero bytes are skipped, leaving a hole: sd-image's root file system is mostly
/// empty.
const BLOCK: usize = 64 << 10;
/// A block of zeros to compare blocks with.
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// Unpacks `packing`-compressed `source` into `out` (an empty file), zero blocks as holes.
pub fn unpack(
    packing: Packing,
    source: impl Read + Send,
    out: &mut std::fs::File,
    limits: UnpackLimits,
) -> Result<Unpacked, UnpackError> {
    let decoded = decoder(packing, source).map_err(|e| UnpackError::Corrupt {
        packing,
        at: 0,
        detail: e.to_string(),
    })?;
    unpack_decoded(packing, decoded, out, limits)
}

/// [`unpack`] of what `decoder` yields, a decoder of `packing` of the caller's choosing (the
/// benchmark compares decoders this way).
///
/// Decoding and writing overlap: a thread of its own decodes into [`CHUNK`]-sized buffers while
/// this one looks for zero blocks and writes the rest, so the unpack takes about as long as
/// decoding alone (`zstd -d --sparse` does both in one thread, one after the other).
pub fn unpack_decoded(
    packing: Packing,
    decoder: impl Read + Send,
    out: &mut std::fs::File,
    limits: UnpackLimits,
) -> Result<Unpacked, UnpackError> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(Vec<u8>, usize), UnpackError>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
    for _ in 0..=IN_FLIGHT {
        empty_tx
            .send(vec![0u8; CHUNK])
            .expect("the channel holds every buffer");
    }
    std::thread::scope(|scope| {
        let decoding = scope.spawn(move || {
            let mut stream = UnpackStream::new(packing, decoder, limits);
            // Ends when the data ends, on an error (sent on), or when the writer stops taking
            // buffers (it failed: its error is the one reported).
            while let Ok(mut buffer) = empty_rx.recv() {
                match stream.next_block(&mut buffer) {
                    Ok(0) => return stream.size(),
                    Ok(filled) => {
                        if full_tx.send(Ok((buffer, filled))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
            stream.size()
        });
        let written = write_sparse(&full_rx, &empty_tx, out);
        // The decoder stops at its next buffer once nothing is left to take them.
        drop(full_rx);
        drop(empty_tx);
        let size = decoding.join().expect("the decoding thread does not panic");
        let data = written?;
        // A trailing hole is made by the length, not a write.
        out.set_len(size).map_err(UnpackError::Write)?;
        out.flush().map_err(UnpackError::Write)?;
        Ok(Unpacked { size, data })
    })
}

/// Bytes decoded per buffer handed to the writer.
const CHUNK: usize = 1 << 20;
/// Buffers decoded ahead of the writer.
const IN_FLIGHT: usize = 2;

/// Writes the decoded buffers from `full` to `out` in order, zero blocks as holes, and hands
/// each buffer back on `empty`; the bytes written as data.
fn write_sparse(
    full: &mpsc::Receiver<Result<(Vec<u8>, usize), UnpackError>>,
    empty: &mpsc::SyncSender<Vec<u8>>,
    out: &mut std::fs::File,
) -> Result<u64, UnpackError> {
    let mut data = 0u64;
    while let Ok(decoded) = full.recv() {
        let (buffer, filled) = decoded?;
        for chunk in buffer[..filled].chunks(BLOCK) {
            // A slice comparison is a memcmp, many times faster than a loop over the bytes,
            // and the image is mostly zeros.
            if chunk == &ZEROS[..chunk.len()] {
                out.seek(SeekFrom::Current(chunk.len() as i64))
                    .map_err(UnpackError::Write)?;
            } else {
                out.write_all(chunk).map_err(UnpackError::Write)?;
                data += chunk.len() as u64;
            }
        }
        let _ = empty.send(buffer);
    }
    Ok(data)
}

/// The unpacked bytes of a compressed image, block by block, checked as they come: against
/// the end the image's own partition table (in its first block) gives, with
/// [`UnpackLimits::slack`], and against [`UnpackLimits::most`]. At the end of the data, an
/// image short of its partition table is an error too. `flash` writes a card from this, so
/// no unpacked copy is needed; [`unpack`] writes a file.
pub struct UnpackStream<R> {
    packing: Packing,
    decoder: R,
    limits: UnpackLimits,
    /// Bytes handed out so far.
    size: u64,
    /// Where the partition table says the disk ends, once the first block was read.
    table_end: Option<u64>,
}

impl<R: Read> UnpackStream<R> {
    /// The unpacked bytes of what `decoder` (a decoder of `packing`) yields, within `limits`.
    pub fn new(packing: Packing, decoder: R, limits: UnpackLimits) -> Self {
        UnpackStream {
            packing,
            decoder,
            limits,
            size: 0,
            table_end: None,
        }
    }

    /// Bytes handed out so far: where the next block starts in the unpacked image.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `block` with the next bytes; fewer only at the end, 0 once past it. The first
    /// `block` must hold the partition table: at least [`TABLE_PREFIX`] bytes.
    pub fn next_block(&mut self, block: &mut [u8]) -> Result<usize, UnpackError> {
        let mut filled = 0;
        while filled < block.len() {
            match self.decoder.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(UnpackError::Corrupt {
                        packing: self.packing,
                        at: self.size + filled as u64,
                        detail: e.to_string(),
                    })
                }
            }
        }
        if filled == 0 {
            let end = self
                .table_end
                .ok_or(UnpackError::NoPartitionTable { looked: 0 })?;
            if self.size < end {
                return Err(UnpackError::ShortOfTable { size: self.size, end });
            }
            return Ok(0);
        }
        let end =
            match self.table_end {
                Some(end) => end,
                None => *self.table_end.insert(table_end(&block[..filled]).ok_or(
                    UnpackError::NoPartitionTable {
                        looked: filled.min(TABLE_PREFIX) as u64,
                    },
                )?),
            };
        let after = self.size + filled as u64;
        if after > self.limits.most {
            return Err(UnpackError::TooLarge {
                limit: self.limits.most,
            });
        }
        if after > end.saturating_add(self.limits.slack) {
            return Err(UnpackError::PastTable {
                end,
                slack: self.limits.slack,
            });
        }
        self.size = after;
        Ok(filled)
    }
}

/// The bounded stream of compressed image `path`'s unpacked bytes.
pub fn open_stream(
    packing: Packing,
    path: &std::path::Path,
    limits: UnpackLimits,
) -> Result<UnpackStream<Box<dyn Read + Send>>, io::Error> {
    let file = std::fs::File::open(path)?;
    Ok(UnpackStream::new(packing, decoder(packing, file)?, limits))
}

/// Reads until `block` is full or the stream ends; the bytes read.
pub fn read_full(reader: &mut dyn Read, block: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Where the disk whose first bytes are `start` ends, by its partition table: a GPT's backup
/// header is its last sector; an MBR's partitions end where the last one does. `None` when
/// `start` holds neither.
pub fn table_end(start: &[u8]) -> Option<u64> {
    const SECTOR: u64 = 512;
    let gpt = start
        .get(512..512 + 92)
        .filter(|header| header.starts_with(b"EFI PART"));
    if let Some(header) = gpt {
        let backup = u64::from_le_bytes(header[32..40].try_into().ok()?);
        let last_usable = u64::from_le_bytes(header[48..56].try_into().ok()?);
        let last = backup.max(last_usable);
        return last.checked_add(1)?.checked_mul(SECTOR);
    }
    let mbr = start.get(..512).filter(|mbr| mbr[510..512] == [0x55, 0xaa])?;
    let mut end = 0u64;
    for entry in mbr[446..510].chunks_exact(16) {
        let first = u64::from(u32::from_le_bytes(entry[8..12].try_into().ok()?));
        let sectors = u64::from(u32::from_le_bytes(entry[12..16].try_into().ok()?));
        if entry[4] != 0 && sectors > 0 {
            end = end.max((first + sectors) * SECTOR);
        }
    }
    (end > 0).then_some(end)
}

#[cfg(test)]
mod tests;
