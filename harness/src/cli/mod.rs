//! Command-line interface.

mod cache_dir;
mod console;
mod console_from;
mod flash;
mod flash_progress;
pub mod human;
mod inspect;
pub mod logging;
mod manual;
mod place_wait;
mod progress;
pub mod project;
mod run;
mod scenarios;
pub mod signals;
mod states;
mod timings;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// All scenarios passed (or nothing failed).
pub const EXIT_PASS: u8 = 0;
/// At least one scenario failed.
pub const EXIT_FAIL: u8 = 1;
/// A usage, configuration or image error: nothing could be judged.
pub const EXIT_ERROR: u8 = 2;

/// Boots NanoPi R2S NixOS images under QEMU and judges the serial console by scenario files.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
pub struct Cli {
    /// More detail on stderr: -v logs QMP traffic, labgrid calls, the RFC 2217 negotiation and
    /// the adaptation's decisions (debug); -vv everything (trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less on the terminal: no progress line, no remarks (the image, the adaptation, the
    /// suite's notes) and no warnings; results and errors stay.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Do not read the project file (`r2s-harness.toml` in the current directory or above).
    #[arg(long, global = true)]
    pub no_project: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot an image once per scenario and report PASS/FAIL for each; `start = "login"`
    /// scenarios share one boot through a snapshot and run in parallel.
    ///
    /// With no scenario named, first runs a health check written from the image (it boots
    /// and logs in; on a systemd image, systemd ends the boot `running`, every unit the
    /// image's system enables is healthy and every TCP socket its socket units declare
    /// answers; `--health-only` runs it alone), then the shipped scenarios; a scenario whose
    /// `requires` the image does not meet is skipped, saying why. With no arguments at all,
    /// runs against the default fixture image, building it first if needed.
    Run(Box<RunArgs>),
    /// Attach to a console interactively, in place of screen or picocom: a board's UART, or a
    /// QEMU boot of an image. The terminal is raw; Ctrl-] leaves. Everything is logged to
    /// `<transcripts>/console.{log,raw,cast}`.
    Console(ConsoleArgs),
    /// Check an image for the board before flashing it, without booting anything.
    ///
    /// Reads the partition table, the bootloader sectors, the filesystems and the extlinux.conf
    /// U-Boot would boot, and reports every named check as pass, warn or fail with where it
    /// looked and how to fix it. The image is opened read-only. Exit code: 0 nothing failed
    /// (warnings allowed), 1 a check failed, 2 the image cannot be read.
    Inspect(InspectArgs),
    /// Write an image to an SD card, only after it passed: `inspect` for the board, then the
    /// scenarios under QEMU. Refuses disks the running system uses, disks in an md/LVM/dm stack,
    /// fixed and large disks; asks before writing; reads every byte back. With --bootloader,
    /// writes only the idbloader (sector 64) and u-boot.itb (sector 16384).
    ///
    /// Exit code: 0 written and verified, 1 a check or scenario failed (nothing written) or the
    /// read-back differs, 2 a usage error, a refused device or an I/O error.
    Flash(FlashArgs),
    /// List the failed machines `harness run --keep-failed` kept, newest first, with their
    /// scenario, image, age and failure; open one with `harness console --image IMG --from NAME`.
    States(StatesArgs),
    /// The shipped scenarios, which are built into the harness.
    #[command(subcommand)]
    Scenarios(ScenariosCommand),
    /// Print a shell completion script on stdout, e.g. `harness completions bash >
    /// ~/.local/share/bash-completion/completions/harness`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout, e.g. `harness man | man -l -`; with --dir,
    /// write `harness.1` and one page per subcommand (`harness-run.1`, …) there instead.
    Man {
        /// Write the pages into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `harness states`
#[derive(Debug, clap::Args)]
pub struct StatesArgs {
    /// The snapshot cache the runs used (`run --snapshot-cache`).
    #[arg(long, value_name = "DIR")]
    pub snapshot_cache: Option<PathBuf>,
    /// The cache directory the runs used (`run --cache-dir`); its `snapshots/` is the cache.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot_cache")]
    pub cache_dir: Option<PathBuf>,
}

/// `harness scenarios`
#[derive(Debug, Subcommand)]
pub enum ScenariosCommand {
    /// Write the shipped scenario files into DIR (created if missing; subdirectories kept), and
    /// the built-in board profiles into DIR/boards/ (for --board PATH), to read, copy and
    /// change. A file already there with other contents is not overwritten.
    Export {
        /// Where to write them.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `harness flash`
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "harness flash [OPTIONS] IMG DEVICE [SCENARIO_FILE|DIR]...\n       \
                            harness flash [OPTIONS] --bootloader IDBLOADER ITB DEVICE"
)]
pub struct FlashArgs {
    /// IMG DEVICE [SCENARIO_FILE|DIR]...: the image (raw, or compressed: .img.zst, .xz, .gz,
    /// .bz2, streamed to the card), the card's block device (or a
    /// regular file, to write a copy), and the scenarios to pass first (default: the shipped
    /// ones). With --bootloader: DEVICE only.
    #[arg(value_name = "PATHS", required = true)]
    pub paths: Vec<PathBuf>,
    /// Write only the RK3328 bootloader: IDBLOADER at sector 64, ITB (u-boot.itb) at sector 16384.
    #[arg(long, num_args = 2, value_names = ["IDBLOADER", "ITB"])]
    pub bootloader: Option<Vec<PathBuf>>,
    /// The board the card is for: `nanopi-r2s` or a profile file; inspect checks the image for
    /// it, and its `[sdmux]` commands, if any, switch the card to the host and back.
    #[arg(long, value_name = "PROFILE", default_value = "nanopi-r2s")]
    pub board: String,
    /// Do not boot the image under QEMU before writing (inspect still runs).
    #[arg(long)]
    pub no_boot: bool,
    /// Write without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Allow a disk that is not removable (sysfs removable = 0, not on USB or MMC).
    #[arg(long)]
    pub allow_fixed: bool,
    /// Allow a disk larger than 256 GiB.
    #[arg(long)]
    pub allow_large: bool,
    /// Directory for the transcripts of the QEMU scenarios.
    #[arg(long, value_name = "DIR", default_value = "r2s-transcripts")]
    pub transcripts: PathBuf,
    #[command(flatten)]
    pub qemu: QemuArgs,
    /// Test hook for the harness's own tests, not for use: after writing, flip the byte at this
    /// device offset, so that the read-back must find the difference.
    #[arg(long, value_name = "OFFSET", hide = true)]
    pub test_flip_byte: Option<u64>,
}

/// `harness inspect`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Disk image to inspect: raw, or compressed as `nix build` leaves it: .img.zst, .xz, .gz, .bz2 (unpacked once into the
    /// cache).
    #[arg(value_name = "IMG")]
    pub image: PathBuf,
    /// The board the image is for: `nanopi-r2s`, or a board profile file (as `run --board`
    /// takes) whose `console` and `baud` the console check then expects.
    #[arg(long, value_name = "BOARD", default_value = "nanopi-r2s")]
    pub board: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// How `inspect` prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One block per check, for people.
    Text,
    /// One JSON object (see the README), for programs.
    Json,
}

/// `harness console`
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["serial", "image", "place"])))]
pub struct ConsoleArgs {
    /// The board's console device (a /dev/serial/by-id/… path, a pseudo-terminal, or
    /// tcp://HOST:PORT of a serial server). Nothing is powered: the console is attached as the
    /// board is.
    #[arg(long, value_name = "DEV")]
    pub serial: Option<PathBuf>,
    /// Boot this image (raw, or compressed as `nix build` leaves it: .img.zst, .xz, .gz, .bz2) under QEMU,
    /// set up as `harness run` sets it up (adapted unless --no-adapt), and attach to it.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub farm: FarmArgs,
    /// Board profile: a built-in name or a TOML file. For --serial, its baud and reconnect
    /// timeout (default: nanopi-r2s); for --image, as `harness run` takes it (default: qemu-virt;
    /// its `adapt_initrd_modules` and load addresses count).
    #[arg(long, value_name = "BOARD")]
    pub board: Option<String>,
    /// Directory for the transcript.
    #[arg(long, value_name = "DIR", default_value = "r2s-transcripts")]
    pub transcripts: PathBuf,
    #[command(flatten)]
    pub qemu: QemuArgs,
    /// Attach the image on this bus under QEMU instead of the one chosen from what the
    /// image's kernel and initrd can drive (the first of virtio, nvme, ahci, usb they can).
    #[arg(long, requires = "image", value_name = "BUS", value_enum)]
    pub disk_bus: Option<r2s_harness::qemu_devices::DiskBus>,
    /// Open the console on the image's machine restored from a saved state instead of booting
    /// it: `login` (a root shell), `uboot` (U-Boot's prompt), or the name a scenario saves with
    /// `save_state` (found in SCENARIO_FILE|DIR, by default the shipped scenarios). The state
    /// is taken from the snapshot cache `harness run` uses, built first if missing; the machine
    /// is thrown away on leaving.
    #[arg(long, value_name = "STATE", requires = "image")]
    pub from: Option<String>,
    /// With --from: the scenario files or directories that save named states.
    #[arg(value_name = "SCENARIO_FILE|DIR", requires = "from")]
    pub scenarios: Vec<PathBuf>,
    /// With --image: the cache of unpacked images and adapted boot files, as `harness run`
    /// takes it (default as there, or a per-run cache where that cannot be written).
    #[arg(long, value_name = "DIR", requires = "image")]
    pub cache_dir: Option<PathBuf>,
    /// With --image: boot the image's extlinux configuration, initrd and the firmware's load
    /// addresses as they are, as `harness run --no-adapt` does.
    #[arg(long, requires = "image")]
    pub no_adapt: bool,
    /// With --from: the snapshot cache, as `harness run` takes it.
    #[arg(long, value_name = "DIR", requires = "from")]
    pub snapshot_cache: Option<PathBuf>,
}

