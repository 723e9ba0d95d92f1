//! `harness inspect` on real fixture images: the good R2S layouts pass, every broken-inspect
//! fixture fails (or warns) on the check it is named after and on nothing else, images that
//! cannot be read are exit code 2 with a clear message, the JSON has its documented shape, and
//! the image is never changed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::hostile::{copy_of, debugfs, gpt_image};
use r2s_tests::vfat::first_boot_with_vfat_boot;
use r2s_tests::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn inspect(image: &Path, extra: &[&str]) -> Finished {
    let mut args: Vec<&OsStr> = vec![OsStr::new("inspect"), image.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run_harness(&args, LIMIT)
}

/// The JSON report of `image`, with the exit code checked.
fn json_report(image: &Path, code: i32) -> Value {
    let run = inspect(image, &["--format", "json"]);
    assert_eq!(run.code(), Some(code), "{}", run.explain());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.explain()))
}

/// The (check, status) pairs that did not pass, each once.
fn problems(report: &Value) -> BTreeSet<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect()
}

/// Inspects fixture `name` and asserts the exit code and exactly which checks did not pass.
fn assert_fixture(name: &str, code: i32, expected: &[(&str, &str)]) {
    let report = json_report(&fixture(name), code);
    assert_eq!(problems(&report), set(expected), "{name}: {report:#}");
}

#[test]
fn first_boot_layout_passes_every_check() {
    assert_fixture("r2s-first-boot", 0, &[]);
}

#[test]
fn generations_layout_passes_every_check() {
    assert_fixture("r2s-generations", 0, &[]);
}

/// nixpkgs' sd-image boots under QEMU, but its FIRMWARE partition at 8 MiB sits where an R2S
/// needs u-boot.itb: the classic collision inspect exists to catch.
#[test]
fn sd_image_layout_fails_on_firmware_over_u_boot_itb() {
    assert_fixture(
        "r2s-sd-image",
        1,
        &[("bootloader-area", "fail"), ("u-boot-itb", "fail")],
    );
}

/// The default fixture is made for QEMU (console=ttyAMA0): on an R2S it would be silent.
#[test]
fn qemu_console_fixture_fails_on_console_for_the_r2s() {
    assert_fixture(r2s_images::DEFAULT_FIXTURE, 1, &[("console", "fail")]);
}

/// One test per broken-inspect fixture: it fails (or, for f2fs and ignored keywords, warns)
/// on the check whose name follows `broken-inspect-`, and on nothing else unrelated.
macro_rules! broken {
    ($($test:ident: $fixture:literal => $code:literal, [$(($check:literal, $status:literal)),* $(,)?];)*) => {$(
        #[test]
        fn $test() {
            assert_fixture($fixture, $code, &[$(($check, $status)),*]);
            let named = $fixture.strip_prefix("broken-inspect-").unwrap();
            // A variant is named after its check and what sets it apart: `init-on-f2fs`.
            let caught = [$($check),*].iter().any(|c| named == *c || named.starts_with(&format!("{c}-")));
            assert!(caught, "{} is not caught by the check it is named after", $fixture);
        }
    )*};
}

