//! A real board: its console reached through a [`ConsolePort`] (a UART, a TCP socket to a
//! serial server), its power switched as its profile says (commands, the operator, or not at
//! all).
//!
//! The console is opened before the power is switched, so no boot output is missed and a port
//! another program holds is refused before its board is touched. However the run ends, a board
//! this target powered on is powered off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::factory::TargetKind;
use super::power::{self, OffOnDrop, PowerError};
use super::{Console, LocalBoxFuture, StartFailure, StartFuture, StartLog, Target, TargetError};
use crate::board::{Board, Power};

/// With `manual = true` power: how long the operator has to power-cycle the board.
pub const MANUAL_POWER_WAIT: Duration = Duration::from_secs(5 * 60);

/// The first words an R2S prints: Rockchip's DDR init blob (`DDR version …`) or U-Boot's TPL,
/// SPL or proper (`U-Boot TPL 2024.01 …`).
const BOOTLOADER_BANNERS: [&[u8]; 2] = [b"U-Boot", b"DDR"];

/// How a board's console is reached. A new kind of console (a network serial server, a
/// remote lab's port) is a new implementation of this trait and one line in
/// [`super::TargetSpec`].
pub trait ConsolePort {
    /// Where the console is, for messages: a device path, `tcp://HOST:PORT`.
    fn describe(&self) -> String;
    /// Opens the console, exclusively where the port allows. [`PortError::Absent`] when
    /// nothing is there yet (a USB-UART powered from the board's own hub appears only once the
    /// board is on).
    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>>;
    /// Closes the console opened last, releasing the port for other programs.
    fn close(&mut self);
}

/// Why a console port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Nothing there (yet).
    #[error(transparent)]
    Absent(Box<dyn std::error::Error + Send + Sync>),
    /// There, but unusable: held by another program, wrong settings, refused.
    #[error(transparent)]
    Unusable(Box<dyn std::error::Error + Send + Sync>),
    /// Did not appear within the time it had.
    #[error("{what} did not appear within {}", humantime::format_duration(*.waited))]
    NeverAppeared { what: String, waited: Duration },
}

/// A board on a console port, before any run: what [`super::TargetSpec::board`] makes.
#[derive(Debug)]
pub struct BoardSpec {
    pub board: Board,
    /// `--serial` as given.
    pub port: PathBuf,
}

impl TargetKind for BoardSpec {
    fn open(&self) -> Box<dyn Target> {
        let port = super::factory::console_port(&self.port, &self.board);
        Box::new(BoardTarget::new(self.board.clone(), port))
    }

    fn against(&self) -> &Path {
        &self.port
    }

    fn board(&self) -> Option<&Board> {
        Some(&self.board)
    }
}

/// A board on a console port, powered by its profile.
pub struct BoardTarget {
    board: Board,
    port: Box<dyn ConsolePort>,
    /// Armed while this target has the board powered on.
    off_guard: Option<OffOnDrop>,
}

impl BoardTarget {
    /// The board `board` on `port`; nothing is opened or switched yet.
    pub fn new(board: Board, port: Box<dyn ConsolePort>) -> BoardTarget {
        BoardTarget {
            board,
            port,
            off_guard: None,
        }
    }

    /// Runs the profile's start sequence, noting each command.
    async fn power_up(&self, log: &mut dyn StartLog) -> Result<(), PowerError> {
        let Power::Commands(commands) = &self.board.power else {
            return Ok(());
        };
        for (what, argv) in commands.start_sequence() {
            log.note(&format!("power {what}: {}", argv.join(" ")));
            power::switch(what, argv, commands.timeout).await?;
        }
        Ok(())
    }

    /// Opens a port that is expected to appear within `limit`.
    async fn open_when_present(&mut self, limit: Duration) -> Result<Console, PortError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.port.open().await {
                Err(PortError::Absent(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(PortError::Absent(_)) => {
                    return Err(PortError::NeverAppeared {
                        what: self.port.describe(),
                        waited: limit,
                    })
                }
                other => return other,
            }
        }
    }
}

impl Target for BoardTarget {
    fn describe(&self) -> String {
        format!(
            "board {} on {} at {} baud 8N1",
            self.board.name,
            self.port.describe(),
            self.board.baud
        )
    }

