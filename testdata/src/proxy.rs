//! A fault-injecting HTTP/1.1 reverse proxy in front of a real registry.
//!
//! Every request is forwarded faithfully (method, path and query, headers
//! including `Authorization` and `Host`, bodies streamed both ways), except
//! when a scripted [`Fault`] matches it. `Location` headers that point at the
//! upstream are rewritten to the proxy so that upload sessions stay on it.
//!
//! ```no_run
//! # use relbuild_testdata::{registry::TestRegistry, proxy::{FaultProxy, Fault, Action, Matcher}};
//! let reg = TestRegistry::start()?;
//! let proxy = FaultProxy::start(&reg.host())?;
//! proxy.add(Fault::new(Matcher::new("GET", "/blobs/sha256:"), Action::status(500)).times(1));
//! // ... point the client at proxy.host(), then:
//! assert_eq!(proxy.hits(&Matcher::new("GET", "/blobs/sha256:")), 2);
//! # anyhow::Ok(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::serve::{BoxError, ChannelBody, Reply, RespBody, Server, full};

/// The digest [`Action::WrongDigestHeader`] puts in `Docker-Content-Digest`.
pub const WRONG_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Selects requests: an optional method and a substring of the path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// `GET`, `HEAD`, … (case-insensitive); `None` matches any method.
    pub method: Option<String>,
    /// A substring of the path and query, e.g. `/blobs/sha256:` or `/manifests/`; empty matches all.
    pub path: String,
}

impl Matcher {
    /// Requests with `method` whose path and query contain `path`.
    pub fn new(method: &str, path: &str) -> Self {
        Self { method: Some(method.to_owned()), path: path.to_owned() }
    }

    /// Requests of any method whose path and query contain `path`.
    pub fn path(path: &str) -> Self {
        Self { method: None, path: path.to_owned() }
    }

    /// Whether a request matches.
    pub fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)) && path_and_query.contains(&self.path)
    }
}

/// What a matching [`Fault`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status and a distribution-style JSON error, without
    /// contacting the upstream; `Retry-After: N` is added if set.
    Status {
        /// The status code, e.g. 500, 503 or 429.
        code: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Forward, send the headers and the first `after_bytes` of the body, then
    /// close the connection.
    DropMidBody {
        /// Body bytes delivered before the connection is closed.
        after_bytes: u64,
    },
    /// Forward, and deliver the body in pieces of at most `chunk` bytes with
    /// `delay` before each.
    SlowBody {
        /// Bytes per piece (at least 1).
        chunk: usize,
        /// Pause before each piece.
        delay: Duration,
    },
    /// Wait this long before forwarding the request (for client timeouts).
    Delay(Duration),
    /// Forward, and flip all bits of the body byte at `offset` (no effect if the body is shorter).
    CorruptByte {
        /// Zero-based offset into the response body.
        offset: u64,
    },
    /// Forward, and replace `Docker-Content-Digest` (if present) with [`WRONG_DIGEST`].
    WrongDigestHeader,
    /// Close the connection without any response.
    CloseConnection,
}

impl Action {
    /// [`Action::Status`] without `Retry-After`.
    pub fn status(code: u16) -> Self {
        Self::Status { code, retry_after: None }
    }

    /// `429 Too Many Requests` with `Retry-After: secs`.
    pub fn too_many_requests(secs: u64) -> Self {
        Self::Status { code: 429, retry_after: Some(secs) }
    }
}

/// A scripted fault: requests matching `matcher` get `action`, `times` times
/// (or always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which requests.
    pub matcher: Matcher,
    /// What happens to them.
    pub action: Action,
    /// How many more requests it applies to; `None` is forever.
    pub remaining: Option<u32>,
}

impl Fault {
    /// A fault that applies forever; see [`Fault::times`].
    pub fn new(matcher: Matcher, action: Action) -> Self {
        Self { matcher, action, remaining: None }
    }

    /// Applies to the next `n` matching requests only.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status sent back (0 if the connection was closed without one).
    pub status: u16,
    /// The fault applied, if any.
    pub fault: Option<Action>,
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<Seen>,
}

