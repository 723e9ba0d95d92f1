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
