//! Reading the input images of a release: manifests, configs and the
//! operator `/manifests` directories (spec §2.1, §2.2).
//!
//! Every read goes through a [`Fetcher`], whose three functions
//! ([`Fetcher::fetch_manifest`], [`Fetcher::fetch_config`],
//! [`Fetcher::extract`]) are the only places that reach the registry for
//! input content. All of it is addressed by digest (or resolved to one on the
//! first read), so a content-addressed cache plugs in there.
//!
//! Layers stream from the registry through decompression and tar parsing on
//! a blocking thread (a cancellable `SyncIoBridge`); only the files kept
//! are held in memory, bounded by [`ExtractOptions`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Error;
use super::rewrite::{ANNOTATION_BUILD_VERSIONS, parse_component_versions};
use crate::bridge::CancellableBridge;
use crate::image::{Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, RawManifest, Reference};
use crate::layer::{ExtractOptions, Extracted, Extractor};
use crate::registry::Client;
use crate::store::{Cache, ExtractKey};

/// The label that makes an image an operator (any non-empty value).
pub const LABEL_OPERATOR: &str = "io.openshift.release.operator";
/// Label (and annotation) with the source commit.
pub const ANNOTATION_COMMIT_ID: &str = "io.openshift.build.commit.id";
/// Label (and annotation) with the source branch or tag.
pub const ANNOTATION_COMMIT_REF: &str = "io.openshift.build.commit.ref";
/// Label (and annotation) with the source repository URL.
pub const ANNOTATION_SOURCE_LOCATION: &str = "io.openshift.build.source-location";
/// Label (and annotation) with the display names of component versions.
pub const ANNOTATION_VERSION_DISPLAY_NAMES: &str = "io.openshift.build.version-display-names";
/// The components `io.openshift.build.versions` may name (oc's `AllowedComponents`).
pub const ALLOWED_COMPONENTS: [&str; 6] = ["kubernetes", "machine-os", "kernel", "crio", "kubectl", "kubernetes-tests"];

/// Image configs larger than this are refused.
const CONFIG_LIMIT: u64 = 16 << 20;

/// One input image, resolved to a single platform.
#[derive(Debug, Clone)]
pub struct InspectedImage {
    /// The reference it was read by.
    pub reference: Reference,
    /// The manifest list it was picked from, if the reference named one.
    pub list: Option<RawManifest>,
    /// The single-image manifest (the platform's child of a list).
    pub manifest: RawManifest,
    /// Its typed view.
    pub image: ImageManifest,
    /// The config bytes.
    pub config: Bytes,
    /// The typed view of the config.
    pub parsed_config: ImageConfig,
}

impl InspectedImage {
    /// The digest of what the reference names: the list's when it is one.
    pub fn top_digest(&self) -> &crate::image::Digest {
        self.list.as_ref().unwrap_or(&self.manifest).digest()
    }

    /// The topmost layer.
    pub fn top_layer(&self) -> Option<&Descriptor> {
        self.image.layers.last()
    }
}

