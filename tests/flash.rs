//! `harness flash` end to end: images that passed are written byte for byte to regular files,
//! a loop device and a test root's stand-in disks; images that fail inspect or a scenario are
//! never written; the device guards refuse, against a fake sysfs and mount table
//! (`R2S_FLASH_SYSROOT`), mounted disks, the running system's disks, md/LVM/dm members, fixed
//! and large disks; a read-back difference is named by its offset; `--bootloader` writes only
//! its two regions; an SD-mux made of command doubles is switched to the host and back.

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(600);

/// Runs `harness flash ARGS` with `env`; stdin is not a terminal.
fn flash(args: &[&OsStr], env: &[(&str, &OsStr)]) -> Finished {
    let mut all: Vec<&OsStr> = vec![OsStr::new("flash")];
    all.extend_from_slice(args);
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&all, env);
    finish(child, command, started, LIMIT)
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// A file of `len` bytes of a pattern no image has, to prove nothing was written.
fn patterned(path: &Path, len: usize) {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect();
    std::fs::write(path, bytes).unwrap();
}

/// A profile for images made for QEMU's console (`console=ttyAMA0,115200`), so that the
/// default fixture and broken-panic pass inspect.
const QEMU_CONSOLE_BOARD: &str = "qemu-virt";

#[test]
fn an_image_that_passed_is_written_to_a_file_byte_for_byte() {
    let dir = temp_dir();
    let image = fixture("r2s-first-boot");
    let card = dir.path().join("card.img");
    let transcripts = dir.path().join("transcripts");
    let run = flash(
        &[
            os(&image),
            os(&card),
            os(&scenario("boot-to-login")),
            os("--yes"),
            os("--transcripts"),
            os(&transcripts),
        ],
        &[("TMPDIR", dir.path().as_os_str())],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("result: PASS"), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login"), "{}", run.explain());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("flashed: "))
        .unwrap_or_else(|| panic!("{}", run.explain()));
    assert_eq!(
        line,
        format!(
            "flashed: {} bytes to {}, read back and verified (SHA-256 {})",
            std::fs::metadata(&image).unwrap().len(),
            card.display(),
            sha256(&image)
        )
    );
    assert_eq!(sha256(&card), sha256(&image));
}

/// `image` compressed by the real zstd as nixpkgs' sd-image compresses it, into `dir`.
fn zstd_of(image: &Path, dir: &Path) -> PathBuf {
    let packed = dir.join("nixos-sd-image.img.zst");
    let status = Command::new("zstd")
        .args(["-q", "-1", "-T2", "-o"])
        .arg(&packed)
        .arg(image)
        .status()
        .unwrap();
    assert!(status.success());
    packed
}

/// The disk of the one entry of the unpacked images' cache at `cache`.
fn unpacked_disk(cache: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.join("unpacked"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].join("disk.raw")
}

#[test]
fn a_zstd_image_as_nix_build_leaves_it_is_written_as_it_unpacks_byte_for_byte() {
    use std::os::unix::fs::FileExt;
    let dir = temp_dir();
    let raw = fixture("r2s-first-boot");
    let image = zstd_of(&raw, dir.path());
    let card = dir.path().join("card.img");
    let cache = dir.path().join("cache");
    let env = [
        ("TMPDIR", dir.path().as_os_str()),
        ("R2S_CACHE_DIR", cache.as_os_str()),
    ];
    // inspect unpacks the image into the cache; the card must not come from that copy. Its
    // last byte (free space of the root filesystem, which inspect does not read) is changed.
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&[os("inspect"), os(&image)], &env);
    let inspected = finish(child, command, started, LIMIT);
    assert_eq!(inspected.code(), Some(0), "{}", inspected.explain());
    let copy = unpacked_disk(&cache);
    let last = std::fs::metadata(&copy).unwrap().len() - 1;
    let copy_file = std::fs::File::options().write(true).open(&copy).unwrap();
    copy_file.write_all_at(&[0xa5], last).unwrap();
    drop(copy_file);

    let run = flash(&[os(&image), os(&card), os("--no-boot"), os("--yes")], &env);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "{} is zstd-compressed: unpacked before, at ",
            image.display()
        )),
        "{}",
        run.explain()
    );
    let len = std::fs::metadata(&raw).unwrap().len();
    let about = format!(
        "about to write the image ({}, zstd-compressed, unpacked as it is written: ",
        image.display()
    );
    assert!(run.stdout.contains(&about), "{}", run.explain());
    assert!(
        run.stdout.lines().any(|l| l
            == format!(
                "flashed: {len} bytes to {}, read back and verified (SHA-256 {})",
                card.display(),
                sha256(&raw)
            )),
        "{}",
        run.explain()
    );
    assert_eq!(sha256(&card), sha256(&raw));
}

