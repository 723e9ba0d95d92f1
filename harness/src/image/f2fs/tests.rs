//! The reader on real filesystems: trees built by `sload.f2fs` into images `mkfs.f2fs` made.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{F2fs, F2fsError};
use crate::image::budget::ReadBudget;
use crate::image::limits;

/// A 4 KiB block of file data whose every byte is derived from its index, so a block read
/// from the wrong place shows.
fn pattern_block(index: u32) -> Vec<u8> {
    let seed = index.to_le_bytes();
    (0..4096u32)
        .map(|i| seed[(i % 4) as usize] ^ (i / 4) as u8)
        .collect()
}

/// An image of `size_mib` MiB made by `mkfs.f2fs` with `options`, then filled from `tree` by
/// `sload.f2fs`.
fn image_of(dir: &Path, tree: &Path, size_mib: u64, options: &[&str]) -> PathBuf {
    let image = dir.join("f2fs.img");
    File::create(&image).unwrap().set_len(size_mib << 20).unwrap();
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let image_arg = image.to_str().unwrap();
    let mut mkfs = vec!["-q", "-f", "-l", "NIXOS_SD"];
    mkfs.extend(options);
    mkfs.push(image_arg);
    run("mkfs.f2fs", &mkfs);
    run("sload.f2fs", &["-f", tree.to_str().unwrap(), image_arg]);
    image
}

fn open(image: &Path) -> F2fs<File> {
    let file = File::open(image).unwrap();
    let len = file.metadata().unwrap().len();
    F2fs::open(file, 0, len, ReadBudget::new(limits::METADATA_READ)).unwrap()
}

fn read(fs: &F2fs<File>, path: &str) -> Result<Vec<u8>, F2fsError> {
    let inode = fs.resolve(path, true)?;
    let mut bytes = Vec::new();
    fs.copy_to(&inode, u64::MAX, &mut bytes)?;
    Ok(bytes)
}

/// A root with a NixOS system's `init` and an `/etc/fstab`.
fn small_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::create_dir_all(tree.join("nix/store/abc-nixos-system-r2s/sw")).unwrap();
    fs::write(tree.join("etc/fstab"), "LABEL=NIXOS_SD / f2fs defaults 0 1\n").unwrap();
    fs::write(
        tree.join("nix/store/abc-nixos-system-r2s/init"),
        "#!/bin/sh\nexec systemd\n",
    )
    .unwrap();
    tree
}

#[test]
fn a_small_file_is_read_from_the_inode_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open(&image_of(dir.path(), &small_tree(dir.path()), 128, &[]));
    let inode = fs.resolve("/etc/fstab", true).unwrap();
    assert!(inode.has_inline_data());
    assert_eq!(
        read(&fs, "/etc/fstab").unwrap(),
        b"LABEL=NIXOS_SD / f2fs defaults 0 1\n"
    );
    assert_eq!(
        read(&fs, "/nix/store/abc-nixos-system-r2s/init").unwrap(),
        b"#!/bin/sh\nexec systemd\n"
    );
}

#[test]
fn files_read_alike_with_extra_attributes_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let options = ["-O", "extra_attr,inode_checksum,inode_crtime,sb_checksum"];
    let fs = open(&image_of(dir.path(), &small_tree(dir.path()), 128, &options));
    assert_eq!(
        read(&fs, "/etc/fstab").unwrap(),
        b"LABEL=NIXOS_SD / f2fs defaults 0 1\n"
    );
}

#[test]
fn a_missing_file_is_not_found_and_a_file_is_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open(&image_of(dir.path(), &small_tree(dir.path()), 128, &[]));
    assert!(matches!(
        fs.resolve("/etc/hostname", true),
        Err(F2fsError::NotFound)
    ));
    assert!(matches!(
        fs.resolve("/etc/fstab/x", true),
        Err(F2fsError::NotADirectory(_))
    ));
}

