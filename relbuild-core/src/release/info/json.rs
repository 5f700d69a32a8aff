//! `-o json`: oc's `ReleaseInfo` as `json.MarshalIndent` writes it.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{ComponentVersion, Error, PlatformDigest, ReleaseInfo, ReleaseMetadata};
use crate::release::config::DockerImageConfig;
use crate::release::imagestream::ImageStream;

#[derive(Serialize)]
pub(super) struct InfoJson<'a> {
    image: &'a str,
    digest: String,
    #[serde(rename = "contentDigest")]
    content_digest: String,
    #[serde(rename = "listDigest")]
    list_digest: String,
    config: Option<&'a DockerImageConfig>,
    metadata: Option<&'a ReleaseMetadata>,
    references: &'a ImageStream,
    versions: Option<()>,
    #[serde(rename = "displayVersions")]
    display_versions: Option<&'a BTreeMap<String, ComponentVersion>>,
    #[serde(rename = "versionsTags")]
    versions_tags: Option<&'a BTreeMap<String, String>>,
    images: Option<&'a BTreeMap<String, serde_json::Value>>,
    warnings: Option<&'a [String]>,
    /// Our addition (oc has no such key): a manifest-list release's
    /// per-platform digests; absent for a single image.
    #[serde(skip_serializing_if = "<[PlatformDigest]>::is_empty")]
    platforms: &'a [PlatformDigest],
}

fn non_empty<K, V>(m: &BTreeMap<K, V>) -> Option<&BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

impl<'a> From<&'a ReleaseInfo> for InfoJson<'a> {
    fn from(info: &'a ReleaseInfo) -> Self {
        Self {
            image: &info.image,
            digest: info.digest.to_string(),
            content_digest: info.content_digest.to_string(),
            list_digest: info.list_digest.as_ref().map(ToString::to_string).unwrap_or_default(),
            config: info.config.as_ref(),
            metadata: info.metadata.as_ref(),
            references: &info.references,
            versions: None,
            display_versions: non_empty(&info.component_versions.versions),
            versions_tags: non_empty(&info.component_versions.tags),
            images: info.images.as_ref(),
            warnings: (!info.warnings.is_empty()).then_some(info.warnings.as_slice()),
            platforms: &info.platforms,
        }
    }
}

/// `-o json`: `json.MarshalIndent(info, "", "  ")` and a newline. For a
/// manifest-list release a `platforms` array (`[{"platform": "linux/amd64",
/// "digest": "sha256:…"}, …]`, our addition) follows oc's keys.
pub fn write_json(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    let data = crate::image::gojson::to_vec_indent(&InfoJson::from(info), "  ")
        .map_err(|source| Error::Serialize { what: "release info", source })?;
    out.write_all(&data)?;
    out.write_all(b"\n")?;
    Ok(())
}
