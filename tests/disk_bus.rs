//! End-to-end: the bus the image's disk is attached on under QEMU, chosen from what its kernel
//! and initrd can drive or forced with `--disk-bus`, in real QEMU through real U-Boot and the
//! fixtures' real Debian kernel and initrds.
//!
//! The busybox fixtures' initrd loads virtio_mmio and virtio_blk and nothing else, and Debian's
//! kernel has no embedded configuration: virtio is the one bus known to work, and on NVMe or
//! usb-storage their stage 1 cannot find its root, which the failure says.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// What the busybox fixtures' kernel and initrd can drive, as runs and hints say it.
const BUSYBOX_DRIVES: &str = "virtio: yes; nvme: unknown (nvme, nvme_core, pci_host_generic not in the \
     initrd); ahci: unknown (ahci, sd_mod, pci_host_generic not in the initrd); usb: unknown \
     (usb_storage, sd_mod, xhci_pci, xhci_hcd, pci_host_generic not in the initrd) [read: 7 module(s) in \
     the initrd]";

/// `harness run --image IMAGE [--disk-bus BUS] SCENARIO` with its transcripts in `dir`; checks
/// that no QEMU of it is left.
fn run_on_bus(image: &Path, bus: Option<&str>, scenario: &Path, dir: &Path, limit: Duration) -> Finished {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
    ];
    if let Some(bus) = bus {
        args.extend([OsStr::new("--disk-bus"), OsStr::new(bus)]);
    }
    args.push(scenario.as_os_str());
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&args, &[("TMPDIR", tmp.as_os_str())]);
    let run = finish(child, command, started, limit);
    assert_no_qemu_left(&tmp, &run);
    run
}

#[test]
fn the_busybox_fixture_boots_on_virtio_chosen_from_its_initrd_and_says_why() {
    let dir = temp_dir();
    let run = run_on_bus(
        &fixture("r2s-busybox"),
        None,
        &scenario("boot-to-login"),
        dir.path(),
        LIMIT,
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let chosen = "root disk on virtio-blk (virtio-mmio): the first bus the image's kernel and initrd can \
                  drive (virtio_blk in the initrd, virtio_mmio in the initrd)";
    assert!(run.stdout.lines().any(|l| l == chosen), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    assert!(
        log.lines().any(|l| l.ends_with(&format!("] -- {chosen}"))),
        "no note in the transcript:\n{log}"
    );
}

/// Forced onto `bus`, which the busybox initrd cannot drive, the boot fails in stage 1 and the
/// failure names the bus and what the initrd can drive.
fn assert_stage_1_fails_naming(bus: &str, shown: &str) {
    let dir = temp_dir();
    let run = run_on_bus(
        &fixture("r2s-busybox"),
        Some(bus),
        &scenario("boot-to-login"),
        dir.path(),
        LIMIT,
    );
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout
            .lines()
            .any(|l| l == format!("root disk on {shown}: --disk-bus {bus}")),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("(stage stage-1)"), "{}", run.explain());
    let hint = format!(
        "  hint: the root disk was on {shown} (--disk-bus {bus}); what the image's kernel and initrd can \
         drive: {BUSYBOX_DRIVES}"
    );
    assert!(run.stdout.lines().any(|l| l == hint), "{}", run.explain());
}

#[test]
fn nvme_forced_on_the_busybox_fixture_fails_in_stage_1_naming_the_bus() {
    assert_stage_1_fails_naming("nvme", "NVMe (PCIe)");
}

#[test]
fn usb_forced_on_the_busybox_fixture_fails_in_stage_1_naming_the_bus() {
    assert_stage_1_fails_naming("usb", "usb-storage on qemu-xhci (PCIe)");
}

#[test]
fn console_takes_disk_bus_and_says_where_the_disk_is() {
    let image = fixture("r2s-busybox");
    let dir = temp_dir();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let args = [
        OsStr::new("console"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--disk-bus"),
        OsStr::new("ahci"),
        OsStr::new("--transcripts"),
        dir.path().as_os_str(),
    ];
    let (child, command) = spawn_harness_env(&args, &[("TMPDIR", tmp.as_os_str())]);
    // stdin is /dev/null: the console ends at once with "end of input".
    let run = finish(child, command, Instant::now(), Duration::from_secs(120));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "root disk on AHCI (SATA on PCIe): --disk-bus ahci"),
        "{}",
        run.explain()
    );
    assert_no_qemu_left(&tmp, &run);
}

#[test]
fn an_unknown_disk_bus_is_a_usage_error() {
    let run = run_harness(
        &[OsStr::new("run"), OsStr::new("--disk-bus"), OsStr::new("scsi")],
        Duration::from_secs(30),
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("invalid value 'scsi' for '--disk-bus <BUS>'"),
        "{}",
        run.explain()
    );
}

// The systemd fixtures: debian-systemd's initrd drives every bus, so it chooses virtio and boots
// on the others when forced; the board-specific variant choosing usb-storage by itself is in
// systemd.rs, which also boots it.

/// Boots `fixture_name` (on `bus`, if given) to `ivy login:` and returns the run's stdout.
fn systemd_to_login(fixture_name: &str, bus: Option<&str>) -> String {
    let dir = temp_dir();
    let scenario = dir.path().join("to-login.toml");
    std::fs::write(
        &scenario,
        "name = \"to-login\"\ntimeout = \"10m\"\n[[steps]]\nexpect = \"Starting kernel ...\"\ntimeout = \"2m\"\n\
         [[steps]]\nexpect = \"ivy login:\"\ntimeout = \"8m\"\n",
    )
    .unwrap();
    let run = run_on_bus(
        &fixture(fixture_name),
        bus,
        &scenario,
        dir.path(),
        Duration::from_secs(45 * 60),
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    run.stdout
}

#[test]
fn debian_systemd_chooses_virtio_from_its_initrd() {
    let stdout = systemd_to_login("debian-systemd", None);
    assert!(
        stdout.contains(
            "root disk on virtio-blk (virtio-mmio): the first bus the image's kernel and initrd can drive"
        ),
        "{stdout}"
    );
}

#[test]
fn debian_systemd_boots_to_login_on_nvme_when_forced() {
    let stdout = systemd_to_login("debian-systemd", Some("nvme"));
    assert!(stdout.contains(": --disk-bus nvme"), "{stdout}");
}
