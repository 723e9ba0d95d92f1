//! The QEMU target: `qemu-system-aarch64 -M virt` with U-Boot's `qemu_arm64` build as firmware.
//!
//! The image is attached behind a qcow2 overlay in a private temporary directory, so QEMU can
//! write (U-Boot and Linux both do) without touching the user's file. The console is QEMU's stdio
//! character device, carried over pipes.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::factory::TargetKind;
use super::network::Network;
use super::qemu_disk::disk_args;
use super::qemu_net::{self, RunningNetwork};
use super::qmp::{Qmp, QmpError};
use super::{qemu_img, Console, LocalBoxFuture, Snapshots, StartFuture, StartLog, Target, TargetError};
use crate::adapt::Shim;
use crate::qemu_devices::RootDisk;
use crate::scenario::NetworkSpec;

/// How to start QEMU: a Cortex-A53 `virt` machine with 1 GiB, like the R2S, and the design's two
/// cores where the R2S's RK3328 has four: under TCG each emulated core is a host thread, and two
/// match the two-core machines the tests run on.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    pub firmware: PathBuf,
    pub cpu: String,
    pub smp: u32,
    pub memory_mib: u32,
    /// The bus the image is attached on (see [`super::qemu_disk`]).
    pub root_disk: RootDisk,
    /// Appended after the harness's own arguments.
    pub extra_args: Vec<String>,
    /// Whether the board's NICs are attached (see [`super::qemu_net`]).
    pub nics: bool,
    /// The tap device the LAN NIC is connected to, for this start only: never part of
    /// [`QemuTarget::args`], so a snapshot's key does not depend on it.
    pub lan_tap: Option<String>,
    /// What the harness changed about the machine for this image (a firmware whose load
    /// addresses were moved), noted in every transcript when the machine starts. Not part of
    /// [`QemuTarget::args`]: the change itself is (the firmware file).
    pub notes: Vec<String>,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            qemu: "qemu-system-aarch64".into(),
            qemu_img: "qemu-img".into(),
            firmware: super::firmware::find(None),
            cpu: "cortex-a53".into(),
            smp: 2,
            memory_mib: 1024,
            root_disk: RootDisk::default(),
            extra_args: Vec::new(),
            nics: false,
            lan_tap: None,
            notes: Vec::new(),
        }
    }
}

/// Why QEMU could not be started.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "firmware {path} not found (install U-Boot's qemu_arm64 build: Debian's u-boot-qemu or nixpkgs' ubootQemuAarch64; or name it with --firmware or R2S_FIRMWARE)"
    )]
    FirmwareMissing { path: PathBuf },
    #[error("image {path}: {source}")]
    Image { path: PathBuf, source: io::Error },
    #[error("cannot create the private directory for QEMU's sockets and overlay: {0}")]
    TempDir(io::Error),
    #[error("cannot run {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("`{command}` failed: {stderr}")]
    QemuImg { command: String, stderr: String },
    #[error("restoring the snapshot: {0}")]
    Snapshot(#[from] QmpError),
    #[error("QEMU is not running")]
    NotRunning,
}

/// Copies `disks`, disk `i` to `copy_of(i)`, on the blocking pool (a copy of a hundred MiB
/// must not stall other scenarios running on this thread); returns the copies.
async fn copy_disks(
    disks: &[PathBuf],
    copy_of: impl Fn(usize) -> PathBuf,
) -> Result<Vec<PathBuf>, QemuError> {
    let mut copies = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        let copy = copy_of(i);
        tokio::fs::copy(disk, &copy)
            .await
            .map_err(|source| QemuError::Image {
                path: disk.clone(),
                source,
            })?;
        copies.push(copy);
    }
    Ok(copies)
}

/// The file name of disk `index` of a machine saved with [`QemuMachine::save_into`].
pub fn saved_disk_name(index: usize) -> String {
    format!("disk{index}.qcow2")
}

