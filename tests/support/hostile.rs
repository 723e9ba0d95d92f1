//! Hostile images crafted from copies of the fixtures: metadata changed with debugfs, or a
//! partition table written by hand, for the tests that the image readers stay bounded.

use std::path::{Path, PathBuf};

use crate::{fixture, temp_dir};

/// A sparse copy of fixture `name` in `dir`.
pub fn copy_of(name: &str, dir: &Path) -> PathBuf {
    let image = dir.join(format!("{name}.img"));
    let cp = std::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(fixture(name))
        .arg(&image)
        .status()
        .unwrap();
    assert!(cp.success());
    image
}

/// Runs `debugfs -w` commands on the ext4 filesystem of partition `index` of `image`, in place
/// (e2fsprogs opens `FILE?offset=N` at that byte offset).
pub fn debugfs(image: &Path, index: u32, commands: &[&str]) {
    let dir = temp_dir();
    let script = dir.path().join("commands");
    std::fs::write(&script, commands.join("\n") + "\n").unwrap();
    debugfs_checked(image, index, &["-w".as_ref(), "-f".as_ref(), script.as_os_str()]);
}

/// Copies directory `path` of the ext4 filesystem of partition `index` of `image` into host
/// directory `into` (as `into/<its name>`).
pub fn debugfs_rdump(image: &Path, index: u32, path: &str, into: &Path) {
    let request = format!("rdump {path} {}", into.display());
    debugfs_checked(image, index, &["-R".as_ref(), request.as_ref()]);
}

/// Runs debugfs with `args` on partition `index` of `image`, asserting it succeeded and said
/// nothing but its banner on stderr (debugfs exits 0 after a failed command).
fn debugfs_checked(image: &Path, index: u32, args: &[&std::ffi::OsStr]) {
    let table = r2s_harness::image::Table::read(image).unwrap();
    let partition = table.partition(index).unwrap();
    let out = std::process::Command::new("debugfs")
        .args(args)
        .arg(format!("{}?offset={}", image.display(), partition.offset()))
        .output()
        .expect("debugfs runs (e2fsprogs is installed)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.lines().skip(1).any(|l| !l.starts_with("debugfs")),
        "debugfs {args:?}: {said}"
    );
}

/// The bytes of file `path` on the ext4 filesystem of partition `index` of `image`.
pub fn debugfs_cat(image: &Path, index: u32, path: &str) -> Vec<u8> {
    debugfs_request(image, index, &format!("cat {path}"))
}

/// Where symlink `path` (on the ext4 filesystem of partition `index` of `image`) points.
pub fn debugfs_link(image: &Path, index: u32, path: &str) -> String {
    let stat = debugfs_request(image, index, &format!("stat {path}"));
    let stat = String::from_utf8_lossy(&stat);
    stat.lines()
        .find_map(|l| l.strip_prefix("Fast link dest: \"")?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{path} is no (short) symlink: {stat}"))
        .to_owned()
}

/// What `debugfs -R REQUEST` prints on partition `index` of `image` (read only).
fn debugfs_request(image: &Path, index: u32, request: &str) -> Vec<u8> {
    let table = r2s_harness::image::Table::read(image).unwrap();
    let partition = table.partition(index).unwrap();
    let out = std::process::Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(format!("{}?offset={}", image.display(), partition.offset()))
        .output()
        .expect("debugfs runs (e2fsprogs is installed)");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "debugfs {request}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A sparse image of `len` bytes holding a protective MBR and a primary GPT header (CRC
/// correct) that says `count` entries of `entry_size` bytes from sector 2, followed by `entries`.
pub fn gpt_image(path: &Path, len: u64, count: u32, entry_size: u32, entries: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::create(path).unwrap();
    file.set_len(len).unwrap();
    let mut mbr = [0u8; 512];
    mbr[446 + 4] = 0xee;
    mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    mbr[510..].copy_from_slice(&[0x55, 0xaa]);
    file.write_all_at(&mbr, 0).unwrap();
    let sectors = len / 512;
    let mut header = vec![0u8; 92];
    header[..8].copy_from_slice(b"EFI PART");
    header[8..12].copy_from_slice(&[0, 0, 1, 0]);
    header[12..16].copy_from_slice(&92u32.to_le_bytes());
    header[24..32].copy_from_slice(&1u64.to_le_bytes());
    header[32..40].copy_from_slice(&(sectors - 1).to_le_bytes());
    header[40..48].copy_from_slice(&2048u64.to_le_bytes());
    header[48..56].copy_from_slice(&(sectors - 34).to_le_bytes());
    header[72..80].copy_from_slice(&2u64.to_le_bytes());
    header[80..84].copy_from_slice(&count.to_le_bytes());
    header[84..88].copy_from_slice(&entry_size.to_le_bytes());
    header[88..92].copy_from_slice(&crc32fast::hash(entries).to_le_bytes());
    let crc = crc32fast::hash(&header);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    file.write_all_at(&header, 512).unwrap();
    file.write_all_at(entries, 1024).unwrap();
}
