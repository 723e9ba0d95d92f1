//! `harness flash`: the image is inspected for the board and booted under QEMU through the
//! same suite `harness run` uses; only if everything passed is the card switched to the host
//! (SD-mux), guarded, shown, confirmed, written and read back, and switched back to the board.
//! `harness run --serial … --flash IMG` uses the same card writing before its run, and so does
//! `harness run --place … --flash IMG`, through the place's SD-mux.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use r2s_harness::board::{self, Board, SdMux};
use r2s_harness::flash::sdmux::{self, CardMux, Side};
use r2s_harness::flash::write::{self as card_write, Progress, WriteError};
use r2s_harness::flash::{
    self, bootloader, device::human_size, Allow, Destination, DeviceKind, FlashError, Piece, Refusal, Sysroot,
};
use r2s_harness::hex::lower_hex;
use r2s_harness::inspect::{self, render, Profile, Status};
use r2s_harness::targets::labgrid::sd_mux::{self as place_mux, SD_MUX_LIMIT};
use r2s_harness::targets::labgrid::Labgrid;
use r2s_harness::targets::power;

use super::flash_progress::{TransferBar, REDRAW};
use super::{run, Cli, Command, FlashArgs, RunArgs, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

/// Why a flash ended without a verified card, and its exit code.
struct Stop {
    code: u8,
    message: String,
}

impl Stop {
    /// The image or the card failed (exit 1).
    fn fail(message: impl Display) -> Stop {
        Stop {
            code: EXIT_FAIL,
            message: message.to_string(),
        }
    }

    /// A usage, configuration, device or I/O error (exit 2).
    fn error(message: impl Display) -> Stop {
        Stop {
            code: EXIT_ERROR,
            message: message.to_string(),
        }
    }
}

pub async fn flash(args: FlashArgs) -> u8 {
    match flash_checked(&args).await {
        Ok(()) => EXIT_PASS,
        Err(stop) => {
            super::say(&stop.message);
            stop.code
        }
    }
}

async fn flash_checked(args: &FlashArgs) -> Result<(), Stop> {
    let board = Board::load(&args.board).map_err(Stop::error)?;
    let card_for = |device: &Path| Card {
        device: device.to_owned(),
        sysroot: Sysroot::from_env(),
        allow: Allow {
            fixed: args.allow_fixed,
            large: args.allow_large,
        },
        sdmux: board.sdmux.clone().map(CardMux::of_profile),
        power_off: None,
        block_only: false,
        yes: args.yes,
        flip_byte: args.test_flip_byte,
    };
    match &args.bootloader {
        Some(files) => {
            let [device] = args.paths.as_slice() else {
                return Err(Stop::error(
                    "--bootloader IDBLOADER ITB takes one more argument, DEVICE, and no scenarios",
                ));
            };
            let card = card_for(device);
            card.check_terminal()?;
            let pieces = bootloader::pieces(&files[0], &files[1]).map_err(Stop::error)?;
            card.check_early(&pieces)?;
            card.write(&pieces, Layout::Bootloader).await
        }
        None => {
            let [image, device, scenarios @ ..] = args.paths.as_slice() else {
                return Err(Stop::error(
                    "flash needs IMG and DEVICE (or --bootloader IDBLOADER ITB DEVICE)",
                ));
            };
            let card = card_for(device);
            card.check_terminal()?;
            // The checks and the boot below read a compressed image's disk unpacked into the
            // cache; the card is written from the compressed file as it unpacks.
            // The default cache, or a per-run one where that cannot be written, for both.
            let cache = super::cache_dir::for_image(image);
            let cache_dir = cache.as_ref().map(|c| c.dir.as_path());
            let disk = run::open_image(image, cache_dir).map_err(Stop::error)?;
            let pieces = vec![flash::image_piece(&disk).map_err(Stop::error)?];
            card.check_early(&pieces)?;
            inspect_for(disk.disk(), &board)?;
            if args.no_boot {
                super::human::show("scenarios under QEMU: skipped (--no-boot)");
            } else {
                boot_first(args, image, cache_dir, scenarios).await?;
            }
            card.write(&pieces, Layout::Image).await
        }
    }
}

/// `harness run --serial … --flash IMG`: inspect, then write IMG to the card the board
/// profile's `[sdmux]` names, and leave the card with the board. With `--place`, the card is the
/// place's SD-mux's, and the board is powered off through the place before its card is taken.
/// Err is the exit code.
pub(super) async fn flash_before_run(args: &RunArgs, image: &Path, place: Option<Labgrid>) -> Result<(), u8> {
    let flashed = async {
        let board =
            run::load_board(args.board.as_deref(), board::DEFAULT_SERIAL_BOARD).map_err(Stop::error)?;
        let (mux, device, power_off) = match place {
            Some(labgrid) => {
                let (mux, device, off) = place_card(labgrid, &board).await?;
                (mux, device, Some(off))
            }
            None => {
                let (mux, device) = profile_card(&board)?;
                (mux, device, None)
            }
        };
        let card = Card {
            device,
            sysroot: Sysroot::from_env(),
            allow: Allow {
                fixed: args.allow_fixed,
                large: false,
            },
            block_only: power_off.is_some(),
            sdmux: Some(mux),
            power_off,
            yes: args.yes,
            flip_byte: None,
        };
        card.check_terminal()?;
        let disk = run::open_image(image, args.cache_dir.as_deref()).map_err(Stop::error)?;
        let pieces = vec![flash::image_piece(&disk).map_err(Stop::error)?];
        card.check_early(&pieces)?;
        inspect_for(disk.disk(), &board)?;
        card.write(&pieces, Layout::Image).await
    };
    flashed.await.map_err(|stop| {
        super::say(&stop.message);
        stop.code
    })
}

/// The SD-mux of `board`'s profile and the card's device, which it must name.
fn profile_card(board: &Board) -> Result<(CardMux, PathBuf), Stop> {
    let Some(sdmux) = &board.sdmux else {
        return Err(Stop::error(format!(
            "--flash needs an [sdmux] table in board profile {}: the commands that switch the card to the host and back",
            board.source.display()
        )));
    };
    let Some(device) = &sdmux.device else {
        return Err(Stop::error(format!(
            "--flash needs `device` in the [sdmux] table of {}: the card's block device on the host",
            board.source.display()
        )));
    };
    Ok((CardMux::of_profile(sdmux.clone()), PathBuf::from(device)))
}

/// The SD-mux of the place `labgrid` names (acquired by now), switched by `labgrid-client
/// sd-mux`, the card's block device, and the command that powers the place's board off.
/// `board`'s `[sdmux]`, if any, gives only how long the card may take to appear.
async fn place_card(labgrid: Labgrid, board: &Board) -> Result<(CardMux, PathBuf, Vec<String>), Stop> {
    let asking = labgrid.clone();
    let (mux, device) = tokio::task::spawn_blocking(move || asking.sd_mux())
        .await
        .map_err(|e| Stop::error(format!("asking labgrid for the SD-mux failed: {e}")))?
        .map_err(Stop::error)?;
    super::human::tell(format!(
        "card: {} behind SD-mux {} ({}) of place {}",
        device.display(),
        mux.name,
        mux.class,
        labgrid.place
    ));
    let commands = SdMux {
        host: labgrid.sd_mux_argv("host"),
        dut: labgrid.sd_mux_argv("dut"),
        device: Some(device.display().to_string()),
        timeout: SD_MUX_LIMIT,
        device_timeout: board
            .sdmux
            .as_ref()
            .map_or(board::DEFAULT_DEVICE_TIMEOUT, |own| own.device_timeout),
    };
    let mux = CardMux {
        commands,
        cause: place_mux::sd_mux_cause,
    };
    Ok((mux, device, labgrid.power_argv("off")))
}

/// Runs `inspect` for `board` and prints its report; any failed check stops the flash.
fn inspect_for(image: &Path, board: &Board) -> Result<(), Stop> {
    let profile = Profile::r2s_with_console_of(board);
    let report =
        inspect::inspect_for(image, &profile).map_err(|e| Stop::error(format!("not written: {e}")))?;
    let text = render::text(&report);
    super::human::show(text.strip_suffix('\n').unwrap_or(&text));
    if report.status() != Status::Fail {
        return Ok(());
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| match &c.label {
            Some(label) => format!("{} [{label}]", c.name.as_str()),
            None => c.name.as_str().to_owned(),
        })
        .collect();
    Err(Stop::fail(format!(
        "not written: inspect failed for board {}: {}",
        profile.name,
        failed.join(", ")
    )))
}

/// Boots the image under QEMU with `scenarios` (the shipped ones when empty), exactly as
/// `harness run --image IMG` would, with its report, transcripts and exit code.
async fn boot_first(
    args: &FlashArgs,
    image: &Path,
    cache_dir: Option<&Path>,
    scenarios: &[PathBuf],
) -> Result<(), Stop> {
    let mut argv: Vec<OsString> = ["harness", "run", "--image"].map(OsString::from).to_vec();
    argv.push(image.into());
    if let Some(dir) = cache_dir {
        argv.extend(["--cache-dir".into(), dir.into()]);
    }
    argv.extend(["--transcripts".into(), args.transcripts.clone().into()]);
    if let Some(firmware) = &args.qemu.firmware {
        argv.extend(["--firmware".into(), firmware.clone().into()]);
    }
    argv.extend(["--qemu".into(), args.qemu.binary.clone().into(), "--".into()]);
    argv.extend(scenarios.iter().map(OsString::from));
    let run_args = match Cli::try_parse_from(argv).map(|cli| cli.command) {
        Ok(Command::Run(run_args)) => run_args,
        Ok(_) => unreachable!("the arguments start with `run`"),
        Err(e) => return Err(Stop::error(format!("cannot run the scenarios: {e}"))),
    };
    super::human::show("scenarios under QEMU, before anything is written:");
    match run::run(*run_args).await {
        EXIT_PASS => Ok(()),
        EXIT_FAIL => Err(Stop::fail(
            "not written: the image failed its scenarios under QEMU (the FAIL lines above say which)",
        )),
        code => Err(Stop {
            code,
            message: "not written: the scenarios could not be run under QEMU".to_owned(),
        }),
    }
}

/// What is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A whole image from byte 0; a regular file is cut to its length.
    Image,
    /// The bootloader regions only; nothing else on the device changes.
    Bootloader,
}

