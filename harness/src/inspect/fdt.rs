//! Flattened device trees (DTB files and FIT images such as u-boot.itb) read just far enough to
//! judge them: the header, the root node's `compatible` and `model`, and the names of the root
//! node's children. Every offset is bounds-checked, so any bytes give a value or an error.

/// The magic at the start of every flattened device tree, big-endian.
pub const MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// What the checks need of a device tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceTree {
    /// The header's `totalsize`.
    pub total_size: u32,
    /// The root node's `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// The root node's `model`, if any.
    pub model: Option<String>,
    /// The names of the root node's direct children (a FIT has `images` and `configurations`).
    pub children: Vec<String>,
}

/// Why bytes are not a device tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FdtError {
    /// The first four bytes are not `d0 0d fe ed`.
    #[error("no device tree magic (d0 0d fe ed); the first bytes are {found}")]
    Magic {
        /// The bytes found, in hex.
        found: String,
    },
    /// The header says the tree is longer than the data.
    #[error("the header says {total_size} bytes but there are only {len}")]
    Truncated {
        /// The header's `totalsize`.
        total_size: u32,
        /// The bytes available.
        len: usize,
    },
    /// The structure block is inconsistent.
    #[error("malformed structure block: {0}")]
    Structure(&'static str),
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// The NUL-separated strings of a property value.
fn string_list(value: &[u8]) -> Vec<String> {
    value
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Whether `bytes` start with the device tree magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Reads the header and the root node of a flattened device tree.
pub fn parse(bytes: &[u8]) -> Result<DeviceTree, FdtError> {
    if !has_magic(bytes) {
        let found: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(FdtError::Magic {
            found: if found.is_empty() {
                "missing (empty file)".to_owned()
            } else {
                found.join(" ")
            },
        });
    }
    let field = |at| be32(bytes, at).ok_or(FdtError::Structure("header cut short"));
    if bytes.len() < HEADER_LEN {
        return Err(FdtError::Structure("header cut short"));
    }
    let total_size = field(4)?;
    if total_size as usize > bytes.len() {
        return Err(FdtError::Truncated {
            total_size,
            len: bytes.len(),
        });
    }
    let tree = &bytes[..total_size as usize];
    let struct_off = field(8)? as usize;
    let strings_off = field(12)? as usize;
    let strings = tree
        .get(strings_off..)
        .ok_or(FdtError::Structure("strings block outside the tree"))?;
    let mut dt = DeviceTree {
        total_size,
        ..DeviceTree::default()
    };
    let mut at = struct_off;
    let mut depth = 0usize;
    loop {
        let token = be32(tree, at).ok_or(FdtError::Structure("runs past the end of the tree"))?;
        at += 4;
        match token {
            BEGIN_NODE => {
                let rest = tree
                    .get(at..)
                    .ok_or(FdtError::Structure("node name outside the tree"))?;
                let len = rest
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or(FdtError::Structure("unterminated node name"))?;
                if depth == 1 {
                    dt.children
                        .push(String::from_utf8_lossy(&rest[..len]).into_owned());
                }
                at = align4(at + len + 1).ok_or(FdtError::Structure("offset overflow"))?;
                depth += 1;
            }
            END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(FdtError::Structure("unbalanced END_NODE"))?;
                if depth == 0 {
                    return Ok(dt);
                }
            }
            PROP => {
                let len = be32(tree, at).ok_or(FdtError::Structure("property cut short"))? as usize;
                let name_off = be32(tree, at + 4).ok_or(FdtError::Structure("property cut short"))? as usize;
                let start = at + 8;
                let value = start
                    .checked_add(len)
                    .and_then(|end| tree.get(start..end))
                    .ok_or(FdtError::Structure("property value outside the tree"))?;
                if depth == 1 {
                    let name = strings
                        .get(name_off..)
                        .and_then(|s| s.split(|b| *b == 0).next())
                        .ok_or(FdtError::Structure("property name outside the strings block"))?;
                    match name {
                        b"compatible" => dt.compatible = string_list(value),
                        b"model" => dt.model = string_list(value).into_iter().next(),
                        _ => {}
                    }
                }
                at = align4(start + len).ok_or(FdtError::Structure("offset overflow"))?;
            }
            NOP => {}
            END if depth == 0 => return Err(FdtError::Structure("no root node")),
            END => return Err(FdtError::Structure("ends inside a node")),
            _ => return Err(FdtError::Structure("unknown token")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal device tree: a root node with `props` (name, value) and empty `children`.
    pub(crate) fn build(props: &[(&str, &[u8])], children: &[&str]) -> Vec<u8> {
        let mut structure = Vec::new();
        let mut strings = Vec::new();
        let word = |v: &mut Vec<u8>, w: u32| v.extend_from_slice(&w.to_be_bytes());
        let pad = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(4) * 4, 0);
        word(&mut structure, BEGIN_NODE);
        structure.extend_from_slice(&[0, 0, 0, 0]);
        for (name, value) in props {
            word(&mut structure, PROP);
            word(&mut structure, value.len() as u32);
            word(&mut structure, strings.len() as u32);
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            structure.extend_from_slice(value);
            pad(&mut structure);
        }
        for child in children {
            word(&mut structure, BEGIN_NODE);
            structure.extend_from_slice(child.as_bytes());
            structure.push(0);
            pad(&mut structure);
            word(&mut structure, END_NODE);
        }
        word(&mut structure, END_NODE);
        word(&mut structure, END);
        let struct_off = HEADER_LEN as u32 + 16;
        let strings_off = struct_off + structure.len() as u32;
        let total = strings_off + strings.len() as u32;
        let mut out = Vec::new();
        for w in [
            u32::from_be_bytes(MAGIC),
            total,
            struct_off,
            strings_off,
            HEADER_LEN as u32,
            17,
            16,
            0,
            strings.len() as u32,
            structure.len() as u32,
        ] {
            word(&mut out, w);
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structure);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn root_compatible_model_and_children_are_read() {
        let dtb = build(
            &[
                ("model", b"FriendlyElec NanoPi R2S\0"),
                ("compatible", b"friendlyarm,nanopi-r2s\0rockchip,rk3328\0"),
            ],
            &["cpus", "memory"],
        );
        let dt = parse(&dtb).unwrap();
        assert_eq!(dt.compatible, ["friendlyarm,nanopi-r2s", "rockchip,rk3328"]);
        assert_eq!(dt.model.as_deref(), Some("FriendlyElec NanoPi R2S"));
        assert_eq!(dt.children, ["cpus", "memory"]);
        assert_eq!(dt.total_size as usize, dtb.len());
    }

    #[test]
    fn wrong_magic_names_the_bytes_found() {
        assert_eq!(
            parse(&[0x1f, 0x8b, 8, 0, 0]).unwrap_err().to_string(),
            "no device tree magic (d0 0d fe ed); the first bytes are 1f 8b 08 00"
        );
    }

    #[test]
    fn a_cut_tree_is_truncated() {
        let dtb = build(&[("compatible", b"x\0")], &[]);
        let err = parse(&dtb[..dtb.len() - 4]).unwrap_err();
        assert_eq!(
            err,
            FdtError::Truncated {
                total_size: dtb.len() as u32,
                len: dtb.len() - 4
            }
        );
    }

    #[test]
    fn every_cut_and_every_corrupted_byte_gives_a_value_or_an_error() {
        let dtb = build(&[("compatible", b"a,b\0")], &["images"]);
        for len in 0..dtb.len() {
            let _ = parse(&dtb[..len]);
        }
        for i in 0..dtb.len() {
            for value in [0x00, 0x03, 0xff] {
                let mut bad = dtb.clone();
                bad[i] = value;
                let _ = parse(&bad);
            }
        }
    }
}
