//! End-to-end: the systemd fixtures (Debian bookworm's systemd, udev, agetty, login/PAM and bash,
//! booted by Debian's initramfs-tools initrd) under the harness, in real QEMU through real U-Boot.
//!
//! The first run on a machine builds the fixtures (debootstrap and its second stage under
//! emulation: minutes); later runs take them from the shared cache. nextest gives this binary a
//! long slow-timeout for that (`.config/nextest.toml`).

use std::time::Duration;

use r2s_tests::*;

/// Building the fixtures from nothing (26 minutes on a two-core machine at load 10 to 13, about
/// half that on an idle one; BENCHMARKS.md) plus a boot of two to three minutes under TCG.
const LIMIT: Duration = Duration::from_secs(45 * 60);

/// Runs scenario `name`, whose steps are `body`, on fixture `fixture_name` with `options` added
/// to `harness run`, asserts that it passed, and returns the directory holding its transcripts.
fn assert_passes_with(fixture_name: &str, options: &[&str], name: &str, body: &str) -> tempfile::TempDir {
    let image = fixture(fixture_name);
    let dir = temp_dir();
    let scenario = dir.path().join(format!("{name}.toml"));
    std::fs::write(&scenario, format!("name = \"{name}\"\n{body}")).unwrap();
    let run = run_scenario_file_with(&image, &scenario, dir.path(), LIMIT, options);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!("PASS  {name}  ")),
        "{}",
        run.explain()
    );
    dir
}

/// [`assert_passes_with`] on the harness's own choices.
fn assert_passes(fixture_name: &str, name: &str, body: &str) -> tempfile::TempDir {
    assert_passes_with(fixture_name, &[], name, body)
}