/// The file name of the machine state saved as `tag` ([`QemuMachine::save_into`], an entry of
/// the snapshot cache): it lies beside the saved disks.
pub fn saved_state_name(tag: &str) -> String {
    format!("{tag}.state")
}

/// The state saved as `tag` beside `disks` (the first disk's directory).
pub fn state_beside(disks: &[PathBuf], tag: &str) -> PathBuf {
    let dir = disks.first().and_then(|d| d.parent()).unwrap_or(Path::new("."));
    dir.join(saved_state_name(tag))
}

/// Loading the state of a 1 GiB guest takes a fraction of a second; this is for a loaded
/// machine.
const LOAD_LIMIT: Duration = Duration::from_secs(60);

/// Saving a 1 GiB guest takes a fraction of a second; this is for a loaded machine.
const SAVE_LIMIT: Duration = Duration::from_secs(120);

/// How a spawned QEMU begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// Running from power-on.
    Boot,
    /// Stopped, waiting for a saved machine state ([`Qmp::load_state`]).
    Incoming,
}

/// A running QEMU. Dropping it kills and reaps the process, on every path out of the harness.
pub struct QemuTarget {
    child: Child,
    // Held for its Drop: removes the overlay and the QMP socket after QEMU is gone.
    dir: TempDir,
    stderr: Option<tokio::task::JoinHandle<Vec<u8>>>,
    /// Forwards and the LAN namespace, when the NICs are attached; dropped after QEMU is killed.
    pub(super) net: Option<RunningNetwork>,
    /// The qcow2 disks it runs on, in attachment order.
    disks: Vec<PathBuf>,
}

impl QemuTarget {
    /// The arguments QEMU is started with, minus the program name. Public so that benchmarks can
    /// start raw QEMU exactly as the harness does.
    ///
    /// `disks` are qcow2 files in attachment order: the image first, the shim U-Boot boots
    /// from last (see [`super::qemu_disk`]).
    pub fn args(config: &QemuConfig, disks: &[PathBuf], qmp: &Path) -> Vec<OsString> {
        Self::args_with_lan(config, disks, qmp, None)
    }

    fn args_with_lan(
        config: &QemuConfig,
        disks: &[PathBuf],
        qmp: &Path,
        lan_tap: Option<&str>,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |s: &str| args.push(s.into());
        push("-M");
        push("virt");
        push("-cpu");
        push(&config.cpu);
        push("-smp");
        push(&config.smp.to_string());
        push("-m");
        push(&config.memory_mib.to_string());
        // Without a NIC model QEMU's virt machine wants efi-virtio.rom for its default NIC.
        push("-nic");
        push("none");
        push("-display");
        push("none");
        push("-monitor");
        push("none");
        // signal=off: a Ctrl-C typed at the board must reach the board, not stop QEMU.
        push("-chardev");
        push("stdio,id=console,signal=off");
        push("-serial");
        push("chardev:console");
        push("-bios");
        args.push(config.firmware.clone().into());
        let mut qmp_arg = OsString::from("unix:");
        qmp_arg.push(qmp);
        qmp_arg.push(",server=on,wait=off");
        args.push("-qmp".into());
        args.push(qmp_arg);
        args.extend(disk_args(config.root_disk.bus, disks));
        if config.nics {
            args.extend(super::qemu_net::args(lan_tap).into_iter().map(OsString::from));
        }
        for extra in &config.extra_args {
            args.push(extra.into());
        }
        args
    }