/// Reads input images, each manifest at most once per build; with a
/// [`Cache`], content addressed by digest is read from it and stored in it,
/// so a warm rebuild fetches only what changed.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    platform: String,
    manifests: Mutex<HashMap<Reference, RawManifest>>,
    cache: Option<Cache>,
    /// The blocking work started for this fetcher, and the token that
    /// stops its reads; see [`Fetcher::stop`].
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Fetcher {
    /// A fetcher picking `platform` (`os/arch`, e.g. `linux/amd64`) out of manifest lists.
    pub fn new(client: Client, platform: impl Into<String>) -> Self {
        Self {
            client,
            platform: platform.into(),
            manifests: Mutex::new(HashMap::new()),
            cache: None,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Runs `f` on a blocking thread, tracked so that [`Fetcher::stop`]
    /// waits for it.
    pub fn spawn_blocking<F, T>(&self, f: F) -> tokio::task::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.tasks.spawn_blocking(f)
    }

    /// Stops the layer reads still running for futures that were dropped
    /// (when one image fails, the build returns without waiting for the
    /// others) and waits for all blocking work this fetcher started. After
    /// it returns nothing started here touches the runtime, which may then
    /// be shut down. Extractions started afterwards fail at once: stop a
    /// fetcher when its build is over.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Uses `cache` for manifests by digest, configs and extracted directories.
    pub fn with_cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache;
        self
    }

    fn cache_put(&self, digest: &crate::image::Digest, bytes: &[u8]) {
        if let Some(c) = &self.cache
            && let Err(e) = c.put_blob(digest, bytes)
        {
            tracing::warn!(%digest, error = %e, "could not write to the cache");
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The platform picked from lists.
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The manifest `reference` names, exactly as stored (verified against
    /// the reference's digest). Read once per build.
    #[tracing::instrument(skip(self), fields(reference = %reference))]
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<RawManifest, crate::Error> {
        if let Some(m) = self.manifests.lock().expect("the memo lock is never held across a panic").get(reference) {
            return Ok(m.clone());
        }
        let cached = match (&self.cache, reference.digest()) {
            (Some(c), Some(d)) => c.get_blob(d).and_then(|b| RawManifest::new(b, None).ok()),
            _ => None,
        };
        let raw = match cached {
            Some(raw) => raw,
            None => {
                let raw = self.client.pull_manifest_raw(reference).await?;
                if reference.digest().is_some() {
                    self.cache_put(raw.digest(), raw.bytes());
                }
                raw
            }
        };
        let mut memo = self.manifests.lock().expect("the memo lock is never held across a panic");
        memo.insert(reference.clone(), raw.clone());
        if reference.digest().is_none() {
            memo.insert(reference.with_digest(raw.digest().clone()), raw.clone());
        }
        Ok(raw)
    }

    /// The config blob `desc` of an image in `repo`'s repository, verified.
    #[tracing::instrument(skip(self), fields(repo = %repo.name(), digest = %desc.digest))]
    pub async fn fetch_config(&self, repo: &Reference, desc: &Descriptor) -> Result<Bytes, crate::Error> {
        if let Some(b) = self.cache.as_ref().and_then(|c| c.get_blob(&desc.digest)) {
            return Ok(Bytes::from(b));
        }
        let bytes = self.client.pull_blob_bytes(repo, desc, CONFIG_LIMIT).await?;
        self.cache_put(&desc.digest, &bytes);
        Ok(bytes)
    }

    /// The image `reference` names, for this fetcher's platform when it is a list.
    pub async fn fetch_image(&self, reference: &Reference) -> Result<InspectedImage, crate::Error> {
        let raw = self.fetch_manifest(reference).await?;
        match raw.parse()? {
            Manifest::Index(index) => {
                let child = pick_platform(reference, &index, &self.platform)?.clone();
                let mut image = self.fetch_child(reference, &child).await?;
                image.list = Some(raw);
                Ok(image)
            }
            Manifest::Image(image) => self.with_config(reference, raw, image).await,
        }
    }

    /// The image of list entry `child` of `reference`'s repository.
    pub async fn fetch_child(&self, reference: &Reference, child: &Descriptor) -> Result<InspectedImage, crate::Error> {
        let child_ref = reference.with_digest(child.digest.clone());
        let raw = self.fetch_manifest(&child_ref).await?;
        match raw.parse()? {
            Manifest::Image(image) => self.with_config(&child_ref, raw, image).await,
            _ => {
                Err(Error::NotAnImage { reference: child_ref.to_string(), media_type: raw.media_type().to_string() }
                    .into())
            }
        }
    }

    async fn with_config(
        &self,
        reference: &Reference,
        manifest: RawManifest,
        image: ImageManifest,
    ) -> Result<InspectedImage, crate::Error> {
        let config = self.fetch_config(reference, &image.config).await?;
        let parsed_config = ImageConfig::from_slice(&config)?;
        Ok(InspectedImage { reference: reference.clone(), list: None, manifest, image, config, parsed_config })
    }

    /// Extracts directory `prefix` of `layers` (lowest first) of an image
    /// in `repo`'s repository. Each layer streams from the registry through
    /// decompression and tar parsing on a blocking thread, and is read to
    /// its end so its digest is verified.
    #[tracing::instrument(skip(self, layers, options), fields(repo = %repo.name(), layers = layers.len()))]
    pub async fn extract(
        &self,
        repo: &Reference,
        layers: &[Descriptor],
        prefix: &str,
        options: ExtractOptions,
    ) -> Result<Extracted, crate::Error> {
        let key = self.cache.as_ref().map(|_| ExtractKey::new(prefix, layers.iter().map(|d| &d.digest), &options));
        if let (Some(c), Some(k)) = (&self.cache, &key)
            && let Some(hit) = c.get_extracted(k)
        {
            return Ok(hit);
        }
        // Dropping this future (a sibling failed) stops its reads at once.
        let stop = self.stop.child_token();
        let _stop_when_dropped = stop.clone().drop_guard();
        let readers: Vec<_> = layers
            .iter()
            .map(|d| {
                let reader = CancellableBridge::new(self.client.pull_blob_reader(repo, d), stop.clone());
                (d.media_type.layer_compression(), reader)
            })
            .collect();
        let prefix = prefix.to_owned();
        let task = self.spawn_blocking(move || -> Result<Extracted, crate::layer::Error> {
            let mut ex = Extractor::new(&prefix, options);
            for (compression, reader) in readers {
                ex.add_blob(reader, compression)?;
            }
            Ok(ex.finish())
        });
        let extracted = join(task).await?;
        if let (Some(c), Some(k)) = (&self.cache, &key)
            && let Err(e) = c.put_extracted(k, &extracted)
        {
            tracing::warn!(error = %e, "could not write to the cache");
        }
        Ok(extracted)
    }
}

/// Awaits a blocking task, resuming its panic if it panicked.
pub(crate) async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            // Tasks are only cancelled when the runtime shuts down, which
            // drops this future too.
            Err(_) => panic!("a blocking task was cancelled while the build awaited it"),
        },
    }
}

