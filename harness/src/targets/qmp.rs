//! A minimal QMP client: just enough of QEMU's machine protocol to save and load a machine's
//! state, resume the guest and quit.
//!
//! QMP speaks one JSON object per line over the unix socket QEMU listens on. Asynchronous
//! events (objects with an `"event"` key) may arrive between a command and its reply; they are
//! skipped.
//!
//! A machine's state (its RAM and devices) is saved to a file of its own by migrating to it,
//! in QEMU's `mapped-ram` format (QEMU 9 and later), where each RAM page has a fixed place: a
//! restore reads the 80 MB a 1 GiB guest uses in a twentieth of a second, where `snapshot-load`
//! of the same state kept in a qcow2 disk took a fifth (BENCHMARKS.md, "A cached login start"),
//! and the disks stay small enough to copy. A failed migration reports its error as data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// How long QEMU gets to create its QMP socket after being spawned.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP socket {path}: cannot connect within {}s: {source}", CONNECT_WITHIN.as_secs())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("QMP: {what} timed out after {}s", limit.as_secs_f64())]
    Timeout { what: String, limit: Duration },
    #[error("QMP: {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("QMP: QEMU closed the socket during {what}")]
    Closed { what: String },
    #[error("QMP: {what}: unexpected reply {reply}")]
    Protocol { what: String, reply: String },
    #[error("QMP: {what} failed: {message}")]
    Command { what: String, message: String },
    #[error("QMP: {job} ended in status {status:?}: {message}")]
    Job {
        job: String,
        status: String,
        message: String,
    },
}

/// How long a simple command (a query, `cont`, `stop`) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// QEMU's migration capability that writes each RAM page at a fixed offset of the file.
const MAPPED_RAM: &str = "mapped-ram";

