//! `relbuild-testdata`: run a loopback registry, or generate the synthetic
//! release stream into one.
//!
//! ```text
//! relbuild-testdata serve [--port-file F]             # a registry until Ctrl-C
//! relbuild-testdata generate --registry HOST:PORT --operators 200 --out is.yaml
//! relbuild-testdata push-large --registry HOST:PORT --mib 1024   # prints the pullspec
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use relbuild_core::image::Reference;
use relbuild_core::registry::ClientOptions;
use relbuild_testdata::fixture::{Role, StreamSpec, stream_images};
use relbuild_testdata::generate::{build_image, image_stream_yaml, large_image, push_image, push_images};
use relbuild_testdata::registry::TestRegistry;

#[derive(Debug, Parser)]
#[command(version, about = "Loopback registry and fixture generator for relbuild")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start Debian's docker-registry on 127.0.0.1 with temporary storage and
    /// keep it running until interrupted. Prints `127.0.0.1:PORT`.
    Serve {
        /// Also write `127.0.0.1:PORT` to this file once the registry answers.
        #[arg(long)]
        port_file: Option<PathBuf>,
    },
    /// Build the synthetic release stream, push it to a registry, and write
    /// the ImageStream that describes it.
    Generate {
        /// The registry, `HOST:PORT`.
        #[arg(long)]
        registry: String,
        /// The repository (under the registry) to push every image into.
        #[arg(long, default_value = "ocp/stream")]
        repository: String,
        /// How many operators (each with an operand image).
        #[arg(long, default_value_t = 3)]
        operators: usize,
        /// Where to write the ImageStream YAML (`-` for stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// Use plain HTTP (the loopback harness registry).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        insecure: bool,
        /// Also write the URLs of every manifest, config and operator top
        /// layer, one a line: the registry floor the benchmark measures.
        #[arg(long)]
        floor_urls: Option<PathBuf>,
        /// Pushes in flight at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        /// Also push a changed build of the first operator (one more file in
        /// its manifests) as tag `<operator>-alt`, and write the mapping
        /// `<operator>=<pullspec>` to this file: the one-image replacement a
        /// warm rebuild benchmark applies.
        #[arg(long)]
        alt_mapping: Option<PathBuf>,
    },
    /// Push an image whose one layer is a MiB-sized incompressible file
    /// (`generate::large_image`), and print its pullspec by digest.
    PushLarge {
        /// The registry, `HOST:PORT` (plain HTTP).
        #[arg(long)]
        registry: String,
        /// The repository (under the registry).
        #[arg(long, default_value = "bench/large")]
        repository: String,
        /// The layer's file size in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
    },
}

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { port_file } => {
            let reg = TestRegistry::start().context("starting the registry")?;
            println!("{}", reg.host());
            if let Some(f) = port_file {
                std::fs::write(&f, reg.host()).with_context(|| format!("writing {}", f.display()))?;
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // Stop on Ctrl-C or SIGTERM (what `kill` and scripts send), so the
            // registry child and its storage are always cleaned up.
            rt.block_on(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r,
                    _ = term.recv() => Ok(()),
                }
            })?;
            drop(reg);
            Ok(())
        }
        Cmd::Generate { registry, repository, operators, out, insecure, floor_urls, parallel, alt_mapping } => {
            let repo: Reference = format!("{registry}/{repository}").parse()?;
            let images = stream_images(&StreamSpec { operators });
            let mut built = images.iter().map(build_image).collect::<Result<Vec<_>>>()?;
            let alt = match &alt_mapping {
                Some(_) => {
                    let alt = relbuild_testdata::fixture::changed_operator(&images).map_err(anyhow::Error::msg)?;
                    Some(build_image(&alt)?)
                }
                None => None,
            };
            let mut urls = Vec::new();
            let scheme = if insecure { "http" } else { "https" };
            let base = format!("{scheme}://{}/v2/{}", repo.registry(), repo.repository());
            for b in &built {
                urls.push(format!("{base}/manifests/{}", b.manifest.digest()));
                urls.push(format!("{base}/blobs/{}", b.config.0.digest));
                if matches!(b.role, Role::Operator | Role::Cvo) {
                    let top = b.layers.last().context("an operator image has layers")?;
                    urls.push(format!("{base}/blobs/{}", top.0.digest));
                }
            }
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let client = ClientOptions::default().with_insecure(insecure).build()?;
            if let Some(a) = &alt {
                built.push(a.clone());
            }
            let mut digests = rt.block_on(push_images(&client, &repo, built, parallel))?;
            if let (Some(a), Some(f)) = (&alt, &alt_mapping) {
                let digest = digests.remove(&a.tag).context("the changed operator was pushed")?;
                let original = a.tag.trim_end_matches("-alt");
                std::fs::write(f, format!("{original}={}@{digest}\n", repo.name()))
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            let yaml = image_stream_yaml("4.99", &repo, &digests);
            if out.as_os_str() == "-" {
                print!("{yaml}");
            } else {
                std::fs::write(&out, yaml).with_context(|| format!("writing {}", out.display()))?;
            }
            if let Some(f) = floor_urls {
                std::fs::write(&f, urls.join("\n") + "\n").with_context(|| format!("writing {}", f.display()))?;
            }
            Ok(())
        }
        Cmd::PushLarge { registry, repository, mib } => {
            let repo: Reference = format!("{registry}/{repository}").parse()?;
            let image = large_image("large", mib)?;
            let client = ClientOptions::default().with_insecure(true).build()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let digest = rt.block_on(push_image(&client, &repo, &image))?;
            println!("{}@{digest}", repo.name());
            Ok(())
        }
    }
}
