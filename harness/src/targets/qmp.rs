//! A minimal QMP client: just enough of QEMU's machine protocol to save and load a snapshot,
//! resume the guest and quit.
//!
//! QMP speaks one JSON object per line over the unix socket QEMU listens on. Asynchronous
//! events (objects with an `"event"` key) may arrive between a command and its reply; they are
//! skipped.
//!
//! Snapshots go through QEMU's job commands `snapshot-save` and `snapshot-load` (QEMU 6 and
//! later): they name the disks and the one holding the machine state, and a failed job reports
//! its error as data. HMP's `savevm` reported failure only as free text.

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
    #[error("QMP: job {job} ended in status {status:?}: {message}")]
    Job {
        job: String,
        status: String,
        message: String,
    },
}

/// How often a running job's status is asked for: a snapshot of the fixtures takes tenths of a
/// second, so finer polling would only cost QEMU's attention.
const JOB_POLL: Duration = Duration::from_millis(10);

/// How long a simple command (a query, `cont`, `job-dismiss`) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// Whether a snapshot job saves, loads or deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotJob {
    Save,
    Load,
    Delete,
}

impl SnapshotJob {
    fn command(self) -> &'static str {
        match self {
            SnapshotJob::Save => "snapshot-save",
            SnapshotJob::Load => "snapshot-load",
            SnapshotJob::Delete => "snapshot-delete",
        }
    }
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

    /// Saves the machine as snapshot `tag` of every disk, its state in the first disk's image, or
    /// loads that snapshot back, as a QMP job; waits for the job to end, at most `limit`.
    pub async fn snapshot(&mut self, job: SnapshotJob, tag: &str, limit: Duration) -> Result<(), QmpError> {
        let nodes = self.disk_nodes().await?;
        let Some(vmstate) = nodes.first() else {
            return Err(QmpError::Protocol {
                what: "query-block".into(),
                reply: "no disks".into(),
            });
        };
        let id = format!("r2s-{}", job.command());
        let arguments = match job {
            // Deleting removes the tag from every disk; the state lives in one of them.
            SnapshotJob::Delete => json!({ "job-id": id, "tag": tag, "devices": nodes }),
            SnapshotJob::Save | SnapshotJob::Load => {
                json!({ "job-id": id, "tag": tag, "vmstate": vmstate, "devices": nodes })
            }
        };
        self.execute(job.command(), arguments, COMMAND_LIMIT).await?;
        self.await_job(&id, limit).await
    }

    /// Lets a guest started paused (`-S`) run.
    pub async fn resume(&mut self) -> Result<(), QmpError> {
        self.execute("cont", json!({}), COMMAND_LIMIT).await.map(drop)
    }

    /// The block node names of the disks the harness attached (`disk0`, `disk1`, …), in that
    /// order: the names a snapshot job takes.
    async fn disk_nodes(&mut self) -> Result<Vec<String>, QmpError> {
        let blocks = self.execute("query-block", json!({}), COMMAND_LIMIT).await?;
        disk_nodes(&blocks).ok_or_else(|| QmpError::Protocol {
            what: "query-block".into(),
            reply: blocks.to_string(),
        })
    }

    /// Polls job `id` until it concludes (then dismisses it) or `limit` passes (then cancels
    /// it). A job that concluded with an error reports it.
    async fn await_job(&mut self, id: &str, limit: Duration) -> Result<(), QmpError> {
        let deadline = Instant::now() + limit;
        loop {
            let jobs = self.execute("query-jobs", json!({}), COMMAND_LIMIT).await?;
            let Some(job) = jobs
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["id"] == id))
            else {
                return Err(QmpError::Protocol {
                    what: format!("query-jobs for {id}"),
                    reply: jobs.to_string(),
                });
            };
            let status = job["status"].as_str().unwrap_or_default().to_owned();
            if status == "concluded" {
                let error = job.get("error").and_then(Value::as_str).map(str::to_owned);
                self.execute("job-dismiss", json!({ "id": id }), COMMAND_LIMIT)
                    .await?;
                return match error {
                    None => Ok(()),
                    Some(message) => Err(QmpError::Job {
                        job: id.to_owned(),
                        status,
                        message,
                    }),
                };
            }
            if Instant::now() >= deadline {
                let _ = self
                    .execute("job-cancel", json!({ "id": id }), COMMAND_LIMIT)
                    .await;
                return Err(QmpError::Timeout {
                    what: format!("job {id} (status {status:?})"),
                    limit,
                });
            }
            tokio::time::sleep(JOB_POLL).await;
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

/// The format node of each `diskN` device in a `query-block` reply, in device order; `None`
/// when a disk is missing or has no medium.
fn disk_nodes(blocks: &Value) -> Option<Vec<String>> {
    let blocks = blocks.as_array()?;
    let mut nodes = Vec::new();
    for i in 0.. {
        let device = format!("disk{i}");
        let Some(block) = blocks.iter().find(|b| b["device"] == device.as_str()) else {
            break;
        };
        nodes.push(block["inserted"]["node-name"].as_str()?.to_owned());
    }
    (!nodes.is_empty() && nodes.len() == blocks.iter().filter(|b| b.get("inserted").is_some()).count())
        .then_some(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_nodes_are_the_format_nodes_of_the_harness_disks_in_order() {
        let reply = json!([
            {"device": "disk1", "inserted": {"node-name": "#block391"}},
            {"device": "disk0", "inserted": {"node-name": "#block145"}},
        ]);
        assert_eq!(
            disk_nodes(&reply),
            Some(vec!["#block145".to_owned(), "#block391".to_owned()])
        );
    }

    #[test]
    fn a_disk_the_harness_did_not_attach_is_not_silently_left_out_of_a_snapshot() {
        let reply = json!([
            {"device": "disk0", "inserted": {"node-name": "#block145"}},
            {"device": "extra", "inserted": {"node-name": "#block9"}},
        ]);
        assert_eq!(disk_nodes(&reply), None);
    }
}
