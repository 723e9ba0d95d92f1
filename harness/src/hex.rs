//! Bytes as lower-case hex, as the fixture builder writes them: one spelling of a digest or a
//! nonce wherever the harness writes one as text (cache keys, seals, copy checks, marker
//! nonces, flash read-back).

pub use r2s_images::hex::lower_hex;