    fn start<'a>(&'a mut self, attached: Option<Console>, log: &'a mut dyn StartLog) -> StartFuture<'a> {
        Box::pin(async move {
            let opened = match attached {
                Some(console) => Some(console),
                None => match self.port.open().await {
                    Ok(console) => Some(console),
                    Err(PortError::Absent(_)) if self.board.power != Power::None => None,
                    Err(e) => return Err(TargetError::from(e).into()),
                },
            };
            self.power_on(opened, log).await
        })
    }

    fn closed_because(&mut self) -> LocalBoxFuture<'_, Option<String>> {
        // A vanished device says so in the console's own error ("console device gone").
        Box::pin(async { None })
    }

    fn stop<'a>(&'a mut self, log: &'a mut dyn StartLog) -> LocalBoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            // The port closes before any power goes off, so the outage is not mistaken for a
            // vanished device.
            self.port.close();
            let off = self.off_guard.take().and_then(OffOnDrop::disarm);
            if let (Some(off), Power::Commands(commands)) = (off, &self.board.power) {
                log.note(&format!("power off: {}", off.join(" ")));
                power::switch("off", &off, commands.timeout).await?;
            }
            Ok(())
        })
    }

    fn attach(&mut self) -> Option<LocalBoxFuture<'_, Result<Console, TargetError>>> {
        Some(Box::pin(async move { Ok(self.port.open().await?) }))
    }
}

impl BoardTarget {
    /// Powers the board on with the console `opened` already (`None`: not there yet), and
    /// returns the console once the board is booting.
    async fn power_on(
        &mut self,
        opened: Option<Console>,
        log: &mut dyn StartLog,
    ) -> Result<Console, StartFailure> {
        {
            if let Err(e) = self.power_up(log).await {
                return Err(StartFailure::NotUp {
                    expected: "power the board on".to_owned(),
                    detail: e.to_string(),
                });
            }
            // From here on the board is on: however the run ends, it ends with the board off.
            if let Power::Commands(commands) = &self.board.power {
                self.off_guard = Some(OffOnDrop::new(commands.off.as_deref(), commands.timeout));
            }
            let manual = self.board.power == Power::Manual;
            if manual {
                // Asked before waiting for an absent device: the operator's power cycle may be
                // what brings the adapter up.
                log.ask_operator(&format!(
                    "power-cycle board {} now; waiting up to {} for its bootloader on {}",
                    self.board.name,
                    humantime::format_duration(MANUAL_POWER_WAIT),
                    self.port.describe()
                ));
            }
            let mut console = match opened {
                Some(console) => console,
                None => {
                    let limit = if manual {
                        MANUAL_POWER_WAIT
                    } else {
                        self.board.reconnect_timeout
                    };
                    self.open_when_present(limit).await.map_err(TargetError::from)?
                }
            };
            if manual {
                if let Err(detail) = await_banner(&mut console, MANUAL_POWER_WAIT).await {
                    return Err(StartFailure::NotUp {
                        expected: "the board to be power-cycled".to_owned(),
                        detail: detail.to_string(),
                    });
                }
            }
            Ok(console)
        }
    }
}

/// Why no bootloader banner was seen.
#[derive(Debug, thiserror::Error)]
pub enum BannerError {
    #[error("no bootloader banner (U-Boot or DDR) within {} of asking for a power cycle", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("console closed while waiting for the bootloader")]
    Closed,
    #[error(transparent)]
    Read(#[from] std::io::Error),
}

/// Reads until a bootloader banner appears, then puts what was read back in front of the
/// console, so the scenario's clock starts at the banner and its first step still sees it.
async fn await_banner(console: &mut Console, limit: Duration) -> Result<(), BannerError> {
    // Only the tail is kept: a board left running prints without end, and the banner is what
    // follows the power cycle.
    const KEEP: usize = 64 * 1024;
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, console.reader.read(&mut buf)).await {
            Err(_) => return Err(BannerError::Timeout(limit)),
            Ok(Ok(0)) => return Err(BannerError::Closed),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(n)) => n,
        };
        let search_from = seen.len().saturating_sub(8);
        seen.extend_from_slice(&buf[..n]);
        let found = BOOTLOADER_BANNERS
            .iter()
            .any(|banner| memchr::memmem::find(&seen[search_from..], banner).is_some());
        if found {
            console.unread(seen);
            return Ok(());
        }
        if seen.len() > KEEP {
            seen.drain(..seen.len() - KEEP);
        }
    }
}