#[test]
fn a_directory_of_many_entries_spans_dentry_blocks_and_every_name_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let store = tree.join("nix/store");
    fs::create_dir_all(&store).unwrap();
    // 24-byte names take three slots each: 71 entries a block, so 600 need at least 9 blocks.
    let names: Vec<String> = (0..600).map(|i| format!("{i:05}-package-name-x.drv")).collect();
    for name in &names {
        fs::write(store.join(name), name).unwrap();
    }
    let fs = open(&image_of(dir.path(), &tree, 128, &[]));
    let store_inode = fs.resolve("/nix/store", true).unwrap();
    assert!(
        store_inode.size >= 9 * 4096,
        "the directory has {} bytes",
        store_inode.size
    );
    let mut listed = fs.list(&store_inode).unwrap();
    listed.sort();
    assert_eq!(listed, names);
    for name in [&names[0], &names[299], &names[599]] {
        assert_eq!(read(&fs, &format!("/nix/store/{name}")).unwrap(), name.as_bytes());
    }
}

#[test]
fn symlinks_are_followed_relative_absolute_and_through_parents() {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    // /run/current-system → /nix/store/abc-nixos-system-r2s (absolute)
    // /nix/store/abc-nixos-system-r2s/sw/init → ../init (relative, up a level)
    // /first → run/current-system/sw/init (relative, through both)
    fs::create_dir_all(tree.join("run")).unwrap();
    symlink("/nix/store/abc-nixos-system-r2s", tree.join("run/current-system")).unwrap();
    symlink("../init", tree.join("nix/store/abc-nixos-system-r2s/sw/init")).unwrap();
    symlink("run/current-system/sw/init", tree.join("first")).unwrap();
    let fs = open(&image_of(dir.path(), &tree, 128, &[]));
    assert_eq!(read(&fs, "/first").unwrap(), b"#!/bin/sh\nexec systemd\n");
    let link = fs.resolve("/first", false).unwrap();
    assert!(link.is_symlink());
    assert_eq!(fs.read_link(&link).unwrap(), b"run/current-system/sw/init");
}

#[test]
fn a_symlink_loop_ends_at_the_hop_limit_and_a_dangling_link_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    symlink("b", tree.join("a")).unwrap();
    symlink("/a", tree.join("b")).unwrap();
    symlink("/nix/store/gone/init", tree.join("dangling")).unwrap();
    let fs = open(&image_of(dir.path(), &tree, 128, &[]));
    assert!(matches!(fs.resolve("/a", true), Err(F2fsError::SymlinkLoop(40))));
    assert!(matches!(fs.resolve("/dangling", true), Err(F2fsError::NotFound)));
}

#[test]
fn a_large_file_reads_through_the_inode_direct_and_indirect_node_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    // 923 blocks in the inode, 2 × 1018 in direct nodes, the rest under the first indirect
    // node: 3,200 blocks reach 241 blocks into it.
    let blocks = 3200u32;
    let contents: Vec<u8> = (0..blocks).flat_map(pattern_block).collect();
    fs::write(tree.join("big"), &contents).unwrap();
    let fs = open(&image_of(dir.path(), &tree, 128, &[]));
    let read_back = read(&fs, "/big").unwrap();
    assert_eq!(read_back.len(), contents.len());
    let first_wrong = read_back
        .chunks(4096)
        .zip(contents.chunks(4096))
        .position(|(a, b)| a != b);
    assert_eq!(first_wrong, None);
}

/// The byte offset of inode `ino`'s node block in `image`, found by its footer.
fn inode_block_offset(image: &Path, ino: u32) -> u64 {
    let bytes = fs::read(image).unwrap();
    let footer = |block: &[u8]| {
        (
            u32::from_le_bytes(block[4072..4076].try_into().unwrap()),
            u32::from_le_bytes(block[4076..4080].try_into().unwrap()),
        )
    };
    let index = bytes
        .chunks(4096)
        .position(|block| footer(block) == (ino, ino) && block[0..2] != [0, 0])
        .expect("the inode's node block");
    index as u64 * 4096
}

/// Overwrites bytes of `image` at `offset`.
fn patch(image: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    fs::OpenOptions::new()
        .write(true)
        .open(image)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

#[test]
fn compressed_and_encrypted_files_are_refused_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_of(dir.path(), &small_tree(dir.path()), 128, &[]);
    let ino = open(&image).resolve("/etc/fstab", true).unwrap().ino;
    let at = inode_block_offset(&image, ino);
    // i_flags' F2FS_COMPR_FL, as a compressing kernel sets it.
    patch(&image, at + 80, &4u32.to_le_bytes());
    let error = read(&open(&image), "/etc/fstab").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("a compressed file (inode {ino}), which this f2fs reader cannot read")
    );
    // i_advise's encryption bit instead.
    patch(&image, at + 80, &0u32.to_le_bytes());
    patch(&image, at + 2, &[0x04]);
    let error = read(&open(&image), "/etc/fstab").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("an encrypted file (inode {ino}), which this f2fs reader cannot read")
    );
}

