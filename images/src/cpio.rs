//! A writer for the "newc" cpio format the Linux kernel unpacks as an initramfs.
//!
//! Written here rather than by the `cpio` tool so that device nodes (`/dev/console`) and root
//! ownership need no privileges, and the archive is byte-for-byte reproducible.

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built in memory. Entries are written in the order they are added; the kernel
/// does not create missing parent directories, so add a directory before anything in it.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            next_inode: 1,
        }
    }

    /// Adds a directory with permission bits `mode`.
    pub fn dir(&mut self, path: &str, mode: u32) {
        self.entry(path, S_IFDIR | mode, 2, (0, 0), &[]);
    }

    /// Adds a regular file with permission bits `mode`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, S_IFREG | mode, 1, (0, 0), data);
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | mode, 1, (major, minor), &[]);
    }

    /// Closes the archive with the trailer entry and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_inode = 0;
        self.entry(TRAILER, 0, 1, (0, 0), &[]);
        // Padded to a 512-byte block as the cpio tool pads; the kernel takes either.
        let padded = self.bytes.len().next_multiple_of(512);
        self.bytes.resize(padded, 0);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        let name = path.trim_start_matches('/');
        let inode = self.next_inode;
        if inode != 0 {
            self.next_inode += 1;
        }
        let fields = [
            inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed for reproducible archives
            u32::try_from(data.len()).expect("initrd entry larger than 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("path length fits u32"),
            0, // check
        ];
        self.bytes.extend_from_slice(MAGIC.as_bytes());
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad4();
        self.bytes.extend_from_slice(data);
        self.pad4();
    }

    fn pad4(&mut self) {
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses newc headers back: (name, mode, rdevmajor, rdevminor, data).
    fn parse(bytes: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&bytes[at..at + 6], b"070701", "magic at {at}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&bytes[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) = (field(1), field(6), field(9), field(10), field(11));
            let name_start = at + 110;
            let name = std::str::from_utf8(&bytes[name_start..name_start + namesize as usize - 1]).unwrap();
            assert_eq!(
                bytes[name_start + namesize as usize - 1],
                0,
                "name is NUL-terminated"
            );
            let data_start = (name_start + namesize as usize).next_multiple_of(4);
            let data = bytes[data_start..data_start + size as usize].to_vec();
            at = (data_start + size as usize).next_multiple_of(4);
            if name == TRAILER {
                return out;
            }
            out.push((name.to_owned(), mode, rmaj, rmin, data));
        }
    }

    #[test]
    fn entries_round_trip_with_types_and_contents() {
        let mut archive = Archive::new();
        archive.dir("/dev", 0o755);
        archive.char_device("/dev/console", 0o600, 5, 1);
        archive.file("/init", 0o755, b"#!/bin/sh\n");
        archive.symlink("/bin/sh", "busybox");
        let entries = parse(&archive.finish());
        assert_eq!(
            entries,
            vec![
                ("dev".to_owned(), 0o040755, 0, 0, vec![]),
                ("dev/console".to_owned(), 0o020600, 5, 1, vec![]),
                ("init".to_owned(), 0o100755, 0, 0, b"#!/bin/sh\n".to_vec()),
                ("bin/sh".to_owned(), 0o120777, 0, 0, b"busybox".to_vec()),
            ]
        );
    }

    #[test]
    fn headers_and_data_start_on_four_byte_boundaries() {
        let mut archive = Archive::new();
        archive.file("/a", 0o644, b"x");
        archive.file("/bc", 0o644, b"yz");
        let bytes = archive.finish();
        // Header (110) + "a\0" = 112, data 1 byte padded to 116: the next header starts there.
        assert_eq!(&bytes[116..122], b"070701");
        assert_eq!(bytes.len() % 512, 0);
    }

    #[test]
    fn archive_ends_with_trailer() {
        let bytes = Archive::new().finish();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("070701"));
        assert!(text.contains("TRAILER!!!\0"));
    }
}
