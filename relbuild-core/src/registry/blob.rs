//! Verified, streamed blob reads.
//!
//! A blob is hashed and counted as it streams. The last chunk is held back
//! until the digest and size check out, so a consumer that reads to the end
//! only ever sees `Ok` for verified content. A body that drops mid-way is
//! resumed with `Range: bytes=N-` (or, if the server ignores `Range`, the
//! first `N` bytes of the new body are skipped), so memory never depends on
//! the blob size and nothing already handed out has to be taken back.

use std::io::{self, Write};
use std::pin::Pin;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncRead;

use super::auth::Scopes;
use super::client::{Client, Req, Resp, content_digest, status_error, transport_error};
use super::error::Error;
use crate::image::{Descriptor, Digest, Reference};
use crate::progress::BlobKind;

/// A boxed stream of verified blob bytes.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

struct PullState {
    client: Client,
    /// The repository asked for (its mirrors are remembered under it).
    asked: Reference,
    /// The repository read from: the first route until one answers.
    repo: Reference,
    /// Routes after `repo` still to try while none has answered.
    fallbacks: std::collections::VecDeque<Reference>,
    desc: Descriptor,
    resp: Option<Resp>,
    hasher: Sha256,
    received: u64,
    /// Bytes of a restarted (non-`Range`) body still to be skipped.
    skip: u64,
    pending: Option<Bytes>,
    attempt: u32,
    start: Instant,
    started: bool,
    done: bool,
}

impl PullState {
    fn what(&self) -> String {
        self.repo.with_digest(self.desc.digest.clone()).to_string()
    }

    /// Opens the body at the current route; while no route has answered, a
    /// failing one gives way to the next at once, and only the last one
    /// gets the retry policy.
    async fn open(&mut self) -> Result<(), Error> {
        let mut attempts = Vec::new();
        loop {
            match self.open_at(self.fallbacks.is_empty()).await {
                Ok(()) => {
                    if !attempts.is_empty() || self.repo.name() != self.asked.name() {
                        self.client.inner.router.remember(&self.asked, &self.repo);
                    }
                    self.fallbacks.clear();
                    return Ok(());
                }
                Err(e) => match self.fallbacks.pop_front() {
                    Some(next) => {
                        tracing::debug!(at = %self.what(), error = %e, "mirror route failed");
                        attempts.push((self.what(), e));
                        self.repo = next;
                    }
                    None if attempts.is_empty() => return Err(e),
                    None => {
                        attempts.push((self.what(), e));
                        let reference = self.asked.with_digest(self.desc.digest.clone()).to_string();
                        return Err(Error::Mirrors { reference, attempts });
                    }
                },
            }
        }
    }

    async fn open_at(&mut self, retry: bool) -> Result<(), Error> {
        let url = self.client.repo_url(&self.repo, &format!("blobs/{}", self.desc.digest)).await?;
        let mut headers = HeaderMap::new();
        if self.received > 0 {
            let range = HeaderValue::from_str(&format!("bytes={}-", self.received))
                .expect("because a number range is a valid header value");
            headers.insert(header::RANGE, range);
        }
        let req = Req {
            method: Method::GET,
            url,
            headers,
            body: None,
            reference: &self.repo,
            scopes: Scopes::pull(self.repo.repository()),
            retry,
        };
        let r = self.client.send(&req).await?;
        match r.resp.status() {
            StatusCode::OK => self.skip = self.received,
            StatusCode::PARTIAL_CONTENT if self.received > 0 => self.skip = 0,
            _ => return Err(status_error(&req.method, &self.what(), r).await),
        }
        if let Some(found) = content_digest(r.resp.headers())
            && found.algorithm() == self.desc.digest.algorithm()
            && found != self.desc.digest
        {
            return Err(Error::DigestMismatch { url: r.url.clone(), expected: self.desc.digest.clone(), found });
        }
        if !self.started {
            self.started = true;
            self.client.reporter().on_blob_start(BlobKind::Pull, &self.desc.digest, Some(self.desc.size));
        }
        self.resp = Some(r);
        Ok(())
    }