#[test]
fn a_corrupt_checkpoint_pack_leaves_the_other_and_two_fail_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_of(dir.path(), &small_tree(dir.path()), 128, &[]);
    let bytes = fs::read(&image).unwrap();
    let cp_blkaddr = u64::from(u32::from_le_bytes(
        bytes[1024 + 76..1024 + 80].try_into().unwrap(),
    ));
    patch(&image, cp_blkaddr * 4096 + 8, &[0xff; 8]);
    assert_eq!(
        read(&open(&image), "/etc/fstab").unwrap(),
        b"LABEL=NIXOS_SD / f2fs defaults 0 1\n"
    );
    patch(&image, (cp_blkaddr + 512) * 4096 + 8, &[0xff; 8]);
    let file = File::open(&image).unwrap();
    let error = F2fs::open(file, 0, 128 << 20, ReadBudget::new(limits::METADATA_READ))
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "corrupt f2fs: the checkpoint at block {cp_blkaddr} checksum is "
        )),
        "{message}"
    );
}

#[test]
fn a_filesystem_larger_than_its_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_of(dir.path(), &small_tree(dir.path()), 128, &[]);
    let file = File::open(&image).unwrap();
    let error = F2fs::open(file, 0, 64 << 20, ReadBudget::new(limits::METADATA_READ))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "corrupt f2fs: the superblock says 32768 blocks, but the partition holds 16384"
    );
}

#[test]
fn bytes_that_are_not_f2fs_are_told_apart() {
    let zeros = vec![0u8; 1 << 20];
    let error = F2fs::open(
        zeros.as_slice(),
        0,
        1 << 20,
        ReadBudget::new(limits::METADATA_READ),
    )
    .err()
    .unwrap();
    assert!(matches!(error, F2fsError::NotF2fs));
}