/// Locks, recovering from poisoning: a failed test must not hide behind a
/// second panic in the proxy.
fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fault proxy; dropping it stops it.
#[derive(Debug)]
pub struct FaultProxy {
    server: Server,
    upstream: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `upstream` (`HOST:PORT`, plain HTTP).
    pub fn start(upstream: &str) -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let ctx = Arc::new(Ctx { upstream: upstream.to_owned(), state: state.clone(), own: Mutex::new(String::new()) });
        let handler_ctx = ctx.clone();
        let server = Server::start("relbuild-fault-proxy", move |req| {
            let ctx = handler_ctx.clone();
            async move { ctx.handle(req).await }
        })?;
        *ctx.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            format!("127.0.0.1:{}", server.addr().port());
        Ok(Self { server, upstream: upstream.to_owned(), state })
    }

    /// `127.0.0.1:PORT` of the proxy: use it in pullspecs.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.addr().port())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The upstream `HOST:PORT`.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Adds a fault; faults are tried in the order added, the first live match wins.
    pub fn add(&self, fault: Fault) {
        lock(&self.state).faults.push(fault);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    /// How many requests matching `m` the proxy has seen (faulted or not).
    pub fn hits(&self, m: &Matcher) -> usize {
        lock(&self.state).seen.iter().filter(|s| m.matches(&s.method, &s.path)).count()
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.state).seen.clear();
    }
}

#[derive(Debug)]
struct Ctx {
    upstream: String,
    state: Arc<Mutex<State>>,
    /// The proxy's own `HOST:PORT`, known once bound.
    own: Mutex<String>,
}

/// Headers that describe one hop and must not be forwarded.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect", "proxy-authorization"];

impl Ctx {
    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let header_of =
            |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok()).map(str::to_owned);
        let (authorization, range) = (header_of(header::AUTHORIZATION), header_of(header::RANGE));
        let action = {
            let mut st = lock(&self.state);
            let mut hit = None;
            for f in &mut st.faults {
                if f.remaining != Some(0) && f.matcher.matches(&method, &path) {
                    if let Some(n) = &mut f.remaining {
                        *n -= 1;
                    }
                    hit = Some(f.action.clone());
                    break;
                }
            }
            hit
        };
        let reply = self.apply(req, action.clone()).await;
        let status = match &reply {
            Reply::Respond(r) => r.status().as_u16(),
            Reply::Close => 0,
        };
        lock(&self.state).seen.push(Seen { method, path, authorization, range, status, fault: action });
        reply
    }

    async fn apply(&self, req: Request<Incoming>, action: Option<Action>) -> Reply {
        match action {
            Some(Action::Status { code, retry_after }) => return Reply::Respond(error_response(code, retry_after)),
            Some(Action::CloseConnection) => return Reply::Close,
            Some(Action::Delay(d)) => tokio::time::sleep(d).await,
            _ => {}
        }
        let mut resp = match self.forward(req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("fault proxy: upstream {}: {e}", self.upstream);
                return Reply::Respond(error_response(502, None));
            }
        };
        self.rewrite_location(resp.headers_mut());
        if action == Some(Action::WrongDigestHeader) && resp.headers().contains_key("docker-content-digest") {
            resp.headers_mut().insert("docker-content-digest", HeaderValue::from_static(WRONG_DIGEST));
        }
        let (parts, body) = resp.into_parts();
        let body = match action {
            Some(a @ (Action::DropMidBody { .. } | Action::SlowBody { .. } | Action::CorruptByte { .. })) => {
                let (tx, cb) = ChannelBody::new();
                tokio::spawn(pump(body, tx, a));
                cb.boxed()
            }
            _ => body.map_err(BoxError::from).boxed(),
        };
        Reply::Respond(Response::from_parts(parts, body))
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Incoming>, BoxError> {
        let (mut parts, body) = req.into_parts();
        for h in HOP_BY_HOP {
            parts.headers.remove(*h);
        }
        let stream = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&self.upstream))
            .await
            .map_err(|_| BoxError::from("connect timeout"))??;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender.send_request(Request::from_parts(parts, body)).await?)
    }

    /// Points `Location` at the proxy when it names the upstream.
    fn rewrite_location(&self, headers: &mut hyper::HeaderMap) {
        let own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
            && let Some(new) = rewrite_url(loc, &self.upstream, &own)
            && let Ok(v) = HeaderValue::from_str(&new)
        {
            headers.insert(header::LOCATION, v);
        }
    }
}

