//! The runner on scripted consoles: a fake board on the other end of an in-memory pipe.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::fake_shell::{typed_marker, Heard, ShellConfig};
use super::shell_tests::on_shell;
use super::*;
use crate::scenario;

const PROMPT: &[u8] = b"\r\n[root@ivy:~]# ";

fn login_start_scenario() -> Scenario {
    let text = "name = \"ping\"\ndescription = \"d\"\nstart = \"login\"\ntimeout = \"20s\"\n\
                [[steps]]\nsend_line = \"ping\"\n[[steps]]\nexpect = \"pong\"\n";
    scenario::parse(text, Path::new("ping.toml")).expect("valid scenario")
}

/// A console whose board side is handed to `board`.
fn console_with<F, Fut>(board: F) -> Console
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    crate::targets::test_console::scripted(64 * 1024, board)
}

/// A restored shell: answers an empty line with its prompt and `ping` with `pong`.
async fn restored_shell(mut io: DuplexStream) {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = io.read(&mut byte).await {
        if byte[0] != b'\r' {
            line.push(byte[0]);
            continue;
        }
        let reply: &[u8] = if line == b"ping" { b"\r\npong" } else { b"" };
        let _ = io.write_all(reply).await;
        let _ = io.write_all(PROMPT).await;
        line.clear();
    }
}

/// Bytes typed up to the next Enter.
pub(super) async fn read_line(io: &mut DuplexStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = io.read(&mut byte).await {
        if byte[0] == b'\r' {
            break;
        }
        line.push(byte[0]);
    }
    line
}

async fn run(at: ConsoleAt, console: &mut Console) -> (RunOutput, String) {
    run_on(at, console, None).await
}

async fn run_on(
    at: ConsoleAt,
    console: &mut Console,
    target: Option<&mut dyn Target>,
) -> (RunOutput, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "t", "t").unwrap();
    let scenario = login_start_scenario();
    let ctx = RunContext {
        fallback_password: Some("pw-42".to_owned()),
        ..RunContext::default()
    };
    let out = run_scenario_at(at, &scenario, console, target, &mut transcript, &ctx, &mut Quiet).await;
    let log = transcript.finish().unwrap().log;
    (out, std::fs::read_to_string(log).unwrap())
}

#[tokio::test]
async fn a_restored_shell_is_confirmed_before_the_steps_run() {
    let mut console = console_with(restored_shell);
    let (out, log) = run(ConsoleAt::RESTORED_SHELL, &mut console).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}\n{log}", out.verdict);
    let stages: Vec<&str> = out.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, [RESTORE_STAGE.as_str(), "body"]);
    // The empty line that wakes the shell comes before the first step.
    let wake = log.find(">> \\r").expect("wake-up line typed");
    assert!(wake < log.find("step 1").expect("step 1 noted"), "{log}");
}

#[tokio::test]
async fn a_restore_whose_console_closes_fails_in_the_restore_stage_before_any_step() {
    // QEMU that cannot load the snapshot exits at once: the console ends.
    let mut console = console_with(|io| async move { drop(io) });
    let (out, log) = run(ConsoleAt::RESTORED_SHELL, &mut console).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("passed on a closed console:\n{log}");
    };
    assert_eq!((failure.step, &failure.stage), (0, &RESTORE_STAGE), "{failure:?}");
    assert!(
        matches!(failure.reason, FailReason::ConsoleClosed { .. }),
        "{failure:?}"
    );
}

#[tokio::test]
async fn from_power_on_a_login_start_boots_the_default_entry_and_logs_in_first() {
    let mut console = console_with(|mut io| async move {
        let _ = io.write_all(b"U-Boot 2023.01\r\nivy login: ").await;
        assert_eq!(read_line(&mut io).await, b"root");
        let _ = io.write_all(b"\r\nPassword: ").await;
        assert_eq!(read_line(&mut io).await, b"pw-42");
        let _ = io.write_all(PROMPT).await;
        restored_shell(io).await;
    });
    let (out, log) = run(ConsoleAt::PowerOn, &mut console).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}\n{log}", out.verdict);
    assert!(log.contains(">> root\\r"), "{log}");
    assert!(
        !log.contains("pw-42"),
        "the password reached the transcript:\n{log}"
    );
    assert_eq!(out.stages.first().map(|s| s.name.as_str()), Some("uboot"));
}