broken! {
    partition_table_fixture_fails_partition_table: "broken-inspect-partition-table" => 1,
        [("partition-table", "fail")];
    bootloader_area_fixture_fails_bootloader_area: "broken-inspect-bootloader-area" => 1,
        [("bootloader-area", "fail"), ("u-boot-itb", "warn")];
    idbloader_fixture_fails_idbloader: "broken-inspect-idbloader" => 1, [("idbloader", "fail")];
    u_boot_itb_fixture_fails_u_boot_itb: "broken-inspect-u-boot-itb" => 1, [("u-boot-itb", "fail")];
    root_label_fixture_fails_root_label: "broken-inspect-root-label" => 1, [("root-label", "fail")];
    boot_label_fixture_fails_boot_label: "broken-inspect-boot-label" => 1, [("boot-label", "fail")];
    // init= is read from the f2fs root and found there.
    root_filesystem_fixture_warns_root_filesystem: "broken-inspect-root-filesystem" => 0,
        [("root-filesystem", "warn")];
    init_on_f2fs_fixture_fails_init: "broken-inspect-init-on-f2fs" => 1,
        [("root-filesystem", "warn"), ("init", "fail")];
    extlinux_conf_fixture_fails_extlinux_conf: "broken-inspect-extlinux-conf" => 1, [("extlinux-conf", "fail")];
    extlinux_keywords_fixture_warns_extlinux_keywords: "broken-inspect-extlinux-keywords" => 0,
        [("extlinux-keywords", "warn")];
    extlinux_default_fixture_fails_extlinux_default: "broken-inspect-extlinux-default" => 1,
        [("extlinux-default", "fail")];
    extlinux_menu_wait_fixture_fails_extlinux_menu_wait: "broken-inspect-extlinux-menu-wait" => 1,
        [("extlinux-menu-wait", "fail")];
    // Without a readable kernel, nothing says whether PL011 is built in.
    kernel_fixture_fails_kernel: "broken-inspect-kernel" => 1,
        [("kernel", "fail"), ("qemu-console", "warn")];
    kernel_format_fixture_fails_kernel_format: "broken-inspect-kernel-format" => 1,
        [("kernel-format", "fail"), ("qemu-console", "warn")];
    kernel_size_fixture_fails_kernel_size: "broken-inspect-kernel-size" => 1, [("kernel-size", "fail")];
    // Without the initrd, no bus is known to hold the root disk under QEMU.
    initrd_fixture_fails_initrd: "broken-inspect-initrd" => 1,
        [("initrd", "fail"), ("qemu-root-disk", "warn")];
    fdt_fixture_fails_fdt: "broken-inspect-fdt" => 1, [("fdt", "fail")];
    fdt_compatible_fixture_fails_fdt_compatible: "broken-inspect-fdt-compatible" => 1, [("fdt-compatible", "fail")];
    console_fixture_fails_console: "broken-inspect-console" => 1, [("console", "fail")];
    root_fixture_fails_root: "broken-inspect-root" => 1, [("root", "fail")];
    init_fixture_fails_init: "broken-inspect-init" => 1, [("init", "fail")];
}

#[test]
fn a_board_profile_file_sets_the_console_the_image_must_use() {
    let dir = temp_dir();
    let profile = dir.path().join("slow-uart.toml");
    std::fs::write(
        &profile,
        "name = \"slow-uart\"\nbaud = 115200\nconsole = \"ttyS2\"\n",
    )
    .unwrap();
    let image = fixture("r2s-generations");
    let profile_arg = profile.to_str().unwrap();
    let run = inspect(&image, &["--board", profile_arg, "--format", "json"]);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["board"], "slow-uart");
    assert_eq!(problems(&report), set(&[("console", "fail")]));
    // The built-in profile's 1,500,000 baud is what the image has.
    assert_eq!(inspect(&image, &[]).code(), Some(0));
}

/// An f2fs root is read as an ext4 one: its `/etc/fstab`, and the image facts, whose hostname
/// comes through the system's symlinks into the store.
#[test]
fn an_f2fs_roots_fstab_and_facts_are_read_from_it() {
    use r2s_harness::image::{facts::ImageFacts, Table, Volume};
    let image = fixture("broken-inspect-root-filesystem");
    let table = Table::read(&image).unwrap();
    let root = Volume::open_index(&image, &table, 2).unwrap();
    assert!(matches!(root, Volume::F2fs(_)), "{root:?}");
    assert_eq!(
        root.read_text("/etc/fstab", 4096, "an fstab").unwrap(),
        r2s_images::F2FS_FSTAB
    );
    let facts = ImageFacts::read(&image);
    assert_eq!(facts.unread, Vec::<String>::new());
    assert_eq!(facts.hostname.as_deref(), Some(r2s_images::HOSTNAME));
    assert_eq!(facts.systemd, Some(false));
}

/// Marks file `path` on the f2fs root (partition 2) of `image` compressed in its inode's flags,
/// as a compressing kernel does, which this f2fs reader cannot read; returns its inode number.
fn mark_f2fs_file_compressed(image: &Path, path: &str) -> u32 {
    use std::os::unix::fs::FileExt;

    use r2s_harness::image::{budget::ReadBudget, f2fs::F2fs, Table};
    let table = Table::read(image).unwrap();
    let root = table.partition(2).unwrap().clone();
    let fs = F2fs::open(
        std::fs::File::open(image).unwrap(),
        root.offset(),
        root.size(),
        ReadBudget::new(64 << 20),
    )
    .unwrap();
    let ino = fs.resolve(path, true).unwrap().ino;
    // The inode's node block: the one whose footer names it as node and inode.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut block = vec![0u8; 4096];
    let node_at = (0..root.size() / 4096)
        .map(|i| root.offset() + i * 4096)
        .find(|at| {
            file.read_exact_at(&mut block, *at).unwrap();
            let le = |o: usize| u32::from_le_bytes(block[o..o + 4].try_into().unwrap());
            (le(4072), le(4076)) == (ino, ino) && block[0..2] != [0, 0]
        })
        .unwrap_or_else(|| panic!("the inode of {path}"));
    file.write_all_at(&4u32.to_le_bytes(), node_at + 80).unwrap();
    ino
}

