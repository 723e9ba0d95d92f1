//! Reading disk images without mounting: real ext4 filesystems made by `mke2fs -d`, placed in
//! GPT and MBR disk images built here, read back through the partition table.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use r2s_harness::image::boot_config::{self, SEARCH_PATHS};
use r2s_harness::image::partition::{GPT_LEGACY_BIOS_BOOTABLE, LINUX_FILESYSTEM};
use r2s_harness::image::{
    check_bootable_image, exists, probe_filesystem, read_file, resolve, Ext4Volume, FsKind, Guid, ImageError,
    PartitionType, Scheme, Table,
};

const MIB: u64 = 1024 * 1024;

/// An error message about `image`, as every [`ImageError`] starts: `<image>: <rest>`.
fn about(image: &Path, rest: &str) -> String {
    format!("{}: {rest}", image.display())
}
const SECTOR: u64 = 512;

const HANDWRITTEN: &str = include_str!("data/extlinux/handwritten-first-boot.conf");
const GENERATED: &str = include_str!("data/extlinux/nixos-generations.conf");

/// Makes an ext4 filesystem image holding `files` (path relative to the root, contents).
fn ext4(dir: &Path, label: &str, files: &[(&str, &[u8])], size_mib: u64) -> PathBuf {
    let root = dir.join(format!("{label}-root"));
    for (path, contents) in files {
        let target = root.join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(target, contents).unwrap();
    }
    fs::create_dir_all(&root).unwrap();
    let image = dir.join(format!("{label}.ext4"));
    let output = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", label, "-d"])
        .arg(&root)
        .arg(&image)
        .arg(format!("{size_mib}M"))
        .output()
        .expect("mke2fs runs (e2fsprogs is installed)");
    assert!(
        output.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    image
}

/// One partition of a test disk: where it starts, how big it is, and what goes in it.
struct Part {
    first_lba: u64,
    size_mib: u64,
    contents: Option<PathBuf>,
    bootable: bool,
}

fn part(first_lba: u64, size_mib: u64, contents: Option<PathBuf>) -> Part {
    Part {
        first_lba,
        size_mib,
        contents,
        bootable: false,
    }
}

fn disk_len(parts: &[Part]) -> u64 {
    parts
        .iter()
        .map(|p| p.first_lba * SECTOR + p.size_mib * MIB)
        .max()
        .unwrap_or(MIB)
        + MIB
}

fn fill(file: &File, parts: &[Part]) {
    for p in parts {
        if let Some(contents) = &p.contents {
            file.write_all_at(&fs::read(contents).unwrap(), p.first_lba * SECTOR)
                .unwrap();
        }
    }
}

fn unique_guid(n: u8) -> [u8; 16] {
    let mut guid = [0x5a; 16];
    guid[15] = n;
    guid
}

/// A GPT disk image, laid out like the R2S images (partitions named as given).
fn gpt_disk(path: &Path, parts: &[Part], names: &[&str]) {
    let mut file = File::create(path).unwrap();
    file.set_len(disk_len(parts)).unwrap();
    let mut gpt = gptman::GPT::new_from(&mut file, SECTOR, [0x11; 16]).unwrap();
    let linux = Guid::parse(LINUX_FILESYSTEM).unwrap().0;
    for (i, p) in parts.iter().enumerate() {
        gpt[i as u32 + 1] = gptman::GPTPartitionEntry {
            partition_type_guid: linux,
            unique_partition_guid: unique_guid(i as u8 + 1),
            starting_lba: p.first_lba,
            ending_lba: p.first_lba + p.size_mib * MIB / SECTOR - 1,
            attribute_bits: if p.bootable { GPT_LEGACY_BIOS_BOOTABLE } else { 0 },
            partition_name: names[i].into(),
        };
    }
    gpt.write_into(&mut file).unwrap();
    gptman::GPT::write_protective_mbr_into(&mut file, SECTOR).unwrap();
    fill(&file, parts);
}

/// An MBR disk image with the given system IDs.
fn mbr_disk(path: &Path, parts: &[Part], types: &[u8]) {
    let mut file = File::create(path).unwrap();
    file.set_len(disk_len(parts)).unwrap();
    let mut mbr = mbrman::MBR::new_from(&mut file, SECTOR as u32, [0x4d, 0x3c, 0x2b, 0x1a]).unwrap();
    for (i, p) in parts.iter().enumerate() {
        mbr[i + 1] = mbrman::MBRPartitionEntry {
            boot: if p.bootable {
                mbrman::BOOT_ACTIVE
            } else {
                mbrman::BOOT_INACTIVE
            },
            first_chs: mbrman::CHS::empty(),
            sys: types[i],
            last_chs: mbrman::CHS::empty(),
            starting_lba: p.first_lba as u32,
            sectors: (p.size_mib * MIB / SECTOR) as u32,
        };
    }
    mbr.write_into(&mut file).unwrap();
    fill(&file, parts);
}

/// A FAT32 boot sector, enough for the superblock probe.
fn fake_vfat(dir: &Path, label: &str) -> PathBuf {
    let mut sector = vec![0u8; 512];
    sector[..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
    sector[3..11].copy_from_slice(b"mkfs.fat");
    sector[11..13].copy_from_slice(&512u16.to_le_bytes());
    sector[0x47..0x52].copy_from_slice(format!("{label:<11}").as_bytes());
    sector[0x52..0x5a].copy_from_slice(b"FAT32   ");
    sector[510..].copy_from_slice(&[0x55, 0xaa]);
    let path = dir.join(format!("{label}.vfat"));
    fs::write(&path, sector).unwrap();
    path
}

/// The first-boot layout of the reference write-up: GPT, idbloader at sector 64, u-boot.itb at
/// 16384, p1 ext4 NIXOS_BOOT from 32768 holding the hand-written extlinux.conf, p2 ext4 NIXOS_SD.
fn first_boot_image(dir: &Path) -> PathBuf {
    let boot = ext4(
        dir,
        "NIXOS_BOOT",
        &[
            ("extlinux/extlinux.conf", HANDWRITTEN.as_bytes()),
            ("Image", b"kernel"),
            ("initrd", b"initrd"),
            ("rk3328-nanopi-r2s.dtb", b"dtb"),
        ],
        8,
    );
    let root = ext4(dir, "NIXOS_SD", &[("etc/hostname", b"ivy\n")], 4);
    let image = dir.join("first-boot.img");
    let p1 = part(32768, 8, Some(boot));
    let p2 = part(32768 + 8 * MIB / SECTOR, 4, Some(root));
    gpt_disk(&image, &[p1, p2], &["boot", "root"]);
    let file = OpenOptions::new().write(true).open(&image).unwrap();
    file.write_all_at(&[0x3b, 0x8c, 0xdc, 0xfc], 64 * SECTOR).unwrap();
    file.write_all_at(&[0xd0, 0x0d, 0xfe, 0xed], 16384 * SECTOR)
        .unwrap();
    image
}

/// The nixpkgs sd-image layout: MBR, p1 vfat FIRMWARE, p2 ext4 NIXOS_SD (bootable) holding
/// /boot/extlinux/extlinux.conf and the generation files under /boot/nixos.
fn sd_image(dir: &Path) -> PathBuf {
    let firmware = fake_vfat(dir, "FIRMWARE");
    let kernel = "boot/nixos/x1l4r0r6g0c2bfm3i8zq2j6pc0sw9yxa-linux-6.12.30-Image";
    let root = ext4(
        dir,
        "NIXOS_SD",
        &[
            ("boot/extlinux/extlinux.conf", GENERATED.as_bytes()),
            (kernel, b"Image"),
            ("etc/hostname", b"ivy\n"),
        ],
        6,
    );
    let image = dir.join("sd-image.img");
    let p1 = part(16384, 2, Some(firmware));
    let p2 = Part {
        bootable: true,
        ..part(16384 + 2 * MIB / SECTOR, 6, Some(root))
    };
    mbr_disk(&image, &[p1, p2], &[0x0c, 0x83]);
    image
}

#[test]
fn gpt_partitions_are_listed_with_type_name_and_partuuid() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    let table = Table::read(&image).unwrap();
    assert_eq!(table.scheme, Scheme::Gpt);
    assert_eq!(table.sector_size, 512);
    let summary: Vec<_> = table
        .partitions
        .iter()
        .map(|p| (p.index, p.first_lba, p.last_lba, p.name.as_str(), p.bootable))
        .collect();
    assert_eq!(
        summary,
        [(1, 32768, 49151, "boot", false), (2, 49152, 57343, "root", false)]
    );
    let p1 = &table.partitions[0];
    assert_eq!(
        p1.kind.to_string(),
        "0fc63daf-8483-4772-8e79-3d69d8477de4 (Linux filesystem)"
    );
    assert_eq!(p1.partuuid, "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a01");
    assert_eq!((p1.offset(), p1.size()), (16 * MIB, 8 * MIB));
}

#[test]
fn gpt_legacy_bios_bootable_attribute_marks_a_partition_bootable() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    gpt_disk(
        &image,
        &[
            part(2048, 1, None),
            Part {
                bootable: true,
                ..part(4096, 1, None)
            },
        ],
        &["a", "b"],
    );
    let table = Table::read(&image).unwrap();
    let bootable: Vec<bool> = table.partitions.iter().map(|p| p.bootable).collect();
    assert_eq!(bootable, [false, true]);
    let candidates: Vec<u32> = table.boot_candidates().iter().map(|p| p.index).collect();
    assert_eq!(candidates, [2]);
}