#[tokio::test]
async fn login_copes_with_kernel_lines_around_and_inside_its_prompts() {
    // On a shared console the kernel prints whenever it likes: after `login:`, between the
    // user name's echo and `Password:`, and in front of the shell prompt.
    let mut console = console_with(|mut io| async move {
        let _ = io
            .write_all(
                b"U-Boot 2023.01\r\n<<< Welcome to NixOS 25.05 (aarch64) - ttyS2 >>>\r\n\r\nivy login: ",
            )
            .await;
        let _ = io
            .write_all(b"[   12.345678] random: crng init done\r\n[   12.400000] usb 1-1: new high-speed USB device\r\n")
            .await;
        let user = read_line(&mut io).await;
        let _ = io.write_all(&user).await;
        let _ = io
            .write_all(b"\r\n[   13.000001] r8152 2-1:1.0 eth1: carrier on\r\nPassword: ")
            .await;
        assert_eq!(read_line(&mut io).await, b"pw-42");
        let _ = io
            .write_all(b"\r\n[   13.500000] IPv6: ADDRCONF(NETDEV_CHANGE): eth1: link becomes ready")
            .await;
        let _ = io.write_all(PROMPT).await;
        restored_shell(io).await;
    });
    let (out, log) = run(ConsoleAt::PowerOn, &mut console).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}\n{log}", out.verdict);
    assert!(log.contains(">> root\\r"), "{log}");
    assert!(log.contains("pong"), "{log}");
}

#[tokio::test]
async fn an_unset_recipe_password_fails_before_booting_but_a_restored_shell_needs_none() {
    let text = "name = \"n\"\ndescription = \"d\"\nstart = \"login\"\n\
                login = { user = \"root\", password_env = \"R2S_RUNNER_TEST_UNSET\" }\n\
                [[steps]]\nsend_line = \"ping\"\n[[steps]]\nexpect = \"pong\"\n";
    let scenario = scenario::parse(text, Path::new("n.toml")).expect("valid scenario");
    let dir = tempfile::tempdir().unwrap();
    let ctx = RunContext::default();

    let mut silent = console_with(|io| async move { drop(io) });
    let mut transcript = Transcript::create(dir.path(), "a", "a").unwrap();
    let out = run_scenario_at(
        ConsoleAt::PowerOn,
        &scenario,
        &mut silent,
        None,
        &mut transcript,
        &ctx,
        &mut Quiet,
    )
    .await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("passed without a password");
    };
    assert_eq!(failure.step, 0);
    assert!(
        matches!(&failure.reason, FailReason::Setup { detail } if detail.contains("R2S_RUNNER_TEST_UNSET"))
    );

    let mut shell = console_with(restored_shell);
    let mut transcript = Transcript::create(dir.path(), "b", "b").unwrap();
    let at = ConsoleAt::RESTORED_SHELL;
    let out = run_scenario_at(at, &scenario, &mut shell, None, &mut transcript, &ctx, &mut Quiet).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}", out.verdict);
}

#[test]
fn mostly_unprintable_output_is_called_a_baud_mismatch_naming_the_baud() {
    let stats = crate::console::ByteStats {
        total: 1000,
        non_printable: 870,
    };
    assert_eq!(
        super::baud_mismatch(stats, 1_500_000).as_deref(),
        Some("console output looks like a baud-rate mismatch: 87% of 1000 bytes were not printable at 1500000 baud; check that the board's console runs at 1500000 8N1 (the board profile's `baud`)")
    );
}

#[test]
fn readable_or_scant_output_is_not_a_baud_mismatch() {
    let readable = crate::console::ByteStats {
        total: 100_000,
        non_printable: 12,
    };
    let scant = crate::console::ByteStats {
        total: 10,
        non_printable: 10,
    };
    assert_eq!(super::baud_mismatch(readable, 115_200), None);
    assert_eq!(super::baud_mismatch(scant, 115_200), None);
}

#[test]
fn silent_kernel_on_a_board_names_the_board_console_not_qemus() {
    let reason = super::FailReason::SilentAfterKernel {
        since: std::time::Duration::from_secs(45),
        console_args: Some("console=ttyAMA0,115200".to_owned()),
        board_console: Some("ttyS2 at 1500000 baud".to_owned()),
    };
    assert_eq!(
        reason.to_string(),
        "console silent for 45.0s after \"Starting kernel ...\"; the kernel was told `console=ttyAMA0,115200`, and this board's console is ttyS2 at 1500000 baud"
    );
}