/// A hostname file the f2fs reader cannot read (compressed, as a compressing kernel marks it in
/// the inode's flags) is a fact left out with that reason, not one passed over silently.
#[test]
fn an_f2fs_hostname_the_reader_cannot_read_is_left_out_saying_why() {
    use r2s_harness::image::facts::ImageFacts;
    let dir = temp_dir();
    let image = copy_of("broken-inspect-root-filesystem", dir.path());
    let system = &r2s_images::generations()[0].store_path;
    let ino = mark_f2fs_file_compressed(&image, &format!("{system}/etc/hostname"));
    let facts = ImageFacts::read(&image);
    assert_eq!(facts.hostname, None);
    assert_eq!(
        facts.unread,
        [format!(
            "the hostname cannot be read: partition 2: cannot read {system}/etc/hostname: a compressed file \
             (inode {ino}), which this f2fs reader cannot read"
        )]
    );
}

/// An f2fs root's `/etc/fstab` the reader cannot read (compressed) is not passed over: the
/// root device NixOS's default gives is said to be a guess, with the reason, in the image's
/// facts and in `inspect`'s root-label check, which warns.
#[test]
fn an_f2fs_fstab_the_reader_cannot_read_makes_the_default_root_a_warning_saying_why() {
    use r2s_harness::image::facts::ImageFacts;
    let dir = temp_dir();
    let image = copy_of("broken-inspect-root-filesystem", dir.path());
    let ino = mark_f2fs_file_compressed(&image, "/etc/fstab");
    let why = format!(
        "/dev/disk/by-label/NIXOS_SD (NixOS's default, but an fstab that may name another cannot be read: \
         partition 2: cannot read /etc/fstab: a compressed file (inode {ino}), which this f2fs reader cannot read)"
    );
    let facts = ImageFacts::read(&image);
    assert_eq!(facts.unread, [format!("the root device is taken as {why}")]);
    let report = json_report(&image, 0);
    let label = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "root-label")
        .unwrap();
    assert_eq!(label["status"], "warn", "{label}");
    assert!(
        label["found"]
            .as_str()
            .unwrap()
            .ends_with(&format!("; the root device is taken as {why}")),
        "{label}"
    );
}

/// A copy of `r2s-first-boot` in `dir`, its system's store path (from the default entry's
/// `init=`) and the `etc` store directory its `<system>/etc` links to.
fn first_boot_copy_with_its_system(dir: &Path) -> (std::path::PathBuf, String, String) {
    let image = copy_of("r2s-first-boot", dir);
    let system = format!(
        "/nix/store/{}",
        r2s_harness::image::facts::ImageFacts::read(&image).entries[0]
            .system
            .clone()
            .expect("init= in the store")
    );
    let etc = r2s_tests::hostile::debugfs_link(&image, 2, &format!("{system}/etc"));
    (image, system, etc)
}