#[test]
fn mbr_partitions_carry_the_active_flag_and_signature_partuuid() {
    let dir = tempfile::tempdir().unwrap();
    let image = sd_image(dir.path());
    let table = Table::read(&image).unwrap();
    assert_eq!(table.scheme, Scheme::Mbr);
    let summary: Vec<_> = table
        .partitions
        .iter()
        .map(|p| (p.index, p.first_lba, p.kind, p.bootable, p.partuuid.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 16384, PartitionType::Mbr(0x0c), false, "1a2b3c4d-01"),
            (2, 20480, PartitionType::Mbr(0x83), true, "1a2b3c4d-02"),
        ]
    );
    assert_eq!(table.partitions[1].kind.to_string(), "0x83 (Linux)");
}

#[test]
fn files_are_read_from_ext4_inside_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    assert_eq!(read_file(&image, 2, "/etc/hostname").unwrap(), b"ivy\n");
    assert_eq!(read_file(&image, 1, "/Image").unwrap(), b"kernel");
    assert!(exists(&image, 1, "/extlinux/extlinux.conf").unwrap());
    assert!(!exists(&image, 1, "/boot/extlinux/extlinux.conf").unwrap());

    let volume = Ext4Volume::open_index(&image, 1).unwrap();
    assert_eq!(volume.label().as_deref(), Some("NIXOS_BOOT"));
    assert_eq!(
        volume.list_dir("/").unwrap(),
        [
            "Image",
            "extlinux",
            "initrd",
            "lost+found",
            "rk3328-nanopi-r2s.dtb"
        ]
    );
    assert!(volume.is_file("/Image").unwrap());
    assert!(!volume.is_file("/extlinux").unwrap());
}