/// Logs in as root and runs commands that only a booted systemd answers so: the hostname, PID 1
/// and `systemctl is-system-running` (`running`: every unit started, none failed).
const LOGIN_AND_RUN: &str = r#"timeout = "10m"
[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "8m"
[[steps]]
run = "cat /etc/hostname"
output = "\\Aivy\\z"
timeout = "1m"
[[steps]]
run = "readlink /proc/1/exe"
output = "\\A/usr/lib/systemd/systemd\\z"
timeout = "1m"
[[steps]]
run = "systemctl is-system-running --wait"
output = "\\Arunning\\z"
timeout = "3m"
"#;

#[test]
fn debian_systemd_boots_through_systemd_to_the_login_prompt() {
    let dir = assert_passes(
        "debian-systemd",
        "systemd-to-login",
        r#"timeout = "10m"
[[steps]]
expect = "U-Boot 20"
stage = "uboot"
timeout = "2m"
[[steps]]
expect = "Starting kernel ..."
timeout = "2m"
[[steps]]
expect = "Welcome to Debian GNU/Linux 12 (bookworm)!"
stage = "kernel"
timeout = "5m"
[[steps]]
expect = "ivy login:"
stage = "systemd"
timeout = "5m"
"#,
    );
    let log = std::fs::read_to_string(dir.path().join("systemd-to-login.log")).unwrap();
    // The console's line, not the transcript's note of the step that waits for it.
    let login = log
        .lines()
        .find_map(|l| {
            let (time, text) = l.strip_prefix('[')?.split_once("] ")?;
            text.starts_with("ivy login:").then(|| time.trim().to_owned())
        })
        .expect("login prompt in the transcript");
    eprintln!("debian-systemd: `ivy login:` {login} s after power-on");
}

#[test]
fn debian_systemd_logs_in_as_root_and_runs_commands() {
    let dir = assert_passes("debian-systemd", "systemd-login", LOGIN_AND_RUN);
    let log = std::fs::read_to_string(dir.path().join("systemd-login.log")).unwrap();
    assert!(
        !log.contains(r2s_images::ROOT_PASSWORD),
        "the password reached the transcript"
    );
}

#[test]
fn board_initrd_variant_finds_no_root_disk_on_virtio_blk() {
    // Debian's kernel has virtio as modules only and this initrd holds none, so with the image
    // forced onto virtio-blk initramfs-tools waits for NIXOS_SD (180 s) and drops to its shell.
    assert_passes_with(
        "debian-systemd-board-initrd",
        &["--disk-bus", "virtio"],
        "board-initrd",
        r#"timeout = "10m"
[[steps]]
expect = "Starting kernel ..."
timeout = "3m"
[[steps]]
expect = "Gave up waiting for root file system device."
timeout = "6m"
[[steps]]
expect = "ALERT!  LABEL=NIXOS_SD does not exist.  Dropping to a shell!"
timeout = "1m"
"#,
    );
}

#[test]
fn board_initrd_variant_boots_from_usb_storage_and_runs_commands() {
    // usb_storage, sd_mod and xhci_pci are the board initrd's only drivers QEMU can reach: the
    // harness chooses usb-storage by itself, and the root mounted is a SCSI disk, the image
    // behind usb-storage.
    let root_on_usb = r#"[[steps]]
run = "findmnt -n -o SOURCE /"
output = "\\A/dev/sda2\\z"
timeout = "1m"
"#;
    let dir = assert_passes(
        "debian-systemd-board-initrd",
        "board-usb-login",
        &format!("{LOGIN_AND_RUN}{root_on_usb}"),
    );
    let log = std::fs::read_to_string(dir.path().join("board-usb-login.log")).unwrap();
    assert!(
        log.contains(
            "-- root disk on usb-storage on qemu-xhci (PCIe): the first bus the image's kernel and initrd can drive"
        ),
        "{log}"
    );
}

/// `harness run --health-only` on the systemd fixture: the health check written from the image
/// reads the units its system enables and judges each, one step apiece.
fn health_only(image: &std::path::Path, dir: &std::path::Path) -> Finished {
    run_harness(
        &[
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new("--image"),
            image.as_os_str(),
            std::ffi::OsStr::new("--transcripts"),
            dir.as_os_str(),
            std::ffi::OsStr::new("--health-only"),
        ],
        LIMIT,
    )
}

#[test]
fn the_health_check_judges_every_unit_the_systemd_image_enables_and_passes_it() {
    let image = fixture("debian-systemd");
    let dir = temp_dir();
    let run = health_only(&image, dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  health  "), "{}", run.explain());
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.explain());
    let written = std::fs::read_to_string(dir.path().join("health.toml")).unwrap();
    for step in [
        "system_running = true",
        "unit_healthy = \"ssh.service\"",
        "unit_healthy = \"fstrim.timer\"",
    ] {
        assert!(written.contains(step), "{written}");
    }
    let log = std::fs::read_to_string(dir.path().join("health.log")).unwrap();
    // The step the written file numbers so: steps are counted from 1 in the file's order.
    let at = written.find("unit_healthy = \"ssh.service\"").unwrap();
    let step = written[..at].matches("[[steps]]").count();
    assert!(
        log.contains(&format!("-- step {step}: unit_healthy ssh.service")),
        "{log}"
    );
    // getty.target's and sysinit.target's units are judged too.
    for unit in ["getty@tty1.service", "systemd-pstore.service"] {
        assert!(
            written.contains(&format!("unit_healthy = \"{unit}\"")),
            "{written}"
        );
    }
}

#[test]
fn the_health_check_follows_a_getty_that_logs_root_in_and_needs_no_password() {
    let dir = temp_dir();
    // A copy of the fixture whose serial getty logs root in by itself, as NixOS's
    // `services.getty.autologinUser = "root"` makes it: a drop-in replacing agetty's command.
    let image = hostile::copy_of("debian-systemd", dir.path());
    let drop_in = dir.path().join("autologin.conf");
    std::fs::write(
        &drop_in,
        "[Service]\nExecStart=\nExecStart=-/sbin/agetty '--autologin' 'root' --keep-baud 115200,57600,38400,9600 - $TERM\n",
    )
    .unwrap();
    hostile::debugfs(
        &image,
        2,
        &[
            "mkdir /etc/systemd/system/serial-getty@.service.d",
            &format!(
                "write {} /etc/systemd/system/serial-getty@.service.d/autologin.conf",
                drop_in.display()
            ),
        ],
    );
    let transcripts = dir.path().join("transcripts");
    let (child, command) = spawn_harness_env_without(
        &[
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new("--image"),
            image.as_os_str(),
            std::ffi::OsStr::new("--transcripts"),
            transcripts.as_os_str(),
            std::ffi::OsStr::new("--health-only"),
        ],
        &[],
        // No password anywhere: the automatic login needs none.
        &["R2S_PASSWORD"],
    );
    let run = finish(child, command, std::time::Instant::now(), LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  health  "), "{}", run.explain());
    let written = std::fs::read_to_string(transcripts.join("health.toml")).unwrap();
    assert!(written.contains("login = { user = \"root\" }"), "{written}");
    let log = std::fs::read_to_string(transcripts.join("health.log")).unwrap();
    // agetty's own line, then the harness following it without a user name or password typed.
    assert!(log.contains("root (automatic login)"), "{log}");
    assert!(
        log.contains("the console's getty logged root in by itself (agetty --autologin)"),
        "{log}"
    );
    assert!(!log.contains("Password:"), "{log}");
    assert!(!log.contains(">> root\\r"), "{log}");
}

#[test]
fn the_health_check_fails_a_systemd_image_with_a_failing_unit_naming_it() {
    let dir = temp_dir();
    // A copy of the fixture with one more enabled unit, which fails at every boot.
    let image = hostile::copy_of("debian-systemd", dir.path());
    let unit = dir.path().join("r2s-broken.service");
    std::fs::write(
        &unit,
        "[Unit]\nDescription=A unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n\
         [Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    hostile::debugfs(
        &image,
        2,
        &[
            &format!("write {} /etc/systemd/system/r2s-broken.service", unit.display()),
            "symlink /etc/systemd/system/multi-user.target.wants/r2s-broken.service /etc/systemd/system/r2s-broken.service",
        ],
    );
    let transcripts = dir.path().join("transcripts");
    let run = health_only(&image, &transcripts);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("FAIL  health  "), "{}", run.explain());
    assert!(run.stdout.contains("step 2: system_running"), "{}", run.explain());
    assert!(
        run.stdout
            .contains("the system is degraded: 1 failed unit: r2s-broken.service"),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("systemctl status r2s-broken.service:"),
        "{}",
        run.explain()
    );
}

/// The default run (`harness run --image` and nothing else) on the healthy systemd fixture:
/// the health check and every shipped scenario that applies pass, and the two that check
/// `/run/booted-system` after choosing an older generation are skipped: the fixture's systems
/// are Debian's systemd behind store-shaped links, not NixOS systems, and nothing records them.
#[test]
fn the_default_run_passes_the_systemd_fixture_and_skips_what_needs_a_nixos_system() {
    let dir = temp_dir();
    let run = run_default(&fixture("debian-systemd"), dir.path(), LIMIT);
    assert_default_run_passes_a_non_nixos_system(&run);
}

/// The health check connects to every TCP socket the image's socket units declare
/// (`ListenStream=`), on the system itself: on a copy of the fixture with two enabled socket
/// units, `r2s-echo.socket`, whose per-connection service keeps the connection open, answers;
/// `r2s-gone.socket`, whose service ends at once (successfully: the system stays `running` and
/// the socket active, so only connecting finds it), fails the check, which names the unit.
#[test]
fn the_health_check_connects_to_each_declared_socket_and_names_the_one_that_does_not_answer() {
    let dir = temp_dir();
    let image = hostile::copy_of("debian-systemd", dir.path());
    let files = [
        (
            "r2s-echo.socket",
            "[Socket]\nListenStream=7777\nAccept=yes\n[Install]\nWantedBy=sockets.target\n",
        ),
        (
            "r2s-echo@.service",
            "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n",
        ),
        (
            "r2s-gone.socket",
            "[Socket]\nListenStream=0.0.0.0:7778\nAccept=yes\n[Install]\nWantedBy=sockets.target\n",
        ),
        (
            "r2s-gone@.service",
            "[Service]\nExecStart=/bin/true\nStandardInput=socket\n",
        ),
    ];
    let mut commands = Vec::new();
    for (name, text) in files {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        commands.push(format!("write {} /etc/systemd/system/{name}", file.display()));
        if name.ends_with(".socket") {
            commands.push(format!(
                "symlink /etc/systemd/system/sockets.target.wants/{name} /etc/systemd/system/{name}"
            ));
        }
    }
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    hostile::debugfs(&image, 2, &commands);
    let transcripts = dir.path().join("transcripts");
    let run = health_only(&image, &transcripts);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("FAIL  health  "), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "r2s-gone.socket declares ListenStream=0.0.0.0:7778, and 127.0.0.1 port 7778 closed the connection at once"
        ),
        "{}",
        run.explain()
    );
    let log = std::fs::read_to_string(transcripts.join("health.log")).unwrap();
    assert!(
        log.contains("] r2s-echo.socket declares ListenStream=7777: 127.0.0.1 port 7777 answered"),
        "{log}"
    );
}