/// The card and how it may be written.
struct Card {
    device: PathBuf,
    sysroot: Sysroot,
    allow: Allow,
    sdmux: Option<CardMux>,
    /// Powers the board off before its card is switched to the host (a place's board).
    power_off: Option<Vec<String>>,
    /// Only a block device is the card (a place's SD-mux): never a regular file at its path.
    block_only: bool,
    yes: bool,
    flip_byte: Option<u64>,
}

impl Card {
    /// Without a terminal nobody can be asked: then `--yes` must say so. Checked first, so a
    /// script learns it before a boot under QEMU.
    fn check_terminal(&self) -> Result<(), Stop> {
        if self.yes || std::io::stdin().is_terminal() {
            return Ok(());
        }
        Err(Stop::error(
            "stdin is not a terminal, so nobody can confirm the write: pass --yes to write without asking",
        ))
    }

    /// Refuses a device that is there already and fails a guard, before anything boots. A
    /// card behind an SD-mux may appear, or get its medium, only once it is switched to the host.
    fn check_early(&self, pieces: &[Piece]) -> Result<(), Stop> {
        if self.sdmux.is_some() && !self.device.exists() {
            return Ok(());
        }
        let destination = match flash::examine(&self.device, &self.sysroot, self.allow) {
            Err(FlashError::Refused(Refusal::NoMedium { .. })) if self.sdmux.is_some() => return Ok(()),
            examined => examined.map_err(Stop::error)?,
        };
        destination.check_pieces(pieces).map_err(Stop::error)
    }

