//! The distribution-spec registry client: a thin layer over reqwest.
//!
//! | file | owns |
//! |---|---|
//! | `client.rs` | [`Client`], [`ClientOptions`], TLS (rustls + ring, system roots plus extra CAs), the request loop (auth, retries, per-registry limit), manifest `GET`/`HEAD`/`PUT` |
//! | `blob.rs` | verified, streamed, resumable blob reads |
//! | `upload.rs` | monolithic and chunked uploads, cross-repository mounts, [`BlobSource`] |
//! | `auth.rs` | `WWW-Authenticate` parsing, multi-scope bearer tokens, the token cache |
//! | `authfile.rs` | docker/podman auth files and pull secrets ([`AuthFile`]) |
//! | `mirror.rs` | [`MirrorRules`]: `--idms-file`/`--icsp-file` digest mirrors, and the per-client router that reads through them |
//! | `retry.rs` | [`RetryPolicy`]: backoff with jitter, `Retry-After` |
//! | `error.rs` | [`Error`], with the distribution error [`Envelope`] |
//!
//! Why not `oci-client`: its tokens cannot cover two repositories (so
//! mounts fail under token auth), a declined mount abandons its upload
//! session, and it has no retries. See `shared/DEPENDENCIES.md`.
//!
//! Everything that reaches the network is verified: manifests against the
//! digest asked for and `Docker-Content-Digest`, blobs against their
//! descriptor while they stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), relbuild_core::registry::Error> {
//! use relbuild_core::registry::{AuthFile, ClientOptions};
//! let auth = AuthFile::discover(&["/run/user/1000/containers/auth.json".into()])?.unwrap_or_default();
//! let client = ClientOptions::default().with_auth(auth).build()?;
//! let reference = "quay.io/openshift-release-dev/ocp-release:4.15.3-x86_64".parse().expect("valid");
//! let raw = client.pull_manifest_raw(&reference).await?;
//! println!("{}", raw.digest());
//! # Ok(()) }
//! ```

mod auth;
mod authfile;
mod blob;
mod client;
mod error;
mod mirror;
mod retry;
mod upload;

pub use authfile::{AuthFile, Credential};
pub use blob::BlobStream;
pub use client::{Client, ClientOptions, DEFAULT_MAX_PER_REGISTRY, MAX_MANIFEST_SIZE};
pub use error::{CredentialSource, Envelope, EnvelopeError, Error, redact_url};
pub use mirror::{MirrorFileKind, MirrorRules, Routes};
pub use retry::RetryPolicy;
pub use upload::{BlobReader, BlobSource, OpenFuture, PushOutcome, RegistryBlob};
