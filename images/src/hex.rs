//! Bytes as lower-case hex: the one spelling of a digest or a nonce wherever the harness or
//! the fixture builder writes one as text (cache keys, seals, copy checks, marker nonces, flash
//! read-back, fixture keys).

/// `bytes` as lower-case hex, two digits a byte, no separators.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bytes_are_no_digits() {
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn each_byte_is_two_lower_case_digits_leading_zero_kept() {
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
    }

    #[test]
    fn every_byte_is_spelled_as_format_spells_it() {
        let bytes: Vec<u8> = (0..=255).collect();
        let formatted: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower_hex(&bytes), formatted);
    }

    #[test]
    fn a_sha256_digest_is_the_64_digits_sha256sum_prints() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            lower_hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
