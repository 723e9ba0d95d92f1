//! Waiting for a held place through labgrid's reservations (`--place-wait`), as
//! `labgrid-client reserve --wait name=PLACE` does, so that waiting jobs are served in the
//! order they asked: a reservation is made, `labgrid-client wait TOKEN` keeps it alive (the
//! coordinator expires reservations nobody polls) until the coordinator allocates the place to
//! it, and the place is acquired with the token. The reservation is cancelled when dropped:
//! after the run, when the wait runs out, and when a signal drops the waiting command.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::{Labgrid, PlaceError, CALL_LIMIT, OUTPUT_LIMIT};

/// How often the place's holder is asked for while waiting.
const HOLDER_POLL: Duration = Duration::from_secs(2);

/// A reservation of one place, cancelled when dropped.
#[derive(Debug)]
pub struct Reservation {
    /// The place by name (the coordinator and client as given).
    named: Labgrid,
    /// labgrid's token for it.
    token: String,
}

/// Where a wait stands, for the caller's progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The place waited for.
    pub place: String,
    /// Who holds it (`HOST/USER`), or what keeps it (another job's reservation).
    pub holder: String,
    /// How long this run has waited.
    pub waited: Duration,
}

impl Reservation {
    /// Reserves the place `named` names (`labgrid-client reserve name=PLACE`), queued behind
    /// earlier reservations.
    pub fn request(named: &Labgrid) -> Result<Reservation, PlaceError> {
        let mut argv = named.client_argv();
        argv.extend([
            "reserve".to_owned(),
            "--shell".to_owned(),
            format!("name={}", named.place),
        ]);
        let done = super::run(&argv, "reserve", &named.place)?;
        if !done.ok {
            return Err(named.failed("reserve", done.stderr));
        }
        match token_in(&done.stdout) {
            Some(token) => Ok(Reservation {
                named: named.clone(),
                token,
            }),
            None => Err(named.failed(
                "reserve",
                format!("no `export LG_TOKEN=…` line in its answer: {}", done.stdout),
            )),
        }
    }

    /// The name of the place reserved.
    pub fn place_name(&self) -> &str {
        &self.named.place
    }

    /// The place through this reservation, `-p +TOKEN`, as labgrid-client resolves it.
    pub fn place(&self) -> Labgrid {
        Labgrid {
            place: format!("+{}", self.token),
            ..self.named.clone()
        }
    }

    /// Waits until the coordinator allocates the place to this reservation, at most `limit`;
    /// `progress` hears who holds the place at every look ([`HOLDER_POLL`]). When the limit
    /// passes first: [`PlaceError::WaitExpired`], naming the last holder seen.
    pub async fn wait(&self, limit: Duration, progress: &mut dyn FnMut(&Waiting)) -> Result<(), PlaceError> {
        let started = Instant::now();
        let deadline = started + limit;
        let mut argv = self.named.client_argv();
        argv.extend(["wait".to_owned(), self.token.clone()]);
        tracing::debug!(target: "labgrid", "wait: {}", argv.join(" "));
        // It prints the reservation every second: nothing worth keeping.
        let mut waiter = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                self.named
                    .failed("wait", format!("cannot start {}: {e}", argv[0]))
            })?;
        let mut holder = self.holder().await;
        let mut next_look = Instant::now() + HOLDER_POLL;
        progress(&self.waiting(&holder, started.elapsed()));
        loop {
            tokio::select! {
                status = waiter.wait() => {
                    let status = status.map_err(|e| self.named.failed("wait", e.to_string()))?;
                    if status.success() {
                        tracing::debug!(target: "labgrid", "reservation {} allocated after {:?}", self.token, started.elapsed());
                        return Ok(());
                    }
                    let mut stderr = String::new();
                    if let Some(pipe) = waiter.stderr.take() {
                        let mut bytes = Vec::new();
                        let _ = pipe.take(OUTPUT_LIMIT).read_to_end(&mut bytes).await;
                        stderr = String::from_utf8_lossy(&bytes).trim().to_owned();
                    }
                    return Err(self.named.failed("wait", stderr));
                }
                () = tokio::time::sleep_until(next_look) => {
                    holder = self.holder().await;
                    next_look = Instant::now() + HOLDER_POLL;
                    progress(&self.waiting(&holder, started.elapsed()));
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(PlaceError::WaitExpired {
                        place: self.named.place.clone(),
                        holder,
                        waited: limit,
                    });
                }
            }
        }
    }

    fn waiting(&self, holder: &str, waited: Duration) -> Waiting {
        Waiting {
            place: self.named.place.clone(),
            holder: holder.to_owned(),
            waited,
        }
    }

    /// Who holds the place now, as `labgrid-client -p PLACE show` says; what went wrong
    /// asking, if it did (a wait goes on without the answer).
    async fn holder(&self) -> String {
        let mut argv = self.named.base_argv();
        argv.push("show".to_owned());
        let shown = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(CALL_LIMIT, shown).await {
            Ok(Ok(output)) => {
                let text =
                    String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(OUTPUT_LIMIT as usize)]);
                holder_in_show(&text)
                    .unwrap_or_else(|| "(unknown: labgrid-client show did not say)".to_owned())
            }
            Ok(Err(e)) => format!("(unknown: {e})"),
            Err(_) => "(unknown: labgrid-client show did not answer)".to_owned(),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut argv = self.named.client_argv();
        argv.extend(["cancel-reservation".to_owned(), self.token.clone()]);
        match super::run(&argv, "cancel-reservation", &self.named.place) {
            Ok(done) if done.ok => {}
            Ok(done) => eprintln!(
                "harness: {}",
                self.named.failed("cancel-reservation", done.stderr)
            ),
            Err(e) => eprintln!("harness: {e}"),
        }
    }
}

/// `export LG_TOKEN=TOKEN` in `reserve --shell`'s answer → `TOKEN`, if it is a plain word.
fn token_in(stdout: &str) -> Option<String> {
    let token = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("export LG_TOKEN="))?;
    (!token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric())).then(|| token.to_owned())
}

/// The holder in `labgrid-client show`'s `acquired: HOLDER` line; a free place that another
/// reservation was allocated (`reservation: TOKEN`) is that reservation's.
fn holder_in_show(text: &str) -> Option<String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let acquired = field("acquired: ")?;
    if acquired != "None" {
        return Some(acquired);
    }
    Some(match field("reservation: ") {
        Some(token) => format!("nobody yet (allocated to the earlier reservation {token})"),
        None => "nobody (free)".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_reserves_shell_answer() {
        assert_eq!(
            token_in("export LG_TOKEN=DMAYEP4LQN\n").as_deref(),
            Some("DMAYEP4LQN")
        );
        assert_eq!(token_in("export LG_TOKEN=$(rm -rf ~)\n"), None);
        assert_eq!(token_in("Reservation 'X':\n"), None);
    }

    #[test]
    fn the_holder_is_read_from_show_and_an_allocation_named() {
        let held = "Place 'r2s':\n  matches:\n    */bench/*\n  acquired: ci-2/alice\n  acquired resources:\n";
        assert_eq!(holder_in_show(held).as_deref(), Some("ci-2/alice"));
        let allocated = "Place 'r2s':\n  acquired: None\n  reservation: ABC123\n";
        assert_eq!(
            holder_in_show(allocated).as_deref(),
            Some("nobody yet (allocated to the earlier reservation ABC123)")
        );
        assert_eq!(
            holder_in_show("Place 'r2s':\n  acquired: None\n").as_deref(),
            Some("nobody (free)")
        );
        assert_eq!(holder_in_show("labgrid-client: error"), None);
    }
}
