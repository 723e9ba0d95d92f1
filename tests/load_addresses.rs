//! Kernels that outgrow the load addresses, on real QEMU, U-Boot and Debian's arm64 kernel: the
//! `r2s-large-kernel` fixture's header asks for 66 MiB and its file is 61 MiB, more than the
//! 60 MiB QEMU's U-Boot (`qemu_arm64`) leaves between `kernel_addr_r` and `ramdisk_addr_r`; its
//! own u-boot.itb loads the initrd at 0x08000000. `broken-large-kernel-stock-uboot` is the same
//! kernel with the stock RK3328 u-boot.itb, whose initrd lies 62 MiB above the kernel.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::*;
use serde_json::Value;

const BOOT_LIMIT: Duration = Duration::from_secs(240);
const INSPECT_LIMIT: Duration = Duration::from_secs(60);

/// What U-Boot says when the kernel reaches the initrd, with the kernel's span at QEMU's
/// `kernel_addr_r`.
const OVERLAP: &str = "ERROR: RD image overlaps OS image (OS=0x40400000..0x44600000)";

fn boot_to_login(fixture_name: &str, dir: &Path, options: &[&str]) -> Finished {
    let image = fixture(fixture_name);
    run_scenario_file_with(&image, &scenario("boot-to-login"), dir, BOOT_LIMIT, options)
}

/// The run failed on U-Boot's overlap line within 2 s of it reaching the console (on the
/// transcript's clock), instead of waiting out the step.
fn assert_failed_at_once_on_the_overlap(run: &Finished, dir: &Path) {
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout
            .contains("reason: fatal pattern \"image overlaps OS image\""),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains(OVERLAP), "{}", run.explain());
    let log = dir.join("boot-to-login.log");
    let seen = log_time_of(&log, OVERLAP).unwrap_or_else(|| panic!("no overlap in {}", log.display()));
    let failed = log_time_of(&log, "-- FAIL").unwrap_or_else(|| panic!("no FAIL note in {}", log.display()));
    assert!(
        failed - seen < 2.0,
        "failed {:.2}s after the overlap\n{}",
        failed - seen,
        run.explain()
    );
}

#[test]
fn a_kernel_past_qemu_s_gap_boots_to_login_with_the_initrd_moved_up() {
    let dir = temp_dir();
    let run = boot_to_login("r2s-large-kernel", dir.path(), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    let moved = "load addresses moved for QEMU (the image is not modified; turn off with --no-adapt): \
                 ramdisk_addr_r 0x44000000 → 0x44600000, in a copy of ";
    assert!(run.stdout.contains(moved), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "nixos-default: the kernel needs 66.0 MiB (header image_size) from 0x40400000, the firmware's \
             ramdisk_addr_r 0x44000000 leaves 60.0 MiB"
        ),
        "{}",
        run.explain()
    );
    // The transcript says so too, before U-Boot's first line.
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    let noted = log_time_of(&dir.path().join("boot-to-login.log"), moved);
    assert_eq!(noted, Some(0.0), "{log}");
    // The moved initrd is where U-Boot loaded it: the kernel found it and ran stage 1.
    assert!(log.contains("<<< NixOS Stage 1 >>>"), "{log}");
    // And the HTML report's setup and notes.
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        report.contains("load addresses moved for QEMU"),
        "report.html does not say so"
    );
}

#[test]
fn under_no_adapt_a_kernel_past_qemu_s_gap_fails_at_once_naming_the_overlap() {
    let dir = temp_dir();
    let run = boot_to_login("r2s-large-kernel", dir.path(), &["--no-adapt"]);
    assert!(
        run.stdout.contains(
            "load addresses not moved (--no-adapt): nixos-default: the kernel needs 66.0 MiB (header image_size) \
             from 0x40400000"
        ),
        "{}",
        run.explain()
    );
    assert_failed_at_once_on_the_overlap(&run, dir.path());
}

