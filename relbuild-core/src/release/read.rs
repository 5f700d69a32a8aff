//! Reading a release image from a registry, an OCI layout or an
//! oci-archive: its manifest, config and the files of `release-manifests/`.
//!
//! Only what `info` and `extract` need is fetched: the manifest (and the
//! list it came from), the config, and the top layer. Like `oc adm release
//! info`, the top layer is read first; unlike it, when the top layer has no
//! `release-manifests/`, lower layers are searched from the top down before
//! giving up.

use tokio_util::sync::CancellationToken;

use crate::bridge::CancellableBridge;
use crate::image::{Descriptor, Digest, ImageIndex, ImageManifest, Manifest, RawManifest};
use crate::layer::{self, ExtractOptions, Extracted, Extractor};
use crate::release::info::{PlatformDigest, ReleaseImageData};
use crate::release::names::{CONFIG_LIMIT, PAYLOAD_DIR};
use crate::transfer::{self, ImageSource};

/// How to read a release.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Which child of a manifest list to read (`os/arch`); the payload is
    /// the same in every child that relbuild or oc builds.
    pub platform: String,
    /// Caps on what is extracted from a layer.
    pub extract: ExtractOptions,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { platform: "linux/amd64".to_owned(), extract: ExtractOptions::default().top_level_only(true) }
    }
}

/// A release image as read.
#[derive(Debug)]
pub struct LoadedRelease {
    /// What `info` renders.
    pub data: ReleaseImageData,
    /// The per-platform manifest.
    pub manifest: RawManifest,
    /// The parsed per-platform manifest.
    pub image: ImageManifest,
    /// The manifest list the image was chosen from, when the pullspec named one.
    pub list: Option<RawManifest>,
    /// Which layer (lowest is 0) held `release-manifests/`.
    pub payload_layer: usize,
}

