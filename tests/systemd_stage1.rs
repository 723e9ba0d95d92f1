//! End-to-end: systemd stage 1, as NixOS 26.05 boots by default: the `debian-systemd-stage1`
//! fixture (systemd in the initrd, its root from the initrd's fstab) under the harness in real
//! QEMU through real U-Boot, its variant whose root label is missing, and `inspect`'s reading of
//! the root device from the initrd, from `root=fstab`, and from nothing.
//!
//! The first run on a machine builds the systemd fixtures' tree (minutes); later runs take it,
//! and the dracut initrd, from the shared cache.

use std::time::Duration;

use serde_json::Value;

use r2s_tests::hostile::{copy_of, debugfs};
use r2s_tests::*;

/// Building the tree from nothing (BENCHMARKS.md) plus a boot of one and a half to three
/// minutes under TCG.
const LIMIT: Duration = Duration::from_secs(45 * 60);

/// A systemd stage 1's stages: systemd's greeting in the initrd opens `initramfs`, the real
/// system's `systemd`.
const STAGES: &str = "uboot menu kernel initramfs systemd getty login body";

/// The stage names of the result line `PASS  <name>  94.5s  (uboot 0.4s, menu 0.2s, …)`.
fn stages_of(stdout: &str, name: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("PASS  {name}  ")))
        .unwrap_or_else(|| panic!("no PASS line for {name}:\n{stdout}"));
    let list = line
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no stage list in {line:?}"));
    list.split(", ")
        .map(|stage| stage.split(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_systemd_initrd_boots_to_login_with_its_root_from_its_fstab_and_each_stage_timed() {
    let dir = temp_dir();
    // An array of inline tables is the same scenario as `[[steps]]` tables.
    let scenario = dir.path().join("stage1-login.toml");
    let steps = r#"name = "stage1-login"
timeout = "12m"
steps = [
  { login = { user = "root", password_env = "R2S_PASSWORD" }, timeout = "10m" },
  { run = "findmnt -n -o LABEL /", output = '\ANIXOS_SD\z', timeout = "1m" },
  { run = "grep -q root= /proc/cmdline; echo $?", output = '\A1\z', timeout = "1m" },
  { run = "systemctl is-system-running --wait", output = '\Arunning\z', timeout = "3m" },
]
"#;
    std::fs::write(&scenario, steps).unwrap();
    let image = fixture("debian-systemd-stage1");
    let run = run_scenario_file_with(&image, &scenario, dir.path(), LIMIT, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(
        stages_of(&run.stdout, "stage1-login"),
        STAGES.split(' ').collect::<Vec<_>>(),
        "{}",
        run.explain()
    );
    let log = std::fs::read_to_string(dir.path().join("stage1-login.log")).unwrap();
    let initrd_welcome = log_time_of(
        &dir.path().join("stage1-login.log"),
        "] Welcome to Debian GNU/Linux 12 (bookworm) (Initrd)!",
    )
    .unwrap_or_else(|| panic!("no greeting of the initrd:\n{log}"));
    let switched = log_time_of(
        &dir.path().join("stage1-login.log"),
        "] Welcome to Debian GNU/Linux 12 (bookworm)!",
    )
    .unwrap_or_else(|| panic!("no greeting of the real system:\n{log}"));
    assert!(initrd_welcome < switched, "{log}");
    assert!(log.contains("Reached target initrd-switch-root.target"), "{log}");
    eprintln!("debian-systemd-stage1: initrd at {initrd_welcome} s, switch-root done at {switched} s");
}

#[test]
fn a_root_label_missing_from_the_image_fails_at_once_naming_the_label_and_the_disk() {
    let image = fixture("broken-systemd-stage1-root");
    let dir = temp_dir();
    let run = run_scenario_file_with(&image, &scenario("boot-to-login"), dir.path(), LIMIT, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let warning = "harness: warning: stage 1 waits for /dev/disk/by-label/NIXOS_SD (named by the initrd's fstab \
                   (systemd stage 1)), and no filesystem of the image is it (the image's filesystems: 1 \
                   \"NIXOS_BOOT\", 2 \"nixos\"): label the root filesystem NIXOS_SD (`e2label /dev/sdX2 NIXOS_SD`), \
                   or name its label in fileSystems.\"/\".device";
    assert!(run.stderr.lines().any(|l| l == warning), "{}", run.explain());
    let hint = run.report_field("hint");
    assert!(
        hint.starts_with(
            "waiting is pointless: stage 1 would give up on its root device only after its timeout (systemd in \
             an initrd: 90 s, then emergency mode); stage 1 waits for /dev/disk/by-label/NIXOS_SD (named by the \
             initrd's fstab (systemd stage 1)), and no filesystem of the image is it"
        ) && hint.contains("; the root disk was on virtio-blk (virtio-mmio)"),
        "{hint}"
    );
    // At systemd's first word of the wait, in the initrd, long before its 90 s device timeout.
    let at = run.report_field("at");
    assert!(at.ends_with("s (stage initramfs)"), "{at}");
    let seconds: f64 = at.split('s').next().unwrap().parse().unwrap();
    assert!(
        seconds < 60.0,
        "failed {seconds} s after power-on\n{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("Expecting device dev-disk-")
            && !run.stdout.contains("Timed out waiting for device"),
        "{}",
        run.explain()
    );
}

/// The JSON report of `harness inspect` on `image`, which exits with `code`.
fn inspect_json(image: &std::path::Path, code: i32) -> Value {
    let run = run_harness(
        &[
            std::ffi::OsStr::new("inspect"),
            image.as_os_str(),
            std::ffi::OsStr::new("--format"),
            std::ffi::OsStr::new("json"),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(code), "{}", run.explain());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.explain()))
}

/// The check `name` (of boot entry `label`, or image-wide) of a JSON report: status and finding.
fn check<'a>(report: &'a Value, name: &str, label: Option<&str>) -> (&'a str, &'a str) {
    let found = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name && c["label"].as_str() == label)
        .unwrap_or_else(|| panic!("no {name} check for {label:?}: {report:#}"));
    (
        found["status"].as_str().unwrap(),
        found["found"].as_str().unwrap(),
    )
}

const FROM_INITRD_FSTAB: &str = "/dev/disk/by-label/NIXOS_SD (from the initrd's fstab (systemd stage 1))";

#[test]
fn inspect_reads_the_root_of_a_systemd_stage_1_from_the_initrd_s_fstab() {
    let report = inspect_json(&fixture("debian-systemd-stage1"), 0);
    let (status, found) = check(&report, "root", Some("nixos-default"));
    assert_eq!(status, "pass");
    assert!(
        found.starts_with(&format!(
            "no root=: stage 1 mounts {FROM_INITRD_FSTAB} is partition 2 (ext4 labelled \"NIXOS_SD\""
        )),
        "{found}"
    );
    let broken = inspect_json(&fixture("broken-systemd-stage1-root"), 1);
    assert_eq!(
        check(&broken, "root-label", None),
        (
            "fail",
            "no filesystem is labelled NIXOS_SD (labels: 1 \"NIXOS_BOOT\", 2 \"nixos\")"
        )
    );
    let (status, found) = check(&broken, "root", Some("nixos-default"));
    assert_eq!(status, "fail");
    assert!(
        found.starts_with(&format!(
            "no root=: stage 1 mounts {FROM_INITRD_FSTAB} names no partition of the image"
        )),
        "{found}"
    );
}

/// A copy of fixture `name` in `dir` whose first APPEND (on NIXOS_BOOT, partition 1) starts with
/// `root=fstab`.
fn with_root_fstab(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let image = copy_of(name, dir);
    let table = r2s_harness::image::Table::read(&image).unwrap();
    let offset = table.partition(1).unwrap().offset();
    let out = std::process::Command::new("debugfs")
        .arg("-R")
        .arg("cat /extlinux/extlinux.conf")
        .arg(format!("{}?offset={offset}", image.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let conf = String::from_utf8(out.stdout).unwrap();
    let edited = conf.replacen("APPEND ", "APPEND root=fstab ", 1);
    assert_ne!(conf, edited, "no APPEND in {conf}");
    let local = dir.join("extlinux.conf");
    std::fs::write(&local, edited).unwrap();
    debugfs(
        &image,
        1,
        &[
            "rm /extlinux/extlinux.conf",
            &format!("write {} /extlinux/extlinux.conf", local.display()),
        ],
    );
    image
}

#[test]
fn inspect_accepts_root_fstab_when_the_initrd_s_fstab_names_the_root_and_warns_when_nothing_does() {
    let dir = temp_dir();
    let systemd = inspect_json(&with_root_fstab("debian-systemd-stage1", dir.path()), 0);
    let (status, found) = check(&systemd, "root", Some("nixos-default"));
    assert_eq!(status, "pass");
    assert!(
        found.starts_with(&format!(
            "root=fstab: stage 1 mounts {FROM_INITRD_FSTAB} is partition 2"
        )),
        "{found}"
    );
    // The busybox fixture's scripted stage 1 has no fstab: root=fstab would mount nothing.
    let scripted = inspect_json(&with_root_fstab("r2s-generations", dir.path()), 0);
    let (status, found) = check(&scripted, "root", Some("nixos-default"));
    assert_eq!(status, "warn");
    assert_eq!(
        found,
        "root=fstab, but the initrd names no root in an fstab (systemd in the initrd then mounts nothing at \
         /sysroot); the root device would be /dev/disk/by-label/NIXOS_SD (from NixOS's default, as nothing on \
         the image names another)"
    );
}

/// The default run on the healthy systemd stage 1 fixture passes as on `debian-systemd`.
#[test]
fn the_default_run_passes_the_systemd_stage1_fixture() {
    let dir = temp_dir();
    let run = run_default(&fixture("debian-systemd-stage1"), dir.path(), LIMIT);
    assert_default_run_passes_a_non_nixos_system(&run);
}
