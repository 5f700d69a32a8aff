//! [`copy_image`]: an image or an index, from any [`ImageSource`] to any
//! [`ImageDestination`].

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _, stream};

use super::{Error, ImageLocation, ImageSource, Result, TreeVersion, blocking};
use crate::image::{Descriptor, Digest, Manifest, MediaType, RawManifest, Reference};
use crate::progress::{BlobKind, Reporter};
use crate::registry::{Client, PushOutcome, RegistryBlob};
use crate::store::{self, DistTree, OciDir};

/// Where [`copy_image`] writes.
#[derive(Debug)]
#[non_exhaustive]
pub enum ImageDestination {
    /// A registry repository; the top manifest goes to the reference's tag
    /// (`latest` when it has neither tag nor digest) or, with a digest only,
    /// by digest (which must then be the top manifest's).
    Registry {
        /// The client to push with.
        client: Client,
        /// `registry/repository[:tag]`.
        reference: Reference,
    },
    /// An OCI image layout directory (created if needed; other images in it
    /// are kept).
    Layout {
        /// The layout.
        dir: Arc<OciDir>,
        /// The tag for the top manifest; `None` for an untagged entry.
        tag: Option<String>,
    },
    /// An oci-archive file, written whole (replacing any file there) from a
    /// temporary layout once everything is copied.
    Archive {
        /// The archive to write.
        path: PathBuf,
        /// The tag for the top manifest.
        tag: Option<String>,
    },
    /// A repository of a distribution storage tree (created if needed):
    /// blob data and `_layers` links first, then manifests and their
    /// revision links, the tag last.
    Tree {
        /// The tree.
        tree: Arc<DistTree>,
        /// The repository.
        repo: String,
        /// The tag for the top manifest; `None` leaves it untagged.
        tag: Option<String>,
    },
}

impl ImageDestination {
    /// The destination for `location`; creates a layout directory if needed.
    pub fn open(location: &ImageLocation, client: &Client) -> Result<Self> {
        Ok(match location {
            ImageLocation::Registry(reference) => {
                Self::Registry { client: client.clone(), reference: reference.clone() }
            }
            ImageLocation::Layout { path, tag } => {
                Self::Layout { dir: Arc::new(OciDir::create(path)?), tag: tag.clone() }
            }
            ImageLocation::Archive { path, tag } => Self::Archive { path: path.clone(), tag: tag.clone() },
            ImageLocation::Tree { path, repo, version } => Self::Tree {
                tree: Arc::new(DistTree::create(path)?),
                repo: repo.clone(),
                tag: match version {
                    Some(TreeVersion::Tag(t)) => Some(t.clone()),
                    _ => None,
                },
            },
        })
    }

    /// Where it is, in [`ImageLocation`] syntax, for messages.
    pub fn location(&self) -> String {
        match self {
            Self::Registry { reference, .. } => ImageLocation::Registry(reference.clone()).to_string(),
            Self::Layout { dir, tag } => {
                ImageLocation::Layout { path: dir.path().to_path_buf(), tag: tag.clone() }.to_string()
            }
            Self::Archive { path, tag } => ImageLocation::Archive { path: path.clone(), tag: tag.clone() }.to_string(),
            Self::Tree { tree, repo, tag } => ImageLocation::Tree {
                path: tree.path().to_path_buf(),
                repo: repo.clone(),
                version: tag.clone().map(TreeVersion::Tag),
            }
            .to_string(),
        }
    }
}

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
    /// Where an oci-archive destination is staged; defaults to the
    /// archive's directory.
    pub temp_dir: Option<PathBuf>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self { filter_by_os: None, max_concurrent_blobs: 4, temp_dir: None }
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

    /// Sets [`temp_dir`](Self::temp_dir).
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
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

/// Where blobs and manifests go: a registry, or a layout (the destination's
/// own, or the staging layout of an archive).
enum Target<'a> {
    Registry { client: &'a Client, reference: &'a Reference },
    Layout(&'a Arc<OciDir>),
    Tree { tree: &'a Arc<DistTree>, repo: &'a str },
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
    dst: &'a ImageDestination,
    top: RawManifest,
    images: Vec<RawManifest>,
    blobs: Vec<Descriptor>,
    staging: Option<Staging>,
}

