//! The [`Client`]: options, TLS, the request loop (auth, retries, per-registry
//! limits) and manifest operations. Blob reads are in `blob.rs`, uploads and
//! mounts in `upload.rs`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{self, AuthState, Challenge, Scheme, Scopes};
use super::authfile::{AuthFile, Credential};
use super::error::{CredentialSource, Envelope, Error, redact_url};
use super::mirror::{MirrorRules, Router};
use super::retry::{RetryPolicy, parse_retry_after};
use crate::image::{Descriptor, Digest, Manifest, MediaType, RawManifest, Reference};
use crate::progress::{NoReporter, Reporter};

/// The manifest types we accept, most specific first.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Settings of a [`Client`]. Every field has a default.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Credentials; empty means anonymous everywhere.
    pub auth: AuthFile,
    /// Allow plain HTTP and skip TLS verification. The client then tries
    /// `https://` first and falls back to `http://` when the TLS handshake or
    /// connection fails, remembering the choice per registry (what
    /// `oc --insecure` and containers/image do).
    pub insecure: bool,
    /// PEM files of extra certificate authorities to trust, besides the system's.
    pub certificate_authorities: Vec<PathBuf>,
    /// At most this many requests in flight per registry host. Default 16
    /// (`oc` uses 4): a build's requests are many small GETs that depend on
    /// each other (manifest, then config, then layer), and with 4 in flight
    /// the registry sits idle between them; the benchmark's cold build was
    /// 1.5x slower with 4 than with 16.
    pub max_per_registry: usize,
    /// Retry policy for failed requests and transfers.
    pub retry: RetryPolicy,
    /// Blobs larger than this are uploaded in chunks (`PATCH`), smaller ones
    /// in one `PUT`.
    pub monolithic_threshold: u64,
    /// Size of each `PATCH` of a chunked upload; it is held in memory.
    pub chunk_size: usize,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// A response body that sends nothing for this long is abandoned (and retried).
    pub read_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Receives blob transfer progress.
    pub reporter: Arc<dyn Reporter>,
    /// Digest mirrors to read from before (or instead of) the source.
    pub mirrors: MirrorRules,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            auth: AuthFile::empty(),
            insecure: false,
            certificate_authorities: Vec::new(),
            max_per_registry: DEFAULT_MAX_PER_REGISTRY,
            retry: RetryPolicy::default(),
            monolithic_threshold: 16 << 20,
            chunk_size: 16 << 20,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            user_agent: concat!("relbuild/", env!("CARGO_PKG_VERSION")).to_owned(),
            reporter: Arc::new(NoReporter),
            mirrors: MirrorRules::new(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("auth", &self.auth)
            .field("insecure", &self.insecure)
            .field("certificate_authorities", &self.certificate_authorities)
            .field("max_per_registry", &self.max_per_registry)
            .field("retry", &self.retry)
            .field("monolithic_threshold", &self.monolithic_threshold)
            .field("chunk_size", &self.chunk_size)
            .field("mirrors", &self.mirrors)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Uses `auth` for credentials.
    pub fn with_auth(mut self, auth: AuthFile) -> Self {
        self.auth = auth;
        self
    }

    /// Allows plain HTTP and unverified TLS.
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Trusts the CA certificates in PEM file `path`.
    pub fn with_certificate_authority(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate_authorities.push(path.into());
        self
    }

    /// Sets the per-registry request limit (at least 1).
    pub fn with_max_per_registry(mut self, n: usize) -> Self {
        self.max_per_registry = n.max(1);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the chunk size of chunked uploads and the size above which they are used.
    pub fn with_chunking(mut self, monolithic_threshold: u64, chunk_size: usize) -> Self {
        self.monolithic_threshold = monolithic_threshold;
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Sets the progress reporter.
    pub fn with_reporter(mut self, reporter: Arc<dyn Reporter>) -> Self {
        self.reporter = reporter;
        self
    }

    /// Reads references by digest through `mirrors` (see [`MirrorRules`]).
    pub fn with_mirrors(mut self, mirrors: MirrorRules) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        Client::new(self)
    }
}

/// A distribution-spec registry client. Cheap to clone; clones share
/// connections, tokens and per-registry limits.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) opts: ClientOptions,
    auth: AuthState,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Each registry's base URL, probed once (concurrent callers wait for
    /// the one probe instead of each trying TLS).
    base_urls: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<url::Url>>>>,
    /// Routes reads through [`ClientOptions::mirrors`].
    pub(crate) router: Arc<Router>,
}

