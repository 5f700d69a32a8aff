//! Reading the input images of a release: manifests, configs and the
//! operator `/manifests` directories (spec §2.1, §2.2).
//!
//! Every read goes through a [`Fetcher`], whose three functions
//! ([`Fetcher::fetch_manifest`], [`Fetcher::fetch_config`],
//! [`Fetcher::extract_from`]) read input content, through the transfer
//! engine's [`ImageSource`]. All of it is addressed by digest (or resolved to one on the
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

use super::info::parse_component_versions_label;
use super::names::{
    ANNOTATION_BUILD_VERSIONS, ANNOTATION_COMMIT_ID, ANNOTATION_COMMIT_REF, ANNOTATION_SOURCE_LOCATION,
    ANNOTATION_VERSION_DISPLAY_NAMES, CONFIG_LIMIT, LABEL_OPERATOR,
};
use super::{Error, read};
use crate::image::{Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, RawManifest, Reference};
use crate::layer::{ExtractOptions, Extracted};
use crate::registry::Client;
use crate::store::{Cache, ExtractKey};
use crate::transfer::ImageSource;

/// The components `io.openshift.build.versions` may name (oc's `AllowedComponents`).
pub const ALLOWED_COMPONENTS: [&str; 6] = ["kubernetes", "machine-os", "kernel", "crio", "kubectl", "kubernetes-tests"];

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
                let raw = self.source(reference).manifest().await.map_err(from_transfer)?;
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
        let bytes = self.source(repo).blob_bytes(desc, CONFIG_LIMIT).await.map_err(from_transfer)?;
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

    /// The image `reference` names, read through the transfer engine.
    fn source(&self, reference: &Reference) -> ImageSource {
        ImageSource::registry(self.client.clone(), reference.clone())
    }

    /// Extracts directory `prefix` of `layers` (lowest first) of an image
    /// in `repo`'s repository. See [`Fetcher::extract_from`].
    #[tracing::instrument(skip(self, layers, options), fields(repo = %repo.name(), layers = layers.len()))]
    pub async fn extract(
        &self,
        repo: &Reference,
        layers: &[Descriptor],
        prefix: &str,
        options: ExtractOptions,
    ) -> Result<Extracted, crate::Error> {
        self.extract_from(&self.source(repo), &repo.to_string(), layers, prefix, options).await
    }

    /// Extracts directory `prefix` of `layers` (lowest first) of the image
    /// `source` reads (any location), `shown` as in messages; from the
    /// cache when it holds the result. Each layer streams through
    /// decompression and tar parsing on a blocking thread, and is read to
    /// its end so its digest is verified.
    pub async fn extract_from(
        &self,
        source: &ImageSource,
        shown: &str,
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
        let job = read::layers_job(source, shown, layers, prefix, &options, stop).await?;
        let extracted = join(self.spawn_blocking(job)).await.map_err(|(_, e)| e)?;
        if let (Some(c), Some(k)) = (&self.cache, &key)
            && let Err(e) = c.put_extracted(k, &extracted)
        {
            tracing::warn!(error = %e, "could not write to the cache");
        }
        Ok(extracted)
    }
}

