//! kmod's binary index, as `depmod` writes `modules.dep.bin`, `modules.alias.bin` and the
//! others, and as libkmod (`modprobe`, udev's `kmod` builtin) reads them: a trie of ASCII keys,
//! each with values ordered by a priority.
//!
//! The file is three big-endian `u32`s — the magic `0xB007F457`, the version `0x00020001`,
//! the root node's offset — then the nodes. A node's offset carries in its top four bits which
//! parts the node has: a NUL-terminated prefix (the arc's characters after the first, as a
//! Patricia trie merges single-child chains), a child table (first and last character, then
//! one `u32` offset per character between them, zero where there is none), and values (a
//! count, then each value's priority and NUL-terminated text). Children are written before
//! their parent, so every offset is known when it is written.

use std::collections::BTreeMap;

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const HAS_PREFIX: u32 = 0x8000_0000;
const HAS_VALUES: u32 = 0x4000_0000;
const HAS_CHILDREN: u32 = 0x2000_0000;
/// The offset bits: an index past 256 MiB cannot be addressed.
const OFFSET_MASK: u32 = 0x0FFF_FFFF;
/// libkmod keeps a node's children in an array of 128: keys are 7-bit ASCII.
const CHILD_MAX: u8 = 128;

/// Why an index could not be written.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// A key libkmod could not look up: empty, or with a byte outside 1–127.
    #[error("index key {key:?} is not 7-bit ASCII without NUL (libkmod reads no other keys)")]
    BadKey {
        /// The key, lossily.
        key: String,
    },
    /// A value with a NUL in it, which would end it early.
    #[error("index value {value:?} holds a NUL byte")]
    BadValue {
        /// The value.
        value: String,
    },
    /// More than an offset can address.
    #[error("the index would be larger than the 256 MiB its offsets can address")]
    TooLarge,
}

/// An index being built: keys and their values, then [`Index::write`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Index {
    root: Node,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Node {
    /// One node per character at first; [`Node::compress`] merges chains when writing.
    children: BTreeMap<u8, Node>,
    /// (priority, value), kept in insertion order; written sorted by priority.
    values: Vec<(u32, String)>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds `value` under `key` with `priority` (lower first when a key has several values,
    /// as depmod gives each module its place in `modules.order`).
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<(), IndexError> {
        if key.is_empty() || key.bytes().any(|b| b == 0 || b >= CHILD_MAX) {
            return Err(IndexError::BadKey { key: key.to_owned() });
        }
        if value.contains('\0') {
            return Err(IndexError::BadValue {
                value: value.to_owned(),
            });
        }
        let mut node = &mut self.root;
        for byte in key.bytes() {
            node = node.children.entry(byte).or_default();
        }
        node.values.push((priority, value.to_owned()));
        Ok(())
    }

    /// The index file's bytes.
    pub fn write(&self) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let root = write_node(&self.root, Vec::new(), &mut out)?;
        out[8..12].copy_from_slice(&root.to_be_bytes());
        Ok(out)
    }
}

/// Writes `node`, whose arc from its parent carries `prefix` after the arc's first character,
/// and everything below it; returns its offset with its flags.
fn write_node(node: &Node, mut prefix: Vec<u8>, out: &mut Vec<u8>) -> Result<u32, IndexError> {
    // A chain of nodes with one child and no values is one node with a longer prefix.
    let mut node = node;
    while node.values.is_empty() && node.children.len() == 1 {
        let (&byte, child) = node.children.iter().next().expect("one child");
        prefix.push(byte);
        node = child;
    }
    let mut children = Vec::with_capacity(node.children.len());
    for (&byte, child) in &node.children {
        children.push((byte, write_node(child, Vec::new(), out)?));
    }
    let at = u32::try_from(out.len()).map_err(|_| IndexError::TooLarge)?;
    if at > OFFSET_MASK {
        return Err(IndexError::TooLarge);
    }
    let mut flags = 0;
    if !prefix.is_empty() {
        flags |= HAS_PREFIX;
        out.extend_from_slice(&prefix);
        out.push(0);
    }
    if let (Some(&(first, _)), Some(&(last, _))) = (children.first(), children.last()) {
        flags |= HAS_CHILDREN;
        out.push(first);
        out.push(last);
        let mut offsets = vec![0u32; usize::from(last - first) + 1];
        for (byte, offset) in children {
            offsets[usize::from(byte - first)] = offset;
        }
        for offset in offsets {
            out.extend_from_slice(&offset.to_be_bytes());
        }
    }
    if !node.values.is_empty() {
        flags |= HAS_VALUES;
        let mut values = node.values.clone();
        values.sort_by_key(|(priority, _)| *priority);
        out.extend_from_slice(&(values.len() as u32).to_be_bytes());
        for (priority, value) in values {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
    }
    Ok(at | flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_index_is_a_header_and_an_empty_root() {
        let bytes = Index::new().write().unwrap();
        assert_eq!(bytes, [0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0, 0, 0, 12]);
    }

    #[test]
    fn one_key_is_a_root_whose_prefix_is_the_key_and_holds_the_value() {
        let mut index = Index::new();
        index.insert("ab", "x", 7).unwrap();
        let bytes = index.write().unwrap();
        // Root at 12 with a prefix and values: flags 0xC0.
        assert_eq!(&bytes[8..12], &[0xC0, 0, 0, 12]);
        assert_eq!(&bytes[12..], b"ab\0\0\0\0\x01\0\0\0\x07x\0");
    }

    #[test]
    fn children_are_written_before_their_parent_with_a_table_from_first_to_last() {
        let mut index = Index::new();
        index.insert("a", "1", 0).unwrap();
        index.insert("c", "2", 0).unwrap();
        let bytes = index.write().unwrap();
        // "a" at 12 (values only: 4 + 4 + 2 bytes), "c" at 22, root at 32 with children a..c.
        assert_eq!(&bytes[8..12], &(32u32 | HAS_CHILDREN).to_be_bytes());
        assert_eq!(&bytes[32..34], b"ac");
        let table: Vec<u32> = bytes[34..46]
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(table, vec![12 | HAS_VALUES, 0, 22 | HAS_VALUES]);
    }

    #[test]
    fn values_of_one_key_are_written_lowest_priority_first() {
        let mut index = Index::new();
        index.insert("k", "late", 9).unwrap();
        index.insert("k", "early", 1).unwrap();
        let bytes = index.write().unwrap();
        assert!(bytes.ends_with(b"\0\0\0\x02\0\0\0\x01early\0\0\0\0\x09late\0"));
    }

    #[test]
    fn keys_beyond_ascii_and_values_with_nul_are_refused() {
        let mut index = Index::new();
        assert_eq!(
            index.insert("caf\u{e9}", "v", 0),
            Err(IndexError::BadKey {
                key: "caf\u{e9}".into()
            })
        );
        assert!(matches!(index.insert("", "v", 0), Err(IndexError::BadKey { .. })));
        assert!(matches!(
            index.insert("k", "a\0b", 0),
            Err(IndexError::BadValue { .. })
        ));
    }
}