impl Job<'_> {
    fn target(&self) -> (Target<'_>, Option<&str>) {
        match self.dst {
            ImageDestination::Registry { client, reference } => (Target::Registry { client, reference }, None),
            ImageDestination::Layout { dir, tag } => (Target::Layout(dir), tag.as_deref()),
            ImageDestination::Archive { tag, .. } => {
                let staging = self.staging.as_ref().expect("because an archive destination is given a staging layout");
                (Target::Layout(&staging.dir), tag.as_deref())
            }
            ImageDestination::Tree { tree, repo, tag } => (Target::Tree { tree, repo }, tag.as_deref()),
        }
    }

    /// The store a blob lands in: blobs copied to the same store by several
    /// jobs are copied once. A registry keeps blobs per repository; a
    /// layout, an archive's staging layout and a tree keep one set of blobs
    /// (a tree's per-repository links are written for every job).
    fn blob_store(&self) -> String {
        match (&self.staging, self.dst) {
            (Some(s), _) => s.dir.path().display().to_string(),
            (None, ImageDestination::Registry { reference, .. }) => format!("docker://{}", reference.name()),
            (None, ImageDestination::Layout { dir, .. }) => dir.path().display().to_string(),
            (None, ImageDestination::Tree { tree, .. }) => tree.path().display().to_string(),
            (None, ImageDestination::Archive { path, .. }) => path.display().to_string(),
        }
    }
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
        // An archive is written from a staging layout once complete.
        let staging = match dst {
            ImageDestination::Archive { path, .. } => Some(Staging::new(path, options)?),
            _ => None,
        };
        planned.push(Job { src, dst, top, images, blobs, staging });
    }

    // One queue of distinct (destination, blob) pairs.
    let mut seen = HashSet::new();
    let mut queue: Vec<(usize, Descriptor)> = Vec::new();
    for (i, job) in planned.iter().enumerate() {
        for d in &job.blobs {
            if seen.insert((job.blob_store(), d.digest.clone())) {
                queue.push((i, d.clone()));
            }
        }
    }
    let parallel = planned
        .iter()
        .map(|job| match (job.dst, job.src) {
            (ImageDestination::Registry { client, reference }, ImageSource::Registry { reference: from, .. })
                if from.api_host() == reference.api_host() =>
            {
                options.max_concurrent_blobs.min(client.options().max_per_registry / 2)
            }
            _ => options.max_concurrent_blobs,
        })
        .min()
        .unwrap_or(options.max_concurrent_blobs)
        .max(1);
    reporter.on_phase_start("copying blobs", queue.len() as u64);
    let done: Vec<(usize, Digest, BlobAction)> = stream::iter(queue)
        .map(|(i, desc)| {
            let job = &planned[i];
            async move {
                let (target, _) = job.target();
                let action = copy_blob(job.src, &target, &desc, reporter).await?;
                reporter.on_phase_step("copying blobs");
                Ok::<_, Error>((i, desc.digest, action))
            }
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let actions: std::collections::HashMap<(usize, Digest), BlobAction> =
        done.into_iter().map(|(i, d, a)| ((i, d), a)).collect();

    let mut outcomes = Vec::with_capacity(planned.len());
    for (i, job) in planned.into_iter().enumerate() {
        let (target, tag) = job.target();
        if let Target::Tree { tree, repo } = &target {
            // A blob another job of the run copied into the tree is linked
            // into this job's repository too.
            for d in &job.blobs {
                tree.link_layer(repo, &d.digest)?;
            }
        }
        let mut manifests = Vec::with_capacity(job.images.len() + 1);
        for image in job.images.iter().filter(|m| m.digest() != job.top.digest()) {
            put_manifest(&target, image, false, None).await?;
            manifests.push(image.descriptor());
        }
        put_manifest(&target, &job.top, true, tag).await?;
        manifests.push(job.top.descriptor());
        let blobs = job
            .blobs
            .iter()
            .map(|d| CopiedBlob {
                descriptor: d.clone(),
                action: actions.get(&(i, d.digest.clone())).copied().unwrap_or(BlobAction::Existed),
            })
            .collect();
        let outcome = CopyOutcome {
            digest: job.top.digest().clone(),
            media_type: job.top.media_type().clone(),
            manifests,
            blobs,
        };
        if let (Some(staging), ImageDestination::Archive { path, .. }) = (job.staging, job.dst) {
            let path = path.clone();
            blocking("writing an oci-archive", move || {
                let r = store::write_archive_to_path(&staging.dir, &path);
                drop(staging);
                r
            })
            .await??;
        }
        outcomes.push(outcome);
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

async fn copy_blob(
    src: &ImageSource,
    target: &Target<'_>,
    desc: &Descriptor,
    reporter: &dyn Reporter,
) -> Result<BlobAction> {
    let action = match target {
        Target::Registry { client, reference } => {
            let outcome = match src {
                ImageSource::Registry { client: from_client, reference: from } => {
                    let blob =
                        RegistryBlob { client: from_client.clone(), repo: from.clone(), descriptor: desc.clone() };
                    if from.api_host() == reference.api_host() {
                        reporter.on_blob_start(BlobKind::Mount, &desc.digest, Some(desc.size));
                        client.mount_blob(reference, from, desc, &blob).await?
                    } else {
                        reporter.on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
                        client.push_blob(reference, desc, &blob).await?
                    }
                }
                _ => {
                    let path = src.blob_path(&desc.digest).expect("not a registry source, so a layout")?;
                    reporter.on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
                    // The upload hashes what it reads and fails before its
                    // final `PUT` on a mismatch, so the file needs no check.
                    client.push_blob(reference, desc, &path).await?
                }
            };
            match outcome {
                PushOutcome::Exists => BlobAction::Existed,
                PushOutcome::Mounted => BlobAction::Mounted,
                _ => BlobAction::Copied,
            }
        }
        Target::Layout(dir) => {
            if dir.blob_path(&desc.digest).is_ok_and(|p| p.metadata().is_ok_and(|m| m.len() == desc.size)) {
                reporter.on_blob_complete(&desc.digest);
                return Ok(BlobAction::Existed);
            }
            reporter.on_blob_start(BlobKind::Pull, &desc.digest, Some(desc.size));
            match src {
                ImageSource::Registry { client, reference } => {
                    let writer = dir.blob_writer()?;
                    let writer = client.pull_blob_to_writer(reference, desc, writer).await?;
                    let desc = desc.clone();
                    blocking("storing a blob", move || writer.complete_verified_as(&desc)).await??;
                }
                _ => {
                    let path = src.blob_path(&desc.digest).expect("not a registry source, so a layout")?;
                    let (dir, desc) = (Arc::clone(dir), desc.clone());
                    blocking("copying a blob", move || {
                        let file = File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                        dir.copy_blob_from(file, Some(&desc))?;
                        Ok::<_, Error>(())
                    })
                    .await??;
                }
            }
            BlobAction::Copied
        }
        Target::Tree { tree, repo } => {
            let action = if tree.has_blob(&desc.digest, desc.size) {
                BlobAction::Existed
            } else {
                reporter.on_blob_start(BlobKind::Pull, &desc.digest, Some(desc.size));
                match src {
                    ImageSource::Registry { client, reference } => {
                        let writer = tree.blob_writer()?;
                        let writer = client.pull_blob_to_writer(reference, desc, writer).await?;
                        let desc = desc.clone();
                        blocking("storing a blob", move || writer.complete_verified_as(&desc)).await??;
                    }
                    _ => {
                        let path = src.blob_path(&desc.digest).expect("not a registry source, so local files")?;
                        let (tree, desc) = (Arc::clone(tree), desc.clone());
                        blocking("copying a blob", move || {
                            let mut file =
                                File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                            tree.copy_blob_from(&mut file, &desc)?;
                            Ok::<_, Error>(())
                        })
                        .await??;
                    }
                }
                BlobAction::Copied
            };
            // The data is in place (and synced) before the link names it.
            tree.link_layer(repo, &desc.digest)?;
            action
        }
    };
    reporter.on_blob_complete(&desc.digest);
    Ok(action)
}

/// Writes a manifest's exact bytes: the top one under the tag, the others by digest.
async fn put_manifest(target: &Target<'_>, m: &RawManifest, top: bool, tag: Option<&str>) -> Result<()> {
    match target {
        Target::Registry { client, reference } => {
            let at = if top { (*reference).clone() } else { reference.with_digest(m.digest().clone()) };
            client.push_manifest(&at, m).await?;
        }
        Target::Layout(dir) if top => {
            dir.write_manifest(m, tag, None)?;
        }
        Target::Layout(dir) => {
            dir.write_manifest_blob(m)?;
        }
        Target::Tree { tree, repo } => {
            tree.put_manifest(repo, m)?;
            if let (true, Some(tag)) = (top, tag) {
                tree.tag(repo, tag, m.digest())?;
            }
        }
    }
    Ok(())
}

/// The temporary layout an archive is assembled in.
struct Staging {
    dir: Arc<OciDir>,
    _tmp: tempfile::TempDir,
}

impl Staging {
    fn new(archive: &std::path::Path, options: &CopyOptions) -> Result<Self> {
        let parent = match (&options.temp_dir, archive.parent()) {
            (Some(dir), _) => dir.clone(),
            (None, Some(p)) if !p.as_os_str().is_empty() => p.to_path_buf(),
            (None, _) => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".relbuild-staging-")
            .tempdir_in(&parent)
            .map_err(|source| Error::Io { path: parent, source })?;
        let dir = Arc::new(OciDir::create(tmp.path().join("layout"))?);
        Ok(Self { dir, _tmp: tmp })
    }
}