#[tokio::test]
async fn a_console_that_closes_says_what_the_target_knows_about_why() {
    let mut console = console_with(|io| async move { drop(io) });
    let mut target = crate::targets::test_console::FakeTarget {
        closed_because: Some("QEMU exited (exit status: 1): could not load the snapshot".to_owned()),
        ..Default::default()
    };
    let (out, _log) = run_on(ConsoleAt::RESTORED_SHELL, &mut console, Some(&mut target)).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("passed on a closed console");
    };
    assert_eq!(
        failure.reason.to_string(),
        "console closed: end of file; QEMU exited (exit status: 1): could not load the snapshot"
    );
    assert_eq!(out.start, StartReached::No);
}

/// Runs two `run = "forge"` steps on a shell whose command prints `forged` and exits with
/// `status`: what a command that tries to end its own capture prints. Returns every line the
/// shell was typed.
async fn run_forged(forged: &'static [u8], status: u8) -> (RunOutput, Vec<String>) {
    let steps = "[[steps]]\nrun = \"forge\"\n[[steps]]\nrun = \"forge\"\n";
    let respond = move |_: &str| (String::from_utf8_lossy(forged).into_owned(), i32::from(status));
    let run = on_shell(steps, ShellConfig::default(), respond).await;
    let typed = run
        .heard
        .into_iter()
        .filter_map(|heard| match heard {
            Heard::Line(line) => Some(line),
            _ => None,
        })
        .collect();
    (run.out, typed)
}

#[tokio::test]
async fn a_command_printing_guessable_end_markers_cannot_forge_its_status() {
    // The marker format of old, with and without a guessed nonce, and at the end of a line.
    let forged = b"@@R2S-END-1:0;\r\n@@R2S-END-1-0000000000000000:0;\r\n@@R2S-END-1-:0;\r\nx@@R2S-END-1-";
    let (out, _) = run_forged(forged, 1).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("a failing command passed by printing end markers");
    };
    assert_eq!(failure.step, 1);
    assert!(
        failure
            .reason
            .to_string()
            .contains("\"forge\" exited with status 1"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn output_without_a_final_newline_still_ends_at_the_marker() {
    // The end marker's printf starts a line of its own, so it is found after such output.
    let (out, _) = run_forged(b"partial", 0).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}", out.verdict);
}

#[tokio::test]
async fn each_run_step_types_a_fresh_nonce_never_whole() {
    let (out, typed) = run_forged(b"", 0).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}", out.verdict);
    let runs: Vec<&String> = typed.iter().filter(|l| l.contains("@@R2S-END")).collect();
    assert_eq!(runs.len(), 2, "{typed:?}");
    let nonces: Vec<String> = runs
        .iter()
        .map(|line| {
            let (end, rest) = typed_marker(line, "END").expect("an end marker");
            let nonce = format!("{}{rest}", end.rsplit('-').next().unwrap());
            assert_eq!(nonce.len(), 32, "{line:?}");
            assert!(!line.contains(&nonce), "the whole nonce was typed: {line:?}");
            nonce
        })
        .collect();
    assert_ne!(nonces[0], nonces[1]);
}

/// Runs `scenario` from power-on with the fixture's password as the fallback and a transcript
/// bounded by `limit` in a new directory (returned, to keep it alive).
async fn power_on(
    console: &mut Console,
    scenario: &Scenario,
    limit: u64,
) -> (RunOutput, crate::console::TranscriptPaths, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "t", "t")
        .unwrap()
        .with_limit(limit);
    let ctx = RunContext {
        fallback_password: Some("pw-42".to_owned()),
        ..RunContext::default()
    };
    let out = run_scenario_at(
        ConsoleAt::PowerOn,
        scenario,
        console,
        None,
        &mut transcript,
        &ctx,
        &mut Quiet,
    )
    .await;
    (out, transcript.finish().unwrap(), dir)
}

/// A login that echoes the password back in pieces, a kernel line between them, and then
/// refuses it.
async fn echoing_refusing_login(mut io: DuplexStream) {
    let _ = io.write_all(b"U-Boot 2023.01\r\nivy login: ").await;
    let user = read_line(&mut io).await;
    let _ = io.write_all(&user).await;
    let _ = io.write_all(b"\r\nPassword: ").await;
    assert_eq!(read_line(&mut io).await, b"pw-42");
    let _ = io.write_all(b"pw").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let _ = io.write_all(b"[   13.5] random: crng init done\r\n").await;
    let _ = io.write_all(b"-4").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let _ = io.write_all(b"2\r\nLogin incorrect\r\nivy login: ").await;
    let _ = read_line(&mut io).await;
}