#[test]
fn a_cut_short_zstd_image_is_refused_naming_the_file_and_the_offset_with_exit_2() {
    let dir = temp_dir();
    let image = zstd_of(&fixture("r2s-first-boot"), dir.path());
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
    let card = dir.path().join("card.img");
    let cache = dir.path().join("cache");
    let run = flash(
        &[os(&image), os(&card), os("--no-boot"), os("--yes")],
        &[
            ("TMPDIR", dir.path().as_os_str()),
            ("R2S_CACHE_DIR", cache.as_os_str()),
        ],
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    let prefix = format!(
        "harness: {}: zstd-compressed, and the zstd data does not decode at unpacked byte ",
        image.display()
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no error naming the file:\n{}", run.explain()));
    let at: u64 = line[prefix.len()..].split(':').next().unwrap().parse().unwrap();
    assert!(at > 0, "{line}");
    assert!(!card.exists(), "a card was written");
    assert!(!run.stdout.contains("about to write"), "{}", run.explain());
}

#[test]
fn an_image_failing_inspect_is_not_written() {
    let dir = temp_dir();
    let card = dir.path().join("card.img");
    patterned(&card, 1 << 20);
    let before = sha256(&card);
    let run = flash(
        &[os(&fixture("broken-inspect-console")), os(&card), os("--yes")],
        &[],
    );
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("FAIL  console [nixos-default]"),
        "{}",
        run.explain()
    );
    assert!(
        run.stderr.contains(
            "harness: not written: inspect failed for board nanopi-r2s: console [nixos-default], console [nixos-2-default], console [nixos-1-default]"
        ),
        "{}",
        run.explain()
    );
    assert!(!run.stdout.contains("scenarios under QEMU"), "{}", run.explain());
    assert_eq!(sha256(&card), before);
}

/// The gate judges the kernel against the load addresses of the U-Boot on the card: the stock
/// RK3328 u-boot.itb leaves 62 MiB, the kernel's header asks for 66.
#[test]
fn a_kernel_the_card_s_u_boot_cannot_load_is_not_written() {
    let dir = temp_dir();
    let card = dir.path().join("card.img");
    patterned(&card, 1 << 20);
    let before = sha256(&card);
    let run = flash(
        &[
            os(&fixture("broken-large-kernel-stock-uboot")),
            os(&card),
            os("--board"),
            os(QEMU_CONSOLE_BOARD),
            os("--yes"),
        ],
        &[],
    );
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "FAIL  kernel-size [nixos-default]       needs 66.0 MiB (header image_size) from 0x02200000"
        ),
        "{}",
        run.explain()
    );
    assert!(
        run.stderr.contains(
            "harness: not written: inspect failed for board qemu-virt: kernel-size [nixos-default], kernel-size \
             [nixos-2-default], kernel-size [nixos-1-default]"
        ),
        "{}",
        run.explain()
    );
    assert!(!run.stdout.contains("scenarios under QEMU"), "{}", run.explain());
    assert_eq!(sha256(&card), before);
}

#[test]
fn an_image_failing_a_scenario_is_not_written() {
    let dir = temp_dir();
    let card = dir.path().join("card.img");
    patterned(&card, 1 << 20);
    let before = sha256(&card);
    let transcripts = dir.path().join("transcripts");
    let run = flash(
        &[
            os(&fixture("broken-panic")),
            os(&card),
            os(&scenario("boot-to-login")),
            os("--board"),
            os(QEMU_CONSOLE_BOARD),
            os("--yes"),
            os("--transcripts"),
            os(&transcripts),
        ],
        &[("TMPDIR", dir.path().as_os_str())],
    );
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("result: PASS"),
        "inspect passes: {}",
        run.explain()
    );
    assert!(run.stdout.contains("FAIL  boot-to-login"), "{}", run.explain());
    assert!(
        run.stderr.contains(
            "harness: not written: the image failed its scenarios under QEMU (the FAIL lines above say which)"
        ),
        "{}",
        run.explain()
    );
    assert_eq!(sha256(&card), before);
}

#[test]
fn a_read_back_difference_is_named_by_its_first_bad_offset() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let card = dir.path().join("card.img");
    let run = flash(
        &[
            os(&image),
            os(&card),
            os("--board"),
            os(QEMU_CONSOLE_BOARD),
            os("--no-boot"),
            os("--yes"),
            os("--test-flip-byte"),
            os("1234567"),
        ],
        &[],
    );
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let original = read_at(&image, 1_234_567);
    assert!(
        run.stderr.contains(&format!(
            "harness: verification failed: read-back differs from the image: first bad byte at device offset \
             1234567 (0x12d687), wrote 0x{original:02x}, read 0x{:02x}; {} does not hold the image; do not boot from it",
            !original,
            card.display()
        )),
        "{}",
        run.explain()
    );
    assert!(!run.stdout.contains("flashed: "), "{}", run.explain());
}

fn read_at(path: &Path, offset: u64) -> u8 {
    use std::os::unix::fs::FileExt;
    let mut byte = [0u8];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut byte, offset)
        .unwrap();
    byte[0]
}