    /// Switches the card to the host, checks it again, asks, writes, reads back and switches
    /// it back to the board.
    async fn write(&self, pieces: &[Piece], layout: Layout) -> Result<(), Stop> {
        // Armed while the card is with the host: however this ends, it goes back to the board.
        let mut back_to_board = None;
        if let Some(off) = &self.power_off {
            super::human::show(format!(
                "power: the board off before its card is taken: {}",
                off.join(" ")
            ));
            power::switch("off", off, SD_MUX_LIMIT)
                .await
                .map_err(Stop::error)?;
        }
        if let Some(mux) = &self.sdmux {
            super::human::show(format!(
                "SD-mux: switching the card to the host: {}",
                mux.commands.host.join(" ")
            ));
            // Armed before the switch: a switch that fails halfway still ends with the board.
            back_to_board = Some(sdmux::back_to_dut_on_drop(mux));
            sdmux::switch(mux, Side::Host).await.map_err(Stop::error)?;
            sdmux::wait_for_card(mux, &self.device, &self.sysroot)
                .await
                .map_err(Stop::error)?;
        }
        // Checked again: minutes may have passed since the first check, and the device may
        // have just appeared.
        let destination = flash::examine(&self.device, &self.sysroot, self.allow).map_err(Stop::error)?;
        destination.check_pieces(pieces).map_err(Stop::error)?;
        // A place's card is a block device; anything else at its path is not the card.
        if self.block_only && !destination.is_block() {
            return Err(Stop::error(format!(
                "not written: {} is not a block device, so it is not the SD-mux's card",
                self.device.display()
            )));
        }
        if layout == Layout::Bootloader && !matches!(destination.kind, DeviceKind::File { exists: false }) {
            bootloader::check_partitions(&destination.path).map_err(Stop::error)?;
        }
        self.confirm(&destination, pieces).await?;
        let file_len = (layout == Layout::Image).then(|| flash::extent(pieces));
        let file = Arc::new(destination.open(file_len).map_err(Stop::error)?);
        let total = card_write::total(pieces);
        let owned = pieces.to_vec();
        let written = transfer(
            &destination.path,
            Pass::Write,
            total,
            file.clone(),
            move |f, p| card_write::write(f, &owned, p),
        )
        .await?;
        if let Some(offset) = self.flip_byte {
            flip_byte(&file, offset)?;
        }
        let record = written.clone();
        transfer(&destination.path, Pass::Verify, total, file, move |f, p| {
            card_write::verify(f, &record, p)
        })
        .await?;
        super::human::show(format!(
            "flashed: {} bytes to {}, read back and verified (SHA-256 {})",
            written.bytes,
            destination.path.display(),
            lower_hex(&written.sha256)
        ));
        if let (Some(mux), Some(guard)) = (&self.sdmux, back_to_board) {
            guard.disarm();
            super::human::show(format!(
                "SD-mux: switching the card back to the board: {}",
                mux.commands.dut.join(" ")
            ));
            sdmux::switch(mux, Side::Dut).await.map_err(Stop::error)?;
        }
        Ok(())
    }