    /// Starts QEMU on `image` (raw) and returns the target and its console. A `boot_shim` disk
    /// (raw), when given, is attached after the image so that U-Boot boots from it while Linux
    /// still finds the image's partitions.
    pub async fn start(
        config: &QemuConfig,
        image: &Path,
        boot_shim: Option<&Path>,
    ) -> Result<(QemuTarget, Console), QemuError> {
        check_firmware(config)?;
        let image = std::fs::canonicalize(image).map_err(|source| QemuError::Image {
            path: image.to_owned(),
            source,
        })?;
        let dir = private_dir()?;
        let mut disks = vec![dir.path().join("disk.qcow2")];
        qemu_img::create_overlay(config, &image, "raw", &disks[0]).await?;
        if let Some(shim) = boot_shim {
            disks.push(dir.path().join("shim.qcow2"));
            qemu_img::create_overlay(config, shim, "raw", &disks[1]).await?;
        }
        Self::spawn(config, dir, &disks, Begin::Boot)
    }

    /// Starts QEMU on qcow2 `disks` the caller owns, in attachment order (see [`QemuTarget::args`]).
    /// QEMU writes to them. Used to reach a state worth snapshotting.
    pub async fn start_on_disks(
        config: &QemuConfig,
        disks: &[PathBuf],
    ) -> Result<(QemuTarget, Console), QemuError> {
        check_firmware(config)?;
        Self::spawn(config, private_dir()?, disks, Begin::Boot)
    }

    /// Starts QEMU from the machine state saved as `tag` beside `disks` (qcow2, attachment
    /// order; see [`saved_state_name`]): the disks are copied into the target's private
    /// directory first, so the originals are never written and can be restored again (they
    /// hold only what the guest wrote, a few MB; the state file is only read). QEMU starts
    /// waiting for the state, loads it ([`Qmp::load_state`], whose error is returned) and runs
    /// on; the second value is how long the load took.
    pub async fn restore(
        config: &QemuConfig,
        disks: &[PathBuf],
        tag: &str,
    ) -> Result<(QemuTarget, Console, Duration), QemuError> {
        check_firmware(config)?;
        let dir = private_dir()?;
        let copies = copy_disks(disks, |i| dir.path().join(format!("restored{i}.qcow2"))).await?;
        crate::debug_timing::mark("entry's disks copied for QEMU");
        Self::spawn_and_load(config, dir, &copies, &state_beside(disks, tag)).await
    }

    /// Starts QEMU on qcow2 `disks` the caller owns, written in place, from the machine state
    /// in `state` (a priming run that goes on from another state's snapshot).
    pub async fn resume_on_disks(
        config: &QemuConfig,
        disks: &[PathBuf],
        state: &Path,
    ) -> Result<(QemuTarget, Console, Duration), QemuError> {
        check_firmware(config)?;
        Self::spawn_and_load(config, private_dir()?, disks, state).await
    }

    async fn spawn_and_load(
        config: &QemuConfig,
        dir: TempDir,
        disks: &[PathBuf],
        state: &Path,
    ) -> Result<(QemuTarget, Console, Duration), QemuError> {
        let (target, console) = Self::spawn(config, dir, disks, Begin::Incoming)?;
        crate::debug_timing::mark("QEMU spawned");
        let started = Instant::now();
        let mut qmp = Qmp::connect(&target.qmp_socket()).await?;
        crate::debug_timing::mark("QMP handshake done");
        qmp.load_state(state, LOAD_LIMIT).await?;
        crate::debug_timing::mark("machine state loaded");
        qmp.resume().await?;
        crate::debug_timing::mark("machine resumed");
        Ok((target, console, started.elapsed()))
    }

