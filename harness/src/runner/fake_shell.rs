//! A shell on the far end of a scripted console, for the runner's unit tests: it echoes what
//! is typed, prints a continuation prompt for each line of an unfinished command and its prompt
//! after each finished one, answers the runner's marked `run` lines with what `respond` says,
//! and tells the test what it was typed and whether anything arrived before it was ready for it
//! (type-ahead).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::UnboundedSender;

/// How the shell behaves.
pub struct ShellConfig {
    /// Printed after each finished command line (and for an empty one).
    pub prompt: &'static [u8],
    /// Printed after each line of an unfinished command (`PS2`).
    pub continuation: &'static [u8],
    /// How long the shell takes before it answers a line: input arriving meanwhile is
    /// type-ahead.
    pub think: Duration,
}

impl Default for ShellConfig {
    fn default() -> Self {
        ShellConfig {
            prompt: b"\r\n[root@ivy:~]# ",
            continuation: b"> ",
            think: Duration::from_millis(30),
        }
    }
}

/// What the shell tells the test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A whole command line (its lines joined with `\n`), as typed.
    Line(String),
    /// The command of a runner's marked line.
    Command(String),
    /// Bytes that arrived while the shell was still answering the previous line.
    TypedAhead(String),
}

/// The two halves of a marker as the runner types it: `'@@R2S-<kind>-<seq>-<a>' '<b>'`.
pub fn typed_marker(line: &str, kind: &str) -> Option<(String, String)> {
    let re = regex::Regex::new(&format!("'(@@R2S-{kind}-[^']*)' '([^']*)'")).expect("valid");
    let caps = re.captures(line)?;
    Some((caps[1].to_owned(), caps[2].to_owned()))
}

/// The command inside a runner's marked line: between `{ ` and the `}` on a line of its own.
fn marked_command(line: &str) -> Option<&str> {
    let start = line.find("; { ")? + 4;
    let end = line.rfind("\n}; printf")?;
    line.get(start..end)
}

/// Runs the shell until the console closes. `respond` gives each marked command's output and
/// exit status.
pub async fn fake_shell(
    mut io: DuplexStream,
    config: ShellConfig,
    mut respond: impl FnMut(&str) -> (String, i32) + Send,
    heard: UnboundedSender<Heard>,
) {
    let mut line = Vec::new();
    let mut pending = std::collections::VecDeque::new();
    let mut byte = [0u8; 1];
    loop {
        let next = match pending.pop_front() {
            Some(next) => next,
            None => match io.read(&mut byte).await {
                Ok(1) => byte[0],
                _ => return,
            },
        };
        match next {
            b'\n' => {
                line.push(b'\n');
                think(&mut io, &config, &heard, &mut pending).await;
                let _ = io.write_all(b"\r\n").await;
                let _ = io.write_all(config.continuation).await;
            }
            b'\r' => {
                let text = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                let _ = heard.send(Heard::Line(text.clone()));
                think(&mut io, &config, &heard, &mut pending).await;
                let _ = io.write_all(b"\r\n").await;
                if let Some(reply) = answer(&text, &mut respond, &heard) {
                    let _ = io.write_all(reply.replace('\n', "\r\n").as_bytes()).await;
                }
                let _ = io.write_all(config.prompt).await;
            }
            other => {
                line.push(other);
                let _ = io.write_all(&[other]).await;
            }
        }
    }
}

/// What a marked line prints, as a real shell would run it.
fn answer(
    text: &str,
    respond: &mut impl FnMut(&str) -> (String, i32),
    heard: &UnboundedSender<Heard>,
) -> Option<String> {
    let command = marked_command(text)?;
    let (begin, begin_rest) = typed_marker(text, "BEGIN")?;
    let (end, end_rest) = typed_marker(text, "END")?;
    let _ = heard.send(Heard::Command(command.to_owned()));
    let (output, status) = respond(command);
    Some(format!(
        "{begin}{begin_rest}\n{output}\n{end}{end_rest}:{status};\n"
    ))
}

/// Takes the shell's time to answer, and reports whatever was typed meanwhile (which it then
/// reads as input, as a terminal would).
async fn think(
    io: &mut DuplexStream,
    config: &ShellConfig,
    heard: &UnboundedSender<Heard>,
    pending: &mut std::collections::VecDeque<u8>,
) {
    let mut early = Vec::new();
    let mut buf = [0u8; 256];
    let until = tokio::time::Instant::now() + config.think;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, io.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        early.extend_from_slice(&buf[..n]);
    }
    pending.extend(early.iter().copied());
    if !early.is_empty() {
        let _ = heard.send(Heard::TypedAhead(String::from_utf8_lossy(&early).into_owned()));
    }
}