#[tokio::test]
async fn an_echoed_password_reaches_no_transcript_file_and_no_report() {
    let mut console = console_with(echoing_refusing_login);
    let (out, paths, _dir) = power_on(
        &mut console,
        &login_start_scenario(),
        crate::console::transcript::DEFAULT_LIMIT,
    )
    .await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("a refused login passed");
    };
    let report = format!("{failure:?}\n{}", out.last_lines.join("\n"));
    assert!(report.contains("Login incorrect"), "{report}");
    for (what, text) in [
        ("report", report),
        (
            "raw",
            String::from_utf8_lossy(&std::fs::read(&paths.raw).unwrap()).into_owned(),
        ),
        ("log", std::fs::read_to_string(&paths.log).unwrap()),
        ("cast", std::fs::read_to_string(&paths.cast).unwrap()),
    ] {
        assert!(
            !text.contains("pw-42"),
            "the password reached the {what}:\n{text}"
        );
        assert!(
            !text.contains("pw"),
            "part of the password reached the {what}:\n{text}"
        );
    }
    let log = std::fs::read_to_string(&paths.log).unwrap();
    assert!(log.contains("[redacted]"), "{log}");
    assert!(log.contains("random: crng init done"), "{log}");
    assert!(
        log.contains("-- a typed secret in the console output was replaced by [redacted]"),
        "{log}"
    );
}

#[tokio::test]
async fn a_console_flooding_random_bytes_and_short_lines_stays_within_the_transcript_limit() {
    const LIMIT: u64 = 256 * 1024;
    let flood = |mut io: DuplexStream| async move {
        let mut seed = 1u32;
        loop {
            let mut chunk: Vec<u8> = (0..8192u32)
                .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            chunk.extend_from_slice(&b"x\r\n".repeat(1000));
            seed = seed.wrapping_add(8192);
            if io.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let text = "name = \"flood\"\ndescription = \"d\"\ntimeout = \"3s\"\n\
                [[steps]]\nexpect = \"never printed\"\n";
    let scenario = scenario::parse(text, Path::new("flood.toml")).expect("valid scenario");
    let mut console = console_with(flood);
    let (out, paths, _dir) = power_on(&mut console, &scenario, LIMIT).await;
    assert!(matches!(out.verdict, Verdict::Fail(_)), "{:?}", out.verdict);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert_eq!(size(&paths.raw), LIMIT);
    assert!(size(&paths.log) <= LIMIT + 1024, "log {}", size(&paths.log));
    assert!(size(&paths.cast) <= LIMIT + 1024, "cast {}", size(&paths.cast));
}

/// A terminal that echoes every byte it is sent and says `took N` once it has `n` of them.
async fn echoing_terminal(mut io: DuplexStream, n: usize) {
    let mut got = 0;
    let mut buf = vec![0u8; 4096];
    while let Ok(read) = io.read(&mut buf).await {
        if read == 0 || io.write_all(&buf[..read]).await.is_err() {
            return;
        }
        got += read;
        if got >= n {
            let _ = io.write_all(format!("\r\ntook {got}\r\n").as_bytes()).await;
        }
    }
}

#[tokio::test]
async fn a_megabyte_send_to_an_echoing_console_is_taken_whole() {
    const SIZE: usize = 1 << 20;
    let text = format!(
        "name = \"big\"\ndescription = \"d\"\ntimeout = \"60s\"\n\
         [[steps]]\nsend = \"{}\"\n[[steps]]\nexpect = \"took {SIZE}\"\n",
        "a".repeat(SIZE)
    );
    let scenario = scenario::parse(&text, Path::new("big.toml")).expect("valid scenario");
    let mut console = console_with(|io| echoing_terminal(io, SIZE));
    let (out, _, _dir) = power_on(&mut console, &scenario, 4 << 20).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}", out.verdict);
}

#[tokio::test]
async fn a_send_the_console_cannot_take_in_time_says_how_much_it_took() {
    // Nobody reads the other end: the pipe takes 64 KiB, then nothing.
    let text = format!(
        "name = \"big\"\ndescription = \"d\"\ntimeout = \"1s\"\n[[steps]]\nsend = \"{}\"\n",
        "a".repeat(100_000)
    );
    let scenario = scenario::parse(&text, Path::new("big.toml")).expect("valid scenario");
    let mut console = console_with(|io| async move {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(io);
    });
    let (out, _, _dir) = power_on(&mut console, &scenario, 4 << 20).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("a send nobody took passed");
    };
    assert_eq!(
        failure.reason.to_string(),
        "I/O error: the console took only 65536 of the 100000 bytes sent before the step's time \
         ran out; send less, or give the step a longer timeout"
    );
}

