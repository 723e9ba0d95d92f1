//! R2S images (console on ttyS2 at 1,500,000 baud, an RK3328 device tree) boot under QEMU
//! through their own extlinux menus, kernels, initrds and root filesystems, and stay unchanged.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

fn run(image: &Path, extra: &[&OsStr], scenarios: &[&Path], dir: &Path) -> Finished {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
    ];
    args.extend_from_slice(extra);
    args.extend(scenarios.iter().map(|s| s.as_os_str()));
    run_harness(&args, LIMIT)
}

#[test]
fn first_boot_layout_boots_to_login_adapted_and_unchanged() {
    let image = fixture("r2s-first-boot");
    let before = sha256(&image);
    let dir = temp_dir();
    let result = run(
        &image,
        &[],
        &[&scenario("boot-to-login"), &scenario("login-and-run")],
        dir.path(),
    );
    assert_eq!(result.code(), Some(0), "{}", result.explain());
    for said in [
        "adapted for QEMU",
        "NixOS: APPEND console=ttyS2,1500000 -> console=ttyAMA0,115200",
        "NixOS: APPEND earlycon=uart8250,mmio32,0xff130000 -> earlycon=pl011,0x9000000",
        "NixOS: FDT /rk3328-nanopi-r2s.dtb dropped",
        "NixOS: APPEND + ifname=end0:52:54:00:52:32:01 (the board's name for QEMU's NIC)",
        "NixOS: APPEND + ifname=enu1:52:54:00:52:32:02 (the board's name for QEMU's NIC)",
        "--no-adapt",
        "2 passed, 0 failed",
    ] {
        assert!(
            result.stdout.contains(said),
            "missing {said:?}\n{}",
            result.explain()
        );
    }
    // The kernel really was the image's, and it was given the adapted console and the board's
    // NIC names, the rest of its command line as the image has it.
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    let append = log
        .lines()
        .find_map(|l| l.split_once("] append: ").map(|(_, append)| append.trim_end()))
        .unwrap_or_else(|| panic!("no append: line in\n{log}"));
    let words: Vec<&str> = append.split(' ').collect();
    // The image's init, checked by shape below.
    let init = words.get(5).copied().unwrap_or_default();
    assert_eq!(
        words,
        [
            "console=ttyAMA0,115200",
            "earlycon=pl011,0x9000000",
            "root=LABEL=NIXOS_SD",
            "rootfstype=ext4",
            "rootwait",
            init,
            "ifname=end0:52:54:00:52:32:01",
            "ifname=enu1:52:54:00:52:32:02",
        ],
        "{append}"
    );
    assert!(
        init.starts_with("init=/nix/store/")
            && init.ends_with("-nixos-system-ivy-25.05.20250817.48f4c98/init"),
        "{append}"
    );
    assert_eq!(sha256(&image), before, "the image changed");
}

#[test]
fn generations_layout_menu_boots_generation_2_and_the_image_is_unchanged() {
    let image = fixture("r2s-generations");
    let before = sha256(&image);
    let dir = temp_dir();
    let result = run(&image, &[], &[&scenario("extlinux-menu")], dir.path());
    assert_eq!(result.code(), Some(0), "{}", result.explain());
    assert!(result
        .stdout
        .contains("nixos-2-default: APPEND console=ttyS2,1500000 -> console=ttyAMA0,115200"));
    let log = std::fs::read_to_string(dir.path().join("extlinux-menu.log")).unwrap();
    // U-Boot showed the image's own menu, and entry 2 booted generation 2.
    assert!(
        log.contains("NixOS - Configuration 2 (2025-07-01 - 25.05.20250701.1a2b3c4)"),
        "{log}"
    );
    assert!(log.contains(">> 2\\r"), "{log}");
    assert!(log.contains("nixos-system-ivy-25.05.20250701.1a2b3c4"), "{log}");
    assert_eq!(sha256(&image), before, "the image changed");
}

