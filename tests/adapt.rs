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
        "--no-adapt",
        "2 passed, 0 failed",
    ] {
        assert!(
            result.stdout.contains(said),
            "missing {said:?}\n{}",
            result.explain()
        );
    }
    // The kernel really was the image's, and it was given the adapted console.
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    assert!(
        log.contains("append: console=ttyAMA0,115200 earlycon=pl011,0x9000000 root=LABEL=NIXOS_SD"),
        "{log}"
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
    assert!(log.contains("NixOS - Configuration 2 (2025-07-01 - 25.05.20250701.1a2b3c4)"), "{log}");
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