#[test]
fn without_a_terminal_nothing_is_written_unless_yes_is_given() {
    let dir = temp_dir();
    let card = dir.path().join("card.img");
    let run = flash(&[os(&fixture("r2s-first-boot")), os(&card), os("--no-boot")], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        "harness: stdin is not a terminal, so nobody can confirm the write: pass --yes to write without asking"
    );
    assert!(!card.exists());
}

#[test]
fn the_image_is_never_its_own_device() {
    let dir = temp_dir();
    let image = dir.path().join("copy.img");
    patterned(&image, 1 << 20);
    let run = flash(&[os(&image), os(&image), os("--no-boot"), os("--yes")], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "harness: {} is the image ({}): writing it onto itself is refused",
            image.display(),
            image.display()
        )
    );
}

#[test]
fn a_missing_device_under_dev_is_not_created() {
    let run = flash(
        &[
            os(&fixture("r2s-first-boot")),
            os("/dev/r2s-no-such-card"),
            os("--yes"),
        ],
        &[],
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        "harness: /dev/r2s-no-such-card: no such device: is the card (or its reader) plugged in?"
    );
    assert!(!Path::new("/dev/r2s-no-such-card").exists());
}

/// A test root: sysfs, mountinfo and swaps of a made-up machine, and stand-in files
/// `ROOT/dev/NAME` for its disks.
struct FakeSystem {
    dir: tempfile::TempDir,
    mounts: Vec<String>,
    swaps: Vec<String>,
    next_minor: u32,
}

/// Where the disks hang in sysfs.
const USB: &str = "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0";
const SATA: &str = "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";

