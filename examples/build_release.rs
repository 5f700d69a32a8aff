//! Embedding relbuild-core in another tool: build a release payload and read
//! it back, without the `relbuild` CLI.
//!
//! The example starts a throw-away `docker-registry` on 127.0.0.1 (the test
//! harness of `relbuild-testdata`, so Debian's `docker-registry` must be
//! installed: `.ci/install-tools`), pushes a small synthetic release stream
//! into it and then makes the two library calls a tool needs:
//!
//! 1. [`release::new_release`] with a [`NewContext`] (the inputs: an
//!    ImageStream, mappings, the creation time) and [`NewOptions`] (name,
//!    outputs, cache, …) builds the payload and pushes it; the outcome has
//!    the digest `relbuild new` prints.
//! 2. [`read_release`] reads the pushed image's `release-manifests/`, and
//!    [`ReleaseInfo`] interprets it as `relbuild info` does.
//!
//! ```sh
//! cargo run -p relbuild-core --example build_release
//! ```
#![allow(clippy::print_stdout, reason = "an example prints its results")]

use anyhow::{Context, Result};
use relbuild_core::NoReporter;
use relbuild_core::image::Reference;
use relbuild_core::registry::ClientOptions;
use relbuild_core::release::info::ReleaseInfo;
use relbuild_core::release::read::{ReadOptions, read_release};
use relbuild_core::release::{self, NewContext, NewOptions, OutputOptions, ReferenceMode, Source};
use relbuild_core::transfer::{ImageLocation, ImageSource};
use relbuild_testdata::fixture::{StreamSpec, stream_images};
use relbuild_testdata::generate::{build_image, image_stream_yaml, push_images};
use relbuild_testdata::registry::TestRegistry;

#[tokio::main]
async fn main() -> Result<()> {
    // A loopback registry with a 3-operator stream in `ocp/stream`.
    let registry = TestRegistry::start().context("starting docker-registry (run .ci/install-tools)")?;
    let client = ClientOptions::default().with_insecure(true).build()?;
    let stream: Reference = format!("{}/ocp/stream", registry.host()).parse()?;
    let images = stream_images(&StreamSpec { operators: 3 }).iter().map(build_image).collect::<Result<Vec<_>>>()?;
    let digests = push_images(&client, &stream, images, 8).await?;
    let yaml = image_stream_yaml("4.99", &stream, &digests);

    // Build 4.99.0 from that ImageStream and push it.
    let to_image = format!("{}/ocp/release:4.99.0", registry.host());
    let ctx = NewContext {
        source: Source::ImageStreamFile {
            bytes: yaml.into_bytes(),
            file: "is.yaml".into(),
            mode: ReferenceMode::Public,
        },
        mappings: Vec::new(),
        created: "2025-01-02T03:04:05Z".parse()?,
    };
    let options = NewOptions {
        name: Some("4.99.0".into()),
        output: OutputOptions { to_image: Some(to_image.clone()), ..OutputOptions::default() },
        ..NewOptions::default()
    };
    let outcome = release::new_release(&client, &ctx, &options, &NoReporter).await?;
    let digest = outcome.digest.context("a pushed release has a digest")?;
    println!("built {} {digest}, pruned: {}", outcome.name, outcome.pruned.join(", "));

    // Read it back as `relbuild info` would.
    let location: ImageLocation = to_image.parse()?;
    let source = ImageSource::open(&location, &client).await?;
    let loaded = read_release(&source, &to_image, &ReadOptions::default()).await?;
    let info = ReleaseInfo::read(loaded.data)?;
    println!(
        "{} has {} images and {} manifests",
        info.preferred_name(),
        info.references.spec.tags.len(),
        info.manifest_files.len()
    );
    Ok(())
}