fn le32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// What `fsck.f2fs --dry-run` reports about `image`, which reads the NAT journal and inline
/// dentries as the kernel writes them: a check of this module's test images independent of
/// the reader.
fn fsck_report(image: &Path) -> String {
    let out = Command::new("fsck.f2fs")
        .args(["--dry-run", image.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_node_whose_nat_entry_is_journalled_in_the_checkpoint_is_found_there() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_of(dir.path(), &small_tree(dir.path()), 128, &[]);
    let ino = open(&image).resolve("/etc/fstab", true).unwrap().ino;
    let bytes = fs::read(&image).unwrap();
    let sb = &bytes[1024..];
    let (cp_blkaddr, nat_blkaddr) = (le32_at(sb, 76) as usize, le32_at(sb, 84) as usize);
    // Move the inode's NAT entry (block 0 of the NAT, in both copies) into the hot data
    // summary's NAT journal of both checkpoint packs, as the kernel does between NAT flushes.
    let entry_at = |copy: usize| (nat_blkaddr + copy * 512) * 4096 + ino as usize * 9;
    let entry = bytes[entry_at(0)..entry_at(0) + 9].to_vec();
    let node_addr = le32_at(&entry, 5);
    assert_ne!(node_addr, 0);
    for copy in 0..2 {
        patch(&image, entry_at(copy) as u64 + 5, &0u32.to_le_bytes());
    }
    for pack in [cp_blkaddr, cp_blkaddr + 512] {
        let header = &bytes[pack * 4096..];
        let compact = le32_at(header, 132) & 0x4 != 0;
        let summary = pack + le32_at(header, 140) as usize;
        let journal = summary * 4096 + if compact { 0 } else { 3584 };
        let mut record = vec![1, 0];
        record.extend(ino.to_le_bytes());
        record.extend(&entry);
        patch(&image, journal as u64, &record);
    }
    let fs = open(&image);
    assert_eq!(fs.journal(), [(ino, node_addr)]);
    assert_eq!(
        read(&fs, "/etc/fstab").unwrap(),
        b"LABEL=NIXOS_SD / f2fs defaults 0 1\n"
    );
    let fsck = fsck_report(&image);
    assert!(!fsck.contains("ASSERT") && !fsck.contains("[Fail]"), "{fsck}");
}

#[test]
fn a_directory_whose_entries_are_inline_is_read_from_its_inode() {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    fs::write(tree.join("etc/hostname"), "r2s\n").unwrap();
    fs::write(tree.join("etc/a-name-longer-than-one-slot.conf"), "x").unwrap();
    let image = image_of(dir.path(), &tree, 128, &[]);
    let etc = open(&image).resolve("/etc", true).unwrap();
    assert!(!etc.has_inline_dentries());
    // Rewrite /etc as the kernel keeps a small directory: its dentry block's entries moved
    // into the inode (bitmap, reserved bytes, 182 dentries, 182 name slots after the one
    // reserved address, 50 words of inline xattrs left at the end).
    let at = inode_block_offset(&image, etc.ino) as usize;
    let bytes = fs::read(&image).unwrap();
    let block_at = le32_at(&bytes, at + 360) as usize * 4096;
    let block = &bytes[block_at..block_at + 4096];
    let (room, count) = (3488, 182);
    let mut area = vec![0u8; room];
    area[..23].copy_from_slice(&block[..23]);
    let dentries = room - count * 19;
    area[dentries..dentries + count * 11].copy_from_slice(&block[30..30 + count * 11]);
    area[dentries + count * 11..].copy_from_slice(&block[2384..2384 + count * 8]);
    patch(&image, at as u64 + 3, &[0x01 | 0x04]);
    patch(&image, at as u64 + 16, &(room as u64).to_le_bytes());
    patch(&image, at as u64 + 24, &1u64.to_le_bytes());
    patch(&image, at as u64 + 360, &[0; 4]);
    patch(&image, at as u64 + 364, &area);
    let fs = open(&image);
    let etc = fs.resolve("/etc", true).unwrap();
    assert!(etc.has_inline_dentries());
    let mut names = fs.list(&etc).unwrap();
    names.sort();
    assert_eq!(names, ["a-name-longer-than-one-slot.conf", "fstab", "hostname"]);
    assert_eq!(read(&fs, "/etc/hostname").unwrap(), b"r2s\n");
    let fsck = fsck_report(&image);
    // fsck walks the inline entries to every inode; only the dentry block, no longer
    // referenced, is still counted as used.
    let failed: Vec<&str> = fsck.lines().filter(|l| l.contains("[Fail]")).collect();
    assert_eq!(failed.len(), 2, "{fsck}");
    assert!(
        failed[0].starts_with("[FSCK] SIT valid block bitmap checking"),
        "{fsck}"
    );
    assert!(
        failed[1].starts_with("[FSCK] valid_block_count matching with CP"),
        "{fsck}"
    );
    assert!(
        fsck.contains("[FSCK] valid_inode_count matched with CP              [Ok..]"),
        "{fsck}"
    );
}

#[test]
fn a_directory_claiming_gigabytes_of_holes_is_walked_by_the_nodes_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_of(dir.path(), &small_tree(dir.path()), 128, &[]);
    let etc = open(&image).resolve("/etc", true).unwrap().ino;
    let at = inode_block_offset(&image, etc);
    // 4 GiB of directory: one dentry block, then holes the inode's missing nodes stand for.
    patch(&image, at + 16, &(4u64 << 30).to_le_bytes());
    let started = std::time::Instant::now();
    assert_eq!(
        read(&open(&image), "/etc/fstab").unwrap(),
        b"LABEL=NIXOS_SD / f2fs defaults 0 1\n"
    );
    assert_eq!(
        read(&open(&image), "/etc/hostname").unwrap_err().to_string(),
        "no such file"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    patch(&image, at + 16, &((4u64 << 30) + 1).to_le_bytes());
    assert_eq!(
        read(&open(&image), "/etc/fstab").unwrap_err().to_string(),
        format!("corrupt f2fs: directory inode {etc} says it is 4294967297 bytes, more than 1048576 blocks")
    );
}