#[tokio::test]
async fn an_extlinux_include_loop_fails_at_once_on_uboots_parse_error() {
    // What U-Boot prints for an extlinux.conf that INCLUDEs itself; then distro boot would go
    // on to the network and the step would wait out its timeout.
    let mut console = console_with(|mut io| async move {
        let _ = io
            .write_all(
                b"U-Boot 2023.01\r\nScanning virtio 0:1...\r\nFound /extlinux/extlinux.conf\r\n\
                  Retrieving file: /extlinux/extlinux.conf\r\nMaximum nesting (16) exceeded\r\n\
                  Error parsing config file\r\nBOOTP broadcast 1\r\n",
            )
            .await;
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    });
    let text = "name = \"loop\"\ndescription = \"d\"\ntimeout = \"60s\"\n\
                [[steps]]\nexpect = \"<<< NixOS Stage 1 >>>\"\n";
    let scenario = scenario::parse(text, Path::new("loop.toml")).expect("valid scenario");
    let started = std::time::Instant::now();
    let (out, _, _dir) = power_on(&mut console, &scenario, 1 << 20).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("an include loop passed");
    };
    assert!(
        matches!(&failure.reason, FailReason::Fatal { pattern, .. } if pattern.contains("Error parsing config file")),
        "{failure:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_prompt_that_starts_like_the_password_is_still_matched() {
    // The bytes are held back as a possible start of the password until the console is quiet.
    const PASSWORD: &str = "[root@ivy:~]# x";
    let mut console = console_with(|mut io| async move {
        let _ = io.write_all(b"U-Boot 2023.01\r\nivy login: ").await;
        let _ = read_line(&mut io).await;
        let _ = io.write_all(b"\r\nPassword: ").await;
        assert_eq!(read_line(&mut io).await, PASSWORD.as_bytes());
        let _ = io.write_all(PROMPT).await;
        restored_shell(io).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "t", "t").unwrap();
    let ctx = RunContext {
        fallback_password: Some(PASSWORD.to_owned()),
        ..RunContext::default()
    };
    let scenario = login_start_scenario();
    let at = ConsoleAt::PowerOn;
    let out = run_scenario_at(
        at,
        &scenario,
        &mut console,
        None,
        &mut transcript,
        &ctx,
        &mut Quiet,
    )
    .await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}", out.verdict);
}

/// agetty with `--autologin root`: its prompt and the user's name, written apart as a slow
/// console may deliver them, then the shell; no user name or password is asked for.
async fn autologin_getty(mut io: DuplexStream, user: &'static [u8]) {
    let _ = io.write_all(b"U-Boot 2023.01\r\n\r\nivy login: ").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let _ = io.write_all(user).await;
    let _ = io.write_all(b" (automatic login)\r\n\r\n").await;
    let _ = io.write_all(PROMPT).await;
    // The first thing typed must be the step's command, not a user name or a password.
    assert_eq!(read_line(&mut io).await, b"ping");
    let _ = io.write_all(b"\r\npong").await;
    let _ = io.write_all(PROMPT).await;
    restored_shell(io).await;
}

#[tokio::test]
async fn a_getty_that_logs_the_user_in_by_itself_is_followed_without_typing_a_password() {
    let mut console = console_with(|io| autologin_getty(io, b"root"));
    let (out, log) = run(ConsoleAt::PowerOn, &mut console).await;
    assert!(matches!(out.verdict, Verdict::Pass), "{:?}\n{log}", out.verdict);
    assert!(
        log.contains("the console's getty logged root in by itself (agetty --autologin)"),
        "{log}"
    );
    assert!(!log.contains(">> root\\r"), "{log}");
}

#[tokio::test]
async fn a_getty_that_logs_another_user_in_fails_the_login_naming_both() {
    let mut console = console_with(|io| autologin_getty(io, b"nixos"));
    let (out, log) = run(ConsoleAt::PowerOn, &mut console).await;
    let Verdict::Fail(failure) = &out.verdict else {
        panic!("passed as the wrong user:\n{log}");
    };
    let FailReason::Check { detail } = &failure.reason else {
        panic!("{failure:?}");
    };
    assert!(
        detail.starts_with("the console's getty logged nixos in by itself (agetty --autologin"),
        "{detail}"
    );
    assert!(
        detail.contains("not root: log in as nixos in this step"),
        "{detail}"
    );
}