    fn spawn(
        config: &QemuConfig,
        dir: TempDir,
        disks: &[PathBuf],
        begin: Begin,
    ) -> Result<(QemuTarget, Console), QemuError> {
        let qmp = dir.path().join("qmp.sock");
        let mut args = Self::args_with_lan(config, disks, &qmp, config.lan_tap.as_deref());
        if begin == Begin::Incoming {
            // Stopped, waiting for a state to load; still stopped once it is loaded.
            args.extend(["-S".into(), "-incoming".into(), "defer".into()]);
        }

        let mut command = Command::new(&config.qemu);
        command
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
        // If the harness is killed outright (SIGKILL), the kernel takes QEMU with it.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| QemuError::Spawn {
            program: config.qemu.clone(),
            source,
        })?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut stderr = child.stderr.take().expect("stderr was piped");
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            // Bounded: QEMU's complaints are short; a flood must not grow memory.
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
            buf
        });
        let console = Console {
            reader: Box::pin(stdout),
            writer: Box::pin(stdin),
            notices: Default::default(),
        };
        Ok((
            QemuTarget {
                child,
                dir,
                stderr: Some(stderr),
                net: None,
                disks: disks.to_vec(),
            },
            console,
        ))
    }

    /// The QMP socket QEMU listens on.
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.path().join("qmp.sock")
    }

    /// QEMU's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The private directory holding the overlay and the QMP socket.
    pub fn private_dir(&self) -> &Path {
        self.dir.path()
    }

    /// What QEMU printed on stderr, if it has exited (e.g. a bad argument or a missing file).
    pub async fn exit_report(&mut self) -> Option<String> {
        let status = tokio::time::timeout(Duration::from_millis(500), self.child.wait())
            .await
            .ok()?
            .ok()?;
        let stderr = match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => Vec::new(),
        };
        Some(format!(
            "QEMU exited ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ))
    }

    /// Waits up to `limit` for QEMU to exit by itself (e.g. after a QMP `quit`); whether it did.
    pub async fn wait_exit(&mut self, limit: Duration) -> bool {
        matches!(tokio::time::timeout(limit, self.child.wait()).await, Ok(Ok(_)))
    }

    /// Kills QEMU and waits for it to be reaped.
    pub async fn shutdown(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for QemuTarget {
    fn drop(&mut self) {
        // Kill and reap here rather than leave it to tokio's orphan queue: the harness may be
        // exiting, and a QEMU must never outlive it.
        let _ = self.child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

fn check_firmware(config: &QemuConfig) -> Result<(), QemuError> {
    if config.firmware.is_file() {
        Ok(())
    } else {
        Err(QemuError::FirmwareMissing {
            path: config.firmware.clone(),
        })
    }
}

fn private_dir() -> Result<TempDir, QemuError> {
    crate::scratch::dir("qemu").map_err(QemuError::TempDir)
}

/// QEMU booting an image, before any run: what [`super::TargetSpec::qemu`] makes, and what
/// every state saved from such a machine depends on.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    pub config: QemuConfig,
    /// The raw image; never written.
    pub image: PathBuf,
    /// The disk U-Boot boots from when the image was adapted for QEMU (see [`crate::adapt`]).
    pub shim: Option<Arc<Shim>>,
    /// The compressed file `image` was unpacked from, if it was: its bytes name the image's,
    /// and there are fewer of them to hash for a snapshot's key.
    pub unpacked_from: Option<PathBuf>,
}

impl TargetKind for QemuSpec {
    fn open(&self) -> Box<dyn Target> {
        Box::new(QemuMachine::new(self.clone()))
    }

    fn against(&self) -> &Path {
        &self.image
    }

    fn side_by_side(&self) -> bool {
        true
    }

    fn has_snapshots(&self) -> bool {
        true
    }

    fn lan_unavailable(&self) -> Option<String> {
        super::qemu_net::lan_unavailable()
    }
}

/// What a [`QemuMachine`] boots.
#[derive(Clone)]
enum Disks {
    /// A raw image behind a private overlay, and the adaptation shim U-Boot boots from, if any
    /// (the rest of a [`QemuSpec`] but its configuration, which is the machine's own).
    Image {
        image: PathBuf,
        shim: Option<Arc<Shim>>,
        unpacked_from: Option<PathBuf>,
    },
    /// qcow2 disks the caller owns, written in place (the priming boot's), started from
    /// power-on or from the machine state in the file `resume`.
    Owned {
        disks: Vec<PathBuf>,
        resume: Option<PathBuf>,
    },
}

/// QEMU as a [`Target`]: starting it spawns `qemu-system-aarch64`, stopping it kills and reaps
/// the process. Booting an image, it can also start from a snapshot of a state saved earlier
/// ([`Target::snapshots`]); started on disks of its own, it can save its state
/// ([`QemuMachine::save_and_quit`]).
pub struct QemuMachine {
    // First, so that it drops first: QEMU is gone before the shim disk it reads.
    pub(super) running: Option<QemuTarget>,
    pub(super) config: QemuConfig,
    disks: Disks,
    /// The NICs' forwards, when a scenario attached them ([`Network::attach`]).
    pub(super) network: Option<NetworkSpec>,
}

impl QemuMachine {
    /// QEMU booting the image of `spec` (see [`QemuTarget::start`]).
    pub fn new(spec: QemuSpec) -> QemuMachine {
        let QemuSpec {
            config,
            image,
            shim,
            unpacked_from,
        } = spec;
        QemuMachine {
            config,
            disks: Disks::Image {
                image,
                shim,
                unpacked_from,
            },
            running: None,
            network: None,
        }
    }

    /// QEMU on qcow2 `disks` the caller owns (see [`QemuTarget::start_on_disks`]).
    pub fn on_disks(config: QemuConfig, disks: Vec<PathBuf>) -> QemuMachine {
        QemuMachine::owning(config, disks, None)
    }

    /// QEMU on qcow2 `disks` the caller owns, started from the machine state in `state`,
    /// saved when the disks were as they are (see [`QemuTarget::resume_on_disks`]).
    pub fn on_disks_at(config: QemuConfig, disks: Vec<PathBuf>, state: PathBuf) -> QemuMachine {
        QemuMachine::owning(config, disks, Some(state))
    }

    fn owning(config: QemuConfig, disks: Vec<PathBuf>, resume: Option<PathBuf>) -> QemuMachine {
        QemuMachine {
            config,
            disks: Disks::Owned { disks, resume },
            running: None,
            network: None,
        }
    }

    /// The QEMU process, while it runs.
    pub fn running(&mut self) -> Option<&mut QemuTarget> {
        self.running.as_mut()
    }

    /// Saves the running machine's state into `into` as [`saved_state_name`]`(tag)`, lets QEMU
    /// quit, and copies the disks into `into` as `disk0.qcow2` … (attachment order); returns the
    /// copies. The machine is gone afterwards, whatever happened.
    pub async fn save_into(&mut self, tag: &str, into: &Path) -> Result<Vec<PathBuf>, QemuError> {
        let Some(running) = self.running.as_ref() else {
            return Err(QemuError::NotRunning);
        };
        let disks = running.disks.clone();
        // The disks live in the target's private directory: copied before it goes.
        let copied = match self.save_and_quit(&into.join(saved_state_name(tag))).await {
            Ok(()) => copy_disks(&disks, |i| into.join(saved_disk_name(i))).await,
            Err(e) => Err(e.into()),
        };
        if let Some(target) = self.running.take() {
            target.shutdown().await;
        }
        copied
    }

    /// Saves the running machine's state into the file `state` ([`Qmp::save_state`]: the
    /// guest stopped, so its disks stay as they were at that moment) and asks QEMU to quit, so
    /// that the disks are closed cleanly. Does nothing on a machine that is not running.
    pub async fn save_and_quit(&mut self, state: &Path) -> Result<(), QmpError> {
        let Some(running) = self.running.as_mut() else {
            return Ok(());
        };
        let mut qmp = Qmp::connect(&running.qmp_socket()).await?;
        qmp.save_state(state, SAVE_LIMIT).await?;
        // QEMU created it as its umask allows; the guest's memory may hold a password typed at
        // its login.
        crate::private::restrict_file(state).map_err(|source| QmpError::Io {
            what: format!("restricting {}", state.display()),
            source,
        })?;
        // QEMU may close the socket before it replies to quit; either way it is leaving.
        let _ = qmp
            .execute("quit", serde_json::json!({}), Duration::from_secs(10))
            .await;
        running.wait_exit(Duration::from_secs(10)).await;
        Ok(())
    }
}

impl Target for QemuMachine {
    fn describe(&self) -> String {
        match &self.disks {
            Disks::Image { image, .. } => format!("QEMU booting {}", image.display()),
            Disks::Owned { disks, .. } => format!("QEMU on {} disk(s)", disks.len()),
        }
    }

    fn start<'a>(&'a mut self, _attached: Option<Console>, log: &'a mut dyn StartLog) -> StartFuture<'a> {
        Box::pin(async move {
            if let Disks::Image { shim: Some(shim), .. } = &self.disks {
                // What the adaptation added to the initrd U-Boot loads: the transcript says it.
                for line in shim.notes() {
                    log.note(&format!("adapted for QEMU: {line}"));
                }
            }
            log.note(&super::qemu_disk::note(&self.config.root_disk));
            for note in &self.config.notes {
                log.note(note);
            }
            let (config, lan) = qemu_net::start_config(&self.config, self.network.as_ref());
            let (mut target, console) = match &self.disks {
                Disks::Image { image, shim, .. } => {
                    QemuTarget::start(&config, image, shim.as_ref().map(|s| s.disk())).await
                }
                Disks::Owned { disks, resume: None } => QemuTarget::start_on_disks(&config, disks).await,
                Disks::Owned {
                    disks,
                    resume: Some(state),
                } => QemuTarget::resume_on_disks(&config, disks, state)
                    .await
                    .map(|(target, console, _)| (target, console)),
            }
            .map_err(TargetError::from)?;
            target.net = qemu_net::connect(&target.qmp_socket(), self.network.as_ref(), lan)
                .await
                .map_err(TargetError::from)?;
            self.running = Some(target);
            Ok(console)
        })
    }

    fn closed_because(&mut self) -> LocalBoxFuture<'_, Option<String>> {
        Box::pin(async move {
            match self.running.as_mut() {
                Some(target) => target.exit_report().await,
                None => None,
            }
        })
    }

    fn stop<'a>(&'a mut self, _log: &'a mut dyn StartLog) -> LocalBoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            if let Some(target) = self.running.take() {
                target.shutdown().await;
            }
            Ok(())
        })
    }

    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        match &self.disks {
            Disks::Image { .. } => Some(self),
            Disks::Owned { .. } => None,
        }
    }

    fn network(&mut self) -> Option<&mut dyn Network> {
        Some(self)
    }
}