#[test]
fn a_missing_file_names_image_partition_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    let error = read_file(&image, 2, "/etc/shadow").unwrap_err();
    assert!(matches!(error, ImageError::FileNotFound { partition: 2, .. }));
    assert_eq!(
        error.to_string(),
        about(&image, "partition 2: /etc/shadow: no such file")
    );
}

#[test]
fn filesystems_are_told_apart_by_their_superblocks() {
    let dir = tempfile::tempdir().unwrap();
    let image = sd_image(dir.path());
    let table = Table::read(&image).unwrap();
    assert_eq!(
        probe_filesystem(&image, &table.partitions[0]).unwrap(),
        FsKind::Vfat {
            label: Some("FIRMWARE".into())
        }
    );
    assert_eq!(
        probe_filesystem(&image, &table.partitions[1]).unwrap(),
        FsKind::Ext4 {
            label: Some("NIXOS_SD".into())
        }
    );
}

#[test]
fn f2fs_and_unknown_superblocks_are_recognised() {
    let mut head = vec![0u8; 4096];
    head[1024..1028].copy_from_slice(&0xf2f5_2010u32.to_le_bytes());
    for (i, unit) in "NIXOS_SD".encode_utf16().enumerate() {
        head[1024 + 0x7c + 2 * i..1024 + 0x7c + 2 * i + 2].copy_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(
        FsKind::probe(&head),
        FsKind::F2fs {
            label: Some("NIXOS_SD".into())
        }
    );
    assert_eq!(FsKind::probe(&[0u8; 4096]), FsKind::Unknown);
    assert_eq!(FsKind::probe(&[]), FsKind::Unknown);
    assert_eq!(FsKind::Unknown.to_string(), "no known filesystem");
    assert_eq!(
        FsKind::Ext4 {
            label: Some("NIXOS_BOOT".into())
        }
        .to_string(),
        "ext4 labelled \"NIXOS_BOOT\""
    );
}

#[test]
fn reading_files_from_a_non_ext4_partition_says_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let image = sd_image(dir.path());
    let error = read_file(&image, 1, "/config.txt").unwrap_err();
    assert_eq!(
        error.to_string(),
        about(&image, "partition 1 holds vfat labelled \"FIRMWARE\", not ext4")
    );
}