/// A board in a labgrid farm.
#[derive(Debug, clap::Args)]
pub struct FarmArgs {
    /// Run on the board of this labgrid place: acquired for the run and released however it
    /// ends; its console is the place's NetworkSerialPort (RFC 2217), its power
    /// `labgrid-client power`. --board still gives pacing and timeouts. A place you acquired
    /// beforehand is used and left acquired; `+TOKEN` (or `+` with $LG_TOKEN) is the place of
    /// that reservation. `harness run` given no target takes $LG_PLACE.
    #[arg(long, value_name = "NAME", conflicts_with = "serial")]
    pub place: Option<String>,
    /// The labgrid coordinator, HOST:PORT. Default: $LG_COORDINATOR, as labgrid-client takes it.
    #[arg(long, value_name = "HOST:PORT", requires = "place")]
    pub coordinator: Option<String>,
    /// Reach the farm through this SSH host, as labgrid-client's -P/--proxy does: HOST,
    /// USER@HOST or a Host of your SSH configuration. labgrid-client gets it for the
    /// coordinator and the power switch; the place's serial port is reached through an SSH
    /// forward (`ssh -L`, never prompting: keys or an agent). Default: $LG_PROXY. An exporter
    /// started --isolated is always reached through its own host, as labgrid-client does.
    #[arg(long, short = 'P', value_name = "HOST")]
    pub proxy: Option<String>,
    /// When someone holds the place, wait for it at most this long (e.g. 30m) instead of
    /// ending at once: the place is reserved as `labgrid-client reserve --wait name=NAME`
    /// does (waiting jobs are served in order), acquired with the reservation's token once
    /// the coordinator allocates it, and the reservation cancelled when the run ends. stderr
    /// shows who holds the place and how long the run has waited; a wait that runs out ends
    /// the run with exit 2 naming the holder.
    #[arg(long, value_name = "DURATION", requires = "place", value_parser = parse_wait)]
    pub place_wait: Option<std::time::Duration>,
}