/// A NixOS system's units are read from its closure on an ext4 root, as NixOS lays them out:
/// `<system>/etc` links to the `etc` store path, whose `systemd/system` links to the
/// `system-units` store path, whose units link to one store path each and whose `.wants` and
/// `.requires` entries link to `../<unit>` (the targets in the boot's order). The root's own `/etc/systemd/system` (filled at activation) is
/// not what the system enables and is not read. Built on a copy of `r2s-first-boot` with
/// debugfs.
#[test]
fn a_nixos_systems_enabled_units_are_read_through_its_closures_links() {
    use r2s_harness::image::facts::{ImageFacts, UnitFacts};
    use r2s_harness::image::listen_stream::listen_streams;
    let dir = temp_dir();
    let (image, system, etc) = first_boot_copy_with_its_system(dir.path());
    let units = "/nix/store/0d7kqj3v3zy5gq3bsyf2mdx9h0q8rx6b-system-units";
    let sshd = "/nix/store/1n0f1a7dr9wqdvq8zw0p2kiw9g0c5iy3-unit-sshd.service";
    let web = "/nix/store/2b6xlxq4x1kjh3yi5dnqm0fbfwxkp1hs-unit-web.socket";
    let systemd = "/nix/store/3c9ps0kcm2w1cllrmm8vx8a2c8axyh7q-systemd-257.5";
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let sshd_text = file("sshd.service", "[Service]\nExecStart=/bin/sshd -D\n");
    let web_text = file("web.socket", "[Socket]\nListenStream=[::]:8080\n");
    let other = file("other.service", "[Service]\nExecStart=/bin/true\n");
    let commands = [
        format!("mkdir {systemd}"),
        format!("symlink {system}/systemd {systemd}"),
        format!("mkdir {sshd}"),
        format!("write {sshd_text} {sshd}/sshd.service"),
        format!("mkdir {web}"),
        format!("write {web_text} {web}/web.socket"),
        format!("mkdir {units}"),
        format!("symlink {units}/sshd.service {sshd}/sshd.service"),
        format!("symlink {units}/web.socket {web}/web.socket"),
        format!("mkdir {units}/multi-user.target.wants"),
        format!("symlink {units}/multi-user.target.wants/sshd.service ../sshd.service"),
        format!("mkdir {units}/sockets.target.wants"),
        format!("symlink {units}/sockets.target.wants/web.socket ../web.socket"),
        // `requiredBy` and the boot's other targets enable units too.
        format!("mkdir {units}/multi-user.target.requires"),
        format!("symlink {units}/multi-user.target.requires/needed.service ../sshd.service"),
        format!("mkdir {units}/getty.target.wants"),
        format!("symlink {units}/getty.target.wants/autovt@tty1.service ../sshd.service"),
        format!("mkdir {etc}/systemd"),
        format!("symlink {etc}/systemd/system {units}"),
        // What an earlier activation left on the root: not this system's.
        "mkdir /etc/systemd".to_owned(),
        "mkdir /etc/systemd/system".to_owned(),
        "mkdir /etc/systemd/system/multi-user.target.wants".to_owned(),
        format!("write {other} /etc/systemd/system/multi-user.target.wants/other.service"),
    ];
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    debugfs(&image, 2, &commands);
    let facts = ImageFacts::read(&image);
    assert_eq!(facts.unread, Vec::<String>::new());
    assert_eq!(facts.systemd, Some(true));
    assert_eq!(facts.entries[0].nixos, Some(true));
    let unit = |name: &str, wanted_by: &str| UnitFacts {
        name: name.to_owned(),
        wanted_by: wanted_by.to_owned(),
        listen: Vec::new(),
    };
    assert_eq!(
        facts.units,
        [
            UnitFacts {
                listen: listen_streams("ListenStream=[::]:8080"),
                ..unit("web.socket", "sockets.target")
            },
            unit("autovt@tty1.service", "getty.target"),
            unit("sshd.service", "multi-user.target"),
            unit("needed.service", "multi-user.target"),
        ]
    );
}

/// A socket unit the system enables that cannot be read (here a link into the store whose
/// target is not there) is listed without its sockets, and the facts say why.
#[test]
fn an_enabled_socket_unit_that_cannot_be_read_is_named_with_the_reason() {
    use r2s_harness::image::facts::ImageFacts;
    let dir = temp_dir();
    let (image, system, etc) = first_boot_copy_with_its_system(dir.path());
    let commands = [
        format!("symlink {system}/systemd /bin"),
        format!("mkdir {etc}/systemd"),
        format!("mkdir {etc}/systemd/system"),
        format!("mkdir {etc}/systemd/system/sockets.target.wants"),
        format!("symlink {etc}/systemd/system/sockets.target.wants/gone.socket /nix/store/x-unit-gone.socket/gone.socket"),
    ];
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    debugfs(&image, 2, &commands);
    let facts = ImageFacts::read(&image);
    assert_eq!(facts.units.len(), 1, "{:?}", facts.units);
    assert_eq!(facts.units[0].name, "gone.socket");
    assert_eq!(facts.unread.len(), 1, "{:?}", facts.unread);
    assert!(
        facts.unread[0].starts_with(
            "the socket unit gone.socket cannot be read, so its ListenStream= ports are not checked: "
        ),
        "{:?}",
        facts.unread
    );
}

#[test]
fn every_broken_inspect_fixture_has_a_test() {
    let source = include_str!("inspect.rs");
    for fixture in r2s_images::fixtures() {
        if fixture.name.starts_with("broken-inspect-") {
            assert!(
                source.contains(&format!("\"{}\" =>", fixture.name)),
                "no test for {}",
                fixture.name
            );
        }
    }
}

