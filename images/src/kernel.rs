//! Turning a distribution's arm64 `vmlinuz` into the raw `Image` U-Boot's `booti` accepts.

use std::io::Read;
use std::path::Path;

use crate::error::KernelImageError;
use crate::BuildError;

/// Offset and value of the arm64 Image header magic, `ARM\x64`.
const IMAGE_MAGIC_OFFSET: usize = 0x38;
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// A raw arm64 Image from `vmlinuz`, which may be the Image itself (Debian bookworm ships it
/// uncompressed, as an EFI-stub PE), gzip-compressed, or an EFI zboot image with a gzip
/// payload (newer kernels built with CONFIG_EFI_ZBOOT). `booti` takes only the first.
pub fn raw_image(vmlinuz: &Path) -> Result<Vec<u8>, BuildError> {
    let bytes = std::fs::read(vmlinuz).map_err(BuildError::io("reading", vmlinuz))?;
    unpack(bytes).map_err(|source| BuildError::KernelImage {
        path: vmlinuz.to_owned(),
        source,
    })
}

fn unpack(bytes: Vec<u8>) -> Result<Vec<u8>, KernelImageError> {
    if has_image_magic(&bytes) {
        return Ok(bytes);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return checked(gunzip(&bytes)?);
    }
    if bytes.len() >= 0x20 && &bytes[0..2] == b"MZ" && &bytes[4..8] == b"zimg" {
        let offset = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let size = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        let compression = String::from_utf8_lossy(&bytes[24..32])
            .trim_end_matches('\0')
            .to_owned();
        if compression != "gzip" {
            return Err(KernelImageError::ZbootCompression(compression));
        }
        let payload = offset
            .checked_add(size)
            .and_then(|end| bytes.get(offset..end))
            .ok_or(KernelImageError::ZbootPayloadOutside)?;
        return checked(gunzip(payload)?);
    }
    Err(KernelImageError::Unrecognised)
}

fn has_image_magic(bytes: &[u8]) -> bool {
    bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) == Some(IMAGE_MAGIC)
}

fn checked(image: Vec<u8>) -> Result<Vec<u8>, KernelImageError> {
    if has_image_magic(&image) {
        Ok(image)
    } else {
        Err(KernelImageError::NoMagicInside)
    }
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, KernelImageError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(KernelImageError::Gunzip)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_image() -> Vec<u8> {
        let mut image = vec![0u8; 0x100];
        image[0x38..0x3c].copy_from_slice(IMAGE_MAGIC);
        image
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn raw_image_is_taken_as_is() {
        assert_eq!(unpack(fake_image()).unwrap(), fake_image());
    }

    #[test]
    fn gzip_image_is_decompressed() {
        assert_eq!(unpack(gzip(&fake_image())).unwrap(), fake_image());
    }

    #[test]
    fn zboot_image_payload_is_decompressed() {
        let payload = gzip(&fake_image());
        let mut zboot = vec![0u8; 0x40];
        zboot[0..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(b"zimg");
        zboot[8..12].copy_from_slice(&0x40u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        zboot[24..28].copy_from_slice(b"gzip");
        zboot.extend(&payload);
        assert_eq!(unpack(zboot).unwrap(), fake_image());
    }

    #[test]
    fn other_data_is_rejected_with_a_reason() {
        let err = unpack(vec![0u8; 0x100]).unwrap_err();
        assert!(matches!(err, KernelImageError::Unrecognised), "{err}");
        assert!(err.to_string().contains("neither an arm64 Image"), "{err}");
        let err = unpack(gzip(b"not a kernel")).unwrap_err();
        assert!(matches!(err, KernelImageError::NoMagicInside), "{err}");
    }

    #[test]
    fn zboot_payload_outside_the_file_is_rejected() {
        let mut zboot = vec![0u8; 0x40];
        zboot[0..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(b"zimg");
        zboot[8..12].copy_from_slice(&0x40u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        zboot[24..28].copy_from_slice(b"gzip");
        assert!(matches!(
            unpack(zboot),
            Err(KernelImageError::ZbootPayloadOutside)
        ));
    }
}
