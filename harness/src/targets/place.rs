//! A board in a labgrid farm, `--place NAME` (or `+TOKEN`, a reservation): the place is
//! acquired (or, with `--place-wait`, waited for through a reservation) before anything runs
//! and released however the run ends; a place the user acquired beforehand is used as it is
//! and left acquired (dropping the spec releases it: a finished run, a failure, and
//! SIGINT/SIGTERM, which drop the running command). Its console is the place's
//! NetworkSerialPort over RFC 2217, asked of labgrid again at every reconnect (ser2net may come
//! back on another port); its power is `labgrid-client -p NAME power on|off|cycle`. Behind a
//! proxy (`--proxy`, `LG_PROXY`, an exporter started `--isolated`) the serial port is reached
//! through an SSH forward, made again when the port moves, ended when the place is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::board::BoardTarget;
use super::factory::TargetKind;
use super::labgrid::reservation::{Reservation, Waiting};
use super::labgrid::ssh_forward::ForwardSlot;
use super::labgrid::{Acquisition, Labgrid, NetworkSerialPort, PlaceError};
use super::rfc2217::Rfc2217Port;
use super::tcp::TcpPort;
use super::Target;
use crate::board::{Board, Power, PowerCommands};

/// An acquired place; released when the last holder drops it, unless the user held it before
/// the run (then it is theirs to release). The reservation it was acquired through, if any,
/// is cancelled after the release. Its serial port's SSH forward, if it is behind a proxy,
/// ends with it.
#[derive(Debug)]
struct Acquired(Labgrid, Acquisition, Option<Reservation>, ForwardSlot);

impl Acquired {
    /// `HOST:PORT` to connect to for `port`: its own address, or a local forward to it through
    /// the proxy labgrid-client would use.
    fn address(&self, port: &NetworkSerialPort) -> Result<String, PlaceError> {
        match port.proxy(self.0.proxy.as_deref()) {
            None => Ok(format!("{}:{}", port.host, port.port)),
            Some(proxy) => self
                .3
                .to(proxy, &port.host, port.port)
                .map_err(|e| PlaceError::SerialPort {
                    place: self.0.place.clone(),
                    detail: e.to_string(),
                }),
        }
    }
}

impl Drop for Acquired {
    fn drop(&mut self) {
        if self.1 != Acquisition::AlreadyOurs {
            if let Err(e) = self.0.release() {
                eprintln!("harness: {e}");
            }
        }
        // After the release, as `reserve --wait` → run → release → cancel-reservation goes.
        drop(self.2.take());
    }
}

/// A place, acquired, with the board profile its board runs by.
#[derive(Debug)]
pub struct PlaceSpec {
    place: Arc<Acquired>,
    /// The profile, with power switched through the place.
    board: Board,
    against: PathBuf,
    /// `HOST:PORT` of its NetworkSerialPort when that is a raw TCP port, not RFC 2217.
    raw: Option<String>,
}

impl PlaceSpec {
    /// Acquires the place `labgrid` names and reads its serial port; `board` gives pacing, the
    /// reconnect timeout and the power commands' time limit. The port's `speed` is the line
    /// rate when the exporter gives one.
    pub fn acquire(labgrid: Labgrid, board: Board) -> Result<PlaceSpec, PlaceError> {
        let acquisition = labgrid.acquire()?;
        PlaceSpec::held(labgrid, acquisition, None, board)
    }

    /// [`PlaceSpec::acquire`], but a place someone holds is waited for, at most `limit`,
    /// through a reservation (served in the order jobs asked) and acquired with its token;
    /// `progress` hears who holds it while the run waits.
    pub async fn acquire_waiting(
        labgrid: Labgrid,
        board: Board,
        limit: std::time::Duration,
        progress: &mut dyn FnMut(&Waiting),
    ) -> Result<PlaceSpec, PlaceError> {
        // A free place with no job queued for it (the coordinator allocates a free place to
        // the first waiting reservation at once), or one this user holds: no wait.
        match labgrid.acquire() {
            Ok(acquisition) => return PlaceSpec::held(labgrid, acquisition, None, board),
            Err(PlaceError::Held { .. }) => {}
            Err(e) => return Err(e),
        }
        let reservation = Reservation::request(&labgrid)?;
        reservation.wait(limit, progress).await?;
        let reserved = reservation.place();
        let acquisition = reserved.acquire()?;
        PlaceSpec::held(reserved, acquisition, Some(reservation), board)
    }

    /// The spec of a place `acquisition` holds, through `reservation` if given.
    fn held(
        labgrid: Labgrid,
        acquisition: Acquisition,
        reservation: Option<Reservation>,
        board: Board,
    ) -> Result<PlaceSpec, PlaceError> {
        if acquisition == Acquisition::AlreadyOurs {
            tracing::info!(target: "labgrid", "place {} is acquired by you already: used as it is, and left acquired", labgrid.place);
        }
        // A reserved place by its name, not `+TOKEN`.
        let name = reservation
            .as_ref()
            .map_or_else(|| labgrid.place.clone(), |r| r.place_name().to_owned());
        // Held from here on: an error below releases it again (if this run acquired it).
        let place = Arc::new(Acquired(
            labgrid,
            acquisition,
            reservation,
            ForwardSlot::default(),
        ));
        let port = place.0.serial_port()?;
        let raw = match port.protocol.as_str() {
            "rfc2217" => None,
            // A serial server's plain TCP port (ser2net's raw accepter, a console server):
            // bytes as they are, the line rate set at the server. A static resource: its
            // address does not move as an exporter's ser2net may.
            "raw" => Some(place.address(&port)?),
            other => {
                return Err(PlaceError::SerialPort {
                    place: place.0.place.clone(),
                    detail: format!(
                        "its NetworkSerialPort speaks {other:?}; the harness reaches places over rfc2217 or raw TCP"
                    ),
                })
            }
        };
        let timeout = match &board.power {
            Power::Commands(commands) => commands.timeout,
            _ => std::time::Duration::from_secs(60),
        };
        let board = Board {
            baud: if port.speed > 0 { port.speed } else { board.baud },
            power: Power::Commands(PowerCommands {
                on: Some(place.0.power_argv("on")),
                off: Some(place.0.power_argv("off")),
                cycle: Some(place.0.power_argv("cycle")),
                timeout,
            }),
            ..board
        };
        let against = PathBuf::from(format!("place {name}"));
        Ok(PlaceSpec {
            place,
            board,
            against,
            raw,
        })
    }
}

impl TargetKind for PlaceSpec {
    fn open(&self) -> Box<dyn Target> {
        if let Some(address) = &self.raw {
            let port = TcpPort::at(address, self.board.reconnect_timeout);
            return Box::new(BoardTarget::new(self.board.clone(), Box::new(port)));
        }
        let place = self.place.clone();
        let locate = Arc::new(move || {
            let port = place.0.serial_port().map_err(|e| e.to_string())?;
            place.address(&port).map_err(|e| e.to_string())
        });
        let port = Rfc2217Port::located(
            self.against.display().to_string(),
            locate,
            self.board.baud,
            self.board.reconnect_timeout,
        );
        Box::new(BoardTarget::new(self.board.clone(), Box::new(port)))
    }

    fn against(&self) -> &Path {
        &self.against
    }

    fn board(&self) -> Option<&Board> {
        Some(&self.board)
    }
}
