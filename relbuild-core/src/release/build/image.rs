//! The release images: the payload layer appended to the base image, one
//! image per platform of a base manifest list.

use super::*;

/// The release image of one platform: `base` with the payload layer on top.
///
/// The config is the base config edited as oc does
/// ([`DockerImageConfig::into_release_config`]). The manifest is Docker
/// schema 2 (OCI layer types converted), unless a base layer has no Docker
/// type (zstd, uncompressed): then it is an OCI manifest with an OCI config
/// type, and the returned warning says so. Never mixed.
#[allow(clippy::too_many_arguments)]
pub fn release_image(
    base: &Reference,
    base_digest: &Digest,
    base_manifest: &ImageManifest,
    base_config: &[u8],
    payload: (&Digest, u64),
    diff_id: &Digest,
    name: &str,
    created: jiff::Timestamp,
) -> Result<(ReleaseImage, Option<String>), Error> {
    let odd = base_manifest.layers.iter().find(|l| l.media_type.to_docker().is_none_or(|t| !t.is_layer()));
    let oci = odd.is_some();
    let warning = odd.map(|l| {
        let why = if l.media_type.layer_compression() == Some(Compression::Zstd) {
            "zstd-compressed"
        } else {
            "of a type Docker schema 2 lacks"
        };
        format!(
            "base image `{base}` layer {} is {why} (`{}`): writing an OCI manifest instead of Docker schema 2",
            l.digest, l.media_type
        )
    });
    let convert = |t: &MediaType| if oci { t.to_oci() } else { t.to_docker() }.unwrap_or_else(|| t.clone());
    let mut layers: Vec<Descriptor> =
        base_manifest.layers.iter().map(|l| Descriptor { media_type: convert(&l.media_type), ..l.clone() }).collect();
    let payload_desc = Descriptor::new(
        if oci { MediaType::OciLayerGzip } else { MediaType::DockerLayerGzip },
        payload.0.clone(),
        payload.1,
    );
    layers.push(payload_desc.clone());
    let edit = ReleaseConfigEdit {
        release_name: name.to_owned(),
        base_image_digest: Some(base_digest.to_string()),
        created,
        layer_diff_id: diff_id.to_string(),
        layer_sizes: layers.iter().map(|l| l.size as i64).collect(),
    };
    let config = Bytes::from(DockerImageConfig::parse(base_config)?.into_release_config(&edit).to_json()?);
    let config_descriptor = Descriptor::new(
        if oci { MediaType::OciConfig } else { MediaType::DockerConfig },
        Digest::sha256(&config),
        config.len() as u64,
    );
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(if oci { MediaType::OciManifest } else { MediaType::DockerManifest }),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers,
        subject: None,
        annotations: None,
    };
    let manifest = RawManifest::from_manifest(&Manifest::Image(manifest)).map_err(|e| Error::Serialize {
        what: "release manifest",
        source: match e {
            crate::image::Error::Serialize { source, .. } => source,
            other => serde_json::Error::io(std::io::Error::other(other.to_string())),
        },
    })?;
    let image = ReleaseImage {
        platform: None,
        base: base.clone(),
        base_digest: base_digest.clone(),
        base_layers: base_manifest.layers.clone(),
        manifest,
        config,
        config_descriptor,
        payload: payload_desc,
    };
    Ok((image, warning))
}

/// Builds the release image(s) on `base`: one, or one per list entry
/// (`filter_by_os` picks one entry instead).
pub(super) async fn build_images(
    fetcher: &Fetcher,
    base: &Reference,
    payload: &Payload,
    release: &ImageStream,
    created: jiff::Timestamp,
    options: &NewOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<ReleaseImage>, Option<RawManifest>), Error> {
    let wrap = |e: crate::Error| Error::BaseImage { reference: base.to_string(), source: Box::new(e) };
    let raw = fetcher.fetch_manifest(base).await.map_err(wrap)?;
    let (digest, size) = payload.blob();
    let name = &release.metadata.name;
    let one = |img: &inspect::InspectedImage, platform: Option<Platform>, warnings: &mut Vec<String>| {
        let (mut image, warning) = release_image(
            &img.reference,
            img.manifest.digest(),
            &img.image,
            &img.config,
            (&digest, size),
            &payload.info.diff_id,
            name,
            created,
        )?;
        image.platform = platform;
        warnings.extend(warning);
        Ok::<_, Error>(image)
    };
    let index = match raw.parse().map_err(|e| wrap(e.into()))? {
        Manifest::Image(_) => {
            let img = fetcher.fetch_image(base).await.map_err(wrap)?;
            return Ok((vec![one(&img, None, warnings)?], None));
        }
        Manifest::Index(index) => index,
    };
    if let Some(p) = &options.filter_by_os {
        let child = inspect::pick_platform(base, &index, p)?;
        let img = fetcher.fetch_child(base, child).await.map_err(wrap)?;
        return Ok((vec![one(&img, None, warnings)?], None));
    }
    let mut images = Vec::new();
    let mut entries = Vec::new();
    for child in &index.manifests {
        // Attestation manifests (buildkit) are not images to run.
        if child.platform.as_ref().is_some_and(|p| p.os == "unknown") {
            continue;
        }
        let img = fetcher.fetch_child(base, child).await.map_err(wrap)?;
        let platform = child.platform.clone().unwrap_or_else(|| inspect::config_platform(&img.parsed_config));
        let image = one(&img, Some(platform.clone()), warnings)?;
        entries.push(Descriptor { platform: Some(platform), ..image.manifest.descriptor() });
        images.push(image);
    }
    let list_type =
        if raw.media_type() == &MediaType::OciIndex { MediaType::OciIndex } else { MediaType::DockerManifestList };
    let list = ImageIndex { schema_version: 2, media_type: Some(list_type), manifests: entries, annotations: None };
    let list = RawManifest::from_manifest(&Manifest::Index(list)).map_err(|e| wrap(e.into()))?;
    Ok((images, Some(list)))
}

/// The base image tag names of its own `/manifests/image-references`
/// (openshift/oc#2287), read from the top layer for the manifests platform,
/// and whether that layer has `/manifests` at all.
pub(super) async fn base_references(
    fetcher: &Fetcher,
    base: &Reference,
    options: &NewOptions,
) -> Result<(Vec<String>, bool), Error> {
    let wrap = |e: crate::Error| Error::BaseImage { reference: base.to_string(), source: Box::new(e) };
    let img = fetcher.fetch_image(base).await.map_err(wrap)?;
    let Some(top) = img.top_layer() else { return Ok((Vec::new(), false)) };
    let caps = options.extract.clone().top_level_only(true);
    let extracted =
        fetcher.extract(&img.reference, std::slice::from_ref(top), "manifests", caps).await.map_err(wrap)?;
    match extracted.get(IMAGE_REFERENCES) {
        Some(f) => Ok((referenced_tags(&base.to_string(), &f.data)?, true)),
        None => Ok((Vec::new(), extracted.found)),
    }
}