    /// Sleeps before another attempt, or gives up with `err`.
    async fn retry_or(&mut self, err: Error) -> Result<(), Error> {
        let policy = &self.client.options().retry;
        self.attempt += 1;
        if !err.is_retryable() || self.attempt >= policy.max_attempts || self.start.elapsed() >= policy.total {
            return Err(err);
        }
        let delay = policy.delay(self.attempt, None);
        tracing::debug!(digest = %self.desc.digest, received = self.received, ?delay, error = %err, "blob download interrupted; resuming");
        self.client.reporter().on_retry(self.repo.registry(), self.attempt, delay, &err);
        tokio::time::sleep(delay).await;
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.resp.is_none()
                && let Err(e) = self.open().await
            {
                self.retry_or(e).await?;
                continue;
            }
            let r = self.resp.as_mut().expect("because it was just opened");
            let url = r.url.clone();
            match r.resp.chunk().await {
                Ok(Some(mut chunk)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(chunk.len() as u64);
                        self.skip -= n;
                        chunk = chunk.slice(n as usize..);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.received += chunk.len() as u64;
                    if self.received > self.desc.size {
                        return Err(Error::SizeMismatch {
                            url,
                            digest: self.desc.digest.clone(),
                            expected: self.desc.size,
                            found: self.received,
                        });
                    }
                    self.hasher.update(&chunk);
                    self.client.reporter().on_blob_progress(&self.desc.digest, chunk.len() as u64);
                    if let Some(prev) = self.pending.replace(chunk) {
                        return Ok(Some(prev));
                    }
                }
                Ok(None) => {
                    self.resp = None;
                    // The body ended cleanly (hyper checks `Content-Length`
                    // framing), so a short blob is short, not dropped.
                    if self.received < self.desc.size {
                        return Err(Error::SizeMismatch {
                            url,
                            digest: self.desc.digest.clone(),
                            expected: self.desc.size,
                            found: self.received,
                        });
                    }
                    let hasher = std::mem::take(&mut self.hasher);
                    let found = Digest::from_sha256_bytes(&hasher.finalize().into());
                    if self.desc.digest.is_sha256() && found != self.desc.digest {
                        return Err(Error::DigestMismatch { url, expected: self.desc.digest.clone(), found });
                    }
                    self.done = true;
                    self.client.reporter().on_blob_complete(&self.desc.digest);
                    return Ok(self.pending.take());
                }
                Err(e) => {
                    let err = transport_error(self.repo.api_host(), &url, e);
                    self.resp = None;
                    self.retry_or(err).await?;
                }
            }
        }
    }
}

