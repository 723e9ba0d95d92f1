//! The compressions the kernel unpacks an initramfs from, recognised by their magic bytes as
//! the kernel recognises them (`lib/decompress.c`), and decoded straight into the cpio parser,
//! which stops them once the unpacked size passes its limit. xz and lzma go through liblzma, the
//! library `xz` itself is: the pure-Rust lzma-rs adds unchecked sizes from the stream (a fuzzed
//! xz footer overflowed it), and is half as fast (BENCHMARKS.md).

use std::fmt;
use std::io::{self, Write};

use super::cpio::{Fed, Parser};
use super::InitrdError;

/// How an archive of the initrd is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// As it is.
    None,
    Gzip,
    Zstd,
    Xz,
    /// The legacy `.lzma` format.
    Lzma,
    /// lz4's legacy format (`lz4 -l`), the only one the kernel unpacks.
    Lz4,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lz4 => "lz4",
        })
    }
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const GZIP_OLD: &[u8] = &[0x1f, 0x9e];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const LZMA: &[u8] = &[0x5d, 0x00, 0x00];
const LZ4_LEGACY: &[u8] = &[0x02, 0x21, 0x4c, 0x18];
const LZ4_FRAME: &[u8] = &[0x04, 0x22, 0x4d, 0x18];
const BZIP2: &[u8] = b"BZh";
const LZO: &[u8] = &[0x89, 0x4c, 0x5a];

/// lz4's legacy format cuts the data into blocks of this many bytes, each compressed alone.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// The compression of the stream `data` starts with; `offset` is where, for errors.
pub(super) fn detect(data: &[u8], offset: u64) -> Result<Compression, InitrdError> {
    let known = [
        (GZIP, Compression::Gzip),
        (GZIP_OLD, Compression::Gzip),
        (ZSTD, Compression::Zstd),
        (XZ, Compression::Xz),
        (LZMA, Compression::Lzma),
        (LZ4_LEGACY, Compression::Lz4),
    ];
    if let Some((_, compression)) = known.iter().find(|(magic, _)| data.starts_with(magic)) {
        return Ok(*compression);
    }
    let unsupported = [(BZIP2, "bzip2"), (LZO, "lzo")];
    if let Some((_, compression)) = unsupported.iter().find(|(magic, _)| data.starts_with(magic)) {
        return Err(InitrdError::Unsupported { offset, compression });
    }
    let what = if data.starts_with(LZ4_FRAME) {
        "lz4 in its frame format, which the kernel does not unpack (it takes `lz4 -l`)".to_owned()
    } else {
        let head: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}: neither a cpio archive (070701) nor gzip, zstd, xz, lzma or lz4 data",
            head.join(" ")
        )
    };
    Err(InitrdError::Unrecognised { offset, what })
}

/// Unpacks the `compression` stream at the start of `data` (at `offset` in the initrd) into
/// `parser`, with any streams of the same compression that directly follow it; returns how
/// many bytes of `data` they took.
pub(super) fn unpack(
    compression: Compression,
    data: &[u8],
    offset: u64,
    parser: &mut Parser,
) -> Result<usize, InitrdError> {
    parser.start_stream(0);
    let mut sink = Sink {
        parser,
        error: None,
        compression,
        offset,
    };
    let mut rest = data;
    loop {
        let result = match compression {
            Compression::None => unreachable!("stored archives are not unpacked"),
            Compression::Gzip => gzip(&mut rest, &mut sink),
            Compression::Zstd => zstd(&mut rest, &mut sink),
            Compression::Xz => xz(&mut rest, &mut sink),
            Compression::Lzma => lzma(&mut rest, &mut sink),
            Compression::Lz4 => lz4_legacy(&mut rest, &mut sink),
        };
        if let Some(error) = sink.error.take() {
            return Err(error);
        }
        result.map_err(|detail| InitrdError::Corrupt {
            offset,
            compression,
            detail,
        })?;
        let again = match compression {
            Compression::Gzip => rest.starts_with(GZIP),
            Compression::Zstd => rest.starts_with(ZSTD),
            Compression::Xz => rest.starts_with(XZ),
            _ => false,
        };
        if !again {
            break;
        }
    }
    if !sink.parser.between_archives() {
        return Err(InitrdError::Truncated {
            offset: sink.parser.offset(),
            within: format!(" in the {compression} stream at byte {offset}"),
        });
    }
    Ok(data.len() - rest.len())
}

