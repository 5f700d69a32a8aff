//! [`copy_images`]: images or indexes, from any [`ImageSource`] to any
//! [`ImageDestination`], as one run.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures_util::{StreamExt as _, TryStreamExt as _, stream};

use super::{Destination, Error, ImageDestination, ImageSource, Result};
use crate::image::{Descriptor, Digest, Manifest, MediaType, RawManifest};
use crate::progress::{CopyProgress, Reporter};

/// How [`copy_image`] copies.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CopyOptions {
    /// For an index: copy only the image for this `os/arch[/variant]`
    /// (e.g. `linux/arm64`), which then becomes the top manifest at the
    /// destination, as `oc image mirror --filter-by-os` does. Ignored for a
    /// single image.
    pub filter_by_os: Option<String>,
    /// Blobs copied at once. Within one registry, at most half the client's
    /// `max_per_registry` (a declined mount streams from the same registry,
    /// holding a second request slot).
    pub max_concurrent_blobs: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self { filter_by_os: None, max_concurrent_blobs: 4 }
    }
}

impl CopyOptions {
    /// Sets [`filter_by_os`](Self::filter_by_os).
    pub fn filter_by_os(mut self, os_arch: impl Into<String>) -> Self {
        self.filter_by_os = Some(os_arch.into());
        self
    }

    /// Sets [`max_concurrent_blobs`](Self::max_concurrent_blobs).
    pub fn max_concurrent_blobs(mut self, n: usize) -> Self {
        self.max_concurrent_blobs = n;
        self
    }
}

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlobAction {
    /// The destination had it; nothing was sent.
    Existed,
    /// Mounted from the source repository (same registry); no bytes moved.
    Mounted,
    /// The content was copied.
    Copied,
}

/// One blob [`copy_image`] handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopiedBlob {
    /// The blob.
    pub descriptor: Descriptor,
    /// What was done.
    pub action: BlobAction,
}

/// What [`copy_image`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyOutcome {
    /// The digest of the top manifest written (the source's, unchanged; with
    /// `filter_by_os`, the selected image's).
    pub digest: Digest,
    /// Its media type.
    pub media_type: MediaType,
    /// Every manifest written, the top one last.
    pub manifests: Vec<Descriptor>,
    /// Every blob (configs and layers, each once), in manifest order.
    pub blobs: Vec<CopiedBlob>,
}

impl CopyOutcome {
    /// How many blobs had `action`.
    pub fn count(&self, action: BlobAction) -> usize {
        self.blobs.iter().filter(|b| b.action == action).count()
    }

    /// Bytes actually copied.
    pub fn bytes_copied(&self) -> u64 {
        self.blobs.iter().filter(|b| b.action == BlobAction::Copied).map(|b| b.descriptor.size).sum()
    }
}

/// Copies the image or index at `src` to `dst`: every blob first, then the
/// manifests of an index's images, then the top manifest, tagged. Manifests
/// are written as the exact bytes read, so digests are preserved; blobs
/// stream and are verified against their descriptors on the way. Nothing is
/// tagged unless everything before succeeded. One image's [`copy_images`].
pub async fn copy_image(
    src: &ImageSource,
    dst: &ImageDestination,
    options: &CopyOptions,
    reporter: &dyn Reporter,
) -> Result<CopyOutcome> {
    let mut outcomes = copy_images(&[(src, dst)], options, reporter).await?;
    Ok(outcomes.pop().expect("one outcome per job"))
}

/// One image of a copy run, planned.
struct Job<'a> {
    src: &'a ImageSource,
    dst: &'a dyn Destination,
    top: RawManifest,
    images: Vec<RawManifest>,
    blobs: Vec<Descriptor>,
}

