//! Reading the console a burst at a time: after the first bytes of a read, whatever else the
//! console already has is taken in the same read, up to the buffer's size.
//!
//! A pseudo-terminal hands out at most 4 KiB per read, and a boot prints in bursts; feeding the
//! matcher each 4 KiB apart costs it a fifth of its speed in per-feed work (BENCHMARKS.md,
//! "Matcher on 10 MB with 50 patterns, by read size"). Nothing waits longer for it: the bytes
//! taken are those already there.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, ReadBuf};

/// What a burst's last read returned after the burst had bytes: the end of the console or an
/// error, handed out by the next [`read_burst`] so that neither is lost behind the bytes.
#[derive(Debug, Default)]
pub(super) struct Pending(Option<io::Result<usize>>);

/// Waits for bytes from `reader`, then takes the rest of what it has ready without waiting,
/// until `buf` is full; returns how many bytes are in `buf`. `Ok(0)` is the end of the console.
/// Cancel-safe like a plain read: once the first bytes are in, the rest of the burst is taken
/// within the same poll.
pub(super) async fn read_burst(
    reader: &mut Pin<Box<dyn AsyncRead + Send>>,
    buf: &mut [u8],
    pending: &mut Pending,
) -> io::Result<usize> {
    if let Some(ended) = pending.0.take() {
        return ended;
    }
    std::future::poll_fn(|cx| {
        let mut filled = ReadBuf::new(buf);
        loop {
            let before = filled.filled().len();
            let polled = reader.as_mut().poll_read(cx, &mut filled);
            let got = filled.filled().len();
            match polled {
                Poll::Ready(Ok(())) if got > before && filled.remaining() > 0 => continue,
                Poll::Ready(Ok(())) if got == before && got > 0 => {
                    pending.0 = Some(Ok(0));
                    return Poll::Ready(Ok(got));
                }
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(got)),
                Poll::Ready(Err(e)) if got > 0 => {
                    pending.0 = Some(Err(e));
                    return Poll::Ready(Ok(got));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if got > 0 => return Poll::Ready(Ok(got)),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn boxed(reader: impl AsyncRead + Send + 'static) -> Pin<Box<dyn AsyncRead + Send>> {
        Box::pin(reader)
    }

    #[tokio::test]
    async fn a_burst_written_in_small_pieces_is_read_in_one() {
        let (mut board, harness) = tokio::io::duplex(1 << 20);
        for _ in 0..16 {
            board.write_all(&[b'x'; 4096]).await.unwrap();
        }
        let mut reader = boxed(harness);
        let mut buf = vec![0; 64 << 10];
        let n = read_burst(&mut reader, &mut buf, &mut Pending::default())
            .await
            .unwrap();
        assert_eq!(n, 64 << 10);
    }

    /// A reader that hands out its pieces one per read, each ready at once, then ends (or fails
    /// with `error`).
    struct Pieces {
        pieces: Vec<&'static [u8]>,
        error: Option<io::ErrorKind>,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.pieces.is_empty() {
                return Poll::Ready(match self.error.take() {
                    Some(kind) => Err(kind.into()),
                    None => Ok(()),
                });
            }
            let piece = self.pieces.remove(0);
            let (now, later) = piece.split_at(piece.len().min(buf.remaining()));
            buf.put_slice(now);
            if !later.is_empty() {
                self.pieces.insert(0, later);
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_end_after_a_burst_comes_with_the_next_read() {
        let mut reader = boxed(Pieces {
            pieces: vec![b"ab", b"cd"],
            error: None,
        });
        let mut buf = vec![0; 64];
        let mut pending = Pending::default();
        assert_eq!(read_burst(&mut reader, &mut buf, &mut pending).await.unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
        assert_eq!(read_burst(&mut reader, &mut buf, &mut pending).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_error_after_a_burst_comes_with_the_next_read() {
        let mut reader = boxed(Pieces {
            pieces: vec![b"ab"],
            error: Some(io::ErrorKind::BrokenPipe),
        });
        let mut buf = vec![0; 64];
        let mut pending = Pending::default();
        assert_eq!(read_burst(&mut reader, &mut buf, &mut pending).await.unwrap(), 2);
        let error = read_burst(&mut reader, &mut buf, &mut pending).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn a_burst_stops_when_the_buffer_is_full() {
        let mut reader = boxed(Pieces {
            pieces: vec![b"abcd", b"efgh", b"ijkl"],
            error: None,
        });
        let mut buf = vec![0; 6];
        let mut pending = Pending::default();
        assert_eq!(read_burst(&mut reader, &mut buf, &mut pending).await.unwrap(), 6);
        assert_eq!(&buf, b"abcdef");
    }
}