/// A `--place-wait` duration: humantime text, not zero, at most the longest a file may give.
fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    r2s_harness::config::Timeout::parse(text)
        .map(r2s_harness::config::Timeout::get)
        .map_err(|e| e.to_string())
}

impl FarmArgs {
    /// `harness run` given neither `--serial`, `--image` nor `--place` runs on `$LG_PLACE`, as
    /// labgrid-client takes it (before the project file's image fills the gap).
    pub fn place_from_lg_place(cli: &mut Cli) {
        if let Command::Run(args) = &mut cli.command {
            if args.image.is_none() && args.serial.is_none() && args.farm.place.is_none() {
                args.farm.place = std::env::var("LG_PLACE").ok().filter(|p| !p.is_empty());
            }
        }
    }

    /// The place asked for, reached through `labgrid-client` on PATH.
    pub fn labgrid(&self) -> Option<r2s_harness::targets::labgrid::Labgrid> {
        Some(r2s_harness::targets::labgrid::Labgrid {
            client: PathBuf::from("labgrid-client"),
            coordinator: self.coordinator.clone(),
            place: self.place.clone()?,
            proxy: self
                .proxy
                .clone()
                .or_else(|| std::env::var("LG_PROXY").ok())
                .filter(|proxy| !proxy.is_empty()),
        })
    }
}