#[test]
fn first_boot_layout_boots_from_partition_one() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    let found = boot_config::find(&image).unwrap();
    assert_eq!(
        (found.partition, found.path.as_str()),
        (1, "/extlinux/extlinux.conf")
    );
    assert_eq!(found.text, HANDWRITTEN);
    assert_eq!(found.config.default.as_deref(), Some("NixOS"));
    let kernel = found
        .config
        .default_label()
        .and_then(|l| l.kernel.as_deref())
        .unwrap();
    assert_eq!(found.resolve(kernel), "/Image");
    assert_eq!(check_bootable_image(&image).unwrap(), vec!["NixOS".to_owned()]);
}

#[test]
fn sd_image_layout_boots_from_the_bootable_partition_under_boot() {
    let dir = tempfile::tempdir().unwrap();
    let image = sd_image(dir.path());
    let found = boot_config::find(&image).unwrap();
    assert_eq!(
        (found.partition, found.path.as_str()),
        (2, "/boot/extlinux/extlinux.conf")
    );
    let kernel = found
        .config
        .label("nixos-2-default")
        .and_then(|l| l.kernel.as_deref())
        .unwrap();
    let resolved = found.resolve(kernel);
    assert_eq!(
        resolved,
        "/boot/nixos/x1l4r0r6g0c2bfm3i8zq2j6pc0sw9yxa-linux-6.12.30-Image"
    );
    assert_eq!(read_file(&image, found.partition, &resolved).unwrap(), b"Image");
    assert_eq!(
        check_bootable_image(&image).unwrap(),
        vec![
            "nixos-default".to_owned(),
            "nixos-3-default".to_owned(),
            "nixos-2-default".to_owned()
        ]
    );
}

#[test]
fn config_outside_the_candidate_partitions_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let empty = ext4(dir.path(), "EMPTY", &[], 2);
    let root = ext4(
        dir.path(),
        "ROOT",
        &[("boot/extlinux/extlinux.conf", HANDWRITTEN.as_bytes())],
        2,
    );
    let image = dir.path().join("disk.img");
    gpt_disk(
        &image,
        &[part(2048, 2, Some(empty)), part(6144, 2, Some(root))],
        &["a", "b"],
    );
    let error = boot_config::find(&image).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: no extlinux.conf where U-Boot looks; searched partition 1 (ext4 labelled \"EMPTY\") at {} and {}",
            image.display(),
            SEARCH_PATHS[0],
            SEARCH_PATHS[1]
        )
    );
    assert!(check_bootable_image(&image).is_err());
}

#[test]
fn a_vfat_boot_partition_that_cannot_be_read_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A FAT boot sector and nothing behind it: no FAT, no root directory.
    let firmware = fake_vfat(dir.path(), "BOOT");
    let image = dir.path().join("disk.img");
    mbr_disk(
        &image,
        &[Part {
            bootable: true,
            ..part(2048, 1, Some(firmware))
        }],
        &[0x0c],
    );
    let error = check_bootable_image(&image).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}: partition 1: cannot read the FAT filesystem: ",
            image.display()
        )),
        "{error}"
    );
}

#[test]
fn a_broken_extlinux_conf_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let boot = ext4(
        dir.path(),
        "NIXOS_BOOT",
        &[("extlinux/extlinux.conf", b"DEFAULT a\nLABEL\n")],
        2,
    );
    let image = dir.path().join("disk.img");
    gpt_disk(&image, &[part(2048, 2, Some(boot))], &["boot"]);
    let error = boot_config::find(&image).unwrap_err();
    assert_eq!(
        error.to_string(),
        about(&image, "partition 1: /extlinux/extlinux.conf: line 2: LABEL needs a name; U-Boot rejects the whole file \
             (\"Error parsing config file\")")
    );
}

#[test]
fn image_cut_inside_a_partition_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    File::options()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(20 * MIB)
        .unwrap();
    let error = Table::read(&image).unwrap_err();
    assert!(
        matches!(error, ImageError::Truncated { needed, len, .. } if needed == 24 * MIB && len == 20 * MIB)
    );
    assert_eq!(
        error.to_string(),
        about(
            &image,
            "image is truncated: partition 1 (sectors 32768..=49151) needs 25165824 bytes but the image has \
             20971520"
        )
    );
}

#[test]
fn image_cut_inside_the_gpt_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    File::options()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(5000)
        .unwrap();
    let error = Table::read(&image).unwrap_err();
    assert_eq!(
        error.to_string(),
        about(
            &image,
            "image is truncated: the GPT partition entry array needs 17408 bytes but the image has 5000"
        )
    );
}