impl FakeSystem {
    fn new() -> FakeSystem {
        let dir = temp_dir();
        for sub in ["sys/class/block", "sys/dev/block", "proc/self", "dev"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let mut system = FakeSystem {
            dir,
            mounts: Vec::new(),
            swaps: Vec::new(),
            next_minor: 0,
        };
        // The machine's own disk, holding its root.
        system.disk(
            "vda",
            "devices/pci0000:00/0000:00:02.0/virtio1",
            50 << 21,
            false,
            None,
        );
        system.partition("vda", 1, 2048, 50 << 21);
        system.mount("vda1", "/");
        system.write();
        system
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn sys(&self, relative: &str) -> PathBuf {
        self.root().join("sys").join(relative)
    }

    fn dev_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.sys("class/block").join(name).join("dev"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Registers `dir` (relative to sys/) as block device `name` with a new device number.
    fn register(&mut self, name: &str, dir: &Path, sectors: u64) {
        std::fs::create_dir_all(dir.join("holders")).unwrap();
        std::fs::create_dir_all(dir.join("slaves")).unwrap();
        let dev = format!("8:{}", self.next_minor);
        self.next_minor += 1;
        std::fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
        std::fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
        symlink(dir, self.sys("class/block").join(name)).unwrap();
        symlink(dir, self.sys("dev/block").join(dev)).unwrap();
    }

    /// A whole disk of `sectors` 512-byte sectors under sysfs path `parent`, with a stand-in
    /// file `ROOT/dev/NAME`.
    fn disk(
        &mut self,
        name: &str,
        parent: &str,
        sectors: u64,
        removable: bool,
        model: Option<&str>,
    ) -> PathBuf {
        let dir = self.sys(parent).join("block").join(name);
        self.register(name, &dir, sectors);
        std::fs::write(dir.join("removable"), if removable { "1\n" } else { "0\n" }).unwrap();
        if let Some(model) = model {
            let device = dir.join("device");
            std::fs::create_dir_all(&device).unwrap();
            let (vendor, model) = model.split_once(' ').unwrap();
            std::fs::write(device.join("vendor"), format!("{vendor}  \n")).unwrap();
            std::fs::write(device.join("model"), format!("{model}\n")).unwrap();
        }
        let stand_in = self.root().join("dev").join(name);
        std::fs::write(&stand_in, b"").unwrap();
        stand_in
    }

    fn partition(&mut self, disk: &str, number: u32, start: u64, sectors: u64) {
        let name = format!("{disk}{number}");
        let dir = self
            .sys("class/block")
            .join(disk)
            .canonicalize()
            .unwrap()
            .join(&name);
        self.register(&name, &dir, sectors);
        std::fs::write(dir.join("partition"), format!("{number}\n")).unwrap();
        std::fs::write(dir.join("start"), format!("{start}\n")).unwrap();
    }

    /// A device-mapper device `holder` (named `dm_name`) built on `member`.
    fn hold(&mut self, member: &str, holder: &str, dm_name: &str) {
        let dir = self.sys("devices/virtual/block").join(holder);
        self.register(holder, &dir, 1 << 20);
        std::fs::create_dir_all(dir.join("dm")).unwrap();
        std::fs::write(dir.join("dm/name"), format!("{dm_name}\n")).unwrap();
        let member_dir = self.sys("class/block").join(member).canonicalize().unwrap();
        symlink(&member_dir, dir.join("slaves").join(member)).unwrap();
        symlink(&dir, member_dir.join("holders").join(holder)).unwrap();
    }

    fn mount(&mut self, name: &str, point: &str) {
        let dev = self.dev_of(name);
        let id = 20 + self.mounts.len();
        self.mounts.push(format!(
            "{id} 1 {dev} / {point} rw,relatime shared:1 - ext4 /dev/{name} rw"
        ));
        self.write();
    }

    fn swap(&mut self, name: &str) {
        self.swaps.push(format!("/dev/{name}  partition\t1048572\t0\t-2"));
        self.write();
    }

    fn write(&self) {
        std::fs::write(
            self.root().join("proc/self/mountinfo"),
            self.mounts.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        std::fs::write(
            self.root().join("proc/swaps"),
            format!(
                "Filename\tType\tSize\tUsed\tPriority\n{}",
                self.swaps.iter().map(|l| format!("{l}\n")).collect::<String>()
            ),
        )
        .unwrap();
    }

    /// `harness flash ARGS` on this machine.
    fn flash(&self, args: &[&OsStr]) -> Finished {
        flash(args, &[("R2S_FLASH_SYSROOT", self.root().as_os_str())])
    }
}

/// A removable 32 GiB USB card reader `sdz` with one partition.
fn with_usb_card() -> (FakeSystem, PathBuf) {
    let mut system = FakeSystem::new();
    let card = system.disk("sdz", USB, 64 << 20, true, Some("Generic STORAGE_DEVICE"));
    system.partition("sdz", 1, 32768, 1 << 20);
    (system, card)
}

/// Flashes the QEMU-console fixture to `device` without booting it, with `extra` arguments.
fn flash_on(system: &FakeSystem, device: &Path, extra: &[&str]) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let mut args = vec![
        os(&image),
        os(device),
        os("--board"),
        os(QEMU_CONSOLE_BOARD),
        os("--no-boot"),
        os("--yes"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    system.flash(&args)
}

fn assert_refused(run: &Finished, message: &str) {
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        format!("harness: {message}"),
        "{}",
        run.explain()
    );
    // Refused before inspect: nothing was read but the sysfs.
    assert!(!run.stdout.contains("result:"), "{}", run.explain());
}

#[test]
fn a_card_with_a_mounted_partition_is_refused() {
    let (mut system, card) = with_usb_card();
    system.mount("sdz1", "/media/card");
    assert_refused(
        &flash_on(&system, &card, &[]),
        "/dev/sdz is mounted: /dev/sdz1 on /media/card; unmount it first (umount /media/card)",
    );
    assert_eq!(std::fs::metadata(&card).unwrap().len(), 0);
}

#[test]
fn a_partition_is_refused_naming_its_disk() {
    let (system, _card) = with_usb_card();
    let partition = system.root().join("dev/sdz1");
    std::fs::write(&partition, b"").unwrap();
    assert_refused(
        &flash_on(&system, &partition, &[]),
        &format!(
            "{}: is partition sdz1 of sdz: give the whole disk, /dev/sdz",
            partition.display()
        ),
    );
}

#[test]
fn the_disk_holding_the_running_root_is_refused() {
    let system = FakeSystem::new();
    let vda = system.root().join("dev/vda");
    assert_refused(
        &flash_on(&system, &vda, &["--allow-fixed"]),
        "/dev/vda holds the running system's root filesystem (/ on /dev/vda1): refusing to write it",
    );
}

#[test]
fn a_disk_under_an_lvm_root_is_refused_as_the_running_root() {
    let (mut system, card) = with_usb_card();
    system.hold("sdz1", "dm-0", "vg-root");
    system.mount("dm-0", "/boot");
    assert_refused(
        &flash_on(&system, &card, &[]),
        "/dev/sdz holds the running system's /boot (/boot on /dev/dm-0): refusing to write it",
    );
}

#[test]
fn a_disk_holding_swap_is_refused() {
    let (mut system, card) = with_usb_card();
    system.swap("sdz1");
    assert_refused(
        &flash_on(&system, &card, &[]),
        "/dev/sdz holds the running system's swap (/dev/sdz1): refusing to write it",
    );
}

#[test]
fn a_member_of_a_device_mapper_stack_is_refused() {
    let (mut system, card) = with_usb_card();
    system.hold("sdz1", "dm-3", "data-crypt");
    assert_refused(
        &flash_on(&system, &card, &[]),
        "/dev/sdz is part of an md/LVM/dm stack: sdz1 is held by dm-3 (data-crypt); stop that first",
    );
}

#[test]
fn a_fixed_disk_is_refused_unless_allowed() {
    let mut system = FakeSystem::new();
    // Smaller than the image: once allowed, the size check is what stops it.
    let disk = system.disk("sdy", SATA, 2048, false, Some("ATA Samsung_SSD_870"));
    assert_refused(
        &flash_on(&system, &disk, &[]),
        "/dev/sdy is not removable (sysfs removable = 0, on SATA/SCSI): it looks like a fixed disk, not a \
         card; pass --allow-fixed if it is the card",
    );
    let allowed = flash_on(&system, &disk, &["--allow-fixed"]);
    let image_len = std::fs::metadata(fixture(r2s_images::DEFAULT_FIXTURE))
        .unwrap()
        .len();
    assert_refused(
        &allowed,
        &format!(
            "{} needs {image_len} bytes, but {} holds only 1048576",
            "the image",
            disk.display()
        ),
    );
}

#[test]
fn a_disk_larger_than_256_gib_is_refused_unless_allowed() {
    let mut system = FakeSystem::new();
    let disk = system.disk("sdx", USB, 1 << 30, true, Some("Generic BIG"));
    // A blank card: zeros where a partition table would be.
    std::fs::File::options()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    assert_refused(
        &flash_on(&system, &disk, &[]),
        "/dev/sdx is 512.0 GiB, larger than 256 GiB, which few cards are; pass --allow-large if it is the card",
    );
    let (idbloader, itb) = bootloader_files(system.root());
    let allowed = system.flash(&[
        os("--bootloader"),
        os(&idbloader),
        os(&itb),
        os(&disk),
        os("--yes"),
        os("--allow-large"),
    ]);
    assert_eq!(allowed.code(), Some(0), "{}", allowed.explain());
}

#[test]
fn a_removable_card_is_shown_written_and_verified() {
    let (system, card) = with_usb_card();
    // The card holds an earlier image, whose filesystems the question names: its partition
    // table and superblocks, the rest left sparse.
    let earlier = fixture("r2s-first-boot");
    copy_regions(
        &earlier,
        &card,
        &[(0, (32768 << 9) + (64 << 10)), (1081344 << 9, 64 << 10)],
    );
    let run = flash_on(&system, &card, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    for line in [
        format!("  device: {} (/dev/sdz)", card.display()),
        "  model:  Generic STORAGE_DEVICE".to_owned(),
        "  size:   32.0 GiB (34359738368 bytes)".to_owned(),
        "  bus:    USB, removable".to_owned(),
        "  partitions (all of them are overwritten):".to_owned(),
        "    sdz1         from sector 32768      512.0 MiB, ext4 labelled \"NIXOS_BOOT\"".to_owned(),
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "no line {line:?}: {}",
            run.explain()
        );
    }
    assert_holds(&card, &fixture(r2s_images::DEFAULT_FIXTURE));
}

/// Asserts that `device` starts with every byte of `image` (a disk is larger than its image).
fn assert_holds(device: &Path, image: &Path) {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let len = std::fs::metadata(image).unwrap().len();
    let mut head = std::fs::File::open(device).unwrap().take(len);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = head.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    assert_eq!(read, len, "{} is shorter than the image", device.display());
    assert_eq!(
        format!("{:x}", hasher.finalize()),
        sha256(image),
        "{} does not hold {}",
        device.display(),
        image.display()
    );
}

/// `device` as long as `source`, holding only `regions` (offset, length) of it; the rest is a
/// hole, so the test's disk use stays small.
fn copy_regions(source: &Path, device: &Path, regions: &[(u64, usize)]) {
    use std::os::unix::fs::FileExt;
    let from = std::fs::File::open(source).unwrap();
    let to = std::fs::File::options().write(true).open(device).unwrap();
    to.set_len(from.metadata().unwrap().len()).unwrap();
    for &(offset, len) in regions {
        let mut bytes = vec![0u8; len];
        from.read_exact_at(&mut bytes, offset).unwrap();
        to.write_all_at(&bytes, offset).unwrap();
    }
}

/// The fixture's idbloader and u-boot.itb regions, as files.
fn bootloader_files(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::FileExt;
    let image = std::fs::File::open(fixture("r2s-first-boot")).unwrap();
    let region = |first: u64, end: u64, name: &str| {
        let mut bytes = vec![0u8; ((end - first) * 512) as usize];
        image.read_exact_at(&mut bytes, first * 512).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    (
        region(64, 16384, "idbloader.img"),
        region(16384, 32768, "u-boot.itb"),
    )
}

#[test]
fn the_bootloader_alone_goes_to_its_two_regions_and_nothing_else_changes() {
    let dir = temp_dir();
    let (idbloader, itb) = bootloader_files(dir.path());
    let card = dir.path().join("card.img");
    patterned(&card, 20 << 20);
    let before = std::fs::read(&card).unwrap();
    let run = flash(
        &[
            os("--bootloader"),
            os(&idbloader),
            os(&itb),
            os(&card),
            os("--yes"),
        ],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let after = std::fs::read(&card).unwrap();
    assert_eq!(after.len(), before.len());
    let (idb, fit) = (std::fs::read(&idbloader).unwrap(), std::fs::read(&itb).unwrap());
    assert_eq!(&after[64 * 512..64 * 512 + idb.len()], &idb[..]);
    assert_eq!(&after[16384 * 512..16384 * 512 + fit.len()], &fit[..]);
    assert_eq!(&after[..64 * 512], &before[..64 * 512]);
    assert_eq!(&after[32768 * 512..], &before[32768 * 512..]);
}

#[test]
fn the_bootloader_is_not_written_over_a_partition() {
    let dir = temp_dir();
    let (idbloader, itb) = bootloader_files(dir.path());
    // An MBR with partition 1 at fdisk's default sector 2048, inside the bootloader area.
    let card = dir.path().join("card.img");
    let mut mbr = vec![0u8; 512];
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&65536u32.to_le_bytes());
    mbr[510..].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&card, &mbr).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&card)
        .unwrap()
        .set_len((2048 + 65536) * 512)
        .unwrap();
    let before = sha256(&card);
    let run = flash(
        &[
            os("--bootloader"),
            os(&idbloader),
            os(&itb),
            os(&card),
            os("--yes"),
        ],
        &[],
    );
    assert_refused(
        &run,
        &format!(
            "partition 1 of {} (sectors 2048–67583) overlaps the bootloader area, sectors 64–32767; writing \
             the bootloader would destroy it",
            card.display()
        ),
    );
    assert_eq!(sha256(&card), before);
}

#[test]
fn bootloader_files_are_checked_for_what_they_are_and_where_they_fit() {
    let dir = temp_dir();
    let (idbloader, itb) = bootloader_files(dir.path());
    let card = dir.path().join("card.img");
    let zeros = dir.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    let not_idbloader = flash(
        &[os("--bootloader"), os(&zeros), os(&itb), os(&card), os("--yes")],
        &[],
    );
    assert_refused(
        &not_idbloader,
        &format!(
            "{} is not an RK3328 idbloader (no header 3b 8c dc fc with RK32 at +0x800)",
            zeros.display()
        ),
    );
    let not_fit = flash(
        &[
            os("--bootloader"),
            os(&idbloader),
            os(&idbloader),
            os(&card),
            os("--yes"),
        ],
        &[],
    );
    assert_refused(
        &not_fit,
        &format!(
            "{} is not a U-Boot FIT image (no d0 0d fe ed device tree with an /images node)",
            idbloader.display()
        ),
    );
    let long = dir.path().join("long.img");
    let mut bytes = std::fs::read(&idbloader).unwrap();
    bytes.extend_from_slice(&[0u8; 512]);
    std::fs::write(&long, bytes).unwrap();
    let too_long = flash(
        &[os("--bootloader"), os(&long), os(&itb), os(&card), os("--yes")],
        &[],
    );
    assert_refused(
        &too_long,
        &format!(
            "{} is 8356352 bytes, more than the 8355840 bytes from sector 64 to sector 16384, where u-boot.itb begins",
            long.display()
        ),
    );
    assert!(!card.exists());
}

/// A profile for the QEMU-console fixture whose `[sdmux]` commands are doubles: `host` makes
/// the card's stand-in appear after a second, `dut` takes it away; both log their turn.
fn sdmux_profile(system: &FakeSystem, host_appears: bool) -> PathBuf {
    let root = system.root();
    let log = root.join("sdmux.log");
    let card = root.join("dev/sdz");
    let taken = root.join("card-with-board.img");
    let host = if host_appears {
        format!(
            "echo host >> {0}; sleep 1; mv {1} {2}",
            log.display(),
            taken.display(),
            card.display()
        )
    } else {
        format!("echo host >> {}", log.display())
    };
    let dut = format!(
        "echo dut >> {0}; if [ -e {1} ]; then mv {1} {2}; fi",
        log.display(),
        card.display(),
        taken.display()
    );
    let profile = root.join("bench.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"bench\"\nbaud = 115200\nconsole = \"ttyAMA0\"\n\n[sdmux]\nhost = [\"sh\", \"-c\", {host:?}]\n\
             dut = [\"sh\", \"-c\", {dut:?}]\ndevice_timeout = \"5s\"\n"
        ),
    )
    .unwrap();
    profile
}

#[test]
fn the_sd_mux_gives_the_card_to_the_host_for_the_write_and_back_to_the_board() {
    let (system, card) = with_usb_card();
    // The card starts with the board: its device is not on the host.
    let with_board = system.root().join("card-with-board.img");
    std::fs::rename(&card, &with_board).unwrap();
    let profile = sdmux_profile(&system, true);
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let run = system.flash(&[
        os(&image),
        os(&card),
        os("--board"),
        os(&profile),
        os("--no-boot"),
        os("--yes"),
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(
        std::fs::read_to_string(system.root().join("sdmux.log")).unwrap(),
        "host\ndut\n"
    );
    assert!(!card.exists(), "the card went back to the board");
    assert_eq!(sha256(&with_board), sha256(&image));
    run.assert_stdout_in_order(&[
        "SD-mux: switching the card to the host",
        "flashed: ",
        "SD-mux: switching the card back",
    ]);
}

#[test]
fn a_card_that_never_appears_on_the_host_is_given_back_to_the_board() {
    let (system, card) = with_usb_card();
    std::fs::remove_file(&card).unwrap();
    let profile = sdmux_profile(&system, false);
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let run = system.flash(&[
        os(&image),
        os(&card),
        os("--board"),
        os(&profile),
        os("--no-boot"),
        os("--yes"),
    ]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: {} did not appear within 5s of switching the card to the host",
            card.display()
        )),
        "{}",
        run.explain()
    );
    assert_eq!(
        std::fs::read_to_string(system.root().join("sdmux.log")).unwrap(),
        "host\ndut\n"
    );
}

#[test]
fn interrupting_the_write_says_the_card_is_incomplete() {
    let dir = temp_dir();
    let card = dir.path().join("card.img");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let args = [
        os("flash"),
        os(&image),
        os(&card),
        os("--board"),
        os(QEMU_CONSOLE_BOARD),
        os("--no-boot"),
        os("--yes"),
    ];
    let started = Instant::now();
    let (child, command) = spawn_harness(&args);
    // Once the write has begun (the card file grows), stop it.
    while std::fs::metadata(&card).map_or(0, |m| m.len()) == 0 || sha256_prefix_zero(&card) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the write never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill sends a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(143), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: stopped while writing: {} is incomplete (",
            card.display()
        )),
        "{}",
        run.explain()
    );
    assert!(
        run.stderr.contains("do not boot from it, flash it again"),
        "{}",
        run.explain()
    );
    assert!(!run.stdout.contains("flashed: "), "{}", run.explain());
}

