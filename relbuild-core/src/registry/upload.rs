//! Blob uploads and cross-repository mounts.
//!
//! - `HEAD` first: a blob the repository has is not sent again.
//! - Up to [`ClientOptions::monolithic_threshold`] bytes: `POST` opens a
//!   session, one `PUT …?digest=` sends the body.
//! - Above it: `PATCH` chunks of [`ClientOptions::chunk_size`] with
//!   `Content-Range`, following each `Location` (relative URLs resolved), then
//!   an empty `PUT …?digest=`.
//! - Mount: `POST …/blobs/uploads/?mount=<digest>&from=<src>`; `201` means
//!   mounted, `202` means the registry declined and opened an ordinary
//!   session, which we upload into rather than abandon. Under token auth the
//!   token carries `repository:dst:pull,push` and `repository:src:pull`.
//!
//! A failed upload's session is cancelled (`DELETE`, best effort), and the
//! upload retried whole: a new session, and the [`BlobSource`] opened again.
//! The content is hashed as it is read, so a source that does not match its
//! descriptor fails with a clear error before the final `PUT`.
//!
//! [`ClientOptions::monolithic_threshold`]: super::ClientOptions::monolithic_threshold
//! [`ClientOptions::chunk_size`]: super::ClientOptions::chunk_size

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::auth::Scopes;
use super::client::{Client, Req, Resp, content_digest, header_str, status_error};
use super::error::{Error, redact_url};
use crate::image::{Descriptor, Digest, Reference};
use crate::progress::BlobKind;

/// A reader over a blob's content, as a [`BlobSource`] opens it.
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// The future [`BlobSource::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BlobReader>> + Send + 'a>>;

/// Content to upload that can be read again from the start, so a failed
/// upload can be retried.
pub trait BlobSource: Send + Sync {
    /// Opens the content from its first byte.
    fn open(&self) -> OpenFuture<'_>;
}

impl BlobSource for Bytes {
    fn open(&self) -> OpenFuture<'_> {
        let b = self.clone();
        Box::pin(async move { Ok(Box::new(io::Cursor::new(b)) as BlobReader) })
    }
}

impl BlobSource for PathBuf {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move { Ok(Box::new(tokio::fs::File::open(self).await?) as BlobReader) })
    }
}

/// A blob in a registry repository, as an upload source: copying between
/// registries streams from one into the other. The download holds one of the
/// source registry's request slots for the whole transfer, so copying within
/// one registry needs `max_per_registry` of at least 2 (use a mount there).
#[derive(Clone, Debug)]
pub struct RegistryBlob {
    /// The client to pull with.
    pub client: Client,
    /// The repository holding the blob.
    pub repo: Reference,
    /// The blob.
    pub descriptor: Descriptor,
}

impl BlobSource for RegistryBlob {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move { Ok(Box::new(self.client.pull_blob_reader(&self.repo, &self.descriptor)) as BlobReader) })
    }
}

/// What [`Client::push_blob`] or [`Client::mount_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// The repository already had the blob; nothing was sent.
    Exists,
    /// The registry linked the blob from the other repository.
    Mounted,
    /// The content was uploaded.
    Uploaded,
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
async fn read_full(r: &mut BlobReader, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// The `Location` of an upload response, resolved against the request URL.
fn location(base: &url::Url, h: &HeaderMap) -> Result<url::Url, Error> {
    let loc = header_str(h, header::LOCATION).ok_or_else(|| Error::InvalidResponse {
        url: redact_url(base.as_str()),
        reason: "no `Location` header on an upload response".to_owned(),
    })?;
    base.join(loc).map_err(|source| Error::Url { url: redact_url(loc), source })
}

/// The `POST` that opens an upload session (or tries a mount) at `url`.
fn start_upload(repo: &Reference, url: url::Url, scopes: Scopes) -> Req<'_> {
    Req {
        method: Method::POST,
        url,
        headers: HeaderMap::new(),
        body: Some(Bytes::new()),
        reference: repo,
        scopes,
        retry: true,
    }
}

