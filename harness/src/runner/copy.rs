//! Files across the console: `copy_from` and `copy_to`, base64-encoded, checked by SHA-256 on
//! both ends, bounded in size. Needs only `base64`, `sha256sum`, `head`, `wc` and `mktemp` on
//! the target, which busybox and coreutils both have.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeError, Engine};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::outcome::FailReason;
use super::session::Session;
use super::steps::{capture, StepFailure, StepResult};
use crate::scenario::CopyTo;

/// The largest file copied either way: its base64 text must fit in what the console matcher
/// retains of one command's output (1 MiB), with room to spare.
pub const MAX_COPY: u64 = 512 * 1024;

/// base64 characters per typed line of `copy_to`: well below any terminal's line limit.
const LINE: usize = 76;

/// Quotes `text` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `copy_from`: reads the target's file over the console and saves it beside the transcript.
pub async fn copy_from(s: &mut Session<'_>, path: &str, deadline: Instant, seq: usize) -> StepResult {
    let expected = format!("a copy of {path}");
    let check = |detail: String| StepFailure {
        expected: expected.clone(),
        reason: FailReason::Check { detail },
    };
    let quoted = shell_quote(path);
    // A snapshot first (the file may grow while it is read, a log does), at most one byte over
    // the limit so that a larger file is told apart; then its size, digest and contents.
    let command = format!(
        "t=$(mktemp) && head -c {over} {quoted} > \"$t\" && \
         if [ \"$(wc -c < \"$t\")\" -gt {MAX_COPY} ]; then echo R2S-COPY-TOO-LARGE; false; \
         else sha256sum < \"$t\" && base64 < \"$t\"; fi; r=$?; rm -f \"$t\"; [ $r = 0 ]",
        over = MAX_COPY + 1
    );
    let (status, output) = capture(s, &command, deadline, seq).await?;
    if output.contains("R2S-COPY-TOO-LARGE") {
        return Err(check(format!(
            "{path} is larger than the {MAX_COPY} bytes a copy over the console may carry"
        )));
    }
    if status != 0 {
        return Err(check(format!(
            "reading {path} on the target failed (status {status}): {}",
            output.trim()
        )));
    }
    let (digest_line, encoded) = output.split_once('\n').unwrap_or((&output, ""));
    let bytes = decode(encoded).map_err(|e| check(format!("the copy of {path} arrived garbled: {e}")))?;
    let theirs = digest_line.split_whitespace().next().unwrap_or("");
    let ours = hex_digest(&bytes);
    if theirs != ours {
        return Err(check(format!(
            "the copy of {path} does not match: the target's SHA-256 is {theirs:?}, the {} bytes received hash to {ours}",
            bytes.len()
        )));
    }
    let saved = s.artifact_path(&format!("copy-{seq}-{}", file_label(path)));
    std::fs::write(&saved, &bytes).map_err(|e| StepFailure {
        expected: expected.clone(),
        reason: FailReason::Io {
            detail: format!("saving the copy of {path} to {}: {e}", saved.display()),
        },
    })?;
    s.note(&format!(
        "copied {path} ({} bytes) to {}",
        bytes.len(),
        saved.display()
    ));
    s.add_artifact(saved);
    Ok(())
}