/// One request as the client loop sends it: rebuildable, so it can be
/// re-sent after a challenge or a retryable failure.
#[derive(Debug)]
pub(crate) struct Req<'a> {
    pub(crate) method: Method,
    pub(crate) url: url::Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    /// The registry host the request is for (its limit and credentials).
    pub(crate) reference: &'a Reference,
    pub(crate) scopes: Scopes,
    /// Whether to retry retryable failures here (uploads retry at a higher level).
    pub(crate) retry: bool,
}

/// A response with the per-registry permit it holds until dropped.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) resp: reqwest::Response,
    pub(crate) url: String,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// The default of [`ClientOptions::max_per_registry`].
pub const DEFAULT_MAX_PER_REGISTRY: usize = 16;

/// Accepts any server certificate (`insecure`), still checking handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds the rustls config: ring provider (no global provider is
/// installed), system roots plus `certificate_authorities`, or no
/// verification when `insecure`.
fn tls_config(opts: &ClientOptions) -> Result<rustls::ClientConfig, Error> {
    use rustls_pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::TlsConfig { source })?;
    let mut config = if opts.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped, as every TLS client does.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for path in &opts.certificate_authorities {
            let pem = std::fs::read(path).map_err(|source| Error::ReadFile { path: path.clone(), source })?;
            let mut n = 0;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| Error::CaFile { path: path.clone(), reason: e.to_string() })?;
                roots.add(cert).map_err(|e| Error::CaFile { path: path.clone(), reason: e.to_string() })?;
                n += 1;
            }
            if n == 0 {
                return Err(Error::CaFile { path: path.clone(), reason: "it contains no PEM certificate".to_owned() });
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// True when a transport error is a TLS failure.
fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // A custom `io::Error`'s `source()` skips the wrapped error itself
        // (hyper-rustls nests rustls errors in two of them), so step into it.
        cur = match err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// Maps a reqwest error to ours.
pub(crate) fn transport_error(registry: &str, url: &str, e: reqwest::Error) -> Error {
    if is_tls_error(&e) {
        Error::Tls { registry: registry.to_owned(), source: e }
    } else if e.is_body() || e.is_decode() {
        Error::Body { url: redact_url(url), source: e }
    } else {
        Error::Connect { registry: registry.to_owned(), url: redact_url(url), source: e }
    }
}

/// Reads at most 64 KiB of an error body and parses the envelope.
pub(crate) async fn read_envelope(mut resp: reqwest::Response) -> Option<Envelope> {
    let mut buf = BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > 64 << 10 {
            return None;
        }
    }
    Envelope::parse(&buf)
}

/// Reads a whole body of at most `limit` bytes.
pub(crate) async fn read_limited(registry: &str, r: Resp, limit: u64) -> Result<Bytes, Error> {
    let Resp { resp, url, _permit } = r;
    read_body(registry, resp, &url, limit).await
}

/// Reads a whole body of at most `limit` bytes; `url` is already redacted.
async fn read_body(registry: &str, mut resp: reqwest::Response, url: &str, limit: u64) -> Result<Bytes, Error> {
    let too_large = || Error::TooLarge { url: url.to_owned(), limit };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(registry, url, e))? {
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > limit {
            return Err(too_large());
        }
    }
    Ok(buf.freeze())
}

