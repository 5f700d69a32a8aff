//! A tiny HTTP/1.1 server on its own thread and runtime, shared by the fault
//! proxy and the token issuer.
//!
//! Each server owns a dedicated thread with a current-thread tokio runtime so
//! that it works the same from `#[test]` and `#[tokio::test]`, and so that
//! dropping it never drops a runtime inside another runtime (which panics).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

/// The error type of response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type every handler returns.
pub(crate) type RespBody = BoxBody<Bytes, BoxError>;

/// What a handler decides for one request.
pub(crate) enum Reply {
    /// Send this response.
    Respond(Response<RespBody>),
    /// Close the connection without answering.
    Close,
}

/// A whole body from bytes.
pub(crate) fn full(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into()).map_err(|never: Infallible| match never {}).boxed()
}

/// A body fed frame by frame from a channel; sending `Err` aborts the
/// connection mid-body (hyper closes it when a body stream fails).
#[derive(Debug)]
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

impl ChannelBody {
    /// A body and the sender feeding it.
    pub(crate) fn new() -> (mpsc::Sender<Result<Frame<Bytes>, BoxError>>, Self) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Self { rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// A running background server; dropping it stops the server and its
/// connections.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1 on a free port (kept bound, so no port race) and serves
    /// every connection with `handler`.
    pub(crate) fn start<H, F>(name: &str, handler: H) -> Result<Self>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the server runtime")?;
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("server listener: {e}");
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => {
                                    let handler = handler.clone();
                                    tokio::spawn(serve_conn(stream, handler));
                                }
                                Err(e) => {
                                    tracing::warn!("accept: {e}");
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                }
                            },
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .context("spawning the server thread")?;
        Ok(Self { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn serve_conn<H, F>(stream: tokio::net::TcpStream, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let svc = service_fn(move |req| {
        let fut = handler(req);
        async move {
            match fut.await {
                Reply::Respond(r) => Ok(r),
                Reply::Close => Err(Closed),
            }
        }
    });
    let _ =
        hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
}

/// The service error that makes hyper drop a connection without answering.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closing the connection (injected)")
    }
}

impl std::error::Error for Closed {}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
