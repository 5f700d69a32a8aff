//! Embedding relbuild-core in another tool: build a release payload from an
//! ImageStream file, push it, and read it back, without the `relbuild` CLI.
//! It needs only `relbuild-core`, `tokio` and `anyhow`; copy it as a start.
//!
//! ```sh
//! cargo run -p relbuild-core --example build_release -- \
//!     [--insecure] [--auth FILE] IMAGE_STREAM_FILE REPO[:TAG] [NAME]
//! ```
//!
//! For example, against the loopback registry and stream of
//! `examples/demo.sh` (or `relbuild-testdata serve` and `generate`):
//!
//! ```sh
//! cargo run -p relbuild-core --example build_release -- --insecure is.yaml $R/ocp/release 4.99.0
//! ```
//!
//! The two library calls a tool makes:
//!
//! 1. [`release::new_release`] with a [`NewContext`] (the required inputs:
//!    an ImageStream, mappings, the creation time) and [`NewOptions`] (name,
//!    outputs, cache, …; every field has oc's default) builds the payload
//!    and pushes it. The outcome lists each output with the digest it holds.
//! 2. [`read_release`] reads the pushed image's `release-manifests/`, and
//!    [`ReleaseInfo`] interprets it as `relbuild info` does.
#![allow(clippy::print_stdout, reason = "an example prints its results")]

use anyhow::{Context, Result, bail};
use relbuild_core::NoReporter;
use relbuild_core::registry::{AuthFile, ClientOptions};
use relbuild_core::release::info::ReleaseInfo;
use relbuild_core::release::read::{ReadOptions, read_release};
use relbuild_core::release::{self, NewContext, NewOptions, OutputOptions, ReferenceMode, Source, Written};
use relbuild_core::transfer::{ImageLocation, ImageSource};

const USAGE: &str = "usage: build_release [--insecure] [--auth FILE] IMAGE_STREAM_FILE REPO[:TAG] [NAME]";

/// The command line: flags, then the stream file, the destination and an optional name.
struct Args {
    insecure: bool,
    auth: Option<String>,
    stream_file: String,
    to_image: String,
    name: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut insecure = false;
    let mut auth = None;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--insecure" => insecure = true,
            "--auth" => auth = Some(args.next().context("`--auth` needs a file")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    let (Some(stream_file), Some(to_image)) = (positional.next(), positional.next()) else {
        bail!("{USAGE}");
    };
    Ok(Args { insecure, auth, stream_file, to_image, name: positional.next() })
}

// Core never builds a runtime: the embedding program chooses one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse_args()?;
    // Credentials and TLS settings arrive through options, never from the environment.
    let mut client = ClientOptions::default().with_insecure(args.insecure);
    if let Some(file) = &args.auth {
        client = client.with_auth(AuthFile::load(file)?);
    }
    let client = client.build()?;

    let bytes = std::fs::read(&args.stream_file).with_context(|| format!("reading `{}`", args.stream_file))?;
    let ctx = NewContext {
        source: Source::ImageStreamFile { bytes, file: args.stream_file.clone(), mode: ReferenceMode::Public },
        mappings: Vec::new(),
        created: relbuild_core::jiff::Timestamp::now(),
    };
    let options = NewOptions {
        name: args.name.clone(),
        output: OutputOptions { to_image: Some(args.to_image.clone()), ..OutputOptions::default() },
        ..NewOptions::default()
    };
    // A `Reporter` would receive progress and warnings; warnings are also in the outcome.
    let outcome = release::new_release(&client, &ctx, &options, &NoReporter).await?;
    for w in &outcome.warnings {
        println!("warning: {w}");
    }
    let Some(Written::Image { reference, digest, .. }) = outcome.outputs.first() else {
        bail!("the release was not pushed");
    };
    println!("pushed {} to {reference} as {digest}", outcome.name);

    // Read it back as `relbuild info` would.
    let pushed = reference.to_string();
    let location: ImageLocation = pushed.parse()?;
    let source = ImageSource::open(&location, &client).await?;
    let loaded = read_release(&source, &pushed, &ReadOptions::default()).await?;
    let info = ReleaseInfo::read(loaded.data)?;
    println!(
        "{} has {} images and {} manifests",
        info.preferred_name(),
        info.references.spec.tags.len(),
        info.manifest_files.len()
    );
    Ok(())
}
