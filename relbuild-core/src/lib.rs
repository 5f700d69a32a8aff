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
//! | [`store`] | OCI image layouts, oci-archive tarballs and distribution storage trees, and their offline checks; the build cache | `oci-layout`, `index.json`, `blobs/sha256/*`; `docker/registry/v2/…`; `<cache>/packs/*.{pack,idx}` |
//! | [`registry`] | the distribution-spec client: auth, manifests, blobs, uploads, mounts, retries | `/v2/…` |
//! | [`transfer`] | **the image-transfer engine**: every image read, copied or pushed goes through it. A [`transfer::Source`] (registry, OCI layout, oci-archive, distribution tree, or an image composed in memory) says where each manifest and blob is; a [`transfer::Destination`] checks, receives and publishes them; [`transfer::copy_images`] runs many images as one deduplicated, verified run (`docker://`, `oci:`, `oci-archive:`, `dist:`) | manifests and blobs, as read |
//! | [`release`] | release payload assembly and reading, on top of `transfer`: `new` reads its inputs through [`transfer::ImageSource`] (via `release::inspect::Fetcher`, which adds the build cache) and pushes or writes its result with [`transfer::copy_image`]; `info` and `extract` read through `ImageSource` too | `release-manifests/*` |
//!
//! No module but `transfer` (and the `registry` client under it) moves
//! image content: `release` never calls the registry client for manifests
//! or blobs.
//!
//! Format code is synchronous and never touches the network; registry code
//! is async (tokio + reqwest). Core never prints and never reads the
//! environment: everything arrives through options.
//!
//! # Quick start
//!
//! Build a release from an ImageStream file and push it, as
//! `relbuild new -f is.yaml --name 4.99.0 --to-image quay.io/me/release`
//! does. [`release::NewContext`] holds the required inputs,
//! [`release::NewOptions`] the settings (each with oc's default), and the
//! outcome lists every output with the digest of what it holds:
//!
//! ```no_run
//! # async fn build() -> Result<(), Box<dyn std::error::Error>> {
//! use relbuild_core::registry::ClientOptions;
//! use relbuild_core::release::{NewContext, NewOptions, OutputOptions, ReferenceMode, Source, new_release};
//!
//! let client = ClientOptions::default().build()?;
//! let ctx = NewContext {
//!     source: Source::ImageStreamFile {
//!         bytes: std::fs::read("is.yaml")?,
//!         file: "is.yaml".into(),
//!         mode: ReferenceMode::Public,
//!     },
//!     mappings: Vec::new(),
//!     created: relbuild_core::jiff::Timestamp::now(),
//! };
//! let options = NewOptions {
//!     name: Some("4.99.0".into()),
//!     output: OutputOptions { to_image: Some("quay.io/me/release".into()), ..OutputOptions::default() },
//!     ..NewOptions::default()
//! };
//! let outcome = new_release(&client, &ctx, &options, &relbuild_core::NoReporter).await?;
//! for output in &outcome.outputs {
//!     println!("{} holds {:?}", output.location(), output.digest());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The whole program, with credentials, `--insecure` registries and reading
//! the release back as `relbuild info` does, is the example
//! `examples/build_release.rs` in the repository
//! (`cargo run -p relbuild-core --example build_release -- --help`). It
//! depends on nothing but this crate, `tokio` and `anyhow`, so it can be
//! copied as the start of another tool.
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
/// The time type of public signatures ([`release::NewContext::created`]).
pub use jiff;
pub use progress::{CopyProgress, NoReporter, Reporter, WarningKind};
pub use store::OciDir;
