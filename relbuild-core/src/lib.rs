//! relbuild-core builds and inspects OpenShift/OKD release payload images:
//! the work of `oc adm release new | info | extract`, as a library, plus
//! copying images between registries, OCI layouts and oci-archives (the
//! ground for `mirror`).
//!
//! # Architecture
//!
//! Each module may use only the modules listed above it.
//!
//! | module | owns | files on the wire or on disk |
//! |---|---|---|
//! | [`image`] | references, digests, media types, manifests, configs; Go-compatible JSON | manifest and config JSON |
//! | [`digest`] | hashing readers and writers, verification | every blob |
//! | [`progress`] | the [`Reporter`] trait | — |
//! | [`layer`] | tar layers: streaming read (gzip/zstd/plain), subtree extraction, deterministic write | layer blobs |
//! | [`store`] | OCI image layouts and oci-archive tarballs; the build cache | `oci-layout`, `index.json`, `blobs/sha256/*`; `<cache>/packs/*.{pack,idx}` |
//! | [`registry`] | the distribution-spec client: auth, manifests, blobs, uploads, mounts, retries | `/v2/…` |
//! | [`transfer`] | copying images between registries, OCI layouts and oci-archives (`docker://`, `oci:`, `oci-archive:`) | manifests and blobs, as read |
//! | [`release`] | release payload assembly and reading | `release-manifests/*` |
//!
//! Format code is synchronous and never touches the network; registry code
//! is async (tokio + reqwest). Core never prints and never reads the
//! environment: everything arrives through options.
#![deny(missing_docs)]

pub(crate) mod bridge;
pub mod digest;
pub(crate) mod durable;
pub mod error;
pub mod image;
pub mod layer;
pub mod progress;
pub mod registry;
pub mod release;
pub mod store;
pub mod transfer;

pub use error::{Error, Result};
pub use image::{Descriptor, Digest, ImageConfig, Manifest, MediaType, RawManifest, Reference};
pub use progress::{NoReporter, Reporter, WarningKind};
pub use store::OciDir;
