//! The runner during a boot, as specifications: stages and fatal lines of systemd systems,
//! other initrds and reboot loops, failed units, the silent-kernel diagnosis and U-Boot's
//! countdown, on a scripted board.

use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, DuplexStream};

use super::shell_tests::{run_scripted, ShellRun};
use super::tests::read_line;
use super::*;

/// Runs a power-on scenario with the steps `steps` (TOML, within a 60 s scenario) on a board
/// that prints `script` (each piece written separately) and then stays quiet; returns the run
/// and how long it took.
async fn boot(steps: &str, script: Vec<&'static [u8]>) -> (ShellRun, Duration) {
    let text = format!("name = \"b\"\ntimeout = \"60s\"\n{steps}");
    let started = Instant::now();
    let run = run_scripted(
        ConsoleAt::PowerOn,
        &text,
        move |mut io: DuplexStream, _| async move {
            for piece in script {
                let _ = io.write_all(piece).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        },
    )
    .await;
    (run, started.elapsed())
}

const TO_LOGIN: &str = "[[steps]]\nexpect = \"login:\"\n";

/// [`boot`] to a login prompt on a board that prints U-Boot's lines, starts the kernel, and
/// then prints `script`.
async fn boot_to_login(script: &[&'static [u8]]) -> (ShellRun, Duration) {
    boot(TO_LOGIN, [UBOOT, KERNEL].iter().chain(script).copied().collect()).await
}

const UBOOT: &[u8] = b"\r\nU-Boot 2023.01 (Jan 10 2023 - 12:00:00 +0000)\r\n\r\nDRAM:  1 GiB\r\n\
                       Retrieving file: /extlinux/extlinux.conf\r\n";
const KERNEL: &[u8] =
    b"Starting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]\r\n";

fn stage_names(out: &RunOutput) -> Vec<&str> {
    out.stages.iter().map(|s| s.name.as_str()).collect()
}

/// Asserts that a boot ended within seconds of its fatal line, on `pattern`, with the hint of
/// `diagnosis`, in `stage`.
fn assert_fatal_at_once(
    (run, took): (ShellRun, Duration),
    pattern: &str,
    diagnosis: Diagnosis,
    stage: Stage,
) {
    assert_eq!(
        fatal_of(&run),
        (pattern.to_owned(), Some(diagnosis.hint().to_owned()))
    );
    assert_eq!(run.failure().stage, stage);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// The fatal pattern and hint a run failed with.
fn fatal_of(run: &ShellRun) -> (String, Option<String>) {
    let failure = run.failure();
    match &failure.reason {
        FailReason::Fatal { pattern, .. } => (pattern.clone(), failure.hint.clone()),
        other => panic!("not a fatal line: {other:?}\n{}", run.log),
    }
}

#[tokio::test]
async fn systemds_emergency_mode_fails_within_seconds_saying_what_to_check() {
    let run = boot_to_login(&[
        b"Welcome to \x1b[1;34mNixOS 25.05 (Warbler)\x1b[0m!\r\n",
        b"[\x1b[0;1;31mFAILED\x1b[0m] Failed to mount \x1b[0;1;39mmnt-data.mount\x1b[0m - /mnt/data.\r\n",
        b"You are in emergency mode. After logging in, type \"journalctl -xb\" to view\r\n",
    ])
    .await;
    assert_fatal_at_once(
        run,
        "\"You are in emergency mode\"",
        Diagnosis::EmergencyMode,
        Stage::Systemd,
    );
}

#[tokio::test]
async fn reaching_the_rescue_target_is_fatal_too() {
    let (run, _) = boot_to_login(&[b"[  OK  ] Reached target rescue.target - Rescue Mode.\r\n"]).await;
    assert_eq!(fatal_of(&run).0, "/Reached target .*(Emergency|Rescue) Mode/");
}

#[tokio::test]
async fn uboots_banner_after_the_kernel_started_is_a_reboot_loop() {
    let run = boot_to_login(&[
        b"[    1.200000] Run /init as init process\r\n",
        b"\r\nU-Boot 2023.01 (Jan 10 2023 - 12:00:00 +0000)\r\n",
    ])
    .await;
    assert_fatal_at_once(
        run,
        "/^U-Boot (SPL )?20\\d\\d\\.\\d\\d/",
        Diagnosis::Reset,
        Stage::Kernel,
    );
}

#[tokio::test]
async fn initramfs_tools_giving_up_on_the_root_fails_at_once_with_a_hint() {
    let run = boot_to_login(&[
        b"Loading, please wait...\r\nBegin: Waiting for root file system ... ",
        b"Begin: Running /scripts/local-block ... done.\r\ndone.\r\n",
        b"Gave up waiting for root file system device.  Common problems:\r\n",
        b"ALERT!  LABEL=NIXOS_SD does not exist.  Dropping to a shell!\r\n(initramfs) ",
    ])
    .await;
    assert_fatal_at_once(
        run,
        "\"Gave up waiting for root file system device\"",
        Diagnosis::RootNotFound,
        Stage::Initramfs,
    );
}

#[tokio::test]
async fn a_locked_root_in_systemd_s_emergency_mode_fails_at_once() {
    let run = boot_to_login(&[
        b"Welcome to NixOS 26.05 (Yarara) (Initrd)!\r\n",
        b"[DEPEND] Dependency failed for sysroot.mount - /sysroot.\r\n",
        b"Cannot open access to console, the root account is locked.\r\n",
        b"See sulogin(8) man page for more details.\r\n\r\nPress Enter to continue.\r\n",
    ])
    .await;
    assert_fatal_at_once(
        run,
        "\"Cannot open access to console, the root account is locked\"",
        Diagnosis::EmergencyMode,
        Stage::Initramfs,
    );
}

#[tokio::test]
async fn systemds_initrd_targets_open_initramfs_when_its_greeting_is_lost() {
    let (run, _) = boot_to_login(&[
        b"[  OK  ] Started systemd-ask-passwo\xe2\x80\xa6quests to Console Directory Watch.\r\n",
        b"[  OK  ] Reached target initrd-root\xe2\x80\xa6e.target - Initrd Root Device.\r\n",
        b"[  OK  ] Reached target initrd-switch-root.target - Switch Root.\r\n",
        b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n",
        b"[  OK  ] Stopped target initrd-fs.target - Initrd File Systems.\r\n",
        b"ivy login: ",
    ])
    .await;
    assert_initramfs_then_systemd(&run);
}

#[tokio::test]
async fn dracuts_emergency_shell_is_a_root_not_found() {
    let (run, _) = boot_to_login(&[
        b"dracut-initqueue[312]: Warning: dracut-initqueue: starting timeout scripts\r\n",
        b"Entering emergency mode. Exit the shell to continue.\r\n",
    ])
    .await;
    assert_eq!(fatal_of(&run).1.as_deref(), Some(Diagnosis::RootNotFound.hint()));
}

#[tokio::test]
async fn a_kernel_panic_in_stage_2_fails_at_once() {
    let (run, _) = boot_to_login(&[
        b"<<< NixOS Stage 1 >>>\r\n<<< NixOS Stage 2 >>>\r\n",
        b"[   20.100000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n",
    ])
    .await;
    assert_eq!(fatal_of(&run).0, "\"Kernel panic - not syncing\"");
    assert_eq!(run.failure().stage, Stage::Stage2);
}

#[tokio::test]
async fn a_debian_boot_is_timed_stage_by_stage() {
    let (run, _) = boot_to_login(&[
        b"Loading, please wait...\r\nStarting systemd-udevd version 252.33-1~deb12u1\r\n",
        b"\r\nWelcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r\n\r\n",
        b"[  \x1b[0;32mOK\x1b[0m  ] Started \x1b[0;1;39mserial-getty@ttyS2.service\x1b[0m - Serial Getty on ttyS2.\r\n",
        b"\r\nDebian GNU/Linux 12 ivy ttyS2\r\n\r\nivy login: ",
    ])
    .await;
    run.assert_passed();
    assert_eq!(
        stage_names(&run.out),
        [
            "uboot",
            "menu",
            "kernel",
            "initramfs",
            "systemd",
            "getty",
            "login"
        ]
    );
}

#[tokio::test]
async fn a_nixos_boot_with_systemd_is_timed_stage_by_stage() {
    let (run, _) = boot_to_login(&[
        b"<<< NixOS Stage 1 >>>\r\n",
        b"<<< NixOS Stage 2 >>>\r\n",
        b"Welcome to \x1b[1;34mNixOS 25.05 (Warbler)\x1b[0m!\r\n",
        b"[  OK  ] Started Serial Getty on ttyS2.\r\n",
        b"\r\n<<< Welcome to NixOS 25.05 (aarch64) - ttyS2 >>>\r\n\r\nivy login: ",
    ])
    .await;
    run.assert_passed();
    assert_eq!(
        stage_names(&run.out),
        ["uboot", "menu", "kernel", "stage-1", "stage-2", "systemd", "getty", "login"]
    );
}

/// The boot passed through an initrd's `initramfs` stage to systemd's, without a getty stage.
fn assert_initramfs_then_systemd(run: &ShellRun) {
    run.assert_passed();
    assert_eq!(
        stage_names(&run.out),
        ["uboot", "menu", "kernel", "initramfs", "systemd", "login"]
    );
}

#[tokio::test]
async fn systemds_greeting_in_an_initrd_opens_initramfs_not_systemd() {
    let (run, _) = boot_to_login(&[
        b"Welcome to NixOS 25.05 (Warbler) (Initrd)!\r\n",
        b"[  OK  ] Reached target initrd-switch-root.target.\r\n",
        b"Welcome to NixOS 25.05 (Warbler)!\r\n",
        b"ivy login: ",
    ])
    .await;
    assert_initramfs_then_systemd(&run);
}

#[tokio::test]
async fn failed_units_are_listed_without_failing_the_run() {
    let (run, _) = boot_to_login(&[
        b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n",
        b"[\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39msystemd-networkd",
        b".service\x1b[0m - Network Configuration.\r\nSee 'systemctl status systemd-networkd.service' for details.\r\n",
        b"[FAILED] Failed to start ssh.service - OpenBSD Secure Shell server.\r\n",
        b"ivy login: ",
    ])
    .await;
    run.assert_passed();
    assert_eq!(
        run.out.failed_units,
        [
            "systemd-networkd.service - Network Configuration",
            "ssh.service - OpenBSD Secure Shell server"
        ]
    );
}

#[tokio::test]
async fn a_mount_that_failed_is_listed_with_the_failed_units() {
    let (run, _) = boot_to_login(&[
        b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n",
        b"[\x1b[0;1;31mFAILED\x1b[0m] Failed to mount \x1b[0;1;39mmnt-data.mount\x1b[0m - /mnt/data.\r\n",
        b"ivy login: ",
    ])
    .await;
    run.assert_passed();
    assert_eq!(run.out.failed_units, ["mnt-data.mount - /mnt/data"]);
}

/// systemd stage 1 whose root never appears (NixOS 26.05's default, as systemd 252 prints it
/// in colour): the device's time-out and the units that needed it are listed with the failed
/// units, saying how each failed, and the emergency mode after them ends the run.
#[tokio::test]
async fn a_root_device_that_timed_out_and_what_depended_on_it_are_listed_as_failed_units() {
    let (run, _) = boot_to_login(&[
        b"Welcome to \x1b[1mNixOS 26.05 (Yarara) (Initrd)\x1b[0m!\r\n",
        b"[\x1b[0;1;31m TIME \x1b[0m] Timed out waiting for device \x1b[0;1;39mdev-disk-by\\x2dlabel-NIXOS_SD.device\x1b[0m - /dev/disk/by-label/NIXOS_SD.\r\n",
        b"[\x1b[0;1;38;5;185mDEPEND\x1b[0m] Dependency failed for \x1b[0;1;39msysroot.mount\x1b[0m - /sysroot.\r\n",
        b"[\x1b[0;1;38;5;185mDEPEND\x1b[0m] Dependency failed for \x1b[0;1;39minitrd-root-fs.target\x1b[0m - Initrd Root File System.\r\n",
        b"[  \x1b[0;32mOK\x1b[0m  ] Reached target \x1b[0;1;39memergency.target\x1b[0m - Emergency Mode.\r\n",
    ])
    .await;
    assert_eq!(
        run.out.failed_units,
        [
            "dev-disk-by\\x2dlabel-NIXOS_SD.device - /dev/disk/by-label/NIXOS_SD (timed out waiting for it)",
            "sysroot.mount - /sysroot (a dependency failed)",
            "initrd-root-fs.target - Initrd Root File System (a dependency failed)",
        ]
    );
    assert_eq!(fatal_of(&run).0, "/Reached target .*(Emergency|Rescue) Mode/");
}

/// A scenario waiting for what never comes, failing when its 7 s run out: long enough for the
/// silent-kernel check at a timeout (5 s after "Starting kernel ...") to apply.
const NEVER: &str = "[[steps]]\nexpect = \"never printed\"\ntimeout = \"7s\"\n";

#[tokio::test]
async fn a_boot_printed_in_one_burst_that_then_sits_at_a_shell_is_not_a_silent_kernel() {
    let (run, _) = boot(
        NEVER,
        vec![b"U-Boot 2023.01\r\nStarting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0\r\n\
            [    1.000000] Run /init as init process\r\n~ # " as &[u8]],
    )
    .await;
    assert!(
        matches!(run.failure().reason, FailReason::Timeout { .. }),
        "{:?}",
        run.failure()
    );
}

#[tokio::test]
async fn a_repeating_password_prompt_is_not_a_silent_kernel() {
    let text = "name = \"b\"\ntimeout = \"60s\"\n[[steps]]\nexpect = \"never printed\"\ntimeout = \"7s\"\n";
    let run = run_scripted(ConsoleAt::PowerOn, text, |mut io: DuplexStream, _| async move {
        let _ = io.write_all(UBOOT).await;
        let _ = io.write_all(KERNEL).await;
        loop {
            if io.write_all(b"\r\nPassword: ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    assert!(
        matches!(run.failure().reason, FailReason::Timeout { .. }),
        "{:?}",
        run.failure()
    );
}

#[tokio::test]
async fn a_kernel_that_prints_nothing_is_still_called_silent() {
    let (run, _) = boot(
        NEVER,
        vec![b"U-Boot 2023.01\r\nappend: console=ttyS2,1500000 root=LABEL=NIXOS_SD\r\nStarting kernel ...\r\n\r\n" as &[u8]],
    )
    .await;
    assert_eq!(
        run.failure().reason.to_string(),
        format!(
            "console silent for {} after \"Starting kernel ...\"; the kernel was told `console=ttyS2,1500000`, which \
             this target cannot show (QEMU virt's console is ttyAMA0, earlycon=pl011,0x9000000)",
            match &run.failure().reason {
                FailReason::SilentAfterKernel { since, .. } => secs(*since),
                other => panic!("{other:?}"),
            }
        )
    );
}

#[tokio::test]
async fn interrupt_autoboot_presses_a_key_again_when_the_first_is_lost() {
    let text = "name = \"b\"\ntimeout = \"30s\"\n[[steps]]\ninterrupt_autoboot = true\n\
                [[steps]]\nuboot = \"version\"\noutput = \"U-Boot 20\\\\d\\\\d\"\n";
    let run = run_scripted(ConsoleAt::PowerOn, text, |mut io: DuplexStream, _| async move {
        let _ = io
            .write_all(b"U-Boot 2023.01\r\nHit any key to stop autoboot:  3 ")
            .await;
        // The first key is lost on the way; the second stops the countdown.
        let mut key = [0u8; 1];
        for _ in 0..2 {
            let _ = tokio::io::AsyncReadExt::read_exact(&mut io, &mut key).await;
        }
        let _ = io.write_all(b"\x08\x08\x08 0 \r\n=> ").await;
        loop {
            let line = read_line(&mut io).await;
            let command = String::from_utf8_lossy(&line).trim().to_owned();
            if command.is_empty() && line.is_empty() {
                return;
            }
            let reply = if command == "version" {
                "\r\nU-Boot 2023.01 (Jan 10 2023)\r\n"
            } else {
                "\r\n"
            };
            let _ = io.write_all(format!("{command}{reply}=> ").as_bytes()).await;
        }
    })
    .await;
    run.assert_passed();
    run.assert_noted("no U-Boot prompt after the key; pressing it again until one shows");
}

#[tokio::test]
async fn a_step_that_expects_a_fatal_line_waits_for_it_instead_of_failing() {
    // How a board-specific initrd is shown to find no disk under QEMU: both lines in one read.
    let steps = "[[steps]]\nexpect = \"Gave up waiting for root file system device.\"\n\
                 [[steps]]\nexpect = \"ALERT!  LABEL=NIXOS_SD does not exist.  Dropping to a shell!\"\n";
    let (run, _) = boot(
        steps,
        vec![
            UBOOT,
            KERNEL,
            b"Gave up waiting for root file system device.  Common problems:\r\n\
              ALERT!  LABEL=NIXOS_SD does not exist.  Dropping to a shell!\r\n(initramfs) ",
        ],
    )
    .await;
    run.assert_passed();
}

#[tokio::test]
async fn a_fatal_line_in_the_same_read_as_a_match_still_fails_the_next_step() {
    let steps = "[[steps]]\nexpect = \"Starting kernel ...\"\n[[steps]]\nexpect = \"login:\"\n";
    let (run, took) = boot(
        steps,
        vec![b"U-Boot 2023.01\r\nStarting kernel ...\r\n[    0.5] Kernel panic - not syncing: VFS\r\n"],
    )
    .await;
    assert_eq!(fatal_of(&run).0, "\"Kernel panic - not syncing\"");
    assert_eq!(run.failure().step, 2);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn boot_failure_lines_a_command_prints_at_the_shell_are_not_fatal() {
    let steps = "[[steps]]\nrun = \"journalctl -b\"\n";
    let run = super::shell_tests::on_shell(steps, Default::default(), |_| {
        (
            "U-Boot 2023.01 (Jan 10 2023)\nYou are in emergency mode.\nGave up waiting for root file system device.".to_owned(),
            0,
        )
    })
    .await;
    run.assert_passed();
}

#[tokio::test]
async fn u_boot_back_at_its_prompt_after_the_skipped_autoboot_fails_at_once_naming_its_last_error() {
    let ctx = RunContext {
        countdowns: CountdownPolicy {
            skip: true,
            ..CountdownPolicy::default()
        },
        ..RunContext::default()
    };
    let text = "name = \"b\"\ntimeout = \"60s\"\n[[steps]]\nexpect = \"login:\"\n";
    let started = Instant::now();
    let run = super::shell_tests::run_scripted_in(
        ctx,
        ConsoleAt::PowerOn,
        text,
        |mut io: DuplexStream, _| async move {
            let _ = io
                .write_all(b"U-Boot 2023.01\r\nHit any key to stop autoboot:  2 ")
                .await;
            let mut key = [0u8; 1];
            let _ = tokio::io::AsyncReadExt::read_exact(&mut io, &mut key).await;
            let _ = io.write_all(b"\x08\x08\x08 0 \r\n=> ").await;
            let command = read_line(&mut io).await;
            assert_eq!(String::from_utf8_lossy(&command).trim(), "run bootcmd");
            let _ = io
            .write_all(
                b"run bootcmd\r\nScanning virtio 0:1...\r\nCard did not respond to voltage select! : -110\r\n\
                  No ethernet found.\r\n=> ",
            )
            .await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        },
    )
    .await;
    assert_eq!(
        run.failure().reason.to_string(),
        "U-Boot gave up on the image: it is back at its prompt after running bootcmd (its autoboot), before any \
         kernel started, and no step types at it; its last error: No ethernet found."
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn u_boot_back_at_its_prompt_after_an_autoboot_left_to_run_out_fails_at_once_too() {
    // Countdowns not skipped (`--real-time-boot`, a board whose profile keeps them): nothing is
    // typed, and U-Boot's prompt after its autoboot still means it gave up.
    let ctx = RunContext::default();
    let text = "name = \"b\"\ntimeout = \"60s\"\n[[steps]]\nexpect = \"login:\"\n";
    let started = Instant::now();
    let run = super::shell_tests::run_scripted_in(
        ctx,
        ConsoleAt::PowerOn,
        text,
        |mut io: DuplexStream, _| async move {
            let _ = io
                .write_all(
                    b"U-Boot 2023.01\r\nHit any key to stop autoboot:  1 \x08\x08\x08 0 \r\n\
                      Failed to load '/boot/Image'\r\n=> ",
                )
                .await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        },
    )
    .await;
    assert_eq!(
        run.failure().reason.to_string(),
        "U-Boot gave up on the image: it is back at its prompt after running bootcmd (its autoboot), before any \
         kernel started, and no step types at it; its last error: Failed to load '/boot/Image'"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
