//! Builds the fixture images with relbuild-core's own layer writer and
//! pushes them to a registry with relbuild-core's client, then describes
//! them in an ImageStream file.
//!
//! Every image goes into one repository (`<registry>/<namespace>/stream`),
//! tagged with its stream tag, the way OpenShift's integrated registry and
//! `ocp-v4.0-art-dev` hold a release's components. The ImageStream names
//! each image by digest in `spec.tags` and in `status`, and sets
//! `status.publicDockerImageRepository`, so both `--reference-mode`s work.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use relbuild_core::image::{Descriptor, Digest, ImageManifest, Manifest, MediaType, RawManifest, Reference};
use relbuild_core::layer::{LayerEntry, LayerWriter, WriteOptions};
use relbuild_core::registry::Client;

use crate::fixture::{CREATED, FileKind, FixtureImage, Role};

/// A fixture image as blobs, ready to push or store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Stream tag.
    pub tag: String,
    /// Part it plays.
    pub role: Role,
    /// The Docker schema 2 manifest.
    pub manifest: RawManifest,
    /// The config descriptor and bytes.
    pub config: (Descriptor, Bytes),
    /// The layer descriptors and blobs, lowest first.
    pub layers: Vec<(Descriptor, Bytes)>,
}

impl BuiltImage {
    /// Every blob (config and layers) with its descriptor.
    pub fn blobs(&self) -> impl Iterator<Item = &(Descriptor, Bytes)> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    fn image_manifest(&self) -> ImageManifest {
        match self.manifest.parse() {
            Ok(Manifest::Image(m)) => m,
            _ => unreachable!("a built image's manifest is an image manifest"),
        }
    }

    /// The same image with OCI media types (manifest, config, layers) and
    /// the same blobs, tagged `<tag>-oci`. skopeo (containers/image) ignores
    /// `index.json` entries of Docker media types, so layouts are
    /// cross-checked with OCI-typed images.
    pub fn to_oci(&self) -> Result<Self> {
        let mut m = self.image_manifest();
        m.media_type = Some(MediaType::OciManifest);
        m.config.media_type = MediaType::OciConfig;
        for l in &mut m.layers {
            l.media_type = MediaType::OciLayerGzip;
        }
        let mut out = self.clone();
        out.tag = format!("{}-oci", self.tag);
        out.manifest = RawManifest::from_manifest(&Manifest::Image(m.clone()))?;
        out.config.0 = m.config;
        out.layers = m.layers.into_iter().zip(self.layers.iter().map(|(_, b)| b.clone())).collect();
        Ok(out)
    }

    /// The same layers with a config for another architecture (so another
    /// config blob and manifest), tagged `<tag>-<arch>`.
    pub fn with_arch(&self, arch: &str) -> Result<Self> {
        let mut config: serde_json::Value = serde_json::from_slice(&self.config.1)?;
        config["architecture"] = arch.into();
        let bytes = Bytes::from(serde_json::to_vec(&config)?);
        let desc = Descriptor::new(self.config.0.media_type.clone(), Digest::sha256(&bytes), bytes.len() as u64);
        let mut m = self.image_manifest();
        m.config = desc.clone();
        let manifest = RawManifest::from_manifest(&Manifest::Image(m))?;
        Ok(Self { tag: format!("{}-{arch}", self.tag), manifest, config: (desc, bytes), ..self.clone() })
    }
}

/// A manifest list (Docker) or index (OCI), by `media_type`, over images
/// given with their platforms' architectures (all `linux`).
pub fn index_of(media_type: MediaType, children: &[(&BuiltImage, &str)]) -> Result<RawManifest> {
    let manifests = children
        .iter()
        .map(|(img, arch)| {
            let mut d = img.manifest.descriptor();
            d.platform = Some(relbuild_core::image::Platform::new("linux", *arch));
            d
        })
        .collect();
    let index = relbuild_core::image::ImageIndex {
        schema_version: 2,
        media_type: Some(media_type),
        manifests,
        annotations: None,
    };
    Ok(RawManifest::from_manifest(&Manifest::Index(index))?)
}

fn entries(files: &[crate::fixture::FixtureFile]) -> Vec<LayerEntry> {
    files
        .iter()
        .map(|f| match &f.kind {
            FileKind::File(data) => LayerEntry::file(&f.path, f.mode, f.mtime, data.clone()),
            FileKind::Dir => LayerEntry::dir(&f.path, f.mode, f.mtime),
            FileKind::Symlink(target) => LayerEntry::symlink(&f.path, target, f.mtime),
        })
        .collect()
}

/// Builds one image: gzip layers, a Docker config and a Docker schema 2 manifest.
pub fn build_image(image: &FixtureImage) -> Result<BuiltImage> {
    build_image_with(image, &WriteOptions::default())
}

/// An operand image `tag` whose one layer holds a `mib` MiB file of
/// pseudo-random (incompressible) bytes, gzip-stored (level 0, so building
/// it costs little more than the bytes): the large blob of copy benchmarks
/// and resume tests.
pub fn large_image(tag: &str, mib: usize) -> Result<BuiltImage> {
    let len = mib << 20;
    let mut data = Vec::with_capacity(len);
    // xorshift64*: fast, deterministic, and nothing a compressor can use.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        data.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(len);
    let image = FixtureImage {
        tag: tag.to_owned(),
        role: Role::Operand,
        labels: BTreeMap::new(),
        layers: vec![vec![crate::fixture::FixtureFile {
            path: format!("usr/share/{tag}"),
            mode: 0o644,
            mtime: crate::fixture::MTIME,
            kind: FileKind::File(data),
        }]],
    };
    build_image_with(&image, &WriteOptions::default().level(0))
}