#[test]
fn image_shorter_than_a_sector_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tiny.img");
    fs::write(&image, [0u8; 100]).unwrap();
    assert!(matches!(
        Table::read(&image),
        Err(ImageError::Truncated {
            needed: 512,
            len: 100,
            ..
        })
    ));
}

#[test]
fn random_bytes_have_no_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("noise.img");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    noise[510..512].copy_from_slice(&[0x12, 0x34]);
    fs::write(&image, noise).unwrap();
    let error = Table::read(&image).unwrap_err();
    assert!(matches!(error, ImageError::NoPartitionTable { .. }), "{error}");
    assert!(error
        .to_string()
        .starts_with(&about(&image, "no partition table")));
}

#[test]
fn garbage_behind_a_boot_signature_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("garbage.img");
    let mut bytes = vec![0xffu8; 64 * 1024];
    bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
    fs::write(&image, bytes).unwrap();
    assert!(matches!(
        Table::read(&image),
        Err(ImageError::BadPartitionTable { .. })
    ));
}

#[test]
fn a_missing_image_names_its_path() {
    let error = Table::read(Path::new("/nonexistent/r2s.img")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/r2s.img: cannot open image: "),
        "{error}"
    );
}

#[test]
fn asking_for_a_partition_that_is_not_there_lists_those_that_are() {
    let dir = tempfile::tempdir().unwrap();
    let image = first_boot_image(dir.path());
    let error = read_file(&image, 3, "/etc/hostname").unwrap_err();
    assert_eq!(
        error.to_string(),
        about(&image, "no partition 3 (the image has partitions 1, 2)")
    );
}

#[test]
fn paths_resolve_against_the_config_directory_or_the_partition_root() {
    assert_eq!(
        resolve("/boot/extlinux/extlinux.conf", "../nixos/x-Image"),
        "/boot/nixos/x-Image"
    );
    assert_eq!(
        resolve("/extlinux/extlinux.conf", "../nixos/x-Image"),
        "/nixos/x-Image"
    );
    assert_eq!(resolve("/boot/extlinux/extlinux.conf", "/Image"), "/Image");
    assert_eq!(resolve("/extlinux/extlinux.conf", "Image"), "/extlinux/Image");
    assert_eq!(resolve("/extlinux/extlinux.conf", "../../../x"), "/x");
    assert_eq!(resolve("/extlinux/extlinux.conf", "./a/./b"), "/extlinux/a/b");
}

#[test]
fn guids_print_and_parse_in_canonical_form() {
    let guid = Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4").unwrap();
    assert_eq!(
        guid.0[..4],
        [0xaf, 0x3d, 0xc6, 0x0f],
        "the first field is stored little-endian"
    );
    assert_eq!(guid.to_string(), LINUX_FILESYSTEM);
    assert_eq!(Guid::parse("not-a-guid"), None);
}

#[test]
fn hostile_extended_partition_chain_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("hostile.img");
    let mut bytes = vec![0u8; 64 * 1024];
    // Primary entry 1: an extended partition whose first EBR is sector 1.
    bytes[446 + 4] = 0x05;
    bytes[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    bytes[446 + 12..446 + 16].copy_from_slice(&100u32.to_le_bytes());
    bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
    // The EBR's logical partition starts so far out that adding the EBR's position overflows.
    let ebr = 512;
    bytes[ebr + 446 + 4] = 0x83;
    bytes[ebr + 446 + 8..ebr + 446 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[ebr + 446 + 12..ebr + 446 + 16].copy_from_slice(&10u32.to_le_bytes());
    bytes[ebr + 510..ebr + 512].copy_from_slice(&[0x55, 0xaa]);
    fs::write(&image, bytes).unwrap();
    let error = Table::read(&image).unwrap_err();
    assert!(
        matches!(
            error,
            ImageError::BadPartitionTable { .. } | ImageError::Truncated { .. }
        ),
        "{error}"
    );
}

#[test]
fn the_fixture_kernel_has_no_embedded_configuration() {
    use r2s_harness::image::ikconfig::{extract, IkconfigError};
    let image = r2s_images::build("r2s-first-boot", &r2s_images::default_cache_dir()).unwrap();
    let kernel = Ext4Volume::open_index(&image, 1).unwrap().read("/Image").unwrap();
    // Debian builds its kernel with "# CONFIG_IKCONFIG is not set": the Image has no IKCFG_ST.
    assert!(matches!(extract(&kernel), Err(IkconfigError::NotEmbedded)));
}