impl Client {
    /// True when blob `digest` exists in `repo`'s repository (`HEAD`).
    #[tracing::instrument(skip(self), fields(repo = %repo.name()))]
    pub async fn blob_exists(&self, repo: &Reference, digest: &Digest) -> Result<bool, Error> {
        let url = self.repo_url(repo, &format!("blobs/{digest}")).await?;
        let req = Req {
            method: Method::HEAD,
            url,
            headers: HeaderMap::new(),
            body: None,
            reference: repo,
            scopes: Scopes::pull(repo.repository()),
            retry: true,
        };
        let r = self.send(&req).await?;
        match r.resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&req.method, &repo.with_digest(digest.clone()).to_string(), r).await),
        }
    }

    /// Streams blob `desc` from `repo`'s repository (its tag or digest is
    /// ignored). Each chunk is hashed and counted; the last chunk comes only
    /// after the digest and size are verified, and a mismatch ends the
    /// stream with [`Error::DigestMismatch`] or [`Error::SizeMismatch`]. A
    /// dropped body is resumed. Memory use does not depend on the blob size.
    #[tracing::instrument(skip(self), fields(repo = %repo.name(), digest = %desc.digest))]
    pub fn pull_blob(&self, repo: &Reference, desc: &Descriptor) -> BlobStream {
        self.pull_blob_from(repo, desc, 0, Sha256::new())
    }

    /// [`Client::pull_blob`] of the bytes after the first `offset`, which the
    /// caller has and which `prefix` has hashed (a `Range` request; if the
    /// server ignores it, the first `offset` bytes are skipped). The stream
    /// yields only the rest, and is verified as the whole.
    pub fn pull_blob_from(&self, repo: &Reference, desc: &Descriptor, offset: u64, prefix: Sha256) -> BlobStream {
        let (first, fallbacks, blocked) = if self.inner.router.is_active() {
            let routes = self.inner.router.routes(repo);
            let mut all: std::collections::VecDeque<Reference> = routes.repositories.into();
            let first = all.pop_front();
            (first, all, routes.source_blocked_by)
        } else {
            (None, Default::default(), None)
        };
        if first.is_none()
            && let Some(file) = blocked
        {
            let reference = repo.with_digest(desc.digest.clone()).to_string();
            return Box::pin(futures_util::stream::once(async move { Err(Error::SourceBlocked { reference, file }) }));
        }
        let state = PullState {
            client: self.clone(),
            asked: repo.clone(),
            repo: first.unwrap_or_else(|| repo.clone()),
            fallbacks,
            desc: desc.clone(),
            resp: None,
            hasher: prefix,
            received: offset,
            skip: 0,
            pending: None,
            attempt: 0,
            start: Instant::now(),
            started: false,
            done: false,
        };
        Box::pin(futures_util::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            match st.next().await {
                Ok(Some(b)) => Some((Ok(b), st)),
                Ok(None) => None,
                Err(e) => {
                    st.done = true;
                    Some((Err(e), st))
                }
            }
        }))
    }

    /// [`Client::pull_blob`] as an `AsyncRead`. Errors surface as
    /// `io::Error`s wrapping a [`registry::Error`](Error) (`get_ref()` +
    /// `downcast_ref`).
    pub fn pull_blob_reader(&self, repo: &Reference, desc: &Descriptor) -> impl AsyncRead + Send + Unpin + 'static {
        tokio_util::io::StreamReader::new(self.pull_blob(repo, desc).map_err(io::Error::other))
    }

    /// Downloads blob `desc` into a synchronous writer, which runs on a
    /// blocking thread (so tar or decompression can sit behind it), and
    /// returns the writer once the content is verified.
    #[tracing::instrument(skip(self, writer), fields(repo = %repo.name(), digest = %desc.digest))]
    pub async fn pull_blob_to_writer<W: Write + Send + 'static>(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        writer: W,
    ) -> Result<W, Error> {
        self.pull_blob_to_writer_from(repo, desc, writer, 0, Sha256::new()).await
    }

    /// [`Client::pull_blob_to_writer`] into a writer that holds the first
    /// `offset` bytes already (hashed into `prefix`): only the rest is
    /// fetched, with a `Range` request (see [`Client::pull_blob_from`]).
    pub async fn pull_blob_to_writer_from<W: Write + Send + 'static>(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        writer: W,
        offset: u64,
        prefix: Sha256,
    ) -> Result<W, Error> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let task = tokio::task::spawn_blocking(move || -> io::Result<W> {
            let mut w = writer;
            while let Some(b) = rx.blocking_recv() {
                w.write_all(&b)?;
            }
            w.flush()?;
            Ok(w)
        });
        let mut stream = self.pull_blob_from(repo, desc, offset, prefix);
        let mut failed = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => {
                    if tx.send(b).await.is_err() {
                        // The writer failed; its error is reported below.
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let joined = task.await;
        if let Some(e) = failed {
            return Err(e);
        }
        let digest = desc.digest.clone();
        match joined {
            Ok(r) => r.map_err(|source| Error::Write { digest, source }),
            Err(e) => match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(_) => Err(Error::Write { digest, source: io::Error::other("the writer task was cancelled") }),
            },
        }
    }

    /// Downloads a small blob (a config) into memory, refusing blobs larger
    /// than `limit` bytes.
    #[tracing::instrument(skip(self), fields(repo = %repo.name(), digest = %desc.digest))]
    pub async fn pull_blob_bytes(&self, repo: &Reference, desc: &Descriptor, limit: u64) -> Result<Bytes, Error> {
        if desc.size > limit {
            return Err(Error::TooLarge { url: repo.with_digest(desc.digest.clone()).to_string(), limit });
        }
        let mut buf = BytesMut::with_capacity(desc.size as usize);
        let mut stream = self.pull_blob(repo, desc);
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }
}