/// Where QEMU and its firmware are.
#[derive(Clone, Debug, clap::Args)]
pub struct QemuArgs {
    /// U-Boot firmware for QEMU's virt machine. Default: $R2S_FIRMWARE, else Debian's
    /// /usr/lib/u-boot/qemu_arm64/u-boot.bin, else u-boot.bin in a Nix profile (nixpkgs'
    /// ubootQemuAarch64).
    #[arg(long, value_name = "PATH")]
    pub firmware: Option<PathBuf>,
    /// The QEMU binary.
    #[arg(long = "qemu", value_name = "PATH", default_value = "qemu-system-aarch64")]
    pub binary: PathBuf,
}

impl QemuArgs {
    /// The QEMU configuration these arguments ask for.
    pub fn config(&self) -> r2s_harness::targets::qemu::QemuConfig {
        r2s_harness::targets::qemu::QemuConfig {
            qemu: self.binary.clone(),
            firmware: r2s_harness::targets::firmware::find(self.firmware.clone()),
            ..Default::default()
        }
    }
}

/// `harness run`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Disk image to boot: raw, or compressed as `nix build` leaves it: .img.zst, .xz, .gz, .bz2 (unpacked
    /// once into the cache). Default: the harness's fixture image, built if needed (only
    /// inside the harness's source checkout). With
    /// --serial: the image the board's card was written from, read (never booted) for the
    /// extlinux LABELs that `menu = "LABEL"` steps name.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
    /// Run on a real board through this serial console (a /dev/serial/by-id/… path, a
    /// pseudo-terminal, or tcp://HOST:PORT of a serial server's raw TCP port) instead of
    /// booting an image under QEMU. The board is powered as its profile says.
    #[arg(long, value_name = "DEV", conflicts_with = "place")]
    pub serial: Option<PathBuf>,
    #[command(flatten)]
    pub farm: FarmArgs,
    /// Board profile: a built-in name (nanopi-r2s, qemu-virt) or a TOML file. Default:
    /// nanopi-r2s with --serial, qemu-virt otherwise.
    #[arg(long, value_name = "BOARD")]
    pub board: Option<String>,
    /// A labgrid environment file (the `targets: main: drivers:` YAML labgrid's tools read):
    /// its ShellDriver's `prompt` is the shell's prompt of every login that names none, and
    /// its `username` and `password` replace the harness's default login (root, the password
    /// in $R2S_PASSWORD; a set R2S_PASSWORD wins). Scenario files' own logins win.
    #[arg(long, value_name = "FILE")]
    pub lg_env: Option<PathBuf>,
    /// Scenario files or directories of them. Default: the health check written from the image
    /// (written beside the transcripts as `health.toml`), then the shipped scenarios.
    #[arg(value_name = "SCENARIO_FILE|DIR")]
    pub scenarios: Vec<PathBuf>,
    /// Run the health check written from the image, and no other scenario.
    #[arg(long, conflicts_with = "scenarios")]
    pub health_only: bool,
    /// Write JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write the HTML report here: one self-contained page (summary, stage timelines, failure
    /// excerpts, searchable transcripts, a replay of the console). Default:
    /// `report.html` in the transcripts directory.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Directory for transcripts (raw bytes, timestamped log, asciicast).
    #[arg(long, value_name = "DIR", default_value = "r2s-transcripts")]
    pub transcripts: PathBuf,
    #[command(flatten)]
    pub qemu: QemuArgs,
    /// Boot the image as it is, even where QEMU's virt machine cannot honour it: its
    /// extlinux configuration exactly as written (an R2S console=ttyS2 then leaves the console
    /// silent), its initrd without the disk drivers otherwise added to it, and the firmware's
    /// load addresses unmoved (a kernel past them is refused by U-Boot).
    #[arg(long, conflicts_with = "serial")]
    pub no_adapt: bool,
    /// Attach the image on this bus under QEMU instead of the one chosen from what the
    /// image's kernel and initrd can drive (the first of virtio, nvme, ahci, usb they can).
    #[arg(long, conflicts_with_all = ["serial", "place"], value_name = "BUS", value_enum)]
    pub disk_bus: Option<r2s_harness::qemu_devices::DiskBus>,
    /// Where to keep what later runs of an unchanged image can reuse: a compressed image's
    /// unpacked copy, the adaptation's shim disk, a moved firmware. Default: $R2S_CACHE_DIR, else $XDG_CACHE_HOME/r2s-harness, else
    /// ~/.cache/r2s-harness.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compare stage timings with a baseline and fail the run if a stage regressed: a
    /// `<scenario>.timings.json` file, a directory of them (an earlier run's --transcripts), or
    /// a file written by --write-baseline.
    #[arg(long, value_name = "FILE|DIR")]
    pub baseline: Option<PathBuf>,
    /// How many percent slower than the baseline a stage may get. Changes under 0.5 s never
    /// count: short stages jitter by that much.
    #[arg(
        long,
        value_name = "PCT",
        default_value = "20",
        value_parser = timings::parse_percent,
        requires = "baseline"
    )]
    pub max_regression: f64,
    /// Write every scenario's stage timings of this run into one file, for a later --baseline.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Where `start = "login"` scenarios keep the snapshot they start from, shared between runs.
    /// Default: `snapshots` in the cache directory (see --cache-dir).
    #[arg(long, value_name = "DIR")]
    pub snapshot_cache: Option<PathBuf>,
    /// Wait out U-Boot's autoboot delay and the extlinux menu's timeout, as a board left alone
    /// does. Without it, QEMU boots (and boards whose profile says `skip_countdowns = true`)
    /// stop autoboot at once, run U-Boot's own bootcmd and choose the menu's DEFAULT entry,
    /// unless a scenario's steps need the countdown.
    #[arg(long)]
    pub real_time_boot: bool,
    /// Boot every `start = "login"` scenario cold (and log in) instead of restoring a snapshot.
    #[arg(long, conflicts_with = "snapshot_cache")]
    pub no_snapshots: bool,
    /// How many `start = "login"` scenarios run at once. Default: the number of cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// First write IMG to the board's card, as `harness flash` does after inspect (with every
    /// device guard, and a read-back), then power the board on and run the scenarios. With
    /// --serial, through the SD-mux of the board profile (`[sdmux]` with `device`); with
    /// --place, through the place's SD-mux (`labgrid-client sd-mux host|dut`, the card its
    /// block device on this machine), the board powered off through the place first.
    #[arg(long, value_name = "IMG")]
    pub flash: Option<PathBuf>,
    /// With --flash: write without asking (required when stdin is not a terminal).
    #[arg(long, requires = "flash")]
    pub yes: bool,
    /// With --flash: allow a card device that is not removable (sysfs removable = 0, not on USB
    /// or MMC).
    #[arg(long, requires = "flash")]
    pub allow_fixed: bool,
    /// The most each transcript file of a scenario holds, e.g. 256MiB, 64KiB or a byte count:
    /// `.raw` keeps its first bytes, `.log` its head and tail, `.cast` its first events.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub transcript_limit: u64,
    /// Print the names of the scenarios the run would run, as its reports name them, one a
    /// line, and exit; nothing is built or booted (--image is not read).
    #[arg(long)]
    pub list: bool,
    /// Run only the scenarios whose name matches PATTERN: a glob matched against the whole
    /// name when PATTERN holds `*`, `?` or `[`, else a substring. Case-sensitive; repeat it to
    /// run the scenarios matching any.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Run a failed scenario again, up to N more times. One that passes on a later try is
    /// reported FLAKY (JUnit: a passing test case holding a `<flakyFailure>` per failed try);
    /// one that fails every try is a failure with a `<rerunFailure>` per later try. The
    /// transcripts of a failed try are kept as `<scenario>.tryN.{log,raw,cast}`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// `json`: one JSON object per suite event on stdout, a line each (see the README); the
    /// text report and remarks then go to stderr.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    #[command(flatten)]
    pub debug: DebugArgs,
}

