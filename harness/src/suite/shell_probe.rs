//! Whether a console already sits at a shell: a board left logged in by the last scenario (or
//! the operator) serves a `start = "login"` scenario as it is, with no power switched.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::console::ansi;
use crate::targets::Console;

/// How long a board that may already be at a shell gets to answer an empty line, before a
/// `start = "login"` scenario boots it instead.
pub const SHELL_PROBE: Duration = Duration::from_secs(3);

/// How long the console must stay quiet before the harness presses Enter to look for a shell.
/// A booting board is never quiet that long (U-Boot's autoboot countdown prints every second),
/// and an Enter there would stop its autoboot.
pub const QUIET_BEFORE_PROBE: Duration = Duration::from_millis(1500);

/// How long the harness listens for that quiet. Output that was waiting for the port (a prompt
/// printed after the last run closed it) arrives first and is fine; a board still printing
/// after this long is busy or booting, and is left alone.
pub const LISTEN_FOR_QUIET: Duration = Duration::from_secs(5);

/// Reports whether the board sits at a shell: when the console has been quiet for
/// [`QUIET_BEFORE_PROBE`], presses Enter and waits up to `limit` for a shell prompt. A console
/// that prints meanwhile belongs to a board that is booting (or busy), and is left alone. What
/// the board printed is put back in front of the console, so the transcript and the scenario
/// still see it.
pub async fn at_shell(console: &mut Console, limit: Duration) -> bool {
    let mut seen: Vec<u8> = Vec::new();
    let answered = quiet_then_prompt(console, &mut seen, limit).await;
    console.unread(seen);
    answered
}

async fn quiet_then_prompt(console: &mut Console, seen: &mut Vec<u8>, limit: Duration) -> bool {
    let mut buf = vec![0u8; 4096];
    let give_up = tokio::time::Instant::now() + LISTEN_FOR_QUIET;
    loop {
        match tokio::time::timeout(QUIET_BEFORE_PROBE, console.reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            Ok(_) => return false,
        }
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
    }
    if console.writer.write_all(b"\r").await.is_err() || console.writer.flush().await.is_err() {
        return false;
    }
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, console.reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
        if ends_with_shell_prompt(seen) {
            return true;
        }
    }
}

/// Whether console output ends at a shell prompt: root's `#` or a user's `$`, colours and all.
fn ends_with_shell_prompt(output: &[u8]) -> bool {
    let text = ansi::strip(output);
    let last_line = text.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    matches!(last_line.trim_ascii_end().last(), Some(b'#' | b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::test_console::scripted;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_quiet_board_at_a_shell_answers_enter_and_is_kept() {
        let typed = Arc::new(Mutex::new(Vec::new()));
        let heard = typed.clone();
        let mut console = scripted(4096, |mut io| async move {
            // The prompt the last run left, printed after it closed the port, comes first.
            let _ = io.write_all(b"@@R2S-END-3:0;\r\n[root@ivy:~]# ").await;
            let mut buf = [0u8; 64];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                heard.lock().unwrap().extend_from_slice(&buf[..n]);
                let _ = io.write_all(b"\r\n\x1b[1;31m[root@ivy:~]#\x1b[0m ").await;
            }
        });
        assert!(at_shell(&mut console, SHELL_PROBE).await);
        assert_eq!(typed.lock().unwrap().as_slice(), b"\r");
        // What the board printed is still there for the scenario.
        let mut replay = vec![0u8; 128];
        let n = console.reader.read(&mut replay).await.unwrap();
        assert!(replay[..n].starts_with(b"@@R2S-END-3"));
        assert!(replay[..n].ends_with(b"\x1b[0m "));
    }

    #[tokio::test]
    async fn a_board_counting_down_to_autoboot_is_not_sent_enter() {
        let typed = Arc::new(Mutex::new(Vec::new()));
        let heard = typed.clone();
        let mut console = scripted(4096, |io| async move {
            let (mut rx, mut tx) = tokio::io::split(io);
            let countdown = async move {
                // A countdown, then the boot it leads to: output never pauses for long.
                for left in (0..20).rev() {
                    let line = format!("\rHit any key to stop autoboot: {left:2} ");
                    if tx.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            };
            let listen = async move {
                let mut buf = [0u8; 64];
                while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), rx.read(&mut buf)).await {
                    if n == 0 {
                        break;
                    }
                    heard.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            };
            tokio::join!(countdown, listen);
        });
        let started = tokio::time::Instant::now();
        assert!(!at_shell(&mut console, SHELL_PROBE).await);
        assert!(started.elapsed() < LISTEN_FOR_QUIET + Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(typed.lock().unwrap().as_slice(), b"", "Enter would stop autoboot");
    }

    #[test]
    fn a_coloured_root_prompt_is_a_shell_and_a_login_prompt_is_not() {
        assert!(ends_with_shell_prompt(b"\r\n\x1b[1;31m[root@ivy:~]#\x1b[0m "));
        assert!(ends_with_shell_prompt(b"\r\nuser@ivy:~$ "));
        assert!(!ends_with_shell_prompt(b"\r\nivy login: "));
        assert!(!ends_with_shell_prompt(b"# comment\nmore output\n"));
        assert!(!ends_with_shell_prompt(b""));
    }
}