/// A transfer error as the build reports it: a registry's own error
/// unwrapped, so that "not found" and "unauthorized" are told apart.
fn from_transfer(e: crate::transfer::Error) -> crate::Error {
    match e {
        crate::transfer::Error::Registry(e) => e.into(),
        e => e.into(),
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

/// Whether an image is an operator: its `io.openshift.release.operator`
/// label is non-empty (any value counts, even `false`, as in oc).
pub fn is_operator(labels: &BTreeMap<String, String>) -> bool {
    labels.get(LABEL_OPERATOR).is_some_and(|v| !v.is_empty())
}

/// The annotations oc copies from an image's labels onto its release tag
/// (spec §2.1, oc's `extractManifests`), with oc's rules for an absent and
/// an empty label:
///
/// | label | absent | empty | set |
/// |---|---|---|---|
/// | commit id, commit ref, source location | `""` | `""` | the value |
/// | `io.openshift.build.versions` | not written | not written | the value; both labels are validated and every component must be in `allowed` |
/// | `io.openshift.build.version-display-names` | `""` when versions are set | `""` when versions are set | the value when versions are set |
pub fn tag_annotations(
    tag: &str,
    labels: &BTreeMap<String, String>,
    allowed: &[impl AsRef<str>],
) -> Result<BTreeMap<String, String>, Error> {
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    for key in [ANNOTATION_COMMIT_ID, ANNOTATION_COMMIT_REF, ANNOTATION_SOURCE_LOCATION] {
        out.insert(key.to_owned(), label(key));
    }
    let versions = label(ANNOTATION_BUILD_VERSIONS);
    if !versions.is_empty() {
        let names = label(ANNOTATION_VERSION_DISPLAY_NAMES);
        let parsed = parse_component_versions_label(&versions, &names)
            .map_err(|reason| Error::InvalidVersionsLabel { tag: tag.to_owned(), value: versions.clone(), reason })?;
        if let Some(bad) = parsed.keys().find(|k| !allowed.iter().any(|a| a.as_ref() == k.as_str())) {
            return Err(Error::ComponentNotAllowed { tag: tag.to_owned(), component: bad.clone() });
        }
        out.insert(ANNOTATION_BUILD_VERSIONS.to_owned(), versions);
        out.insert(ANNOTATION_VERSION_DISPLAY_NAMES.to_owned(), names);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_label_absent_empty_and_set() {
        for (labels, want) in [
            (map(&[]), false),
            (map(&[(LABEL_OPERATOR, "")]), false),
            (map(&[(LABEL_OPERATOR, "true")]), true),
            (map(&[(LABEL_OPERATOR, "false")]), true),
            (map(&[("io.openshift.release.operator ", "true")]), false),
        ] {
            assert_eq!(is_operator(&labels), want, "{labels:?}");
        }
    }

    type Labels<'a> = &'a [(&'a str, &'a str)];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// oc's `extractManifests` rules, label by label: absent, empty, set.
    #[test]
    fn annotations_absent_empty_and_set() {
        const V: &str = ANNOTATION_BUILD_VERSIONS;
        const D: &str = ANNOTATION_VERSION_DISPLAY_NAMES;
        let commits = [(ANNOTATION_COMMIT_ID, ""), (ANNOTATION_COMMIT_REF, ""), (ANNOTATION_SOURCE_LOCATION, "")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut m = map(&commits);
            m.extend(map(extra));
            m
        };
        let cases: &[(Labels<'_>, BTreeMap<String, String>)] = &[
            // No labels at all: the three commit annotations, empty.
            (&[], with(&[])),
            // Empty commit labels are the same as absent ones; set ones are copied.
            (&[(ANNOTATION_COMMIT_ID, "")], with(&[])),
            (
                &[(ANNOTATION_COMMIT_ID, "abc"), (ANNOTATION_COMMIT_REF, "main"), (ANNOTATION_SOURCE_LOCATION, "u")],
                map(&[
                    (ANNOTATION_COMMIT_ID, "abc"),
                    (ANNOTATION_COMMIT_REF, "main"),
                    (ANNOTATION_SOURCE_LOCATION, "u"),
                ]),
            ),
            // Versions absent or empty: neither version annotation.
            (&[(D, "kubernetes=Kubernetes")], with(&[])),
            (&[(V, ""), (D, "kubernetes=Kubernetes")], with(&[])),
            // Versions set: display names always written, empty when absent or empty.
            (&[(V, "kubernetes=1.31.2")], with(&[(V, "kubernetes=1.31.2"), (D, "")])),
            (&[(V, "kubernetes=1.31.2"), (D, "")], with(&[(V, "kubernetes=1.31.2"), (D, "")])),
            (
                &[(V, "kubernetes=1.31.2"), (D, "kubernetes=Kubernetes")],
                with(&[(V, "kubernetes=1.31.2"), (D, "kubernetes=Kubernetes")]),
            ),
            // The label value is copied as is (whitespace, build metadata).
            (&[(V, " kubernetes=1.31.2+abc ")], with(&[(V, " kubernetes=1.31.2+abc "), (D, "")])),
            // Unrelated labels are not copied.
            (&[(LABEL_OPERATOR, "true"), ("vendor", "x")], with(&[])),
        ];
        for (labels, want) in cases {
            let got = tag_annotations("t", &map(labels), &ALLOWED_COMPONENTS).expect("valid");
            assert_eq!(&got, want, "labels {labels:?}");
        }
    }

    #[test]
    fn annotations_validate_both_labels() {
        const V: &str = ANNOTATION_BUILD_VERSIONS;
        const D: &str = ANNOTATION_VERSION_DISPLAY_NAMES;
        let cases: &[(Labels<'_>, &[&str], &str)] = &[
            (
                &[(V, "kubernetes=1.29.1")],
                &["crio"],
                "references a component version \"kubernetes\" which is not in the allowed list",
            ),
            (&[(V, "kubernetes")], &ALLOWED_COMPONENTS, "must be NAME=VERSION"),
            (&[(V, "kubernetes=1")], &ALLOWED_COMPONENTS, "must have a valid semantic version"),
            (&[(V, "kubernetes=1.29.1"), (D, "kubernetes")], &ALLOWED_COMPONENTS, "must be NAME=DISPLAYNAME"),
            (
                &[(V, "kubernetes=1.29.1"), (D, "kubernetes=Kube_rnetes")],
                &ALLOWED_COMPONENTS,
                "the display name \"Kube_rnetes\"",
            ),
        ];
        for (labels, allowed, want) in cases {
            let err = tag_annotations("t", &map(labels), allowed).expect_err("invalid");
            assert!(err.to_string().starts_with("tag \"t\""), "{err}");
            assert!(err.to_string().contains(want), "labels {labels:?}: {err}");
        }
        // Display names are not checked without versions, as in oc.
        let ok = tag_annotations("t", &map(&[(D, "not a pair")]), &ALLOWED_COMPONENTS);
        assert!(ok.is_ok(), "{ok:?}");
    }
}