impl Snapshots for QemuMachine {
    fn spec(&self) -> QemuSpec {
        let Disks::Image {
            image,
            shim,
            unpacked_from,
        } = &self.disks
        else {
            unreachable!("snapshots() is offered only on a machine booting an image");
        };
        // The machine's configuration is the one copy: attaching a network gives it NICs, and
        // a snapshot's key must tell a machine with NICs from one without.
        QemuSpec {
            config: self.config.clone(),
            image: image.clone(),
            shim: shim.clone(),
            unpacked_from: unpacked_from.clone(),
        }
    }

    fn save_into<'a>(
        &'a mut self,
        tag: &'a str,
        into: &'a Path,
    ) -> LocalBoxFuture<'a, Result<Vec<PathBuf>, TargetError>> {
        Box::pin(async move { Ok(QemuMachine::save_into(self, tag, into).await?) })
    }

    fn start_at<'a>(
        &'a mut self,
        disks: &'a [PathBuf],
        tag: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Console, Duration), TargetError>> {
        Box::pin(async move {
            let (config, lan) = qemu_net::start_config(&self.config, self.network.as_ref());
            let (mut target, console, loaded) = QemuTarget::restore(&config, disks, tag).await?;
            target.net = qemu_net::connect(&target.qmp_socket(), self.network.as_ref(), lan).await?;
            self.running = Some(target);
            Ok((console, loaded))
        })
    }
}
