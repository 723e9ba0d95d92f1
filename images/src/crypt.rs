//! SHA-512 crypt (`$6$`), the password hash NixOS writes to /etc/shadow and busybox `login`
//! verifies. Computed at build time so [`crate::ROOT_PASSWORD`] is the only place the password
//! lives.

use sha2::{Digest, Sha512};

const ROUNDS: usize = 5000;
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The `$6$<salt>$<hash>` string for `password` with the default 5000 rounds. The salt is
/// truncated to 16 bytes, as crypt(3) does.
pub fn sha512_crypt(password: &str, salt: &str) -> String {
    let p = password.as_bytes();
    let s = &salt.as_bytes()[..salt.len().min(16)];

    let b = Sha512::new()
        .chain_update(p)
        .chain_update(s)
        .chain_update(p)
        .finalize();

    let mut a = Sha512::new().chain_update(p).chain_update(s);
    a.update(repeat_to(&b, p.len()));
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let a = a.finalize();

    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_seq = repeat_to(&dp.finalize(), p.len());

    let mut ds = Sha512::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(s);
    }
    let s_seq = repeat_to(&ds.finalize(), s.len());

    let mut c = a;
    for i in 0..ROUNDS {
        let mut round = Sha512::new();
        if i % 2 == 1 {
            round.update(&p_seq);
        } else {
            round.update(c);
        }
        if i % 3 != 0 {
            round.update(&s_seq);
        }
        if i % 7 != 0 {
            round.update(&p_seq);
        }
        if i % 2 == 1 {
            round.update(c);
        } else {
            round.update(&p_seq);
        }
        c = round.finalize();
    }

    let mut out = format!("$6${}$", String::from_utf8_lossy(s));
    for i in 0..21 {
        let (x, y, z) = match i % 3 {
            0 => (i, i + 21, i + 42),
            1 => (i + 21, i + 42, i),
            _ => (i + 42, i, i + 21),
        };
        encode24(&mut out, c[x], c[y], c[z], 4);
    }
    encode24(&mut out, 0, 0, c[63], 2);
    out
}

/// `digest` repeated and cut to `len` bytes.
fn repeat_to(digest: &[u8], len: usize) -> Vec<u8> {
    digest.iter().copied().cycle().take(len).collect()
}

fn encode24(out: &mut String, b2: u8, b1: u8, b0: u8, chars: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..chars {
        out.push(char::from(ALPHABET[(w & 0x3f) as usize]));
        w >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from Ulrich Drepper's SHA-crypt specification.
    #[test]
    fn matches_specification_vector_hello_world() {
        assert_eq!(
            sha512_crypt("Hello world!", "saltstring"),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
    }

    #[test]
    fn long_salt_is_truncated_to_sixteen_bytes() {
        assert_eq!(
            sha512_crypt("This is just a test", "toolongsaltstringtoolongsaltstring"),
            sha512_crypt("This is just a test", "toolongsaltstrin")
        );
        assert!(sha512_crypt("x", "toolongsaltstringtoolongsaltstring").starts_with("$6$toolongsaltstrin$"));
    }

    #[test]
    fn hash_has_eighty_six_characters() {
        let hash = sha512_crypt("password", "salt");
        assert_eq!(hash.rsplit('$').next().unwrap().len(), 86);
    }
}