/// The parser as the decoders' output. A parser error is kept here and the decoder stopped
/// with an I/O error, so that the caller reports the parser's error, not the decoder's.
struct Sink<'a> {
    parser: &'a mut Parser,
    error: Option<InitrdError>,
    compression: Compression,
    offset: u64,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the cpio parser stopped"));
        }
        let within = format!(" of the {} stream at byte {}", self.compression, self.offset);
        let error = match self.parser.feed(buf) {
            Ok(Fed::All) => return Ok(buf.len()),
            // The parser's offset has moved past what it took before stopping.
            Ok(Fed::StoppedAt(_)) => InitrdError::Junk {
                offset: self.offset,
                compression: self.compression,
                at: self.parser.offset(),
            },
            Err(InitrdError::BadHeader { offset, detail, .. }) => InitrdError::BadHeader {
                offset,
                within,
                detail,
            },
            Err(e) => e,
        };
        self.error = Some(error);
        Err(io::Error::other("the cpio parser stopped"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn gzip(rest: &mut &[u8], sink: &mut Sink<'_>) -> Result<(), String> {
    // The bufread decoder takes from `rest` only what the stream holds.
    let mut decoder = flate2::bufread::GzDecoder::new(*rest);
    let copied = io::copy(&mut decoder, sink);
    *rest = decoder.into_inner();
    copied.map(drop).map_err(|e| e.to_string())
}

fn zstd(rest: &mut &[u8], sink: &mut Sink<'_>) -> Result<(), String> {
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(&mut *rest).map_err(|e| e.to_string())?;
    io::copy(&mut decoder, sink).map(drop).map_err(|e| e.to_string())
}

/// The decoder's memory: the dictionary, which xz and lzma's presets keep to at most 64 MiB.
const LZMA_MEMLIMIT: u64 = 256 << 20;

fn xz(rest: &mut &[u8], sink: &mut Sink<'_>) -> Result<(), String> {
    // One stream, not CONCATENATED: the loop in `unpack` takes the streams that follow, so that
    // what comes after the last one is left for the next archive.
    let stream = liblzma::stream::Stream::new_stream_decoder(LZMA_MEMLIMIT, 0).map_err(|e| e.to_string())?;
    lzma_stream(rest, sink, stream)
}

fn lzma(rest: &mut &[u8], sink: &mut Sink<'_>) -> Result<(), String> {
    let stream = liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT).map_err(|e| e.to_string())?;
    lzma_stream(rest, sink, stream)
}

/// Runs a liblzma decoder over `rest` into `sink`, leaving in `rest` what its stream did not take.
fn lzma_stream(rest: &mut &[u8], sink: &mut Sink<'_>, stream: liblzma::stream::Stream) -> Result<(), String> {
    let mut decoder = liblzma::bufread::XzDecoder::new_stream(*rest, stream);
    let copied = io::copy(&mut decoder, sink);
    *rest = decoder.into_inner();
    copied.map(drop).map_err(|e| e.to_string())
}

/// lz4's legacy format: the magic, then blocks, each a little-endian 32-bit compressed size
/// and that many bytes. The stream ends where the data does, or at a size no block can have
/// (what follows is then the next archive or its padding).
fn lz4_legacy(rest: &mut &[u8], sink: &mut Sink<'_>) -> Result<(), String> {
    *rest = &rest[LZ4_LEGACY.len()..];
    let bound = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while rest.len() >= 4 {
        let size = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if size == u32::from_le_bytes(LZ4_LEGACY.try_into().expect("4 bytes")) {
            // Another legacy stream follows directly: the kernel reads on.
            *rest = &rest[4..];
            continue;
        }
        let size = size as usize;
        if size == 0 || size > bound {
            break;
        }
        let Some(compressed) = rest.get(4..4 + size) else {
            return Err(format!(
                "a block of {size} bytes, but only {} follow",
                rest.len() - 4
            ));
        };
        let n = lz4_flex::block::decompress_into(compressed, &mut block).map_err(|e| e.to_string())?;
        *rest = &rest[4 + size..];
        sink.write_all(&block[..n]).map_err(|e| e.to_string())?;
    }
    Ok(())
}