    /// Shows what is about to be overwritten and asks, unless `--yes`.
    async fn confirm(&self, destination: &Destination, pieces: &[Piece]) -> Result<(), Stop> {
        let what: Vec<String> = pieces
            .iter()
            .map(|p| match p.packing {
                None => format!("{} ({}, {})", p.what, p.source.display(), human_size(p.len)),
                Some(packing) => format!(
                    "{} ({}, {packing}-compressed, unpacked as it is written: {})",
                    p.what,
                    p.source.display(),
                    human_size(p.len)
                ),
            })
            .collect();
        super::human::show(format!("about to write {} to:", what.join(" and ")));
        for line in destination.describe() {
            super::human::show(format!("  {line}"));
        }
        if self.yes {
            super::human::show("writing without asking (--yes)");
            return Ok(());
        }
        eprint!(
            "Everything there is overwritten. Type yes to write to {}: ",
            destination.path.display()
        );
        let _ = std::io::stderr().flush();
        match read_answer().await {
            Some(answer) if answer.trim() == "yes" => Ok(()),
            _ => Err(Stop::error("not written: the write was not confirmed")),
        }
    }
}

/// One line from stdin, read on a thread of its own: a blocked read must not keep Ctrl-C
/// from ending the harness, nor keep it from exiting.
async fn read_answer() -> Option<String> {
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line).ok().filter(|n| *n > 0);
        let _ = send.send(read.map(|_| line));
    });
    receive.await.ok().flatten()
}