/// Whether the first bytes of `card` are still zero (cut to length, not yet written).
fn sha256_prefix_zero(card: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4096];
    std::fs::File::open(card)
        .and_then(|f| f.read_exact_at(&mut head, 0))
        .map_or(true, |()| head.iter().all(|b| *b == 0))
}

#[test]
fn a_loop_device_is_refused_as_fixed_then_written_when_allowed() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let backing = dir.path().join("loop-backing.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(std::fs::metadata(&image).unwrap().len() + (1 << 20))
        .unwrap();
    let Some(attached) = r2s_tests::loop_device::LoopDevice::attach(&backing) else {
        return;
    };
    let device = attached.path().to_owned();
    let name = device.file_name().unwrap().to_string_lossy().into_owned();
    let mut args = vec![
        os(&image),
        os(&device),
        os("--board"),
        os(QEMU_CONSOLE_BOARD),
        os("--no-boot"),
        os("--yes"),
    ];
    let refused = flash(&args, &[]);
    assert_refused(
        &refused,
        &format!(
            "/dev/{name} is not removable (sysfs removable = 0, on virtual): it looks like a fixed disk, not a \
             card; pass --allow-fixed if it is the card"
        ),
    );
    args.push(os("--allow-fixed"));
    let run = flash(&args, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("  bus:    virtual"), "{}", run.explain());
    // The bootloader alone, on the real block device: its GPT is read through the device
    // (partitions from sector 32768, clear of the bootloader area).
    let (idbloader, itb) = bootloader_files(dir.path());
    let bootloader = flash(
        &[
            os("--bootloader"),
            os(&idbloader),
            os(&itb),
            os(&device),
            os("--yes"),
            os("--allow-fixed"),
        ],
        &[],
    );
    assert_eq!(bootloader.code(), Some(0), "{}", bootloader.explain());
    drop(attached);
    // r2s-first-boot's bootloader regions hold the same bootloader as the default fixture's.
    assert_holds(&backing, &image);
}

