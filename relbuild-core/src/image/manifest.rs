//! Manifests, indexes, descriptors and configs.
//!
//! Docker schema 2 manifests and OCI manifests share one shape, as do Docker
//! manifest lists and OCI indexes, so each pair is one type here and the
//! media type tells them apart. Every manifest read from anywhere is kept as
//! a [`RawManifest`]: the digest covers those exact bytes, and the typed value
//! is only a view of them.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Digest, Error, MediaType, gojson};

/// A content descriptor: what a manifest says about a blob or child manifest.
///
/// Field order is distribution's `Descriptor` (mediaType, digest, size, …),
/// so manifests we write serialise as the reference tools write them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: MediaType,
    /// The digest of the referenced content. It MUST match the bytes.
    pub digest: Digest,
    /// The size in bytes of the referenced content. It MUST match the bytes.
    pub size: u64,
    /// Alternate download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with only the three required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Self {
        Self { media_type, digest, size, urls: None, annotations: None, platform: None, artifact_type: None }
    }
}

/// The platform of a manifest-list / index entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, GOARCH spelling (`amd64`, `arm64`, `ppc64le`, `s390x`).
    pub architecture: String,
    /// Operating system, GOOS spelling (`linux`).
    pub os: String,
    /// OS version (Windows).
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform with only `os` and `architecture` set.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self { architecture: architecture.into(), os: os.into(), os_version: None, os_features: None, variant: None }
    }

    /// `os/architecture[/variant]`.
    pub fn to_os_arch(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A single-image manifest: Docker schema 2 or OCI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// Required by Docker schema 2; optional (but SHOULD be set) in OCI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The subject (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list (Docker) or image index (OCI).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// Required by Docker; optional (but SHOULD be set) in OCI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The child manifests.
    pub manifests: Vec<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// The first entry for `os/arch` (variant ignored unless given as `os/arch/variant`).
    pub fn find_platform(&self, os_arch: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                let full = p.to_os_arch();
                full == os_arch || format!("{}/{}", p.os, p.architecture) == os_arch
            })
        })
    }
}

/// A parsed manifest of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // short-lived views; boxing would only add indirection
pub enum Manifest {
    /// A single image.
    Image(ImageManifest),
    /// A list of per-platform images.
    Index(ImageIndex),
}

/// Manifest bytes exactly as read or written, with their digest and media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    bytes: Bytes,
    digest: Digest,
    media_type: MediaType,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<MediaType>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

impl RawManifest {
    /// Wraps bytes, computing their sha256 digest. The media type comes from
    /// `content_type` (a registry's `Content-Type`) when that names a
    /// manifest type, else from the document's `mediaType`, else from its
    /// shape (`manifests` → OCI index, `config` → OCI manifest).
    pub fn new(bytes: impl Into<Bytes>, content_type: Option<&str>) -> Result<Self, Error> {
        let bytes = bytes.into();
        let digest = Digest::sha256(&bytes);
        let header = content_type.map(MediaType::parse).filter(MediaType::is_manifest);
        let media_type = match header {
            Some(t) => t,
            None => {
                let probe: Probe = serde_json::from_slice(&bytes)
                    .map_err(|source| Error::InvalidManifest { digest: digest.clone(), source })?;
                match (probe.media_type, probe.schema_version) {
                    (Some(t), _) if t.is_manifest() || t == MediaType::DockerSchema1Signed => t,
                    (_, Some(1)) => MediaType::DockerSchema1Signed,
                    _ if probe.manifests.is_some() => MediaType::OciIndex,
                    _ if probe.config.is_some() => MediaType::OciManifest,
                    (t, _) => {
                        return Err(Error::UnsupportedMediaType {
                            media_type: t.map_or_else(|| "(none)".to_owned(), |t| t.to_string()),
                            digest,
                        });
                    }
                }
            }
        };
        Ok(Self { bytes, digest, media_type })
    }

    /// Serialises `manifest` the way distribution does (`MarshalIndent` with
    /// three spaces, no trailing newline) and wraps the bytes.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, Error> {
        let (bytes, media_type) = match manifest {
            Manifest::Image(m) => {
                (gojson::to_vec_indent(m, "   "), m.media_type.clone().unwrap_or(MediaType::OciManifest))
            }
            Manifest::Index(i) => {
                (gojson::to_vec_indent(i, "   "), i.media_type.clone().unwrap_or(MediaType::OciIndex))
            }
        };
        let bytes = bytes.map_err(|source| Error::Serialize { what: "manifest", source })?;
        let digest = Digest::sha256(&bytes);
        Ok(Self { bytes: bytes.into(), digest, media_type })
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The sha256 digest of [`Self::bytes`].
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The media type.
    pub fn media_type(&self) -> &MediaType {
        &self.media_type
    }