/// The qemu-* checks judge the image for `harness run`, not for the board: they warn on the
/// fixtures of the checks they depend on (above) and are judged in unit tests and on the
/// fixtures below, not on a broken-inspect fixture of their own.
#[test]
fn every_board_check_has_a_broken_fixture() {
    let fixtures: Vec<&str> = r2s_images::fixtures().iter().map(|f| f.name).collect();
    let board_checks = r2s_harness::inspect::report::CheckName::ALL
        .into_iter()
        .filter(|c| !c.as_str().starts_with("qemu-"));
    for check in board_checks {
        let name = format!("broken-inspect-{}", check.as_str());
        assert!(fixtures.contains(&name.as_str()), "no fixture {name}");
    }
}

#[test]
fn the_qemu_checks_name_the_console_and_the_virtio_root_disk_of_the_busybox_initrd() {
    let report = json_report(&fixture("r2s-generations"), 0);
    let qemu: Vec<(&str, &str, &str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("qemu-"))
        .map(|c| {
            (
                c["check"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["label"].as_str().unwrap(),
                c["found"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        qemu,
        [
            (
                "qemu-console",
                "pass",
                "nixos-default",
                "PL011 built in (the kernel image holds the driver's uart-pl011 and ttyAMA names; its \
                 console is assumed with it)"
            ),
            (
                "qemu-root-disk",
                "pass",
                "nixos-default",
                "virtio-blk (virtio-mmio): the first bus the image's kernel and initrd can drive \
                 (virtio_blk in the initrd, virtio_mmio in the initrd)"
            ),
        ]
    );
}

#[test]
fn per_entry_failures_name_every_label() {
    let report = json_report(&fixture("broken-inspect-kernel"), 1);
    let labels: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "kernel")
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["nixos-default", "nixos-2-default", "nixos-1-default"]);
}

#[test]
fn text_report_names_the_failing_check_where_it_looked_and_the_fix() {
    let run = inspect(&fixture("broken-inspect-console"), &[]);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL  console [nixos-default]"))
        .unwrap_or_else(|| panic!("{}", run.explain()));
    assert!(
        lines[at].ends_with("console=ttyS2,115200n8, not console=ttyS2,1500000"),
        "{}",
        lines[at]
    );
    assert!(lines[at + 1]
        .trim_start()
        .starts_with("where: APPEND of LABEL nixos-default (line "));
    assert!(lines[at + 2]
        .trim_start()
        .starts_with("fix: add `console=ttyS2,1500000` to APPEND"));
    // 34 board checks and the two qemu-* checks of the default entry.
    assert_eq!(
        lines.last(),
        Some(&"result: FAIL (3 failed, 0 warnings, 37 passed)")
    );
}

#[test]
fn json_report_has_the_documented_shape() {
    let report = json_report(&fixture("broken-inspect-initrd"), 1);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        keys(&report),
        names(&["version", "image", "board", "result", "error", "summary", "checks"])
    );
    assert_eq!(report["version"], 1);
    assert_eq!(report["board"], "nanopi-r2s");
    assert_eq!(report["result"], "fail");
    assert_eq!(report["error"], Value::Null);
    assert_eq!(
        report["summary"],
        // With no initrd, the default entry's root disk under QEMU is unknown: qemu-root-disk warns.
        serde_json::json!({"pass": 36, "warn": 1, "fail": 3})
    );
    let checks = report["checks"].as_array().unwrap();
    for check in checks {
        assert_eq!(
            keys(check),
            names(&["check", "label", "status", "where", "found", "hint"])
        );
        assert!(["pass", "warn", "fail"].contains(&check["status"].as_str().unwrap()));
        assert!(check["where"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(check["found"].as_str().is_some_and(|s| !s.is_empty()));
        // A fix is given exactly for what did not pass.
        assert_eq!(check["hint"].is_string(), check["status"] != "pass", "{check}");
    }
    let image_wide: Vec<&str> = checks
        .iter()
        .filter(|c| c["label"].is_null())
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        image_wide,
        [
            "partition-table",
            "bootloader-area",
            "idbloader",
            "u-boot-itb",
            "root-label",
            "boot-label",
            "root-filesystem",
            "extlinux-conf",
            "extlinux-keywords",
            "extlinux-default",
            "extlinux-menu-wait"
        ]
    );
    let failed = checks.iter().find(|c| c["status"] == "fail").unwrap();
    assert_eq!(failed["check"], "initrd");
    assert_eq!(failed["label"], "nixos-default");
    assert!(failed["found"]
        .as_str()
        .unwrap()
        .ends_with("-initrd-linux-6.1-initrd does not exist"));
}

#[test]
fn a_vfat_boot_partition_is_read_as_u_boot_reads_it() {
    let dir = temp_dir();
    let image = first_boot_with_vfat_boot(dir.path());
    let report = json_report(&image, 0);
    assert_eq!(problems(&report), set(&[]), "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let conf = checks.iter().find(|c| c["check"] == "extlinux-conf").unwrap();
    assert_eq!(conf["where"], "partition 1: /extlinux/extlinux.conf");
    let boot_label = checks.iter().find(|c| c["check"] == "boot-label").unwrap();
    assert_eq!(
        boot_label["found"],
        "NIXOS_BOOT is partition 1 (vfat labelled \"NIXOS_BOOT\", sectors 32768–1081343)"
    );
}

#[test]
fn inspect_leaves_the_image_byte_identical() {
    let image = fixture("r2s-sd-image");
    let before = sha256(&image);
    let modified = std::fs::metadata(&image).unwrap().modified().unwrap();
    inspect(&image, &[]);
    inspect(&image, &["--format", "json"]);
    assert_eq!(sha256(&image), before, "the image changed");
    assert_eq!(std::fs::metadata(&image).unwrap().modified().unwrap(), modified);
}

#[test]
fn a_truncated_image_is_exit_2_saying_truncated() {
    let source = fixture("r2s-generations");
    let dir = temp_dir();
    let image = dir.path().join("truncated.img");
    // The partition table and bootloader survive; the partitions do not.
    write_truncated_copy(&source, 20 << 20, &image);
    let run = inspect(&image, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(run.stdout, "", "{}", run.explain());
    assert!(
        run.stderr.starts_with(&format!(
            "harness: {}: image is truncated: partition 1 (sectors 32768..=1081343) needs",
            image.display()
        )),
        "{}",
        run.explain()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.explain());
}

#[test]
fn a_garbage_image_is_exit_2_saying_there_is_no_partition_table() {
    let dir = temp_dir();
    let image = dir.path().join("garbage.img");
    write_garbage_image(&image);
    let run = inspect(&image, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .starts_with(&format!("harness: {}: no partition table", image.display())),
        "{}",
        run.explain()
    );
}

#[test]
fn an_unreadable_image_in_json_is_an_error_document() {
    let dir = temp_dir();
    let image = dir.path().join("empty.img");
    std::fs::write(&image, b"").unwrap();
    let report = json_report(&image, 2);
    assert_eq!(report["result"], "error");
    assert_eq!(report["checks"], serde_json::json!([]));
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("image is truncated: a partition table (sector 0) needs 512 bytes but the image has 0"),
        "{report:#}"
    );
}

#[test]
fn a_missing_image_is_exit_2_naming_it() {
    let run = inspect(Path::new("/nonexistent/r2s.img"), &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .starts_with("harness: /nonexistent/r2s.img: cannot open image"),
        "{}",
        run.explain()
    );
}

#[test]
fn an_unknown_board_is_a_usage_error() {
    let run = inspect(&fixture("r2s-generations"), &["--board", "rock64"]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains("rock64: no such board profile file, and no built-in board of that name"),
        "{}",
        run.explain()
    );
}

// Hostile images: sizes in the metadata that ask for far more than the image holds, and
// structures that make the third-party readers panic. Each must end in a failed check or
// exit 2 with what and where — never an abort, a panic (exit 101) or gigabytes of memory.

/// inspect's peak memory across its runs in this test process (nextest runs each test in a
/// process of its own), in bytes.
fn children_peak_rss() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss as u64 * 1024
}

/// Asserts that a hostile run stayed within inspect's bounds: 64 MB, 10 s, no panic.
fn assert_bounded(run: &Finished) {
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}\n{}",
        run.elapsed,
        run.explain()
    );
    let rss = children_peak_rss();
    assert!(rss < 64 << 20, "peak RSS {rss} bytes\n{}", run.explain());
    assert!(!run.stderr.contains("panicked"), "{}", run.explain());
}

