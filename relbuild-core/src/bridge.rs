//! Blocking reads of async readers, for the decompression and untarring
//! that run on blocking threads, which stop as soon as their owner stops.
//!
//! `tokio_util::io::SyncIoBridge` keeps reading after the async code that
//! started it has gone (a sibling image failed and the build returned, say).
//! Such a read then runs against a runtime that may be shutting down, where
//! registering a timer panics. [`CancellableBridge`] instead ends every read,
//! also one waiting for data, with an error once its token is cancelled.

use std::io::{self, Read};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// A blocking [`Read`] over an async reader that fails once `stop` is
/// cancelled. Create it on the runtime; read it on a blocking thread.
pub(crate) struct CancellableBridge<R> {
    src: R,
    runtime: Handle,
    stop: CancellationToken,
}

impl<R> CancellableBridge<R> {
    /// Bridges `src`; panics outside a runtime, as `SyncIoBridge::new` does.
    pub(crate) fn new(src: R, stop: CancellationToken) -> Self {
        Self { src, runtime: Handle::current(), stop }
    }
}

impl<R: AsyncRead + Unpin> Read for CancellableBridge<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Self { src, runtime, stop } = self;
        // Checked first, so a cancelled reader never touches the runtime again.
        if stop.is_cancelled() {
            return Err(stopped());
        }
        runtime.block_on(async {
            tokio::select! {
                biased;
                () = stop.cancelled() => Err(stopped()),
                read = src.read(buf) => read,
            }
        })
    }
}

/// Not `ErrorKind::Interrupted`, which `read_exact`, `read_to_end` and
/// `io::copy` retry forever.
fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

/// The error of a read after its token was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("stopped: the operation that started this read has ended")]
pub(crate) struct Stopped;

#[cfg(test)]
mod tests {
    use super::*;

    /// A read waiting for data that never comes ends when the token is
    /// cancelled, and later reads fail at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_read_ends_on_cancel() {
        let (_writer, reader) = tokio::io::duplex(64);
        let stop = CancellationToken::new();
        let mut bridge = CancellableBridge::new(reader, stop.clone());
        let task = tokio::task::spawn_blocking(move || {
            let mut buf = [0; 8];
            let stopped = |e: io::Error| e.get_ref().is_some_and(|e| e.is::<Stopped>());
            let first = bridge.read(&mut buf).map_err(stopped);
            let mut rest = Vec::new();
            let second = bridge.read_to_end(&mut rest).map_err(stopped);
            (first, second)
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "the read waits for data");
        stop.cancel();
        let (first, second) = task.await.expect("no panic");
        assert_eq!(first, Err(true));
        assert_eq!(second, Err(true), "read_to_end gives up too");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_pass_through_until_cancelled() {
        let (mut writer, reader) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut writer, b"hello").await.expect("write");
        drop(writer);
        let mut bridge = CancellableBridge::new(reader, CancellationToken::new());
        let got = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            bridge.read_to_string(&mut s).map(|_| s)
        })
        .await
        .expect("no panic")
        .expect("read");
        assert_eq!(got, "hello");
    }
}