#[test]
fn a_kernel_the_image_s_own_u_boot_would_refuse_is_not_moved_for_and_fails_at_once() {
    let dir = temp_dir();
    let run = boot_to_login("broken-large-kernel-stock-uboot", dir.path(), &[]);
    let refused =
        "load addresses not moved: the image's own U-Boot would not boot it either: kernel-size (LABEL \
                   nixos-default): needs 66.0 MiB (header image_size) from 0x02200000";
    assert!(run.stdout.contains(refused), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    assert!(log.contains(refused), "{log}");
    assert_failed_at_once_on_the_overlap(&run, dir.path());
}

/// The JSON report of `harness inspect IMAGE [extra]`, with its exit code checked.
fn inspect(image: &Path, extra: &[&str], code: i32) -> Value {
    let mut args = vec![
        OsStr::new("inspect"),
        image.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let run = run_harness(&args, INSPECT_LIMIT);
    assert_eq!(run.code(), Some(code), "{}", run.explain());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.explain()))
}

/// The default entry's kernel-size check: its status and what it found.
fn kernel_size(report: &Value) -> (String, String) {
    let check = report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .find(|c| c["check"] == "kernel-size" && c["label"] == "nixos-default")
        .unwrap_or_else(|| panic!("no kernel-size check: {report:#}"));
    (
        check["status"].as_str().unwrap().to_owned(),
        check["found"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn inspect_passes_the_large_kernel_with_the_u_boot_that_leaves_it_room() {
    // Exit 1 for the QEMU console the fixture carries (console=ttyAMA0), not for the kernel.
    let report = inspect(&fixture("r2s-large-kernel"), &[], 1);
    assert_eq!(
        kernel_size(&report),
        (
            "pass".to_owned(),
            "needs 66.0 MiB (header image_size) from 0x02200000 (booti moves it there from kernel_addr_r \
             0x02080000); the initrd loads at ramdisk_addr_r 0x08000000, 94.0 MiB above; load addresses from \
             the default environment of the image's u-boot.itb (sector 16384)"
                .to_owned()
        )
    );
}

#[test]
fn inspect_flags_the_large_kernel_for_the_stock_r2s_u_boot() {
    let report = inspect(&fixture("broken-large-kernel-stock-uboot"), &[], 1);
    let (status, found) = kernel_size(&report);
    assert_eq!(status, "fail");
    assert!(
        found.starts_with(
            "needs 66.0 MiB (header image_size) from 0x02200000 (booti moves it there from kernel_addr_r \
             0x02080000); the initrd loads at ramdisk_addr_r 0x06000000, 62.0 MiB above; load addresses from \
             the default environment of the image's u-boot.itb (sector 16384): the kernel (0x02080000–0x06400000) \
             overlaps the initrd (0x06000000–"
        ),
        "{found}"
    );
}

#[test]
fn the_u_boot_on_the_card_outranks_the_board_profile() {
    let dir = temp_dir();
    let profile = dir.path().join("bench.toml");
    std::fs::write(
        &profile,
        "name = \"bench\"\nbaud = 1500000\nconsole = \"ttyS2\"\n[load_addresses]\nramdisk_addr_r = 0x10000000\n",
    )
    .unwrap();
    let report = inspect(
        &fixture("broken-large-kernel-stock-uboot"),
        &["--board", profile.to_str().unwrap()],
        1,
    );
    let (status, found) = kernel_size(&report);
    assert_eq!(status, "fail", "{found}");
    assert!(
        found.contains("ramdisk_addr_r 0x06000000, 62.0 MiB above"),
        "{found}"
    );
}

#[test]
fn without_a_u_boot_itb_the_board_profile_s_addresses_count() {
    let dir = temp_dir();
    let profile = dir.path().join("bench.toml");
    // 30 MiB above where booti runs the kernel: less than Debian's kernel needs.
    std::fs::write(
        &profile,
        "name = \"bench\"\nbaud = 1500000\nconsole = \"ttyS2\"\n[load_addresses]\nramdisk_addr_r = \"0x04000000\"\n",
    )
    .unwrap();
    let image = fixture("broken-inspect-u-boot-itb");
    let (status, found) = kernel_size(&inspect(&image, &["--board", profile.to_str().unwrap()], 1));
    assert_eq!(status, "fail", "{found}");
    assert!(
        found.contains(
            "the initrd loads at ramdisk_addr_r 0x04000000, 30.0 MiB above; kernel_addr_r from the stock nanopi-r2s \
             U-Boot, ramdisk_addr_r from board profile bench's [load_addresses], fdt_addr_r from the stock \
             nanopi-r2s U-Boot: the kernel"
        ),
        "{found}"
    );
    // Without the profile, the stock numbers leave the kernel its room.
    let (status, found) = kernel_size(&inspect(&image, &[], 1));
    assert_eq!(status, "pass", "{found}");
}