/// `copy_to`: writes a local file into the target over the console and checks its digest there.
pub async fn copy_to(s: &mut Session<'_>, copy: &CopyTo, deadline: Instant, seq: usize) -> StepResult {
    let expected = format!("{} copied to {}", copy.from.display(), copy.path);
    let setup = |detail: String| StepFailure {
        expected: expected.clone(),
        reason: FailReason::Setup { detail },
    };
    let bytes = read_bounded(&copy.from).map_err(setup)?;
    let encoded = encode(&bytes);
    let quoted = shell_quote(&copy.path);
    let mut command = format!("base64 -d > {quoted} <<'R2S_COPY_END'\n");
    for line in encoded.as_bytes().chunks(LINE) {
        command.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        command.push('\n');
    }
    command.push_str(&format!("R2S_COPY_END\nsha256sum < {quoted}"));
    let (status, output) = capture(s, &command, deadline, seq).await?;
    let theirs = output.split_whitespace().next().unwrap_or("");
    let ours = hex_digest(&bytes);
    if status != 0 || theirs != ours {
        return Err(StepFailure {
            expected,
            reason: FailReason::Check {
                detail: format!(
                    "{} on the target does not match {} (status {status}): its SHA-256 is {theirs:?}, the local file's {ours}",
                    copy.path,
                    copy.from.display()
                ),
            },
        });
    }
    s.note(&format!(
        "copied {} ({} bytes) to {}",
        copy.from.display(),
        bytes.len(),
        copy.path
    ));
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_COPY {
        return Err(format!(
            "{} is {} bytes, more than the {MAX_COPY} a copy over the console may carry",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Standard base64 with padding, as `base64` prints it.
fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 text, ignoring line breaks (and a terminal's carriage returns). The text
/// comes from the console, so anything may arrive: every error says what is wrong with it.
fn decode(encoded: &str) -> Result<Vec<u8>, String> {
    let text: Vec<u8> = encoded.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(&text).map_err(|e| match e {
        DecodeError::InvalidByte(_, b'=') => "data after padding".to_owned(),
        DecodeError::InvalidByte(_, byte) => format!("{:?} is not a base64 character", byte as char),
        DecodeError::InvalidLength(length) => format!("{length} base64 characters is not a multiple of 4"),
        DecodeError::InvalidLastSymbol(offset, byte) => {
            format!(
                "{:?} at character {offset} leaves stray bits before the padding",
                byte as char
            )
        }
        DecodeError::InvalidPadding => "the padding is wrong".to_owned(),
    })
}

fn hex_digest(bytes: &[u8]) -> String {
    crate::hex::lower_hex(&Sha256::digest(bytes))
}

/// A file-name-safe label for a target path: `/var/log/messages` → `var_log_messages`.
fn file_label(path: &str) -> String {
    let label: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if label.is_empty() {
        "file".to_owned()
    } else {
        label
    }
}

/// Where a file saved beside the transcript goes: `<transcript stem>.<suffix>`.
pub fn beside(log: &Path, suffix: &str) -> PathBuf {
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    log.with_file_name(format!("{stem}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_in_a_path_stays_inside_the_quotes() {
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }

    #[test]
    fn base64_round_trips_every_length_of_padding() {
        for text in [&b""[..], b"h", b"he", b"hel", b"\x00\xff\x10\x80"] {
            assert_eq!(decode(&encode(text)).unwrap(), text);
        }
        assert_eq!(encode(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn garbled_base64_is_refused() {
        assert_eq!(decode("aGV*bG8=").unwrap_err(), "'*' is not a base64 character");
        assert_eq!(
            decode("aGVsb").unwrap_err(),
            "5 base64 characters is not a multiple of 4"
        );
    }

    #[test]
    fn base64_with_data_after_its_padding_is_refused() {
        assert_eq!(decode("aGV=bG8=").unwrap_err(), "data after padding");
    }

    #[test]
    fn wrapped_base64_decodes_as_one() {
        assert_eq!(decode("aGVs\r\nbG8=\n").unwrap(), b"hello");
    }

    #[test]
    fn a_target_path_becomes_a_file_label() {
        assert_eq!(file_label("/var/log/messages"), "var_log_messages");
        assert_eq!(file_label("/"), "file");
    }

    #[test]
    fn a_saved_file_sits_beside_the_transcript() {
        assert_eq!(
            beside(Path::new("/t/ssh-from-host.log"), "copy-3-etc_hostname"),
            Path::new("/t/ssh-from-host.copy-3-etc_hostname")
        );
    }
}