/// The value of a header as a string.
pub(crate) fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Docker-Content-Digest`, when present and valid.
pub(crate) fn content_digest(h: &HeaderMap) -> Option<Digest> {
    header_str(h, "docker-content-digest").and_then(|v| v.trim().parse().ok())
}

/// Turns an unexpected status into an error (404 → `NotFound` about `what`).
pub(crate) async fn status_error(method: &Method, what: &str, r: Resp) -> Error {
    let status = r.resp.status();
    let url = r.url.clone();
    let envelope = read_envelope(r.resp).await;
    if status == StatusCode::NOT_FOUND {
        Error::NotFound { reference: what.to_owned(), envelope }
    } else {
        Error::Http { method: method.to_string(), url, status: status.as_u16(), envelope }
    }
}

impl Client {
    /// Builds a client.
    pub fn new(opts: ClientOptions) -> Result<Self, Error> {
        let tls = tls_config(&opts)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .build()
            .map_err(|source| Error::Build { source })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                auth: AuthState::default(),
                limits: Mutex::new(HashMap::new()),
                base_urls: Mutex::new(HashMap::new()),
                router: Router::new(opts.mirrors.clone()),
                opts,
            }),
        })
    }

    /// GETs a plain `http(s)://` URL (no registry protocol, no registry
    /// credentials) with the client's TLS settings and timeouts: for inputs
    /// such as `--from-image-stream-file URL`. Fails on any status but 200,
    /// and when the body exceeds `limit` bytes.
    pub async fn get_url(&self, url: &str, limit: u64) -> Result<Bytes, Error> {
        let parsed = url::Url::parse(url).map_err(|_| Error::InvalidUrl { url: redact_url(url) })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidUrl { url: redact_url(url) });
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let resp = self.inner.http.get(parsed).send().await.map_err(|e| transport_error(&host, url, e))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(Error::Http {
                method: "GET".into(),
                url: redact_url(url),
                status: status.as_u16(),
                envelope: None,
            });
        }
        read_body(&host, resp, &redact_url(url), limit).await
    }

    /// A client with default options (verified TLS, anonymous).
    pub fn anonymous() -> Result<Self, Error> {
        Self::new(ClientOptions::default())
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    pub(crate) fn reporter(&self) -> &dyn Reporter {
        &*self.inner.opts.reporter
    }

    async fn permit(&self, registry: &str) -> OwnedSemaphorePermit {
        let sem = {
            let mut m = self.inner.limits.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(registry.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.inner.opts.max_per_registry.max(1))))
                .clone()
        };
        sem.acquire_owned().await.expect("because the semaphore is never closed")
    }

    /// `https://host/v2/` (or `http://` for an insecure registry that does
    /// not speak TLS).
    #[tracing::instrument(level = "debug", skip(self))]
    pub(crate) async fn base_url(&self, registry: &str) -> Result<url::Url, Error> {
        let cell = Arc::clone(
            self.inner.base_urls.lock().unwrap_or_else(|p| p.into_inner()).entry(registry.to_owned()).or_default(),
        );
        let base = cell
            .get_or_try_init(|| async {
                let https = format!("https://{registry}/v2/");
                let base = if !self.inner.opts.insecure {
                    https
                } else {
                    match self.inner.http.get(&https).send().await {
                        Ok(_) => https,
                        Err(e) => {
                            tracing::debug!(registry, error = %e, "https failed; using plain http (insecure)");
                            format!("http://{registry}/v2/")
                        }
                    }
                };
                url::Url::parse(&base).map_err(|source| Error::Url { url: base, source })
            })
            .await?;
        Ok(base.clone())
    }

    /// `base/v2/<repo>/<rest>`.
    pub(crate) async fn repo_url(&self, r: &Reference, rest: &str) -> Result<url::Url, Error> {
        let base = self.base_url(r.api_host()).await?;
        let s = format!("{}/{rest}", r.repository());
        base.join(&s).map_err(|source| Error::Url { url: redact_url(&s), source })
    }

    fn credential(&self, r: &Reference) -> Option<(&Credential, CredentialSource)> {
        self.inner.opts.auth.lookup(r.registry(), r.repository())
    }

    /// Sends `req` with retries (when `req.retry`): connection errors, 5xx and
    /// 429 are retried with backoff; any other status is returned to the caller.
    pub(crate) async fn send(&self, req: &Req<'_>) -> Result<Resp, Error> {
        let policy = &self.inner.opts.retry;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (err, retry_after) = match self.send_authed(req).await {
                Ok(r) if r.resp.status() == StatusCode::TOO_MANY_REQUESTS || r.resp.status().is_server_error() => {
                    let ra = header_str(r.resp.headers(), header::RETRY_AFTER)
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    {
                        let what = r.url.clone();
                        (status_error(&req.method, &what, r).await, ra)
                    }
                }
                Ok(r) => return Ok(r),
                Err(e) => (e, None),
            };
            if !req.retry || !err.is_retryable() || attempt >= policy.max_attempts || start.elapsed() >= policy.total {
                return Err(err);
            }
            let delay = policy.delay(attempt, retry_after);
            // Logged at debug only: an unreachable registry fails every
            // request in flight, and the reporter decides what the user sees.
            tracing::debug!(attempt, ?delay, error = %err, "retrying");
            self.reporter().on_retry(req.reference.registry(), attempt, delay, &err);
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends once, answering `401` challenges: learns the scheme, fetches a
    /// token, and re-challenges once when a token is refused.
    async fn send_authed(&self, req: &Req<'_>) -> Result<Resp, Error> {
        let registry = req.reference.api_host();
        let cred = self.credential(req.reference);
        let mut extra_scope: Option<String> = None;
        let mut rechallenged = false;
        loop {
            let scopes = req.scopes.clone().with_challenge(extra_scope.as_deref());
            let authorization = match self.inner.auth.scheme(registry) {
                Scheme::Unknown => None,
                Scheme::Basic => cred.as_ref().and_then(|(c, _)| c.basic_header()),
                Scheme::Bearer { realm, service } => {
                    let token = match self.inner.auth.cached_token(registry, &scopes) {
                        Some(t) => t,
                        None => self.fetch_token(req.reference, &realm, service.as_deref(), &scopes).await?,
                    };
                    Some(format!("Bearer {token}"))
                }
            };
            let url = req.url.as_str();
            let mut rb = self.inner.http.request(req.method.clone(), req.url.clone()).headers(req.headers.clone());
            if let Some(a) = &authorization {
                let mut v = HeaderValue::from_str(a).map_err(|_| Error::Token {
                    registry: registry.to_owned(),
                    realm: String::new(),
                    reason: "the credential contains characters not allowed in a header".to_owned(),
                })?;
                v.set_sensitive(true);
                rb = rb.header(header::AUTHORIZATION, v);
            }
            if let Some(b) = &req.body {
                rb = rb.body(b.clone());
            }
            let permit = self.permit(registry).await;
            let resp = rb.send().await.map_err(|e| transport_error(registry, url, e))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(Resp { resp, url: redact_url(url), _permit: permit });
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(auth::parse_challenge)
                .collect();
            let envelope = read_envelope(resp).await;
            let denied = |credential: Option<CredentialSource>, envelope| Error::Unauthorized {
                registry: req.reference.registry().to_owned(),
                credential,
                envelope,
            };
            let sent = authorization.is_some();
            let challenge = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }))
                .or_else(|| challenges.first())
                .cloned();
            tracing::debug!(?challenge, sent, "401 challenge");
            match challenge {
                Some(Challenge::Basic) => {
                    let can_basic = cred.as_ref().is_some_and(|(c, _)| c.basic_header().is_some());
                    if sent || !can_basic {
                        return Err(denied(cred.map(|(_, s)| s).filter(|_| sent), envelope));
                    }
                    self.inner.auth.set_scheme(registry, Scheme::Basic);
                }
                Some(Challenge::Bearer { realm, service, scope }) => {
                    if sent {
                        if rechallenged {
                            return Err(denied(cred.map(|(_, s)| s), envelope));
                        }
                        rechallenged = true;
                        self.inner.auth.forget_token(registry, &scopes);
                    }
                    extra_scope = scope;
                    self.inner.auth.set_scheme(registry, Scheme::Bearer { realm, service });
                }
                None => return Err(denied(cred.map(|(_, s)| s).filter(|_| sent), envelope)),
            }
        }
    }

    /// Asks the realm for a token covering all `scopes`, with our credentials
    /// when we have them (basic auth, or an identity token as OAuth2 refresh
    /// token), and caches it.
    #[tracing::instrument(level = "debug", skip(self, reference), fields(registry = reference.registry()))]
    async fn fetch_token(
        &self,
        reference: &Reference,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<String, Error> {
        let registry = reference.api_host();
        let cred = self.credential(reference);
        let token_err = |reason: String| Error::Token {
            registry: reference.registry().to_owned(),
            realm: redact_url(realm),
            reason,
        };
        let mut url = url::Url::parse(realm).map_err(|source| Error::Url { url: redact_url(realm), source })?;
        let rb = match cred.as_ref().map(|(c, _)| c) {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", token);
                form.append_pair("client_id", "relbuild");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.iter().collect::<Vec<_>>().join(" "));
                self.inner
                    .http
                    .post(url.clone())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes.iter() {
                        q.append_pair("scope", s);
                    }
                }
                let rb = self.inner.http.get(url.clone());
                match other {
                    Some(Credential::Basic { username, password }) => rb.basic_auth(username, Some(password)),
                    _ => rb,
                }
            }
        };
        let resp = rb.send().await.map_err(|e| transport_error(registry, url.as_str(), e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let envelope = read_envelope(resp).await;
            return Err(Error::Unauthorized {
                registry: reference.registry().to_owned(),
                credential: cred.map(|(_, s)| s),
                envelope,
            });
        }
        if !status.is_success() {
            return Err(token_err(format!("HTTP {status}")));
        }
        let body = resp.bytes().await.map_err(|e| transport_error(registry, url.as_str(), e))?;
        let parsed: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| token_err(format!("the answer is not token JSON ({e})")))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("the answer has no `token`".to_owned()))?;
        self.inner.auth.store_token(registry, scopes, token.clone(), auth::token_lifetime(parsed.expires_in));
        Ok(token)
    }

    /// A `GET` or `HEAD` of `reference`'s manifest, accepting every manifest type.
    async fn manifest_request<'a>(&self, method: Method, reference: &'a Reference) -> Result<Req<'a>, Error> {
        let url = self.repo_url(reference, &format!("manifests/{}", reference.tag_or_digest())).await?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        Ok(Req {
            method,
            url,
            headers,
            body: None,
            reference,
            scopes: Scopes::pull(reference.repository()),
            retry: true,
        })
    }

    /// Pulls a manifest's bytes exactly as stored. The bytes are verified
    /// against the reference's digest, if it has one, and against
    /// `Docker-Content-Digest`, if the registry sent it.
    #[tracing::instrument(skip(self), fields(reference = %reference))]
    pub async fn pull_manifest_raw(&self, reference: &Reference) -> Result<RawManifest, Error> {
        if !self.inner.router.is_active() {
            return self.pull_manifest_at(reference, true).await;
        }
        let routes = self.inner.router.routes(reference);
        let Some(digest) = reference.digest() else {
            return match routes.source_blocked_by {
                Some(file) => Err(Error::SourceBlocked { reference: reference.to_string(), file }),
                None => self.pull_manifest_at(reference, true).await,
            };
        };
        let tried = routes.repositories.len();
        let mut attempts = Vec::new();
        for (i, repo) in routes.repositories.into_iter().enumerate() {
            let at = repo.with_digest(digest.clone());
            // Only the last location gets the retry policy: a failing
            // mirror gives way to the next one at once.
            match self.pull_manifest_at(&at, i + 1 == tried).await {
                Ok(raw) => {
                    self.inner.router.remember(reference, &repo);
                    return Ok(raw);
                }
                Err(e) => {
                    tracing::debug!(at = %at, error = %e, "mirror route failed");
                    attempts.push((at.to_string(), e));
                }
            }
        }
        Err(Error::Mirrors { reference: reference.to_string(), attempts })
    }

    /// [`Client::pull_manifest_raw`] of exactly `reference`, retrying if `retry`.
    async fn pull_manifest_at(&self, reference: &Reference, retry: bool) -> Result<RawManifest, Error> {
        let mut req = self.manifest_request(Method::GET, reference).await?;
        req.retry = retry;
        let r = self.send(&req).await?;
        if r.resp.status() != StatusCode::OK {
            return Err(status_error(&req.method, &reference.to_string(), r).await);
        }
        let content_type = header_str(r.resp.headers(), header::CONTENT_TYPE).map(str::to_owned);
        let announced = content_digest(r.resp.headers());
        let url = r.url.clone();
        let bytes = read_limited(reference.api_host(), r, MAX_MANIFEST_SIZE).await?;
        let raw = RawManifest::new(bytes, content_type.as_deref())
            .map_err(|source| Error::Manifest { url: url.clone(), source })?;
        for expected in reference.digest().into_iter().chain(announced.as_ref()) {
            if expected.is_sha256() && expected != raw.digest() {
                return Err(Error::DigestMismatch { url, expected: expected.clone(), found: raw.digest().clone() });
            }
        }
        Ok(raw)
    }

    /// Pulls and parses a manifest (see [`Client::pull_manifest_raw`], which
    /// keeps the bytes and digest).
    #[tracing::instrument(skip(self), fields(reference = %reference))]
    pub async fn pull_manifest(&self, reference: &Reference) -> Result<Manifest, Error> {
        let raw = self.pull_manifest_raw(reference).await?;
        raw.parse().map_err(|source| Error::Manifest { url: reference.to_string(), source })
    }

    /// `HEAD` of a manifest: its descriptor, or `None` when it does not exist.
    /// Falls back to a `GET` when the registry does not say the digest.
    #[tracing::instrument(skip(self), fields(reference = %reference))]
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>, Error> {
        let req = self.manifest_request(Method::HEAD, reference).await?;
        let r = self.send(&req).await?;
        match r.resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error(&req.method, &reference.to_string(), r).await),
        }
        let h = r.resp.headers();
        let media_type = header_str(h, header::CONTENT_TYPE).map(MediaType::parse).filter(MediaType::is_manifest);
        let size = header_str(h, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let digest = content_digest(h).or_else(|| reference.digest().cloned());
        if let (Some(expected), Some(found)) = (reference.digest(), &digest)
            && expected != found
        {
            return Err(Error::DigestMismatch { url: r.url.clone(), expected: expected.clone(), found: found.clone() });
        }
        drop(r);
        match (media_type, size, digest) {
            (Some(m), Some(s), Some(d)) => Ok(Some(Descriptor::new(m, d, s))),
            _ => Ok(Some(self.pull_manifest_raw(reference).await?.descriptor())),
        }
    }

    /// Pushes manifest bytes to `reference` (by its tag, `latest` when it has
    /// neither tag nor digest, else by digest) with the manifest's media type as `Content-Type`; returns
    /// the digest, checked against `Docker-Content-Digest`.
    #[tracing::instrument(skip(self, manifest), fields(reference = %reference, digest = %manifest.digest()))]
    pub async fn push_manifest(&self, reference: &Reference, manifest: &RawManifest) -> Result<Digest, Error> {
        if let Some(d) = reference.digest()
            && d.is_sha256()
            && d != manifest.digest()
        {
            return Err(Error::DigestMismatch {
                url: reference.to_string(),
                expected: d.clone(),
                found: manifest.digest().clone(),
            });
        }
        let target = reference.tag_or_latest().map_or_else(|| manifest.digest().to_string(), str::to_owned);
        let url = self.repo_url(reference, &format!("manifests/{target}")).await?;
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_str(manifest.media_type().as_str()).map_err(|_| Error::InvalidResponse {
            url: reference.to_string(),
            reason: "the manifest media type is not a valid header value".to_owned(),
        })?;
        headers.insert(header::CONTENT_TYPE, ct);
        let req = Req {
            method: Method::PUT,
            url,
            headers,
            body: Some(manifest.bytes().clone()),
            reference,
            scopes: Scopes::push(reference.repository()),
            retry: true,
        };
        let r = self.send(&req).await?;
        if r.resp.status() != StatusCode::CREATED && r.resp.status() != StatusCode::OK {
            return Err(status_error(&req.method, &reference.to_string(), r).await);
        }
        if let Some(found) = content_digest(r.resp.headers())
            && found.algorithm() == manifest.digest().algorithm()
            && &found != manifest.digest()
        {
            return Err(Error::DigestMismatch { url: r.url.clone(), expected: manifest.digest().clone(), found });
        }
        Ok(manifest.digest().clone())
    }
}