/// Copies many images at once, as one run: every job's blobs go through
/// one queue, deduplicated by destination and digest across all images (a
/// layer fifty images share is copied once per destination), then each
/// job's manifests, children before their index, its top manifest last.
/// Returns one outcome per job, in order; in it, a blob another job of the
/// run copied counts as [`BlobAction::Existed`].
pub async fn copy_images(
    jobs: &[(&ImageSource, &ImageDestination)],
    options: &CopyOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<CopyOutcome>> {
    let mut planned = Vec::with_capacity(jobs.len());
    for (src, dst) in jobs {
        let (top, images) = select(src, options).await?;
        let blobs = blobs_of(src, &images)?;
        planned.push(Job { src, dst: dst.inner(), top, images, blobs });
    }

    // One queue of distinct (destination store, blob) pairs.
    let mut seen = HashSet::new();
    let mut queue: Vec<(usize, Descriptor)> = Vec::new();
    for (i, job) in planned.iter().enumerate() {
        for d in &job.blobs {
            if seen.insert((job.dst.blob_store(), d.digest.clone())) {
                queue.push((i, d.clone()));
            }
        }
    }
    let wanted = options.max_concurrent_blobs;
    let parallel = planned.iter().map(|job| job.dst.max_concurrent(job.src, wanted)).min().unwrap_or(wanted).max(1);
    reporter.on_phase_start("copying blobs", queue.len() as u64);
    let progress = Mutex::new(CopyProgress {
        blobs_total: queue.len() as u64,
        bytes_total: queue.iter().map(|(_, d)| d.size).sum(),
        images_total: planned.len() as u64,
        ..CopyProgress::default()
    });
    let advance = |update: &dyn Fn(&mut CopyProgress)| {
        let mut p = progress.lock().expect("the progress lock is never held across a panic");
        update(&mut p);
        reporter.on_copy_progress(&p);
    };
    let done: Vec<(usize, Digest, BlobAction)> = stream::iter(queue)
        .map(|(i, desc)| {
            let job = &planned[i];
            async move {
                let action = job.dst.put_blob(job.src, &desc, reporter).await?;
                reporter.on_blob_complete(&desc.digest);
                reporter.on_phase_step("copying blobs");
                advance(&|p| {
                    p.blobs_done += 1;
                    match action {
                        BlobAction::Copied => p.bytes_copied += desc.size,
                        BlobAction::Existed | BlobAction::Mounted => p.bytes_reused += desc.size,
                    }
                });
                Ok::<_, Error>((i, desc.digest, action))
            }
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let actions: HashMap<(usize, Digest), BlobAction> = done.into_iter().map(|(i, d, a)| ((i, d), a)).collect();

    let mut outcomes = Vec::with_capacity(planned.len());
    for (i, job) in planned.into_iter().enumerate() {
        job.dst.link_blobs(&job.blobs).await?;
        let mut manifests = Vec::with_capacity(job.images.len() + 1);
        for image in job.images.iter().filter(|m| m.digest() != job.top.digest()) {
            job.dst.put_manifest(image).await?;
            manifests.push(image.descriptor());
        }
        job.dst.publish(&job.top).await?;
        advance(&|p| p.images_done += 1);
        manifests.push(job.top.descriptor());
        let blobs = job
            .blobs
            .iter()
            .map(|d| CopiedBlob {
                descriptor: d.clone(),
                action: actions.get(&(i, d.digest.clone())).copied().unwrap_or(BlobAction::Existed),
            })
            .collect();
        outcomes.push(CopyOutcome {
            digest: job.top.digest().clone(),
            media_type: job.top.media_type().clone(),
            manifests,
            blobs,
        });
    }
    Ok(outcomes)
}

/// The manifest to write on top, and the image manifests whose blobs are copied.
async fn select(src: &ImageSource, options: &CopyOptions) -> Result<(RawManifest, Vec<RawManifest>)> {
    let top = src.manifest().await?;
    let Some(index) = src.parse_index(&top)? else {
        check_image(src, &top)?;
        return Ok((top.clone(), vec![top]));
    };
    if let Some(platform) = &options.filter_by_os {
        let Some(desc) = index.find_platform(platform) else {
            return Err(Error::PlatformNotFound {
                location: src.location(),
                platform: platform.clone(),
                available: index.manifests.iter().filter_map(|d| d.platform.as_ref()).map(|p| p.to_os_arch()).collect(),
            });
        };
        let image = src.manifest_for(desc).await?;
        check_image(src, &image)?;
        return Ok((image.clone(), vec![image]));
    }
    let images: Vec<RawManifest> =
        stream::iter(&index.manifests).map(|d| src.manifest_for(d)).buffered(8).try_collect().await?;
    for image in &images {
        check_image(src, image)?;
    }
    Ok((top, images))
}

/// Only image manifests can be copied below an index (no nested indexes,
/// no schema 1).
fn check_image(src: &ImageSource, m: &RawManifest) -> Result<()> {
    if m.media_type().is_image_manifest() {
        Ok(())
    } else {
        Err(Error::UnsupportedManifest {
            location: src.location(),
            digest: m.digest().clone(),
            media_type: m.media_type().clone(),
        })
    }
}

/// Every config and layer of `images`, each once, in order.
fn blobs_of(src: &ImageSource, images: &[RawManifest]) -> Result<Vec<Descriptor>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for raw in images {
        let m = match raw.parse() {
            Ok(Manifest::Image(m)) => m,
            Ok(Manifest::Index(_)) => {
                return Err(Error::UnsupportedManifest {
                    location: src.location(),
                    digest: raw.digest().clone(),
                    media_type: raw.media_type().clone(),
                });
            }
            Err(source) => return Err(Error::InvalidManifest { location: src.location(), source }),
        };
        for d in std::iter::once(m.config).chain(m.layers) {
            if seen.insert(d.digest.clone()) {
                out.push(d);
            }
        }
    }
    Ok(out)
}
