//! `harness console`: an interactive console on a board's UART or a QEMU boot, in place of
//! screen or picocom. The terminal is raw (Ctrl-C goes to the board), an escape key leaves, and
//! everything is logged as a transcript.

use std::path::Path;
use std::time::{Duration, Instant};

use r2s_harness::board::{self, BoardError};
use r2s_harness::console::{PromptedSecrets, Transcript};
use r2s_harness::suite::qemu_setup::{self, QemuSetupRequest};
use r2s_harness::targets::{Console, NoLog, QemuSpec, StartFailure, Target, TargetError, TargetSpec};
use r2s_harness::terminal::{split_at_escape, Terminal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::run::{load_board, open_image, tell_setup, SetupError};
use super::{ConsoleArgs, EXIT_ERROR, EXIT_PASS};
use r2s_harness::unpacked::DiskImage;

/// Runs the console until the escape key, the end of input, or the console closing.
pub async fn console(mut args: ConsoleArgs) -> u8 {
    // An image is unpacked and adapted into the default cache, or a per-run one where that
    // cannot be written (a build sandbox), as `harness run` does; held until the console ends.
    let _cache = match (&args.image, &args.cache_dir) {
        (Some(_), None) => {
            super::cache_dir::usable_default().inspect(|cache| args.cache_dir = Some(cache.dir.clone()))
        }
        _ => None,
    };
    if let (Some(state), Some(image)) = (&args.from, &args.image) {
        return super::console_from::console_from(&args, image, state).await;
    }
    // The target lives until this function returns: QEMU is killed, the port released.
    let (description, console, mut target, _disk) = match open(&args).await {
        Ok(opened) => opened,
        Err(message) => {
            super::say(&message);
            return EXIT_ERROR;
        }
    };
    let ended = attach_logged(console, &args.transcripts, &description, Duration::ZERO).await;
    // QEMU is killed and reaped, the port released; a board keeps its power as it is.
    let _ = target.stop(&mut NoLog).await;
    ended
}

/// Attaches the terminal to `console` with a transcript in `transcripts`, telling the person
/// what it is (`description`, restored in `restored` when it was) and how to leave; the exit
/// code of the console.
pub(super) async fn attach_logged(
    console: Console,
    transcripts: &Path,
    description: &str,
    restored: Duration,
) -> u8 {
    let transcript = std::fs::create_dir_all(transcripts)
        .and_then(|()| Transcript::create(transcripts, "console", description));
    let transcript = match transcript {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "harness: cannot write a transcript in {}: {e}",
                transcripts.display()
            );
            return EXIT_ERROR;
        }
    };
    let restored = if restored.is_zero() {
        String::new()
    } else {
        format!(
            " (restored in {:.1}s; press Enter for a prompt)",
            restored.as_secs_f64()
        )
    };
    eprintln!(
        "harness console: {description}{restored}. Press Ctrl-] to leave. Transcript: {}",
        transcript.paths().log.display()
    );
    match attach(console, transcript).await {
        Ok(why) => {
            eprintln!("\r\nharness console: {why}");
            EXIT_PASS
        }
        Err(e) => {
            eprintln!("\r\nharness console: {e}");
            EXIT_ERROR
        }
    }
}

/// Opens the target `args` name through the factory and returns its description, its console
/// and the target, which keeps the console alive (QEMU running, the port held) until dropped.
/// A board's console is attached as the board is, with no power switched; QEMU is started.
/// A compressed `--image` is unpacked first, and its disk held until the console is left.
async fn open(
    args: &ConsoleArgs,
) -> Result<(String, Console, Box<dyn Target>, Option<DiskImage>), OpenError> {
    let mut disk = None;
    let spec = match (&args.serial, args.farm.labgrid()) {
        (Some(port), _) => TargetSpec::board(
            load_board(args.board.as_deref(), board::DEFAULT_SERIAL_BOARD)?,
            port,
        ),
        (None, Some(labgrid)) => super::place_wait::place_spec(
            labgrid,
            load_board(args.board.as_deref(), board::DEFAULT_SERIAL_BOARD)?,
            args.farm.place_wait,
        )
        .await
        .map_err(SetupError::from)?,
        (None, None) => {
            let image = args.image.as_ref().expect("clap requires --serial or --image");
            let opened = open_image(image, args.cache_dir.as_deref()).map_err(SetupError::from)?;
            let image = opened.disk().to_owned();
            let request = QemuSetupRequest {
                image: image.clone(),
                board: load_board(args.board.as_deref(), board::QEMU_BOARD)?,
                config: args.qemu.config(),
                cache: args
                    .cache_dir
                    .clone()
                    .or_else(r2s_harness::adapt::default_cache_dir),
                no_adapt: args.no_adapt,
                disk_bus: args.disk_bus,
                // A person is at this console: the boot's countdowns run as on the board.
                skip_countdowns: false,
            };
            let set_up = qemu_setup::set_up(request).await.map_err(SetupError::from)?;
            tell_setup(&set_up.lines);
            let unpacked_from = opened.unpacked_from();
            disk = Some(opened);
            TargetSpec::qemu(QemuSpec {
                config: set_up.config,
                image,
                shim: set_up.shim,
                unpacked_from,
            })
        }
    };
    let mut target = spec.open();
    let attached = match target.attach() {
        Some(attach) => Some(attach.await?),
        None => None,
    };
    let console = match attached {
        Some(console) => console,
        None => target.start(None, &mut NoLog).await?,
    };
    Ok((target.describe(), console, target, disk))
}

/// Why the console could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Start(#[from] StartFailure),
}

/// Copies keys to the console and console output to the terminal, logging both.
async fn attach(mut console: Console, mut transcript: Transcript) -> std::io::Result<&'static str> {
    let start = Instant::now();
    let terminal = Terminal::shared();
    let mut hold = terminal.hold().await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut secrets = PromptedSecrets::new();
    let why = loop {
        tokio::select! {
            read = console.reader.read(&mut buf) => match read {
                Ok(0) => break "the console closed",
                Ok(n) => {
                    let recorded = secrets.output(&buf[..n]);
                    let _ = transcript.output(start.elapsed(), &recorded);
                    hold.show(&buf[..n]);
                }
                Err(e) => return Err(e),
            },
            key = hold.keys() => match key {
                None => break "end of input",
                Some(bytes) => {
                    let (typed, leave) = split_at_escape(&bytes);
                    if !typed.is_empty() {
                        let (shown, released) = secrets.input(typed);
                        let _ = transcript.input(start.elapsed(), &shown);
                        let _ = transcript.output(start.elapsed(), &released);
                        console.writer.write_all(typed).await?;
                        console.writer.flush().await?;
                    }
                    if leave {
                        break "left (Ctrl-])";
                    }
                }
            },
        }
        for (when, text) in console.notices.take() {
            let _ = transcript.note(when.saturating_duration_since(start), &text);
            hold.say(&text);
        }
    };
    let _ = transcript.output(start.elapsed(), &secrets.flush());
    transcript.finish()?;
    Ok(why)
}
