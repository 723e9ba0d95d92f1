//! The in-memory console unit tests run against: the board's end of a pipe is played by a
//! future the test writes, which reads what the harness types and prints what a board would.

use std::future::Future;

use tokio::io::DuplexStream;

use super::Console;

/// A console whose board is `board`, given the far end of a pipe holding up to `buffer` bytes
/// each way. The board runs as a task of its own; when it returns, its end closes and the
/// console reads end of file.
pub fn scripted<F, Fut>(buffer: usize, board: F) -> Console
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(buffer);
    tokio::spawn(board(theirs));
    let (reader, writer) = tokio::io::split(ours);
    Console {
        reader: Box::pin(reader),
        writer: Box::pin(writer),
        notices: Default::default(),
    }
}

/// A target for unit tests of what surrounds a console: it says `closed_because` when asked
/// why its console closed, and fails to stop with `stop_error` (a power-off command that
/// failed) if set.
#[derive(Default)]
pub struct FakeTarget {
    pub closed_because: Option<String>,
    pub stop_error: Option<String>,
}

impl super::Target for FakeTarget {
    fn describe(&self) -> String {
        "a fake target".to_owned()
    }

    fn start<'a>(
        &'a mut self,
        _attached: Option<Console>,
        _log: &'a mut dyn super::StartLog,
    ) -> super::StartFuture<'a> {
        Box::pin(async { Ok(scripted(64, |_board| async {})) })
    }

    fn closed_because(&mut self) -> super::LocalBoxFuture<'_, Option<String>> {
        let why = self.closed_because.clone();
        Box::pin(async move { why })
    }

    fn stop<'a>(
        &'a mut self,
        _log: &'a mut dyn super::StartLog,
    ) -> super::LocalBoxFuture<'a, Result<(), super::TargetError>> {
        let error = self.stop_error.clone();
        Box::pin(async move {
            match error {
                Some(name) => Err(super::power::PowerError::Unset {
                    what: "off".to_owned(),
                    command: format!("relay ${{{name}}}"),
                    name,
                }
                .into()),
                None => Ok(()),
            }
        })
    }
}
