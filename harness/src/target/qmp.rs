//! A minimal QMP client: just enough of QEMU's machine protocol to save a snapshot and quit.
//!
//! QMP speaks one JSON object per line over the unix socket QEMU listens on. Asynchronous
//! events (objects with an `"event"` key) may arrive between a command and its reply; they are
//! skipped.

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
}

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

    /// [`Qmp::connect`], with `answer` for the greeting and the first command: QEMU answers
    /// only once it has loaded a snapshot (`-loadvm`), which takes long on a loaded machine.
    pub async fn connect_within(socket: &Path, answer: Duration) -> Result<Qmp, QmpError> {
        let give_up = Instant::now() + CONNECT_WITHIN;
        let stream = loop {
            match UnixStream::connect(socket).await {
                Ok(stream) => break stream,
                // The socket appears a moment after QEMU starts.
                Err(_) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// Runs a human monitor command (HMP) such as `savevm login`. HMP reports failure only as
    /// text, so any output at all counts as an error: the commands used here print nothing when
    /// they succeed.
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
            Ok(_) => serde_json::from_str(&line).map_err(|_| QmpError::Protocol {
                what: what.to_owned(),
                reply: line.trim().to_owned(),
            }),
            Err(source) => Err(QmpError::Io {
                what: what.to_owned(),
                source,
            }),
        }
    }
}