/// `run --serial … --flash IMG`: the card is written through the SD-mux, handed to the board,
/// and the board is powered on and judged, in one command.
#[test]
fn run_with_flash_writes_the_card_then_boots_the_board_and_runs_the_scenarios() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    run_with_flash(&image, &image, &[]);
}

/// `run --serial … --flash IMG.zst`: the card holds the unpacked disk, streamed from the
/// compressed file.
#[test]
fn run_with_flash_of_a_zstd_image_writes_the_unpacked_disk_and_boots_it() {
    let dir = temp_dir();
    let packed = compressed_fixture("zstd", "zst", dir.path());
    let cache = dir.path().join("cache");
    let run = run_with_flash(
        &packed,
        &fixture(r2s_images::DEFAULT_FIXTURE),
        &[("R2S_CACHE_DIR", cache.as_os_str())],
    );
    assert!(
        run.stderr
            .contains(&format!("{} is zstd-compressed: unpacked to ", packed.display())),
        "{}",
        run.explain()
    );
}

/// `run --serial BENCH --flash flashed --yes boot-to-login` with `env`, on a bench whose board
/// boots `raw`: passes, with `raw`'s bytes on the card, written before the board was powered on.
fn run_with_flash(flashed: &Path, raw: &Path, extra_env: &[(&str, &OsStr)]) -> Finished {
    let image = flashed;
    let bench = r2s_tests::bench::VirtualBench::new(raw);
    let (system, card) = with_usb_card();
    let with_board = system.root().join("card-with-board.img");
    std::fs::rename(&card, &with_board).unwrap();
    let mux = std::fs::read_to_string(sdmux_profile(&system, true)).unwrap();
    let mux_table = &mux[mux.find("[sdmux]").unwrap()..];
    // The bench's power profile, at the fixture's console rate so that inspect passes, with
    // the SD-mux of the fake system.
    let profile = bench.dir().join("bench-with-mux.toml");
    let power = std::fs::read_to_string(bench.profile("10s")).unwrap();
    std::fs::write(
        &profile,
        format!(
            "{}\n{mux_table}device = {:?}\n",
            power.replace("baud = 1500000", "baud = 115200"),
            card.display().to_string()
        ),
    )
    .unwrap();
    let transcripts = bench.dir().join("transcripts");
    let boot_to_login = scenario("boot-to-login");
    let args = [
        os("run"),
        os("--serial"),
        os(bench.device()),
        os("--board"),
        os(&profile),
        os("--flash"),
        os(&image),
        os("--yes"),
        os("--transcripts"),
        os(&transcripts),
        os(&boot_to_login),
    ];
    let started = Instant::now();
    let mut env = vec![("R2S_FLASH_SYSROOT", system.root().as_os_str())];
    env.extend_from_slice(extra_env);
    let (child, command) = spawn_harness_env(&args, &env);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(sha256(&with_board), sha256(raw));
    assert_eq!(
        std::fs::read_to_string(system.root().join("sdmux.log")).unwrap(),
        "host\ndut\n"
    );
    let flashed = run
        .stdout
        .find("flashed: ")
        .unwrap_or_else(|| panic!("{}", run.explain()));
    let passed = run
        .stdout
        .find("PASS  boot-to-login")
        .unwrap_or_else(|| panic!("{}", run.explain()));
    assert!(flashed < passed, "{}", run.explain());
    assert_eq!(bench.observed().power_log, ["off", "on", "off"]);
    run
}