#[test]
fn without_adaptation_a_silent_console_is_reported_with_its_console_argument() {
    let image = fixture("r2s-first-boot");
    let dir = temp_dir();
    let scenario = dir.path().join("short.toml");
    std::fs::write(
        &scenario,
        "name = \"short\"\ntimeout = \"25s\"\n[[steps]]\nexpect = \"login:\"\n",
    )
    .unwrap();
    let result = run(&image, &[OsStr::new("--no-adapt")], &[&scenario], dir.path());
    assert_eq!(result.code(), Some(1), "{}", result.explain());
    assert!(
        result.stdout.contains("adaptation for QEMU: off (--no-adapt)"),
        "{}",
        result.explain()
    );
    assert!(
        result.stdout.contains("reason: console silent for"),
        "{}",
        result.explain()
    );
    assert!(
        result
            .stdout
            .contains("the kernel was told `console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000`"),
        "{}",
        result.explain()
    );
}

/// `harness run` on a hostile copy of the first-boot fixture: refused before anything boots,
/// exit 2 with the message, no panic and no abort.
fn run_refuses(commands: &[&str], said: &str) {
    let dir = temp_dir();
    let image = r2s_tests::hostile::copy_of("r2s-first-boot", dir.path());
    r2s_tests::hostile::debugfs(&image, 1, commands);
    let result = run(&image, &[], &[&scenario("boot-to-login")], dir.path());
    assert_eq!(result.code(), Some(2), "{}", result.explain());
    assert!(
        result.stderr.contains(said),
        "missing {said:?}\n{}",
        result.explain()
    );
    assert!(!result.stderr.contains("panicked"), "{}", result.explain());
    assert!(result.elapsed < Duration::from_secs(30), "{}", result.explain());
}

#[test]
fn a_3_gib_extlinux_conf_is_exit_2_before_booting() {
    run_refuses(
        &["sif /extlinux/extlinux.conf size 3221225472"],
        "partition 1: /extlinux/extlinux.conf is 3221225472 bytes, more than the 1048576 bytes an extlinux.conf \
         may have",
    );
}

#[test]
fn a_kernel_inode_of_1_tib_is_exit_2_before_booting() {
    run_refuses(
        &["sif /Image size 1099511627776"],
        "partition 1: /Image is 1099511627776 bytes, more than the 1073741824 bytes a kernel or initrd may have",
    );
}

#[test]
fn a_directory_flagged_as_hashed_is_exit_2_before_booting() {
    run_refuses(
        &["sif /extlinux flags 0x81000"],
        "partition 1: cannot read /extlinux/extlinux.conf: the ext4 reader failed on inconsistent data",
    );
}

#[test]
fn invalid_utf_8_in_extlinux_conf_is_exit_2_naming_line_and_column() {
    let dir = temp_dir();
    let image = r2s_tests::hostile::copy_of("r2s-first-boot", dir.path());
    let conf = dir.path().join("extlinux.conf");
    std::fs::write(
        &conf,
        b"DEFAULT NixOS\nLABEL NixOS\n  MENU LABEL Caf\xe9\n  LINUX /Image\n",
    )
    .unwrap();
    let write = format!("write {} /extlinux/extlinux.conf", conf.display());
    r2s_tests::hostile::debugfs(&image, 1, &["rm /extlinux/extlinux.conf", &write]);
    let result = run(&image, &[], &[&scenario("boot-to-login")], dir.path());
    assert_eq!(result.code(), Some(2), "{}", result.explain());
    assert!(
        result.stderr.contains(
            "partition 1: /extlinux/extlinux.conf: line 3, column 17 (byte 42): not UTF-8 (byte 0xe9)"
        ),
        "{}",
        result.explain()
    );
}

#[test]
fn a_fat_boot_partition_is_adapted_as_ext4_is_and_boots_to_login_unchanged() {
    let dir = temp_dir();
    let image = r2s_tests::vfat::first_boot_with_vfat_boot(dir.path());
    let before = sha256(&image);
    let result = run(
        &image,
        &[],
        &[&scenario("boot-to-login"), &scenario("login-and-run")],
        &dir.path().join("run"),
    );
    assert_eq!(result.code(), Some(0), "{}", result.explain());
    for said in [
        "adapted for QEMU",
        "extlinux.conf from partition 1:/extlinux/extlinux.conf",
        "NixOS: APPEND console=ttyS2,1500000 -> console=ttyAMA0,115200",
        "2 passed, 0 failed",
    ] {
        assert!(
            result.stdout.contains(said),
            "missing {said:?}\n{}",
            result.explain()
        );
    }
    assert_eq!(sha256(&image), before, "the image was written");
}
