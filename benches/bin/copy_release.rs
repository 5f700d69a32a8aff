//! The copy benchmark's driver: a release and every image it names, as
//! one `transfer::copy_images` run, to a distribution tree or a registry.
//!
//! ```text
//! copy-release RELEASE (--to-tree DIR | --to-registry HOST/REPO) [--floor-urls FILE] [--image]
//! ```
//!
//! `--image`: RELEASE is any image, copied alone (the large-blob run).
//!
//! Prints one line `seconds=S images=N blobs=B bytes=X copied=Y reused=Z
//! peak_rss_kib=R`. With `--floor-urls` it only writes the URL of every
//! manifest and distinct blob the run would read (the curl floor) and exits.
//! Registries are reached with `--insecure` semantics (loopback only).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

use relbuild_core::progress::CopyProgress;
use relbuild_core::registry::{Client, ClientOptions};
use relbuild_core::release::info::ReleaseInfo;
use relbuild_core::release::read::{ReadOptions, read_release};
use relbuild_core::transfer::{CopyOptions, ImageDestination, ImageLocation, ImageSource, copy_images};
use relbuild_core::{Manifest, Reference, Reporter};

#[derive(Default)]
struct Last(Mutex<CopyProgress>);

impl Reporter for Last {
    fn on_copy_progress(&self, progress: &CopyProgress) {
        *self.0.lock().expect("not poisoned") = *progress;
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[allow(clippy::print_stdout)] // a benchmark driver: its one line of output is the result
#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = args.first().ok_or("usage: copy-release RELEASE (--to-tree DIR | --to-registry HOST/REPO)")?.clone();
    let client: Client = ClientOptions::default().with_insecure(true).build()?;
    let mut images: Vec<(String, String)> = vec![("release".to_owned(), release.clone())];
    if !args.iter().any(|a| a == "--image") {
        let src = ImageSource::open(&release.parse()?, &client).await?;
        let loaded = read_release(&src, &release, &ReadOptions::default()).await?;
        let info = ReleaseInfo::read(loaded.data)?;
        images.extend(info.image_tags().map(|(t, p)| (t.name.clone(), p.to_owned())));
    }

    if let Some(file) = arg(&args, "--floor-urls") {
        return write_floor(&client, &images, &file).await;
    }
    let mut sources = Vec::new();
    let mut dests = Vec::new();
    for (tag, pullspec) in &images {
        sources.push(ImageSource::open(&pullspec.parse()?, &client).await?);
        let to: ImageLocation = match (arg(&args, "--to-tree"), arg(&args, "--to-registry")) {
            (Some(dir), _) => format!("dist:{dir}//openshift/release:{tag}").parse()?,
            (None, Some(repo)) => format!("{repo}:{tag}").parse()?,
            _ => return Err("one of --to-tree DIR or --to-registry HOST/REPO".into()),
        };
        dests.push(ImageDestination::open(&to, &client)?);
    }
    let jobs: Vec<(&ImageSource, &ImageDestination)> = sources.iter().zip(&dests).collect();
    let last = Last::default();
    let started = Instant::now();
    copy_images(&jobs, &CopyOptions::default().max_concurrent_blobs(16), &last).await?;
    let p = *last.0.lock().expect("not poisoned");
    println!(
        "seconds={:.3} images={} blobs={} bytes={} copied={} reused={} peak_rss_kib={}",
        started.elapsed().as_secs_f64(),
        p.images_done,
        p.blobs_total,
        p.bytes_total,
        p.bytes_copied,
        p.bytes_reused,
        peak_rss_kib()
    );
    Ok(())
}

/// One URL per manifest and distinct blob of `images`, for curl.
async fn write_floor(
    client: &Client,
    images: &[(String, String)],
    file: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut urls = BTreeSet::new();
    let mut blobs = BTreeSet::new();
    for (_, pullspec) in images {
        let reference: Reference = pullspec.parse()?;
        let base = format!("http://{}/v2/{}", reference.api_host(), reference.repository());
        let raw = client.pull_manifest_raw(&reference).await?;
        urls.insert(format!("{base}/manifests/{}", raw.digest()));
        let mut manifests = vec![raw];
        if let Ok(Manifest::Index(index)) = manifests[0].parse() {
            for child in &index.manifests {
                let m = client.pull_manifest_raw(&reference.with_digest(child.digest.clone())).await?;
                urls.insert(format!("{base}/manifests/{}", m.digest()));
                manifests.push(m);
            }
        }
        for m in manifests {
            if let Ok(Manifest::Image(image)) = m.parse() {
                for d in std::iter::once(&image.config).chain(&image.layers) {
                    if blobs.insert(d.digest.clone()) {
                        urls.insert(format!("{base}/blobs/{}", d.digest));
                    }
                }
            }
        }
    }
    std::fs::write(file, urls.into_iter().map(|u| u + "\n").collect::<String>())?;
    Ok(())
}