#[test]
fn a_gpt_asking_for_half_a_terabyte_of_entries_is_exit_2_within_bounds() {
    let dir = temp_dir();
    let image = dir.path().join("huge-gpt.img");
    // 2^32 - 1 entries of 128 bytes: 512 GiB of entry array on a 64 GiB (sparse) image.
    gpt_image(&image, 64 << 30, u32::MAX, 128, &[]);
    let run = inspect(&image, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "harness: {}: invalid partition table: GPT: primary header (sector 1): the entry array would be \
             4294967295 entries of 128 bytes (549755813760 bytes); Linux refuses arrays above 4194304 bytes \
             and so does this reader",
            image.display()
        ),
        "{}",
        run.explain()
    );
    assert_bounded(&run);
}

#[test]
fn a_gpt_with_256_byte_entries_is_exit_2_saying_linux_and_u_boot_refuse_it() {
    let dir = temp_dir();
    let image = dir.path().join("wide-gpt.img");
    let mut entries = vec![0u8; 128 * 256];
    entries[..16].copy_from_slice(&[
        0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
    ]);
    entries[32..40].copy_from_slice(&32768u64.to_le_bytes());
    entries[40..48].copy_from_slice(&65535u64.to_le_bytes());
    gpt_image(&image, 64 << 20, 128, 256, &entries);
    let run = inspect(&image, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(
            "invalid partition table: GPT: primary header (sector 1): partition entries are 256 bytes: the UEFI \
             spec allows any multiple of 128, but Linux and U-Boot read only 128-byte entries"
        ),
        "{}",
        run.explain()
    );
    assert_bounded(&run);
}