/// [`build_image`] with these layer options.
pub fn build_image_with(image: &FixtureImage, options: &WriteOptions) -> Result<BuiltImage> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for files in &image.layers {
        let mut w = LayerWriter::new(Vec::new(), options)?;
        w.append_all(&entries(files))?;
        let (info, blob) = w.finish()?;
        diff_ids.push(info.diff_id.clone());
        layers.push((Descriptor::new(MediaType::DockerLayerGzip, info.digest, info.size), Bytes::from(blob)));
    }
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created": CREATED, "created_by": format!("fixture layer {i}")}))
        .collect();
    let entrypoint = format!("/usr/bin/{}", image.tag);
    let runtime = serde_json::json!({
        "User": "1000",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Entrypoint": [entrypoint],
        "Labels": image.labels,
    });
    assemble_image(&image.tag, image.role, runtime, Some(history), layers, diff_ids)
}

/// A Docker schema 2 image of `layers` (descriptor and gzip blob, lowest
/// first, with their diff IDs): an amd64 config holding `runtime` as its
/// `config` member, and the manifest.
pub fn assemble_image(
    tag: &str,
    role: Role,
    runtime: serde_json::Value,
    history: Option<Vec<serde_json::Value>>,
    layers: Vec<(Descriptor, Bytes)>,
    diff_ids: Vec<Digest>,
) -> Result<BuiltImage> {
    // Key order is part of the config digest: architecture, config,
    // created, history, os, rootfs.
    let mut config = serde_json::Map::new();
    config.insert("architecture".into(), "amd64".into());
    config.insert("config".into(), runtime);
    config.insert("created".into(), CREATED.into());
    if let Some(h) = history {
        config.insert("history".into(), serde_json::Value::Array(h));
    }
    config.insert("os".into(), "linux".into());
    config.insert("rootfs".into(), serde_json::json!({"type": "layers", "diff_ids": diff_ids}));
    let config_bytes = Bytes::from(serde_json::to_vec(&config)?);
    let config_desc =
        Descriptor::new(MediaType::DockerConfig, Digest::sha256(&config_bytes), config_bytes.len() as u64);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::DockerManifest),
        artifact_type: None,
        config: config_desc.clone(),
        layers: layers.iter().map(|(d, _)| d.clone()).collect(),
        subject: None,
        annotations: None,
    };
    let manifest = RawManifest::from_manifest(&Manifest::Image(manifest))?;
    Ok(BuiltImage { tag: tag.to_owned(), role, manifest, config: (config_desc, config_bytes), layers })
}

/// Pushes `image` to `repo` (blobs first, manifest last) under its tag.
pub async fn push_image(client: &Client, repo: &Reference, image: &BuiltImage) -> Result<Digest> {
    for (desc, bytes) in image.blobs() {
        client.push_blob(repo, desc, bytes).await.with_context(|| format!("pushing a blob of {}", image.tag))?;
    }
    let target = repo.with_tag(&image.tag)?;
    client.push_manifest(&target, &image.manifest).await.with_context(|| format!("pushing {target}"))?;
    Ok(image.manifest.digest().clone())
}

/// Pushes all images concurrently (at most `parallel` at once); returns
/// each tag's manifest digest.
pub async fn push_images(
    client: &Client,
    repo: &Reference,
    images: Vec<BuiltImage>,
    parallel: usize,
) -> Result<BTreeMap<String, Digest>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for image in images {
        let (client, repo, sem) = (client.clone(), repo.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.context("semaphore closed")?;
            let digest = push_image(&client, &repo, &image).await?;
            anyhow::Ok((image.tag, digest))
        });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (tag, digest) = r.context("a push task panicked")??;
        out.insert(tag, digest);
    }
    Ok(out)
}

/// The ImageStream YAML describing pushed images in `repo`
/// (`<registry>/<namespace>/stream`).
pub fn image_stream_yaml(name: &str, repo: &Reference, digests: &BTreeMap<String, Digest>) -> String {
    let repo_name = repo.name();
    let namespace = repo.repository().rsplit_once('/').map_or("ocp", |(ns, _)| ns);
    let mut y = format!(
        "kind: ImageStream\napiVersion: image.openshift.io/v1\nmetadata:\n  name: \"{name}\"\n  namespace: {namespace}\nspec:\n  lookupPolicy:\n    local: false\n  tags:\n"
    );
    for (tag, digest) in digests {
        y.push_str(&format!("  - name: {tag}\n    from:\n      kind: DockerImage\n      name: {repo_name}@{digest}\n"));
    }
    y.push_str(&format!(
        "status:\n  dockerImageRepository: \"\"\n  publicDockerImageRepository: {repo_name}\n  tags:\n"
    ));
    for (tag, digest) in digests {
        y.push_str(&format!(
            "  - tag: {tag}\n    items:\n    - created: \"{CREATED}\"\n      dockerImageReference: {repo_name}@{digest}\n      image: {digest}\n      generation: 1\n"
        ));
    }
    y
}
