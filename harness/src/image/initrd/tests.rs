//! The reader on archives made by the real `cpio` tool and compressed by the real gzip, zstd,
//! xz and lz4 tools, and on hostile ones.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;
use crate::image::test_tools::pipe;

const RELEASE: &str = "6.1.0-test-arm64";

/// A newc archive made by `cpio -o -H newc` of the files `(path, contents)` under a fresh
/// directory.
fn cpio_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    cpio_with_links(files, &[])
}

fn cpio_in(dir: &Path, list: &str) -> Vec<u8> {
    let mut child = Command::new("cpio")
        .args(["--quiet", "-o", "-H", "newc"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the cpio tool");
    child.stdin.take().unwrap().write_all(list.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    output.stdout
}

fn module_path(dir: &str, file: &str) -> String {
    format!("usr/lib/modules/{RELEASE}/kernel/drivers/{dir}/{file}")
}

/// A main archive as initramfs-tools makes it: modules, some compressed, and modules.builtin.
fn main_archive() -> Vec<u8> {
    let virtio = module_path("block", "virtio_blk.ko");
    let mmc = module_path("mmc/host", "dw_mmc-rockchip.ko.zst");
    let ext4 = format!("usr/lib/modules/{RELEASE}/kernel/fs/ext4/ext4.ko.xz");
    let builtin = format!("usr/lib/modules/{RELEASE}/modules.builtin");
    let not_a_module = "usr/share/doc/readme.ko.txt";
    cpio_of(&[
        ("init", b"#!/bin/sh\n"),
        (&virtio, &[0x7f, b'E', b'L', b'F', 1, 2, 3]),
        (&mmc, b"zstd data"),
        (&ext4, b"xz data"),
        (
            &builtin,
            b"kernel/drivers/pci/controller/pci-host-generic.ko\nkernel/drivers/tty/serial/amba-pl011.ko\n",
        ),
        (not_a_module, b"x"),
    ])
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn expect_main(index: &Index) {
    assert_eq!(index.modules, names(&["dw_mmc_rockchip", "ext4", "virtio_blk"]));
    assert_eq!(index.builtin, Some(names(&["amba_pl011", "pci_host_generic"])));
    assert_eq!(index.releases, names(&[RELEASE]));
}

#[test]
fn an_uncompressed_archive_gives_its_module_names_and_builtin_list() {
    let index = read(&main_archive()).unwrap();
    expect_main(&index);
    assert_eq!(index.segments, [Compression::None]);
}

#[test]
fn every_compression_the_kernel_unpacks_is_read() {
    let archive = main_archive();
    let cases: [(&str, &[&str], Compression); 5] = [
        ("gzip", &["-c", "-9"], Compression::Gzip),
        ("zstd", &["-q", "-c", "-19"], Compression::Zstd),
        ("xz", &["-c", "--check=crc32"], Compression::Xz),
        ("xz", &["-c", "--format=lzma"], Compression::Lzma),
        ("lz4", &["-q", "-c", "-l"], Compression::Lz4),
    ];
    for (program, args, compression) in cases {
        let packed = pipe(program, args, &archive);
        let index = read(&packed).unwrap_or_else(|e| panic!("{compression}: {e}"));
        expect_main(&index);
        assert_eq!(index.segments, [compression]);
    }
}

#[test]
fn an_early_uncompressed_archive_before_a_compressed_one_is_read_as_debian_writes_it() {
    let early = cpio_of(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
    let mut initrd = early;
    initrd.extend(pipe("zstd", &["-q", "-c"], &main_archive()));
    let index = read(&initrd).unwrap();
    expect_main(&index);
    assert_eq!(index.segments, [Compression::None, Compression::Zstd]);
}

#[test]
fn compressed_archives_one_after_another_and_zstd_frames_split_mid_entry_are_read() {
    let archive = main_archive();
    let (first, second) = archive.split_at(archive.len() / 2 + 3);
    let mut frames = pipe("zstd", &["-q", "-c"], first);
    frames.extend(pipe("zstd", &["-q", "-c"], second));
    let index = read(&frames).unwrap();
    expect_main(&index);
    assert_eq!(index.segments, [Compression::Zstd]);

    let extra = cpio_of(&[(&module_path("nvme/host", "nvme.ko"), b"x")]);
    let mut two = pipe("gzip", &["-c"], &archive);
    two.extend([0u8; 12]);
    two.extend(pipe("xz", &["-c"], &extra));
    let index = read(&two).unwrap();
    assert!(index.modules.contains("nvme") && index.modules.contains("virtio_blk"));
    assert_eq!(index.segments, [Compression::Gzip, Compression::Xz]);
}

/// `archive` with the 8 hex digits of header field `field` of its first entry replaced.
fn with_field(mut archive: Vec<u8>, field: usize, hex: &[u8; 8]) -> Vec<u8> {
    archive[6 + field * 8..6 + field * 8 + 8].copy_from_slice(hex);
    archive
}

#[test]
fn a_header_claiming_a_huge_name_is_refused_before_anything_is_read() {
    let error = read(&with_field(main_archive(), 11, b"FFFFFFFF")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad cpio header at byte 0: name size 4294967295, not 1 to 4096"
    );
}

#[test]
fn a_header_claiming_a_huge_file_is_a_truncated_archive() {
    let error = read(&with_field(main_archive(), 6, b"FFFFFFF0")).unwrap_err();
    assert!(matches!(error, InitrdError::Truncated { .. }), "{error}");
    let packed = pipe("zstd", &["-q", "-c"], &with_field(main_archive(), 6, b"FFFFFFF0"));
    let error = read(&packed).unwrap_err();
    assert!(
        error.to_string().contains("in the zstd stream at byte 0"),
        "{error}"
    );
}

#[test]
fn a_header_with_non_hex_digits_says_which_field() {
    let error = read(&with_field(main_archive(), 1, b"0000x1ed")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad cpio header at byte 0: field 1 is \"0000x1ed\", not 8 hexadecimal digits"
    );
}

#[test]
fn a_truncated_compressed_stream_is_a_decode_error() {
    for (program, args) in [("zstd", &["-q", "-c"][..]), ("gzip", &["-c"]), ("xz", &["-c"])] {
        let mut packed = pipe(program, args, &main_archive());
        packed.truncate(packed.len() / 2);
        let error = read(&packed).unwrap_err();
        assert!(
            matches!(error, InitrdError::Corrupt { offset: 0, .. }),
            "{program}: {error}"
        );
    }
}

/// `xz -c` of the main archive with its stream footer's backward size (the index's length,
/// stored as length / 4 - 1) set to `backward`, and the footer's CRC32 made to match, so only
/// the size itself is wrong.
fn xz_with_backward_size(backward: u32) -> Vec<u8> {
    let mut packed = pipe("xz", &["-c"], &main_archive());
    let footer = packed.len() - 12;
    packed[footer + 4..footer + 8].copy_from_slice(&backward.to_le_bytes());
    let crc = crc32fast::hash(&packed[footer + 4..footer + 10]);
    packed[footer..footer + 4].copy_from_slice(&crc.to_le_bytes());
    packed
}

#[test]
fn an_xz_footer_claiming_the_largest_index_is_a_decode_error_not_an_overflow() {
    // The input a fuzzer found: lzma-rs added 1 to this size unchecked and panicked.
    let error = read(&xz_with_backward_size(u32::MAX)).unwrap_err();
    assert!(
        matches!(
            error,
            InitrdError::Corrupt {
                offset: 0,
                compression: Compression::Xz,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn an_uncompressed_archive_cut_short_is_truncated() {
    let archive = main_archive();
    let half = archive.len() / 2;
    let error = read(&archive[..half]).unwrap_err();
    assert!(
        matches!(error, InitrdError::Truncated { offset, .. } if offset == half as u64),
        "{error}"
    );
}

#[test]
fn a_bad_header_after_an_early_archive_is_named_at_its_offset_in_the_file() {
    let early = cpio_of(&[("kernel/x86/microcode/AuthenticAMD.bin", b"ucode")]);
    let at = early.len();
    let mut initrd = early;
    initrd.extend(with_field(main_archive(), 11, b"00100000"));
    assert_eq!(
        read(&initrd).unwrap_err().to_string(),
        format!("bad cpio header at byte {at}: name size 1048576, not 1 to 4096")
    );
}

#[test]
fn a_bomb_stops_at_the_unpacked_limit() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = std::fs::File::create(dir.path().join("zeros")).unwrap();
    zeros.set_len(64 << 20).unwrap();
    let archive = cpio_in(dir.path(), "zeros\n");
    let packed = pipe("zstd", &["-q", "-c", "-19"], &archive);
    assert!(packed.len() < 64 << 10, "{} bytes", packed.len());
    let limits = Limits {
        unpacked: 16 << 20,
        ..Limits::default()
    };
    let error = read_with(&packed, limits).unwrap_err();
    assert_eq!(error.to_string(), "it unpacks to more than 16777216 bytes");
}

#[test]
fn more_entries_than_the_limit_are_refused() {
    let limits = Limits {
        entries: 3,
        ..Limits::default()
    };
    let error = read_with(&main_archive(), limits).unwrap_err();
    assert_eq!(error.to_string(), "it has more than 3 entries");
}

#[test]
fn a_builtin_list_larger_than_the_limit_is_refused() {
    let limits = Limits {
        builtin_list: 10,
        ..Limits::default()
    };
    let error = read_with(&main_archive(), limits).unwrap_err();
    assert!(
        matches!(error, InitrdError::BuiltinListTooLarge { limit: 10, .. }),
        "{error}"
    );
}

#[test]
fn data_after_a_compressed_archive_is_junk() {
    let mut archive = main_archive();
    let end = archive.len() as u64;
    archive.extend(b"garbage!");
    let error = read(&pipe("gzip", &["-c"], &archive)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("the gzip stream at byte 0 holds data after its cpio archive, at unpacked byte {end}")
    );
}

#[test]
fn unknown_and_unsupported_data_is_named() {
    assert!(matches!(read(&[]), Err(InitrdError::Empty)));
    assert!(matches!(read(&[0; 512]), Err(InitrdError::Empty)));
    let bzip2 = pipe("bzip2", &["-c"], &main_archive());
    assert_eq!(
        read(&bzip2).unwrap_err().to_string(),
        "at byte 0: bzip2-compressed data, which this reader cannot unpack"
    );
    let frame = pipe("lz4", &["-q", "-c"], &main_archive());
    assert!(read(&frame)
        .unwrap_err()
        .to_string()
        .contains("lz4 in its frame format, which the kernel does not unpack"));
    let mut after = main_archive();
    after.extend(b"\x7fELF");
    assert_eq!(
        read(&after).unwrap_err().to_string(),
        format!(
            "at byte {}: 7f 45 4c 46: neither a cpio archive (070701) nor gzip, zstd, xz, lzma or lz4 data",
            main_archive().len()
        )
    );
}

#[test]
fn module_names_are_canonical_and_other_files_are_not_modules() {
    assert_eq!(
        module_name("dw_mmc-rockchip.ko.zst").as_deref(),
        Some("dw_mmc_rockchip")
    );
    assert_eq!(module_name("nvme-core.ko").as_deref(), Some("nvme_core"));
    assert_eq!(module_name("modules.dep"), None);
    assert_eq!(module_name(".ko"), None);
}

/// A NixOS store path of the kind stage-1.nix puts the initrd's modules in.
const MODULES_SHRUNK: &str = "nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-linux-6.1-modules-shrunk";

/// An archive made by the real `cpio` tool of `files` and `(path, target)` symlinks.
fn cpio_with_links(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::new();
    for (path, contents) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, contents).unwrap();
        list.push_str(&format!("{path}\n"));
    }
    for (path, target) in links {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &full).unwrap();
        list.push_str(&format!("{path}\n"));
    }
    cpio_in(dir.path(), &list)
}

/// The modules of a NixOS initrd, in its store path: xz-compressed as makeModulesClosure
/// copies them from a kernel built with compressed modules, with depmod's files.
fn store_modules() -> Vec<(String, &'static [u8])> {
    let base = format!("{MODULES_SHRUNK}/lib/modules/{RELEASE}");
    vec![
        (
            format!("{base}/kernel/drivers/mmc/core/mmc_block.ko.xz"),
            b"xz".as_slice(),
        ),
        (
            format!("{base}/kernel/drivers/block/virtio_blk.ko.xz"),
            b"xz".as_slice(),
        ),
        (
            format!("{base}/modules.builtin"),
            b"kernel/drivers/tty/serial/amba-pl011.ko\n".as_slice(),
        ),
        (format!("{base}/modules.dep"), b"".as_slice()),
    ]
}

/// An archive of [`store_modules`] and `more` files, with `links`.
fn store_archive(more: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let store = store_modules();
    let mut files: Vec<(&str, &[u8])> = store.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    files.extend_from_slice(more);
    cpio_with_links(&files, links)
}

fn expect_store_modules(index: &Index) {
    assert_eq!(index.modules, names(&["mmc_block", "virtio_blk"]));
    assert_eq!(index.builtin, Some(names(&["amba_pl011"])));
    assert_eq!(index.releases, names(&[RELEASE]));
}

#[test]
fn a_scripted_stage_1_initrd_is_read_through_its_lib_link_to_the_store() {
    let target = format!("/{MODULES_SHRUNK}/lib");
    let archive = store_archive(&[], &[("lib", &target)]);
    let index = read(&pipe("zstd", &["-q", "-c"], &archive)).unwrap();
    expect_store_modules(&index);
    assert_eq!(index.segments, [Compression::Zstd]);
}

#[test]
fn the_store_paths_modules_directory_and_each_modules_path_below_it_are_kept() {
    let target = format!("/{MODULES_SHRUNK}/lib");
    let index = read(&store_archive(&[], &[("lib", &target)])).unwrap();
    assert_eq!(
        index.module_dirs.get(RELEASE).map(String::as_str),
        Some(format!("{MODULES_SHRUNK}/lib/modules/{RELEASE}").trim_start_matches('/'))
    );
    assert_eq!(
        index.module_paths.get("virtio_blk").map(String::as_str),
        Some("kernel/drivers/block/virtio_blk.ko.xz")
    );
}

#[test]
fn the_modules_alias_in_the_initrd_s_modules_directory_is_read_through_its_links() {
    let target = format!("/{MODULES_SHRUNK}/lib");
    let alias_path = format!("{MODULES_SHRUNK}/lib/modules/{RELEASE}/modules.alias");
    let elsewhere = "etc/modules.alias";
    let alias: &[u8] = b"# Aliases extracted from modules themselves.\n\
        alias virtio:d00000002v* virtio_blk\n\
        alias mmc:block mmc-block\n\
        not an alias line\n";
    let archive = store_archive(
        &[(&alias_path, alias), (elsewhere, b"alias pci:v* stray\n")],
        &[("lib", &target)],
    );
    let index = read(&pipe("zstd", &["-q", "-c"], &archive)).unwrap();
    let expected: BTreeMap<String, Vec<String>> = [
        ("mmc_block".to_owned(), vec!["mmc:block".to_owned()]),
        ("virtio_blk".to_owned(), vec!["virtio:d00000002v*".to_owned()]),
    ]
    .into();
    assert_eq!(index.aliases, expected);
}

#[test]
fn alias_lists_past_their_limit_are_passed_over_and_the_initrd_is_still_read() {
    let target = format!("/{MODULES_SHRUNK}/lib");
    let alias_path = format!("{MODULES_SHRUNK}/lib/modules/{RELEASE}/modules.alias");
    let archive = store_archive(
        &[(&alias_path, b"alias virtio:d00000002v* virtio_blk\n")],
        &[("lib", &target)],
    );
    let limits = Limits {
        alias_lists: 8,
        ..Limits::default()
    };
    let index = read_with(&archive, limits).unwrap();
    expect_store_modules(&index);
    assert!(index.aliases.is_empty(), "{:?}", index.aliases);
}

#[test]
fn a_systemd_stage_1_initrd_is_read_through_its_lib_modules_link() {
    let target = format!("/{MODULES_SHRUNK}/lib/modules");
    let archive = store_archive(&[], &[("lib/modules", &target)]);
    expect_store_modules(&read(&pipe("zstd", &["-q", "-c"], &archive)).unwrap());
}

#[test]
fn a_link_in_a_later_archive_leads_to_modules_an_earlier_one_holds() {
    let mut initrd = store_archive(&[], &[]);
    let target = format!("/{MODULES_SHRUNK}/lib");
    initrd.extend(pipe(
        "gzip",
        &["-c"],
        &cpio_with_links(&[("init", b"#!/bin/sh\n")], &[("lib", &target)]),
    ));
    expect_store_modules(&read(&initrd).unwrap());
}

#[test]
fn store_modules_count_without_a_link_when_the_initrd_makes_it_at_run_time() {
    expect_store_modules(&read(&store_archive(&[], &[])).unwrap());
}

#[test]
fn modules_outside_the_directory_modprobe_looks_in_are_not_the_kernel_s() {
    let elsewhere = format!("opt/lib/modules/{RELEASE}/kernel/drivers/nvme/host/nvme.ko");
    let plain = format!("lib/modules/{RELEASE}/kernel/drivers/ata/ahci.ko");
    let index = read(&store_archive(&[(&elsewhere, b"elf"), (&plain, b"elf")], &[])).unwrap();
    assert_eq!(
        index.modules,
        names(&["ahci"]),
        "only /lib/modules counts once it has modules"
    );
    assert_eq!(index.builtin, None);
}

#[test]
fn a_link_loop_leaves_the_modules_directory_empty_instead_of_hanging() {
    let files = [(format!("lib2/modules/{RELEASE}/kernel/x.ko"), b"elf".as_slice())];
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let index = read(&cpio_with_links(
        &files,
        &[("lib", "lib2/loop"), ("lib2/loop", "/lib")],
    ))
    .unwrap();
    assert!(index.modules.is_empty(), "{:?}", index.modules);
}

#[test]
fn kept_paths_beyond_the_names_limit_are_refused() {
    let limits = Limits {
        names: 200,
        ..Limits::default()
    };
    let error = read_with(&store_archive(&[], &[]), limits).unwrap_err();
    assert_eq!(
        error.to_string(),
        "its module paths and symlinks take more than 200 bytes"
    );
}

#[test]
fn a_symlink_claiming_a_target_longer_than_a_path_is_refused_at_its_header() {
    let archive = cpio_with_links(&[], &[("lib", "usr/lib")]);
    let error = read(&with_field(archive, 6, b"00002000")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad cpio header at byte 0: a symlink's target of 8192 bytes, more than 4096"
    );
}

const FSTAB: &[u8] = b"/dev/disk/by-label/NIXOS_SD /sysroot ext4 defaults\n";
const FS_INFO: &[u8] = b"/\n/dev/disk/by-label/NIXOS_SD\next4\ndefaults\n";

#[test]
fn the_root_files_are_read_etc_fstab_through_its_link_into_the_store() {
    // NixOS's systemd stage 1 links /etc/fstab to its store fstab; a scripted stage 1 keeps
    // its fsInfo in the store.
    let archive = cpio_with_links(
        &[
            ("nix/store/aaaa-initrd-fstab", FSTAB),
            ("nix/store/bbbb-initrd-fsinfo", FS_INFO),
            ("etc/hostname", b"ivy\n"),
        ],
        &[("etc/fstab", "/nix/store/aaaa-initrd-fstab")],
    );
    let index = read(&archive).unwrap();
    assert_eq!(
        index.root_files,
        RootFiles {
            fstab: Some(String::from_utf8(FSTAB.to_vec()).unwrap()),
            store_fstab: None,
            fs_info: Some(String::from_utf8(FS_INFO.to_vec()).unwrap()),
        }
    );
}

#[test]
fn a_store_fstab_no_link_leads_to_is_kept_apart_and_an_initrd_without_root_files_has_none() {
    let archive = cpio_of(&[("nix/store/cccc-initrd-fstab", FSTAB)]);
    let index = read(&archive).unwrap();
    assert_eq!(index.root_files.fstab, None);
    assert_eq!(
        index.root_files.store_fstab.as_deref(),
        Some(std::str::from_utf8(FSTAB).unwrap())
    );
    assert_eq!(read(&main_archive()).unwrap().root_files, RootFiles::default());
}

#[test]
fn a_root_file_larger_than_its_limit_is_skipped_and_the_rest_is_read() {
    let limits = Limits {
        root_file: 16,
        ..Limits::default()
    };
    let archive = cpio_of(&[("etc/fstab", FSTAB), ("init", b"#!/bin/sh\n")]);
    let index = read_with(&archive, limits).unwrap();
    assert_eq!(index.root_files, RootFiles::default());
}