#[test]
fn a_3_gib_sparse_extlinux_conf_fails_extlinux_conf_within_bounds() {
    let dir = temp_dir();
    let image = copy_of("r2s-first-boot", dir.path());
    debugfs(&image, 1, &["sif /extlinux/extlinux.conf size 3221225472"]);
    let report = json_report(&image, 1);
    assert_eq!(problems(&report), set(&[("extlinux-conf", "fail")]), "{report:#}");
    let conf = &report["checks"].as_array().unwrap()[7];
    assert_eq!(
        conf["found"],
        "cannot read it: partition 1: /extlinux/extlinux.conf is 3221225472 bytes, more than the 1048576 bytes \
         an extlinux.conf may have"
    );
    assert_bounded(&inspect(&image, &[]));
}

#[test]
fn a_kernel_inode_of_1_tib_fails_kernel_size_within_bounds() {
    let dir = temp_dir();
    let image = copy_of("r2s-first-boot", dir.path());
    debugfs(&image, 1, &["sif /Image size 1099511627776"]);
    let report = json_report(&image, 1);
    // A kernel too large to read leaves its console under QEMU unknown.
    assert_eq!(
        problems(&report),
        set(&[("kernel-size", "fail"), ("qemu-console", "warn")]),
        "{report:#}"
    );
    assert_bounded(&inspect(&image, &[]));
}

#[test]
fn a_directory_flagged_as_hashed_fails_extlinux_conf_instead_of_panicking() {
    let dir = temp_dir();
    let image = copy_of("r2s-first-boot", dir.path());
    // EXT4_INDEX_FL on a linear directory: ext4-view reads the htree root's count from a file
    // name and slices past the block computing its checksum.
    debugfs(&image, 1, &["sif /extlinux flags 0x81000"]);
    let report = json_report(&image, 1);
    assert_eq!(problems(&report), set(&[("extlinux-conf", "fail")]), "{report:#}");
    let found = report["checks"].as_array().unwrap()[7]["found"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        found.starts_with(
            "cannot read it: partition 1: cannot read /extlinux/extlinux.conf: the ext4 reader failed on \
             inconsistent data (range end index"
        ),
        "{found}"
    );
    assert_bounded(&inspect(&image, &[]));
}

/// The first-boot fixture with its extlinux.conf replaced by `conf` (and `extra` files beside
/// it), checked.
fn with_extlinux_conf(conf: &str, extra: &[(&str, &str)]) -> Value {
    let dir = temp_dir();
    let image = copy_of("r2s-first-boot", dir.path());
    let mut commands = vec!["rm /extlinux/extlinux.conf".to_owned()];
    for (name, text) in std::iter::once(&("extlinux.conf", conf)).chain(extra) {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        commands.push(format!("write {} /extlinux/{name}", file.display()));
    }
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    debugfs(&image, 1, &commands);
    json_report(&image, 1)
}

#[test]
fn an_extlinux_conf_without_a_label_fails_extlinux_conf() {
    let report = with_extlinux_conf("DEFAULT nixos\nTIMEOUT 10\n", &[]);
    assert_eq!(
        problems(&report),
        set(&[("extlinux-conf", "fail"), ("extlinux-default", "fail")]),
        "{report:#}"
    );
    assert_eq!(
        report["checks"][7]["found"],
        "found, but it has no LABEL: U-Boot has nothing to boot"
    );
}