/// A mount from `/etc/fstab` that fails (`[FAILED] Failed to mount …`) is a failed unit: on a
/// copy of the fixture whose fstab mounts its ext4 boot partition as vfat (`nofail`, so the
/// boot goes on), `boot-to-login` passes and its result lists the mount among the failed units.
#[test]
fn a_mount_that_fails_at_boot_is_listed_as_a_failed_unit() {
    let dir = temp_dir();
    let image = hostile::copy_of("debian-systemd", dir.path());
    let fstab = String::from_utf8(hostile::debugfs_cat(&image, 2, "/etc/fstab")).unwrap();
    let edited = dir.path().join("fstab");
    std::fs::write(
        &edited,
        format!("{fstab}/dev/disk/by-label/NIXOS_BOOT /mnt/wrongtype vfat nofail 0 0\n"),
    )
    .unwrap();
    hostile::debugfs(
        &image,
        2,
        &["rm /etc/fstab", &format!("write {} /etc/fstab", edited.display())],
    );
    let transcripts = dir.path().join("transcripts");
    std::fs::create_dir(&transcripts).unwrap();
    let run = run_scenario_file(&image, &scenario("boot-to-login"), &transcripts, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout
            .contains("  failed units (1):\n    [FAILED] mnt-wrongtype.mount - /mnt/wrongtype\n"),
        "{}",
        run.explain()
    );
}