/// `http://UPSTREAM/...` → `http://OWN/...`; `None` if `loc` is relative or elsewhere.
fn rewrite_url(loc: &str, upstream: &str, own: &str) -> Option<String> {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = loc.strip_prefix(scheme)
            && let Some(tail) = rest.strip_prefix(upstream)
            && (tail.is_empty() || tail.starts_with(['/', '?']))
        {
            return Some(format!("http://{own}{tail}"));
        }
    }
    None
}

fn error_response(code: u16, retry_after: Option<u64>) -> Response<RespBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!(
        "{{\"errors\":[{{\"code\":\"UNKNOWN\",\"message\":\"injected by the relbuild fault proxy\",\"detail\":{code}}}]}}\n"
    );
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// Copies the upstream body into `tx`, applying a body fault.
async fn pump(mut body: Incoming, tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>, action: Action) {
    let mut pos: u64 = 0;
    loop {
        let frame = match body.frame().await {
            None => return,
            Some(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
            Some(Ok(f)) => f,
        };
        let data = match frame.into_data() {
            Ok(d) => d,
            Err(trailers) => {
                if tx.send(Ok(trailers)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let len = data.len() as u64;
        match &action {
            Action::DropMidBody { after_bytes } => {
                if pos + len >= *after_bytes && len > 0 {
                    let keep = usize::try_from(after_bytes - pos).unwrap_or(data.len()).min(data.len());
                    if keep > 0 {
                        let _ = tx.send(Ok(Frame::data(data.slice(..keep)))).await;
                    }
                    // Let hyper flush what it has before the connection is torn down.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = tx.send(Err(BoxError::from("connection dropped mid-body (injected)"))).await;
                    return;
                }
                if tx.send(Ok(Frame::data(data))).await.is_err() {
                    return;
                }
            }
            Action::SlowBody { chunk, delay } => {
                let mut rest = data;
                while !rest.is_empty() {
                    let piece = rest.split_to((*chunk).max(1).min(rest.len()));
                    tokio::time::sleep(*delay).await;
                    if tx.send(Ok(Frame::data(piece))).await.is_err() {
                        return;
                    }
                }
            }
            Action::CorruptByte { offset } => {
                let data = if (pos..pos + len).contains(offset) {
                    let mut v = data.to_vec();
                    let i = usize::try_from(offset - pos).unwrap_or(0);
                    if let Some(b) = v.get_mut(i) {
                        *b ^= 0xff;
                    }
                    Bytes::from(v)
                } else {
                    data
                };
                if tx.send(Ok(Frame::data(data))).await.is_err() {
                    return;
                }
            }
            _ => {
                if tx.send(Ok(Frame::data(data))).await.is_err() {
                    return;
                }
            }
        }
        pos += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TestRegistry;
    use crate::testutil::{blob, curl, digest, push_blob};

    #[test]
    fn rewrites_location_only_for_upstream() {
        let cases = [
            (
                "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1",
                Some("http://127.0.0.1:9/v2/a/blobs/uploads/x?_state=1"),
            ),
            ("https://127.0.0.1:5000/v2/", Some("http://127.0.0.1:9/v2/")),
            ("http://127.0.0.1:50000/v2/", None),
            ("/v2/a/blobs/uploads/x", None),
            ("http://elsewhere/v2/", None),
        ];
        for (loc, want) in cases {
            assert_eq!(rewrite_url(loc, "127.0.0.1:5000", "127.0.0.1:9").as_deref(), want, "{loc}");
        }
    }

    #[test]
    fn forwards_uploads_and_retries_after_500() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        let data = blob(100_000);
        let d = push_blob(&proxy.url(), "test/repo", &data);
        let m = Matcher::new("GET", "/blobs/sha256:");
        proxy.add(Fault::new(m.clone(), Action::status(500)).times(1));
        let url = format!("{}/v2/test/repo/blobs/{d}", proxy.url());
        let r = curl(&[&url], None);
        assert_eq!(r.status(), 500);
        assert!(String::from_utf8_lossy(&r.body).contains("UNKNOWN"));
        let r = curl(&[&url], None);
        assert_eq!((r.code, r.status()), (0, 200));
        assert_eq!(digest(&r.body), d);
        assert_eq!(r.header("docker-content-digest").as_deref(), Some(d.as_str()));
        assert_eq!(proxy.hits(&m), 2);
        let seen = proxy.requests();
        assert_eq!(seen.iter().filter(|s| s.fault.is_some()).count(), 1);
        assert!(seen.iter().any(|s| s.method == "PUT" && s.status == 201));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        proxy.add(Fault::new(Matcher::path("/v2/"), Action::too_many_requests(3)).times(1));
        let r = curl(&[&format!("{}/v2/", proxy.url())], None);
        assert_eq!(r.status(), 429);
        assert_eq!(r.header("retry-after").as_deref(), Some("3"));
        let r = curl(&[&format!("{}/v2/", proxy.url())], None);
        assert_eq!(r.status(), 200);
    }

    #[test]
    fn drops_connection_mid_body() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        let data = blob(200_000);
        let d = push_blob(&proxy.url(), "drop/me", &data);
        proxy.add(Fault::new(Matcher::new("GET", "/blobs/"), Action::DropMidBody { after_bytes: 1000 }).times(1));
        let url = format!("{}/v2/drop/me/blobs/{d}", proxy.url());
        let r = curl(&[&url], None);
        assert_eq!(r.status(), 200, "headers were sent");
        assert_eq!(r.header("content-length").as_deref(), Some("200000"));
        assert_eq!(r.code, 18, "curl: partial file");
        assert_eq!(r.body.len(), 1000);
        assert_eq!(r.body[..], data[..1000]);
        let r = curl(&[&url], None);
        assert_eq!((r.code, r.body.len()), (0, data.len()));
    }

    #[test]
    fn corrupts_one_byte_and_lies_about_the_digest() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        let data = blob(70_000);
        let d = push_blob(&proxy.url(), "c/r", &data);
        let url = format!("{}/v2/c/r/blobs/{d}", proxy.url());
        proxy.add(Fault::new(Matcher::new("GET", "/blobs/"), Action::CorruptByte { offset: 65_000 }).times(1));
        let r = curl(&[&url], None);
        assert_eq!((r.code, r.status(), r.body.len()), (0, 200, data.len()));
        assert_ne!(digest(&r.body), d);
        let diff: Vec<usize> = (0..data.len()).filter(|&i| r.body[i] != data[i]).collect();
        assert_eq!(diff, [65_000]);
        assert_eq!(r.header("docker-content-digest").as_deref(), Some(d.as_str()), "header untouched");

        proxy.add(Fault::new(Matcher::new("HEAD", "/blobs/"), Action::WrongDigestHeader).times(1));
        let r = curl(&["-I", &url], None);
        assert_eq!(r.header("docker-content-digest").as_deref(), Some(WRONG_DIGEST));
        let r = curl(&["-I", &url], None);
        assert_eq!(r.header("docker-content-digest").as_deref(), Some(d.as_str()));
    }

    #[test]
    fn slow_body_and_closed_connection() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        let data = blob(4_000);
        let d = push_blob(&proxy.url(), "s/r", &data);
        let url = format!("{}/v2/s/r/blobs/{d}", proxy.url());
        proxy.add(
            Fault::new(
                Matcher::new("GET", "/blobs/"),
                Action::SlowBody { chunk: 1000, delay: Duration::from_millis(100) },
            )
            .times(1),
        );
        let t = std::time::Instant::now();
        let r = curl(&[&url], None);
        assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
        assert_eq!(digest(&r.body), d);
        let r = curl(&["--max-time", "0.2", &url], None);
        assert_eq!(r.code, 0, "fault was used up");

        proxy.add(Fault::new(Matcher::new("GET", "/blobs/"), Action::CloseConnection).times(1));
        let r = curl(&[&url], None);
        assert_eq!(r.code, 52, "curl: empty reply");
        assert_eq!(proxy.requests().last().map(|s| s.status), Some(0));
    }

    #[test]
    fn concurrent_requests_share_the_fault_budget() {
        let reg = TestRegistry::start().expect("registry");
        let proxy = FaultProxy::start(&reg.host()).expect("proxy");
        let d = push_blob(&proxy.url(), "par/r", &blob(30_000));
        let m = Matcher::new("GET", "/blobs/");
        proxy.add(Fault::new(m.clone(), Action::status(503)).times(4));
        let url = format!("{}/v2/par/r/blobs/{d}", proxy.url());
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..16).map(|_| s.spawn(|| curl(&[&url], None).status())).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        assert_eq!(statuses.iter().filter(|&&c| c == 503).count(), 4, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 12, "{statuses:?}");
        assert_eq!(proxy.hits(&m), 16);
    }
}