/// Stopping where something happens, to look around.
#[derive(Debug, clap::Args)]
pub struct DebugArgs {
    /// Where a scenario fails, keep the machine as it is and attach this terminal to its
    /// console (Ctrl-] leaves; the run then goes on, its verdicts unchanged). Needs a terminal.
    #[arg(long)]
    pub attach_on_failure: bool,
    /// Stop before step N of every scenario (or of SCENARIO only) and attach this terminal to
    /// the console, as a `pause` step does. Ignored, with a warning, without a terminal.
    #[arg(long, value_name = "[SCENARIO:]N")]
    pub pause_at: Vec<r2s_harness::runner::PauseAt>,
    /// Keep each failed scenario's QEMU machine as it was at the failure, as the state
    /// `failed-<scenario>` in the snapshot cache: `harness console --image IMG --from
    /// failed-<scenario>` reopens it, `harness states` lists them.
    #[arg(long, conflicts_with = "no_snapshots")]
    pub keep_failed: bool,
    /// With --keep-failed: how many kept states to leave, the newest; older ones are removed.
    #[arg(long, value_name = "N", requires = "keep_failed", default_value_t = r2s_harness::snapshot::kept::DEFAULT_KEPT as u16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub keep_failed_max: u16,
}

/// What `run` writes on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// The text report.
    #[default]
    Human,
    /// A JSON object per suite event, for programs.
    Json,
}