#[test]
fn an_include_loop_fails_extlinux_conf_naming_the_chain() {
    let conf = "DEFAULT NixOS\nINCLUDE menu.conf\nLABEL NixOS\n  LINUX /Image\n  INITRD /initrd\n  FDT \
                /rk3328-nanopi-r2s.dtb\n  APPEND console=ttyS2,1500000 root=LABEL=NIXOS_SD init=/init\n";
    let report = with_extlinux_conf(conf, &[("menu.conf", "MENU INCLUDE extlinux.conf\n")]);
    assert!(
        problems(&report).contains(&("extlinux-conf".to_owned(), "fail".to_owned())),
        "{report:#}"
    );
    assert_eq!(
        report["checks"][7]["found"],
        "U-Boot rejects it: INCLUDE loop: /extlinux/extlinux.conf line 2 → /extlinux/menu.conf line 1 includes \
         /extlinux/extlinux.conf again; U-Boot stops after 16 levels (\"Maximum nesting (16) exceeded\") and \
         rejects the file (\"Error parsing config file\")"
    );
}

#[test]
fn text_from_the_image_is_shown_escaped_in_the_report() {
    let dir = temp_dir();
    // A LABEL that would clear the screen, ring the bell and reverse the rest of the line.
    let image = copy_of("r2s-first-boot", dir.path());
    let conf = r2s_harness::image::Ext4Volume::open_index(&image, 1)
        .unwrap()
        .read("/extlinux/extlinux.conf")
        .unwrap();
    let conf = String::from_utf8(conf).unwrap();
    let label = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("LABEL "))
        .expect("a LABEL")
        .to_owned();
    let hostile = dir.path().join("extlinux.conf");
    std::fs::write(
        &hostile,
        conf.replace(
            &format!("LABEL {label}"),
            &format!("LABEL {label}\u{1b}[2J\u{7}\u{202e}x"),
        ),
    )
    .unwrap();
    let write = format!("write {} /extlinux/extlinux.conf", hostile.display());
    debugfs(&image, 1, &["rm /extlinux/extlinux.conf", &write]);
    let run = inspect(&image, &[]);
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(
            !run.stdout.contains(raw) && !run.stderr.contains(raw),
            "{raw:?} reached the output raw:\n{}",
            run.explain()
        );
    }
    assert!(
        run.stdout.contains("\\u{1b}[2J\\u{7}\\u{202e}x"),
        "{}",
        run.explain()
    );

    // `harness run` says how it adapted those entries for QEMU, quoting them the same way.
    let scenario = dir.path().join("u-boot.toml");
    std::fs::write(
        &scenario,
        "name = \"u-boot\"\n[[steps]]\nexpect = \"U-Boot 20\"\n",
    )
    .unwrap();
    let booted = run_scenario_file(
        &image,
        &scenario,
        &dir.path().join("run"),
        Duration::from_secs(120),
    );
    assert_eq!(booted.code(), Some(0), "{}", booted.explain());
    assert!(booted.stdout.contains("adapted for QEMU"), "{}", booted.explain());
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(
            !booted.stdout.contains(raw) && !booted.stderr.contains(raw),
            "{raw:?} reached the output raw:\n{}",
            booted.explain()
        );
    }
}

/// What the harness's initrd reader finds in the initrd of fixture `name`'s default entry.
fn default_initrd_of(name: &str) -> r2s_harness::image::initrd::Index {
    let volume = r2s_harness::image::Ext4Volume::open_index(&fixture(name), 1).unwrap();
    let conf = String::from_utf8(volume.read("/extlinux/extlinux.conf").unwrap()).unwrap();
    let initrd = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("INITRD "))
        .expect("an INITRD line");
    // NixOS writes `../nixos/…`, relative to /extlinux; the write-up `/initrd`.
    let path = match initrd.strip_prefix("../") {
        Some(below_root) => format!("/{below_root}"),
        None => initrd.to_owned(),
    };
    r2s_harness::image::initrd::read(&volume.read(&path).unwrap()).unwrap()
}

#[test]
fn the_busybox_fixture_initrd_is_nixos_s_layout_read_through_its_lib_link_to_the_store() {
    let index = default_initrd_of("r2s-busybox");
    assert_eq!(index.segments, [r2s_harness::image::initrd::Compression::Zstd]);
    for module in ["virtio_blk", "virtio_mmio", "ext4"] {
        assert!(index.modules.contains(module), "{module} in {:?}", index.modules);
    }
    assert_eq!(index.releases.len(), 1, "{:?}", index.releases);
}

#[test]
fn the_first_boot_fixture_initrd_keeps_the_plain_layout_and_is_read_too() {
    let index = default_initrd_of("r2s-first-boot");
    assert_eq!(index.segments, [r2s_harness::image::initrd::Compression::Gzip]);
    assert_eq!(index.modules, default_initrd_of("r2s-busybox").modules);
}