impl Client {
    /// Uploads blob `desc` to `repo`'s repository from `source`, unless it is
    /// already there.
    #[tracing::instrument(skip(self, source), fields(repo = %repo.name(), digest = %desc.digest, size = desc.size))]
    pub async fn push_blob(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome, Error> {
        self.push_or_mount(repo, None, desc, source).await
    }

    /// Mounts blob `desc` from repository `from` into `repo` (same registry),
    /// uploading from `source` when the registry declines the mount. A blob
    /// already in `repo` is left alone; a `from` on another registry means a
    /// plain upload.
    #[tracing::instrument(skip(self, source), fields(repo = %repo.name(), from = %from.name(), digest = %desc.digest))]
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        from: &Reference,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome, Error> {
        let from = (from.api_host() == repo.api_host() && from.repository() != repo.repository()).then_some(from);
        self.push_or_mount(repo, from, desc, source).await
    }

    /// Skips a blob `repo` already has; otherwise mounts it from `from` (when
    /// given) or uploads it.
    async fn push_or_mount(
        &self,
        repo: &Reference,
        from: Option<&Reference>,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome, Error> {
        if self.blob_exists(repo, &desc.digest).await? {
            self.reporter().on_blob_complete(&desc.digest);
            return Ok(PushOutcome::Exists);
        }
        self.upload_retrying(repo, from, desc, source).await
    }

    async fn upload_retrying(
        &self,
        repo: &Reference,
        from: Option<&Reference>,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome, Error> {
        let policy = &self.options().retry;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload_once(repo, from, desc, source).await {
                Ok(o) => {
                    self.reporter().on_blob_complete(&desc.digest);
                    return Ok(o);
                }
                Err(e) if e.is_retryable() && attempt < policy.max_attempts && start.elapsed() < policy.total => {
                    let delay = policy.delay(attempt, None);
                    tracing::debug!(attempt, ?delay, error = %e, "blob upload failed; starting over");
                    self.reporter().on_retry(repo.registry(), attempt, delay, &e);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(
        &self,
        repo: &Reference,
        from: Option<&Reference>,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome, Error> {
        let mut scopes = Scopes::push(repo.repository());
        let mut url = self.repo_url(repo, "blobs/uploads/").await?;
        if let Some(src) = from {
            scopes = scopes.with(format!("repository:{}:pull", src.repository()));
            url.query_pairs_mut().append_pair("mount", desc.digest.as_str()).append_pair("from", src.repository());
            self.reporter().on_blob_start(BlobKind::Mount, &desc.digest, Some(desc.size));
        }
        let req = start_upload(repo, url, scopes.clone());
        let r = self.send(&req).await?;
        match r.resp.status() {
            StatusCode::CREATED if from.is_some() => {
                check_digest(&r, &desc.digest)?;
                return Ok(PushOutcome::Mounted);
            }
            StatusCode::ACCEPTED => {}
            _ => return Err(status_error(&req.method, &repo.name(), r).await),
        }
        let mut session = location(&req.url, r.resp.headers())?;
        drop(r);
        if let Err(e) = self.upload_into(repo, scopes.clone(), &mut session, desc, source).await {
            self.cancel_upload(repo, scopes, session).await;
            return Err(e);
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Checks that `repo`'s registry answers and grants push to its
    /// repository, before a build does any work for it: opens an upload
    /// session (`POST …/blobs/uploads/`, with the push scope under token
    /// auth) and cancels it at once (`DELETE`). Nothing is written. A
    /// refusal is the registry's own error (401/403, `NotFound`, …).
    #[tracing::instrument(skip(self), fields(repo = %repo.name()))]
    pub async fn check_push_access(&self, repo: &Reference) -> Result<(), Error> {
        let scopes = Scopes::push(repo.repository());
        let req = start_upload(repo, self.repo_url(repo, "blobs/uploads/").await?, scopes.clone());
        let r = self.send(&req).await?;
        if r.resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(&req.method, &repo.name(), r).await);
        }
        let session = location(&req.url, r.resp.headers())?;
        drop(r);
        self.cancel_upload(repo, scopes, session).await;
        Ok(())
    }

    /// Cancels an upload session (`DELETE`), so the registry drops
    /// its partial data now rather than when its purge runs. Best effort:
    /// a failure here is only logged, the upload's own error is what counts.
    async fn cancel_upload(&self, repo: &Reference, scopes: Scopes, session: url::Url) {
        let req = Req {
            method: Method::DELETE,
            url: session,
            headers: HeaderMap::new(),
            body: None,
            reference: repo,
            scopes,
            retry: false,
        };
        match self.send(&req).await {
            Ok(r) if r.resp.status().is_success() => {}
            Ok(r) => tracing::debug!(status = %r.resp.status(), "could not cancel the failed upload"),
            Err(e) => tracing::debug!(error = %e, "could not cancel the failed upload"),
        }
    }

    /// Sends the content into an open upload session; `session` follows
    /// the registry's `Location` after each chunk.
    async fn upload_into(
        &self,
        repo: &Reference,
        scopes: Scopes,
        session: &mut url::Url,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<(), Error> {
        let source_err = |source| Error::Source { digest: desc.digest.clone(), source };
        let mut reader = source.open().await.map_err(source_err)?;
        self.reporter().on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
        let mut hasher = Sha256::new();
        let mut sent = 0u64;
        let opts = self.options();
        let final_body = if desc.size <= opts.monolithic_threshold {
            // One extra byte tells a source longer than its descriptor.
            let mut buf = vec![0u8; desc.size as usize + 1];
            let n = read_full(&mut reader, &mut buf).await.map_err(source_err)?;
            buf.truncate(n);
            hasher.update(&buf);
            sent = n as u64;
            Bytes::from(buf)
        } else {
            loop {
                let mut buf = vec![0u8; opts.chunk_size];
                let n = read_full(&mut reader, &mut buf).await.map_err(source_err)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                if sent + n as u64 > desc.size {
                    sent += n as u64;
                    break;
                }
                hasher.update(&buf);
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                let range = HeaderValue::from_str(&format!("{}-{}", sent, sent + n as u64 - 1))
                    .expect("because a number range is a valid header value");
                headers.insert(header::CONTENT_RANGE, range);
                let req = Req {
                    method: Method::PATCH,
                    url: session.clone(),
                    headers,
                    body: Some(Bytes::from(buf)),
                    reference: repo,
                    scopes: scopes.clone(),
                    retry: false,
                };
                let r = self.send(&req).await?;
                if r.resp.status() != StatusCode::ACCEPTED {
                    return Err(status_error(&req.method, &repo.name(), r).await);
                }
                sent += n as u64;
                if let Some(end) = header_str(r.resp.headers(), header::RANGE)
                    .and_then(|v| v.trim().trim_start_matches("bytes=").split_once('-'))
                    .and_then(|(_, end)| end.parse::<u64>().ok())
                    && end + 1 != sent
                {
                    return Err(Error::InvalidResponse {
                        url: r.url.clone(),
                        reason: format!("the registry has {} bytes of the upload, we sent {sent}", end + 1),
                    });
                }
                *session = location(&req.url, r.resp.headers())?;
                self.reporter().on_blob_progress(&desc.digest, n as u64);
            }
            Bytes::new()
        };
        let url_for_msg = redact_url(session.as_str());
        if sent != desc.size {
            return Err(Error::SizeMismatch {
                url: url_for_msg,
                digest: desc.digest.clone(),
                expected: desc.size,
                found: sent,
            });
        }
        let found = Digest::from_sha256_bytes(&hasher.finalize().into());
        if desc.digest.is_sha256() && found != desc.digest {
            return Err(Error::DigestMismatch { url: url_for_msg, expected: desc.digest.clone(), found });
        }
        let monolithic = !final_body.is_empty();
        let n = final_body.len() as u64;
        let mut put_url = session.clone();
        put_url.query_pairs_mut().append_pair("digest", desc.digest.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let req = Req {
            method: Method::PUT,
            url: put_url,
            headers,
            body: Some(final_body),
            reference: repo,
            scopes,
            retry: false,
        };
        let r = self.send(&req).await?;
        if r.resp.status() != StatusCode::CREATED {
            return Err(status_error(&req.method, &repo.name(), r).await);
        }
        check_digest(&r, &desc.digest)?;
        if monolithic {
            self.reporter().on_blob_progress(&desc.digest, n);
        }
        Ok(())
    }
}

fn check_digest(r: &Resp, expected: &Digest) -> Result<(), Error> {
    match content_digest(r.resp.headers()) {
        Some(found) if found.algorithm() == expected.algorithm() && &found != expected => {
            Err(Error::DigestMismatch { url: r.url.clone(), expected: expected.clone(), found })
        }
        _ => Ok(()),
    }
}