/// Prints `message` on stderr after `harness: `. Messages quote images, scenario files and
/// console text (a LABEL, a file name, a command's output), so every control character but the
/// line breaks is shown escaped: nothing in one can move the cursor, recolour the terminal or
/// reorder what it shows.
fn say(message: impl std::fmt::Display) {
    let message = message.to_string();
    eprintln!("harness: {}", r2s_harness::escape::escape_keeping_lines(&message));
}

/// Prints `message` as [`say`] does, after `warning: `, unless `-q` (which shows errors only).
fn warn(message: impl std::fmt::Display) {
    if !human::get().quiet {
        say(format!("warning: {message}"));
    }
}

/// A size in bytes: a number, optionally followed by KiB, MiB or GiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?}; use KiB, MiB or GiB")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n >= 1024)
        .ok_or_else(|| format!("{text:?} is not a size of at least 1024 bytes"))
}

/// Sets up the log and where human output goes, as the global flags say; before anything
/// else is printed.
pub fn set_up_output(cli: &Cli) {
    let machine_stdout =
        matches!(&cli.command, Command::Run(args) if args.message_format == MessageFormat::Json);
    human::set(human::Human {
        to_stderr: machine_stdout,
        quiet: cli.quiet,
    });
    logging::init(cli.quiet, cli.verbose);
}

/// Runs the command; returns the process exit code.
pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Console(args) => console::console(args).await,
        Command::States(args) => states::states(&args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Flash(args) => flash::flash(args).await,
        Command::Scenarios(command) => scenarios::scenarios(command),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { dir } => manual::man(dir.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units_and_refuse_tiny_or_unknown_ones() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("10").is_err());
        assert!(parse_size("5MB").unwrap_err().contains("unknown unit \"MB\""));
        assert!(parse_size("99999999999999GiB").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