/// The test hook of `--test-flip-byte`: inverts one byte on the device after the write.
fn flip_byte(file: &std::fs::File, offset: u64) -> Result<(), Stop> {
    use std::os::unix::fs::FileExt;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset)
        .and_then(|()| file.write_all_at(&[!byte[0]], offset))
        .map_err(|e| Stop::error(format!("--test-flip-byte {offset}: {e}")))
}

/// A pass over the card.
#[derive(Clone, Copy)]
enum Pass {
    Write,
    Verify,
}

/// Runs `job` (a write or a read-back) on a thread of its own, drawing its progress bar. If
/// this future is dropped (Ctrl-C, SIGTERM, SIGHUP), the job is stopped at its next block and
/// the user told that the card is incomplete.
async fn transfer<T: Send + 'static>(
    device: &Path,
    pass: Pass,
    total: u64,
    file: Arc<std::fs::File>,
    job: impl FnOnce(&std::fs::File, &Progress) -> Result<T, WriteError> + Send + 'static,
) -> Result<T, Stop> {
    let progress = Arc::new(Progress::default());
    let mut stop_on_drop = StopOnDrop {
        progress: progress.clone(),
        device: device.to_owned(),
        pass,
        total,
        armed: true,
    };
    let bar = TransferBar::new(
        match pass {
            Pass::Write => "writing",
            Pass::Verify => "verifying",
        },
        total,
    );
    let shared = progress.clone();
    let mut handle = tokio::task::spawn_blocking(move || job(&file, &shared));
    let joined = loop {
        tokio::select! {
            joined = &mut handle => break joined,
            () = tokio::time::sleep(REDRAW) => bar.draw(progress.done()),
        }
    };
    stop_on_drop.armed = false;
    let result = joined.map_err(|e| Stop::error(format!("the {} thread failed: {e}", pass_name(pass))))?;
    match result {
        Ok(value) => {
            bar.finish(match pass {
                Pass::Write => "wrote",
                Pass::Verify => "read back and compared",
            });
            Ok(value)
        }
        Err(e) => {
            bar.abandon();
            let code = if matches!(e, WriteError::Mismatch { .. }) {
                EXIT_FAIL
            } else {
                EXIT_ERROR
            };
            let consequence = match pass {
                Pass::Write => format!("{} is incomplete; do not boot from it", device.display()),
                Pass::Verify => format!(
                    "{} does not hold the image; do not boot from it",
                    device.display()
                ),
            };
            Err(Stop {
                code,
                message: format!("{} failed: {e}; {consequence}", pass_name(pass)),
            })
        }
    }
}

fn pass_name(pass: Pass) -> &'static str {
    match pass {
        Pass::Write => "writing",
        Pass::Verify => "verification",
    }
}

/// Stops a pass whose future is dropped, waits (briefly) for its thread to let go of the
/// device, and says what state the card is in.
struct StopOnDrop {
    progress: Arc<Progress>,
    device: PathBuf,
    pass: Pass,
    total: u64,
    armed: bool,
}

/// How long a stopped pass may take to finish its current block.
const STOP_WAIT: Duration = Duration::from_secs(30);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.progress.cancel();
        // The thread holds the other reference until it returns.
        let deadline = Instant::now() + STOP_WAIT;
        while Arc::strong_count(&self.progress) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let message = match self.pass {
            Pass::Write => format!(
                "stopped while writing: {} is incomplete ({} of {} bytes written); do not boot from it, flash it again",
                self.device.display(),
                self.progress.done(),
                self.total
            ),
            Pass::Verify => format!(
                "stopped while verifying: {} was written but not verified; flash it again to be sure",
                self.device.display()
            ),
        };
        // The terminal may be gone (SIGHUP): a failed write must not stop the exit.
        let clear = if std::io::stderr().is_terminal() {
            "\r\x1b[K"
        } else {
            ""
        };
        let _ = writeln!(std::io::stderr(), "{clear}harness: {message}");
    }
}