    /// A descriptor pointing at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.bytes.len() as u64)
    }

    /// Errors unless the bytes hash to `expected`.
    pub fn verify(&self, expected: &Digest) -> Result<(), Error> {
        if expected.is_sha256() { expected.verify(&self.digest) } else { Ok(()) }
    }

    /// The typed view.
    pub fn parse(&self) -> Result<Manifest, Error> {
        let err = |source| Error::InvalidManifest { digest: self.digest.clone(), source };
        if self.media_type.is_index() {
            Ok(Manifest::Index(serde_json::from_slice(&self.bytes).map_err(err)?))
        } else if self.media_type.is_image_manifest() {
            Ok(Manifest::Image(serde_json::from_slice(&self.bytes).map_err(err)?))
        } else {
            Err(Error::UnsupportedMediaType { media_type: self.media_type.to_string(), digest: self.digest.clone() })
        }
    }
}

/// A typed view of an image config (Docker `container.image.v1` or OCI
/// `image.config.v1`): the fields relbuild reads. Unknown fields are kept in
/// `extra`, so a config can be edited and written back without loss.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// CPU architecture, GOARCH spelling.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The runtime config (`Labels`, `Env`, `Entrypoint`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The layer diff IDs.
    #[serde(default)]
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<serde_json::Value>>,
    /// Everything else, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `config` member of an image config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// Image labels.
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Everything else (`Env`, `Entrypoint`, `User`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `rootfs` member of an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The sha256 of each uncompressed layer, base first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses config bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|source| Error::InvalidConfig { source })
    }

    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.as_ref()?.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// All labels (empty when there are none).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_detection_table() {
        let cfg = format!(
            r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":1}}"#,
            "a".repeat(64)
        );
        let cases: Vec<(String, Option<&str>, MediaType)> = vec![
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{cfg},"layers":[]}}"#
                ),
                None,
                MediaType::DockerManifest,
            ),
            (format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[]}}"#), None, MediaType::OciManifest),
            (r#"{"schemaVersion":2,"manifests":[]}"#.to_owned(), None, MediaType::OciIndex),
            (
                r#"{"schemaVersion":2,"manifests":[]}"#.to_owned(),
                Some("application/vnd.docker.distribution.manifest.list.v2+json"),
                MediaType::DockerManifestList,
            ),
            (
                format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[]}}"#),
                Some("text/plain"),
                MediaType::OciManifest,
            ),
        ];
        for (json, ct, want) in cases {
            let raw = RawManifest::new(json.clone().into_bytes(), ct).expect(&json);
            assert_eq!(raw.media_type(), &want, "{json}");
            assert_eq!(raw.digest(), &Digest::sha256(json.as_bytes()));
            raw.parse().expect("parses");
        }
        assert!(RawManifest::new(&b"not json"[..], None).is_err());
        assert!(RawManifest::new(&br#"{"schemaVersion":2}"#[..], None).is_err());
    }

    #[test]
    fn writes_distribution_layout() {
        let d = Digest::sha256(b"x");
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::DockerManifest),
            artifact_type: None,
            config: Descriptor::new(MediaType::DockerConfig, d.clone(), 1),
            layers: vec![Descriptor::new(MediaType::DockerLayerGzip, d.clone(), 2)],
            subject: None,
            annotations: None,
        };
        let raw = RawManifest::from_manifest(&Manifest::Image(m.clone())).expect("serialises");
        let text = std::str::from_utf8(raw.bytes()).expect("utf8");
        assert!(text.starts_with("{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": {\n      \"mediaType\""), "{text}");
        assert!(!text.ends_with('\n'));
        assert_eq!(raw.parse().expect("parses"), Manifest::Image(m));
    }

    #[test]
    fn config_round_trip_keeps_unknown_fields() {
        let src = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Labels":{"io.openshift.release.operator":"true"}},"rootfs":{"type":"layers","diff_ids":[]},"container_config":{"x":1}}"#;
        let c = ImageConfig::from_slice(src).expect("parses");
        assert_eq!(c.label("io.openshift.release.operator"), Some("true"));
        let back: serde_json::Value = serde_json::to_value(&c).expect("serialises");
        assert_eq!(back["container_config"]["x"], 1);
        assert_eq!(back["config"]["Env"][0], "A=1");
    }
}