/// Errors reading a release.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No layer of the image has `release-manifests/`.
    #[error("`{image}` is not a release image: no `release-manifests/` found in any of its {layers} layers")]
    NotARelease {
        /// The image.
        image: String,
        /// How many layers were searched.
        layers: usize,
    },
    /// A manifest list with no entry for the platform.
    #[error("`{image}` is a manifest list with no `{platform}` image (it has: {available})")]
    NoPlatform {
        /// The image.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// A manifest list whose child is again a list.
    #[error("`{image}`: the `{platform}` entry of its manifest list is not an image manifest")]
    NestedIndex {
        /// The image.
        image: String,
        /// The platform.
        platform: String,
    },
    /// Fetching the image failed.
    #[error("reading `{image}`")]
    Source {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: transfer::Error,
    },
    /// A layer could not be read.
    #[error("reading layer {digest} of `{image}`")]
    Layer {
        /// The image.
        image: String,
        /// The layer.
        digest: Digest,
        /// The cause.
        #[source]
        source: layer::Error,
    },
    /// The image model rejected something.
    #[error("reading `{image}`")]
    Image {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: crate::image::Error,
    },
    /// A background task died.
    #[error("a layer-reading task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Reads the release at `source`. `shown` is the pullspec as the user wrote
/// it, which `info` prints as the image.
pub async fn read_release(source: &ImageSource, shown: &str, options: &ReadOptions) -> Result<LoadedRelease, Error> {
    let img_err = |source| Error::Image { image: shown.to_owned(), source };
    let ReadImage { manifest, image, list, config } = read_image(source, shown, &options.platform).await?;
    let mut found = None;
    for (index, desc) in image.layers.iter().enumerate().rev() {
        let extracted = extract_layer(source, shown, desc, PAYLOAD_DIR, &options.extract).await?;
        if extracted.found {
            found = Some((index, extracted));
            break;
        }
    }
    let Some((payload_layer, extracted)) = found else {
        return Err(Error::NotARelease { image: shown.to_owned(), layers: image.layers.len() });
    };
    let data = ReleaseImageData {
        image: shown.to_owned(),
        digest: manifest.digest().clone(),
        content_digest: None,
        list_digest: list.as_ref().map(|l| l.digest().clone()),
        config: config.to_vec(),
        files: extracted.files.into_iter().map(|f| (f.path, f.data)).collect(),
        platforms: match list.as_ref().map(RawManifest::parse).transpose().map_err(img_err)? {
            Some(Manifest::Index(index)) => platforms(&index),
            _ => Vec::new(),
        },
    };
    Ok(LoadedRelease { data, manifest, image, list, payload_layer })
}

/// One image of a release location, as read.
#[derive(Debug)]
pub(crate) struct ReadImage {
    /// The per-platform manifest.
    pub manifest: RawManifest,
    /// It, parsed.
    pub image: ImageManifest,
    /// The list it was picked from.
    pub list: Option<RawManifest>,
    /// The config blob, verified.
    pub config: bytes::Bytes,
}

/// Reads the image at `source` (the `platform` child of a list) and its
/// config; `shown` names it in errors.
pub(crate) async fn read_image(source: &ImageSource, shown: &str, platform: &str) -> Result<ReadImage, Error> {
    let src_err = |source| Error::Source { image: shown.to_owned(), source };
    let img_err = |source| Error::Image { image: shown.to_owned(), source };
    let top = source.manifest().await.map_err(src_err)?;
    let (manifest, list) = match top.parse().map_err(img_err)? {
        Manifest::Image(_) => (top, None),
        Manifest::Index(index) => {
            let child = index.find_platform(platform).ok_or_else(|| Error::NoPlatform {
                image: shown.to_owned(),
                platform: platform.to_owned(),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_os_arch()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let raw = source.manifest_for(child).await.map_err(src_err)?;
            (raw, Some(top))
        }
    };
    let Manifest::Image(image) = manifest.parse().map_err(img_err)? else {
        return Err(Error::NestedIndex { image: shown.to_owned(), platform: platform.to_owned() });
    };
    let config = source.blob_bytes(&image.config, CONFIG_LIMIT).await.map_err(src_err)?;
    Ok(ReadImage { manifest, image, list, config })
}

/// The images of a manifest list, in list order; entries without a
/// platform or for `unknown` (build attestations) are not images to run.
fn platforms(index: &ImageIndex) -> Vec<PlatformDigest> {
    index
        .manifests
        .iter()
        .filter_map(|d| {
            let p = d.platform.as_ref().filter(|p| p.os != "unknown")?;
            Some(PlatformDigest { platform: p.to_os_arch(), digest: d.digest.clone() })
        })
        .collect()
}

/// Extracts `prefix` from one layer blob, streaming: the blob is
/// decompressed and untarred on a blocking thread as it arrives, and read to
/// its end so that its digest is verified.
pub async fn extract_layer(
    source: &ImageSource,
    shown: &str,
    desc: &Descriptor,
    prefix: &str,
    options: &ExtractOptions,
) -> Result<Extracted, Error> {
    extract_layers(source, shown, std::slice::from_ref(desc), prefix, options).await
}

/// Extracts `prefix` from `layers` (lowest first) as one file system
/// (whiteouts of upper layers honoured), each streamed as in [`extract_layer`].
pub async fn extract_layers(
    source: &ImageSource,
    shown: &str,
    layers: &[Descriptor],
    prefix: &str,
    options: &ExtractOptions,
) -> Result<Extracted, Error> {
    // Dropping this future (a sibling failed) stops the reads at once.
    let stop = CancellationToken::new();
    let _stop_when_dropped = stop.clone().drop_guard();
    let job = layers_job(source, shown, layers, prefix, options, stop).await?;
    let result = tokio::task::spawn_blocking(job).await.map_err(Error::Task)?;
    result.map_err(|(digest, source)| Error::Layer { image: shown.to_owned(), digest, source })
}

/// What a blocking layer job returns: the files, or the layer that failed.
pub(crate) type LayersResult = Result<Extracted, (Digest, layer::Error)>;

/// Opens a verified reader on each of `layers` of `source` (which stops
/// when `stop` is cancelled) and returns the blocking job that streams
/// them, lowest first, through one [`Extractor`] for `prefix`. Run it on a
/// blocking thread; every extraction of image layers goes through here.
pub(crate) async fn layers_job(
    source: &ImageSource,
    shown: &str,
    layers: &[Descriptor],
    prefix: &str,
    options: &ExtractOptions,
    stop: CancellationToken,
) -> Result<impl FnOnce() -> LayersResult + Send + 'static, Error> {
    let mut readers = Vec::with_capacity(layers.len());
    for desc in layers {
        let reader =
            source.blob_reader(desc).await.map_err(|source| Error::Source { image: shown.to_owned(), source })?;
        readers.push((
            desc.digest.clone(),
            desc.media_type.layer_compression(),
            CancellableBridge::new(reader, stop.clone()),
        ));
    }
    let (prefix, options) = (prefix.to_owned(), options.clone());
    Ok(move || {
        let mut ex = Extractor::new(&prefix, options);
        for (digest, compression, reader) in readers {
            ex.add_blob(reader, compression).map_err(|e| (digest, e))?;
        }
        Ok(ex.finish())
    })
}