/// The entry of `index` for `platform` (`os/arch[/variant]`).
pub fn pick_platform<'a>(
    reference: &Reference,
    index: &'a ImageIndex,
    platform: &str,
) -> Result<&'a Descriptor, Error> {
    index
        .find_platform(platform)
        .ok_or_else(|| Error::NoPlatform { reference: reference.to_string(), platform: platform.to_owned() })
}

/// The platform of an image config (`os`/`architecture`/`variant`).
pub fn config_platform(config: &ImageConfig) -> Platform {
    Platform {
        architecture: if config.architecture.is_empty() { "amd64".into() } else { config.architecture.clone() },
        os: if config.os.is_empty() { "linux".into() } else { config.os.clone() },
        os_version: None,
        os_features: None,
        variant: config.variant.clone(),
    }
}

/// The annotations oc copies from an image's labels onto its release tag
/// (spec §2.1): the commit id, ref and source location (empty when the
/// label is missing) and, when present, `io.openshift.build.versions`
/// (every component must be in `allowed`) with its display names.
pub fn tag_annotations(
    tag: &str,
    labels: &BTreeMap<String, String>,
    allowed: &[impl AsRef<str>],
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for key in [ANNOTATION_COMMIT_ID, ANNOTATION_COMMIT_REF, ANNOTATION_SOURCE_LOCATION] {
        out.insert(key.to_owned(), labels.get(key).cloned().unwrap_or_default());
    }
    if let Some(versions) = labels.get(ANNOTATION_BUILD_VERSIONS).filter(|v| !v.is_empty()) {
        let parsed = parse_component_versions(versions).map_err(|reason| Error::InvalidVersionsLabel {
            tag: tag.to_owned(),
            value: versions.clone(),
            reason,
        })?;
        if let Some(bad) = parsed.keys().find(|k| !allowed.iter().any(|a| a.as_ref() == k.as_str())) {
            return Err(Error::ComponentNotAllowed { tag: tag.to_owned(), component: bad.clone() });
        }
        out.insert(ANNOTATION_BUILD_VERSIONS.to_owned(), versions.clone());
        if let Some(names) = labels.get(ANNOTATION_VERSION_DISPLAY_NAMES) {
            out.insert(ANNOTATION_VERSION_DISPLAY_NAMES.to_owned(), names.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations() {
        let labels: BTreeMap<String, String> = [
            (ANNOTATION_COMMIT_ID, "abc"),
            (ANNOTATION_BUILD_VERSIONS, "kubernetes=1.29.1"),
            (ANNOTATION_VERSION_DISPLAY_NAMES, "kubernetes=Kubernetes"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let a = tag_annotations("t", &labels, &ALLOWED_COMPONENTS).expect("valid");
        assert_eq!(a[ANNOTATION_COMMIT_REF], "");
        assert_eq!(a[ANNOTATION_BUILD_VERSIONS], "kubernetes=1.29.1");
        let err = tag_annotations("t", &labels, &["crio"]).expect_err("not allowed");
        assert_eq!(
            err.to_string(),
            "tag \"t\" references a component version \"kubernetes\" which is not in the allowed list"
        );
    }
}
