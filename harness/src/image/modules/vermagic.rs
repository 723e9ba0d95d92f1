//! The kernel release a module was built for and the one a kernel is: the first word of the
//! module's `vermagic=` in its `.modinfo` section, and the release in the kernel's banner
//! (`Linux version 6.1.0-57-arm64 (…)`). The kernel refuses a module whose vermagic differs.

use std::io::Read;

/// The most a compressed module is inflated to for its vermagic: the largest arm64 modules
/// (GPU drivers) are a few tens of MiB.
const MODULE_INFLATED: u64 = 64 << 20;

/// The release a module's `vermagic=` names, `None` when it has none (not a module).
pub fn module_release(module: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\0vermagic=";
    let at = memchr::memmem::find(module, KEY)? + KEY.len();
    let value = &module[at..];
    let end = memchr::memchr(0, value).unwrap_or(value.len());
    let text = std::str::from_utf8(&value[..end]).ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// `module` as the kernel loads it: a `.ko.xz`, `.ko.zst` or `.ko.gz` (told by `file_name`)
/// inflated, up to [`MODULE_INFLATED`] bytes; `Err` says why not.
pub fn inflated(file_name: &str, module: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let result = if file_name.ends_with(".ko") {
        return Ok(module.to_vec());
    } else if file_name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(module)
            .take(MODULE_INFLATED + 1)
            .read_to_end(&mut out)
    } else if file_name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(module)
            .and_then(|d| d.take(MODULE_INFLATED + 1).read_to_end(&mut out))
    } else if file_name.ends_with(".gz") {
        flate2::read::GzDecoder::new(module)
            .take(MODULE_INFLATED + 1)
            .read_to_end(&mut out)
    } else {
        return Err(format!("{file_name} is not a module file name"));
    };
    result.map_err(|e| format!("{file_name} does not inflate: {e}"))?;
    if out.len() as u64 > MODULE_INFLATED {
        return Err(format!(
            "{file_name} inflates to more than {MODULE_INFLATED} bytes"
        ));
    }
    Ok(out)
}

/// The release in an uncompressed kernel Image's banner, `None` when it has none.
pub fn kernel_release(kernel: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    for at in memchr::memmem::find_iter(kernel, BANNER) {
        let rest = &kernel[at + BANNER.len()..];
        let end = rest
            .iter()
            .position(|b| !b.is_ascii_graphic())
            .unwrap_or(rest.len());
        // The banner goes on with " (builder@host)"; other mentions of the words do not.
        if end == 0 || !rest[end..].starts_with(b" (") {
            continue;
        }
        return std::str::from_utf8(&rest[..end]).ok().map(str::to_owned);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modules_release_is_the_first_word_of_its_vermagic() {
        let modinfo =
            b"\x7fELF....\0license=GPL\0vermagic=6.1.0-57-arm64 SMP mod_unload modversions aarch64\0name=x\0";
        assert_eq!(module_release(modinfo).as_deref(), Some("6.1.0-57-arm64"));
        assert_eq!(module_release(b"\0license=GPL\0"), None);
    }

    #[test]
    fn the_kernels_release_is_read_from_its_banner_not_from_other_mentions() {
        let image =
            b"..Linux version %s\0..Linux version 6.6.30 (nixbld@localhost) (gcc 13) #1-NixOS SMP\n\0";
        assert_eq!(kernel_release(image).as_deref(), Some("6.6.30"));
        assert_eq!(kernel_release(b"no banner"), None);
    }

    #[test]
    fn compressed_modules_are_inflated_and_others_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"\0vermagic=6.1 SMP\0").unwrap();
        let packed = gz.finish().unwrap();
        let unpacked = inflated("virtio_blk.ko.gz", &packed).unwrap();
        assert_eq!(module_release(&unpacked).as_deref(), Some("6.1"));
        assert_eq!(inflated("x.ko", b"raw").unwrap(), b"raw");
        assert!(inflated("x.ko.xz", b"not xz")
            .unwrap_err()
            .starts_with("x.ko.xz does not inflate"));
    }
}