/// `harness flash ARGS` with stdin a terminal on which `typed` is already waiting.
fn flash_on_a_terminal(args: &[&OsStr], typed: &[u8]) -> Finished {
    let dir = temp_dir();
    let pty = r2s_tests::pty::Pty::open(&dir.path().join("tty")).unwrap();
    pty.write_all(typed, Duration::from_secs(5)).unwrap();
    let terminal = std::fs::File::options()
        .read(true)
        .write(true)
        .open(pty.slave())
        .unwrap();
    let started = Instant::now();
    let child = Command::new(harness_bin())
        .arg("flash")
        .args(args)
        .stdin(terminal)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, format!("harness flash {args:?}"), started, LIMIT)
}

#[test]
fn on_a_terminal_only_yes_writes() {
    let dir = temp_dir();
    let (idbloader, itb) = bootloader_files(dir.path());
    let card = dir.path().join("card.img");
    patterned(&card, 20 << 20);
    let before = sha256(&card);
    let args = [os("--bootloader"), os(&idbloader), os(&itb), os(&card)];
    let declined = flash_on_a_terminal(&args, b"y\n");
    assert_eq!(declined.code(), Some(2), "{}", declined.explain());
    assert!(
        declined.stderr.contains(&format!(
            "Everything there is overwritten. Type yes to write to {}: harness: not written: the write was not confirmed",
            card.display()
        )),
        "{}",
        declined.explain()
    );
    assert!(declined
        .stdout
        .contains(&format!("  {}: a regular file of 20.0 MiB", card.display())));
    assert_eq!(sha256(&card), before);
    let confirmed = flash_on_a_terminal(&args, b"yes\n");
    assert_eq!(confirmed.code(), Some(0), "{}", confirmed.explain());
    assert_ne!(sha256(&card), before);
}