/// How often a migration's status is asked for.
const MIGRATION_POLL: Duration = Duration::from_millis(5);

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects to `socket` (retrying while QEMU starts up), reads the greeting and enters
    /// command mode.
    pub async fn connect(socket: &Path) -> Result<Qmp, QmpError> {
        Self::connect_within(socket, Duration::from_secs(10)).await
    }

    /// [`Qmp::connect`], with `answer` for the greeting and the first command: a QEMU busy
    /// starting on a loaded machine answers late.
    pub async fn connect_within(socket: &Path, answer: Duration) -> Result<Qmp, QmpError> {
        let give_up = Instant::now() + CONNECT_WITHIN;
        let stream = loop {
            match UnixStream::connect(socket).await {
                Ok(stream) => break stream,
                // The socket appears a moment after QEMU starts; every restore waits for it,
                // so it is looked for often.
                Err(_) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(source) => {
                    return Err(QmpError::Connect {
                        path: socket.to_owned(),
                        source,
                    })
                }
            }
        };
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = qmp.read_message("greeting", answer).await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol {
                what: "greeting".into(),
                reply: greeting.to_string(),
            });
        }
        qmp.execute("qmp_capabilities", json!({}), answer).await?;
        Ok(qmp)
    }

    /// Runs a QMP command and returns its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Value,
        limit: Duration,
    ) -> Result<Value, QmpError> {
        let mut line = json!({ "execute": command, "arguments": arguments }).to_string();
        line.push('\n');
        let what = command.to_owned();
        // QMP carries no console text and no password: commands and replies are logged whole.
        tracing::debug!(target: "qmp", "-> {}", line.trim_end());
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|source| QmpError::Io {
                what: what.clone(),
                source,
            })?;
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.read_message(&what, left).await?;
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                let message = error
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("no description")
                    .to_owned();
                return Err(QmpError::Command { what, message });
            }
            return Err(QmpError::Protocol {
                what,
                reply: reply.to_string(),
            });
        }
    }

    /// Runs a human monitor command (HMP) such as `hostfwd_add …`, which QMP has no command
    /// for. HMP reports failure only as text, so any output at all counts as an error: the
    /// commands used here print nothing when they succeed.
    pub async fn human_command(&mut self, command_line: &str, limit: Duration) -> Result<(), QmpError> {
        let out = self
            .execute(
                "human-monitor-command",
                json!({ "command-line": command_line }),
                limit,
            )
            .await?;
        match out.as_str() {
            Some("") => Ok(()),
            Some(text) => Err(QmpError::Command {
                what: command_line.to_owned(),
                message: text.trim().to_owned(),
            }),
            None => Err(QmpError::Protocol {
                what: command_line.to_owned(),
                reply: out.to_string(),
            }),
        }
    }

    /// Lets a guest started paused (`-S`) run.
    pub async fn resume(&mut self) -> Result<(), QmpError> {
        self.execute("cont", json!({}), COMMAND_LIMIT).await.map(drop)
    }

    /// Saves the machine's state into `file` (created; its RAM in QEMU's `mapped-ram` layout),
    /// the guest stopped first so that the disks hold what it had written at that moment;
    /// waits for the save to end, at most `limit`. QEMU leaves the guest stopped.
    pub async fn save_state(&mut self, file: &Path, limit: Duration) -> Result<(), QmpError> {
        self.execute("stop", json!({}), COMMAND_LIMIT).await?;
        self.set_mapped_ram().await?;
        let channels = file_channel(file);
        self.execute("migrate", json!({ "channels": channels }), COMMAND_LIMIT)
            .await?;
        self.await_migration("saving the machine's state", limit).await
    }

    /// Loads the state [`Qmp::save_state`] wrote into `file` into a QEMU started with
    /// `-incoming defer` (and `-S`, so the guest stays stopped until [`Qmp::resume`]); waits at
    /// most `limit`. The file is only read.
    pub async fn load_state(&mut self, file: &Path, limit: Duration) -> Result<(), QmpError> {
        self.set_mapped_ram().await?;
        let channels = file_channel(file);
        self.execute("migrate-incoming", json!({ "channels": channels }), COMMAND_LIMIT)
            .await?;
        self.await_migration("loading the machine's state", limit).await
    }

    async fn set_mapped_ram(&mut self) -> Result<(), QmpError> {
        let capabilities = json!([{ "capability": MAPPED_RAM, "state": true }]);
        match self
            .execute(
                "migrate-set-capabilities",
                json!({ "capabilities": capabilities }),
                COMMAND_LIMIT,
            )
            .await
        {
            Ok(_) => Ok(()),
            // A QEMU before 9.0 has no such capability: say what would work.
            Err(QmpError::Command { what, message }) => Err(QmpError::Command {
                what,
                message: format!(
                    "{message} (saved machine states need QEMU 9.0 or later, for its {MAPPED_RAM} \
                     format; with an older QEMU, run with --no-snapshots)"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Polls the migration (outgoing or incoming) until it completes or fails, or `limit`
    /// passes (then cancels it).
    async fn await_migration(&mut self, what: &str, limit: Duration) -> Result<(), QmpError> {
        let deadline = Instant::now() + limit;
        loop {
            let info = self.execute("query-migrate", json!({}), COMMAND_LIMIT).await?;
            let status = info["status"].as_str().unwrap_or_default().to_owned();
            match status.as_str() {
                "completed" => return Ok(()),
                "failed" | "cancelled" => {
                    let message = info["error-desc"]
                        .as_str()
                        .unwrap_or("QEMU gave no reason")
                        .to_owned();
                    return Err(QmpError::Job {
                        job: what.to_owned(),
                        status,
                        message,
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                let _ = self.execute("migrate_cancel", json!({}), COMMAND_LIMIT).await;
                return Err(QmpError::Timeout {
                    what: format!("{what} (status {status:?})"),
                    limit,
                });
            }
            tokio::time::sleep(MIGRATION_POLL).await;
        }
    }

    async fn read_message(&mut self, what: &str, limit: Duration) -> Result<Value, QmpError> {
        let mut line = String::new();
        let read = tokio::time::timeout(limit, self.reader.read_line(&mut line))
            .await
            .map_err(|_| QmpError::Timeout {
                what: what.to_owned(),
                limit,
            })?;
        match read {
            Ok(0) => Err(QmpError::Closed {
                what: what.to_owned(),
            }),
            Ok(_) => {
                tracing::debug!(target: "qmp", "<- {}", crate::escape::escape_control(line.trim_end()));
                serde_json::from_str(&line).map_err(|_| QmpError::Protocol {
                    what: what.to_owned(),
                    reply: line.trim().to_owned(),
                })
            }
            Err(source) => Err(QmpError::Io {
                what: what.to_owned(),
                source,
            }),
        }
    }
}

/// A migration channel to or from `file`: given as a structure rather than a `file:` URI, so
/// that no character of the path is parsed as an option.
fn file_channel(file: &Path) -> Value {
    json!([{
        "channel-type": "main",
        "addr": { "transport": "file", "filename": file.to_string_lossy(), "offset": 0 }
    }])
}