#[test]
fn run_with_flash_needs_an_sd_mux_in_the_board_profile() {
    let dir = temp_dir();
    let profile = dir.path().join("no-mux.toml");
    std::fs::write(
        &profile,
        "name = \"no-mux\"\nbaud = 1500000\nconsole = \"ttyS2\"\n",
    )
    .unwrap();
    let run = run_harness(
        &[
            os("run"),
            os("--transcripts"),
            os(dir.path()),
            os("--serial"),
            os(&dir.path().join("ttyUSB9")),
            os("--board"),
            os(&profile),
            os("--flash"),
            os(&fixture("r2s-first-boot")),
            os("--yes"),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "harness: --flash needs an [sdmux] table in board profile {}: the commands that switch the card to the host and back",
            profile.display()
        )
    );
}

#[test]
fn run_with_flash_needs_a_board_to_write_the_card_of() {
    let image = fixture("r2s-first-boot");
    let dir = temp_dir();
    let args = [
        os("run"),
        os("--no-project"),
        os("--transcripts"),
        os(dir.path()),
        os("--image"),
        os(&image),
        os("--flash"),
        os(&image),
        os("--yes"),
    ];
    let started = Instant::now();
    // Without $LG_PLACE, which would name a place.
    let (child, command) = spawn_harness_env_without(&args, &[], &["LG_PLACE"]);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        "harness: --flash needs the board whose card it writes: --serial DEV or --place NAME"
    );
}
