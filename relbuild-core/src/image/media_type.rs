//! Media types of manifests, configs and layers, Docker and OCI.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (possibly several members).
    Gzip,
    /// zstd.
    Zstd,
}

macro_rules! media_types {
    ($($variant:ident => $s:literal, $doc:literal;)*) => {
        /// A media type. Known types get a variant; anything else is kept verbatim in `Other`.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MediaType {
            $(#[doc = $doc] $variant,)*
            /// Any other media type, kept as written.
            Other(String),
        }

        impl MediaType {
            /// The media type string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $s,)*
                    Self::Other(s) => s,
                }
            }

            /// Parses a media type string; unknown strings become `Other`.
            pub fn parse(s: &str) -> Self {
                // Registries sometimes append parameters such as `; charset=utf-8`.
                let bare = s.split(';').next().unwrap_or(s).trim();
                match bare {
                    $($s => Self::$variant,)*
                    _ => Self::Other(s.to_owned()),
                }
            }
        }
    };
}

media_types! {
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json", "Docker image manifest, schema 2.";
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json", "Docker manifest list.";
    DockerConfig => "application/vnd.docker.container.image.v1+json", "Docker image config.";
    DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip", "Docker gzip layer.";
    DockerLayerZstd => "application/vnd.docker.image.rootfs.diff.tar.zstd", "Docker zstd layer (rare, but written by some builders).";
    DockerForeignLayerGzip => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "Docker foreign (non-distributable) gzip layer.";
    DockerSchema1Signed => "application/vnd.docker.distribution.manifest.v1+prettyjws", "Docker schema 1 signed manifest (read-only, legacy).";
    OciManifest => "application/vnd.oci.image.manifest.v1+json", "OCI image manifest.";
    OciIndex => "application/vnd.oci.image.index.v1+json", "OCI image index.";
    OciConfig => "application/vnd.oci.image.config.v1+json", "OCI image config.";
    OciLayer => "application/vnd.oci.image.layer.v1.tar", "OCI uncompressed layer.";
    OciLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip", "OCI gzip layer.";
    OciLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd", "OCI zstd layer.";
    OciNondistributableLayer => "application/vnd.oci.image.layer.nondistributable.v1.tar", "OCI non-distributable uncompressed layer (deprecated).";
    OciNondistributableLayerGzip => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "OCI non-distributable gzip layer (deprecated).";
    OciNondistributableLayerZstd => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "OCI non-distributable zstd layer (deprecated).";
}

impl MediaType {
    /// True for single-image manifests (Docker schema 2 or OCI).
    pub fn is_image_manifest(&self) -> bool {
        matches!(self, Self::DockerManifest | Self::OciManifest)
    }

    /// True for manifest lists and OCI indexes.
    pub fn is_index(&self) -> bool {
        matches!(self, Self::DockerManifestList | Self::OciIndex)
    }

    /// True for any manifest media type (image, list, index).
    pub fn is_manifest(&self) -> bool {
        self.is_image_manifest() || self.is_index()
    }

    /// True for Docker media types.
    pub fn is_docker(&self) -> bool {
        self.as_str().starts_with("application/vnd.docker.")
    }

    /// True for OCI media types.
    pub fn is_oci(&self) -> bool {
        self.as_str().starts_with("application/vnd.oci.")
    }

    /// The compression of a layer media type; `None` for anything that is not a known layer type.
    pub fn layer_compression(&self) -> Option<Compression> {
        Some(match self {
            Self::DockerLayerGzip
            | Self::DockerForeignLayerGzip
            | Self::OciLayerGzip
            | Self::OciNondistributableLayerGzip => Compression::Gzip,
            Self::DockerLayerZstd | Self::OciLayerZstd | Self::OciNondistributableLayerZstd => Compression::Zstd,
            Self::OciLayer | Self::OciNondistributableLayer => Compression::None,
            _ => return None,
        })
    }

    /// True for layer media types.
    pub fn is_layer(&self) -> bool {
        self.layer_compression().is_some()
    }

    /// The Docker equivalent of an OCI type, or `None` when Docker has none
    /// (uncompressed layers; zstd, which Docker schema 2 readers such as
    /// Cincinnati cannot read). Docker types map to themselves.
    pub fn to_docker(&self) -> Option<Self> {
        Some(match self {
            Self::OciManifest => Self::DockerManifest,
            Self::OciIndex => Self::DockerManifestList,
            Self::OciConfig => Self::DockerConfig,
            Self::OciLayerGzip => Self::DockerLayerGzip,
            Self::OciNondistributableLayerGzip => Self::DockerForeignLayerGzip,
            t if t.is_docker() && !matches!(t, Self::DockerLayerZstd) => t.clone(),
            _ => return None,
        })
    }

    /// The OCI equivalent of a Docker type. OCI types map to themselves.
    pub fn to_oci(&self) -> Option<Self> {
        Some(match self {
            Self::DockerManifest => Self::OciManifest,
            Self::DockerManifestList => Self::OciIndex,
            Self::DockerConfig => Self::OciConfig,
            Self::DockerLayerGzip => Self::OciLayerGzip,
            Self::DockerLayerZstd => Self::OciLayerZstd,
            Self::DockerForeignLayerGzip => Self::OciNondistributableLayerGzip,
            t if t.is_oci() => t.clone(),
            _ => return None,
        })
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaType({})", self.as_str())
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl Serialize for MediaType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_oci_mapping_table() {
        use MediaType::*;
        let cases = [
            (OciManifest, Some(DockerManifest), Some(OciManifest)),
            (DockerManifest, Some(DockerManifest), Some(OciManifest)),
            (OciIndex, Some(DockerManifestList), Some(OciIndex)),
            (OciConfig, Some(DockerConfig), Some(OciConfig)),
            (OciLayerGzip, Some(DockerLayerGzip), Some(OciLayerGzip)),
            (DockerLayerGzip, Some(DockerLayerGzip), Some(OciLayerGzip)),
            (OciLayerZstd, None, Some(OciLayerZstd)),
            (OciLayer, None, Some(OciLayer)),
            (DockerForeignLayerGzip, Some(DockerForeignLayerGzip), Some(OciNondistributableLayerGzip)),
        ];
        for (t, docker, oci) in cases {
            assert_eq!(t.to_docker(), docker, "{t}");
            assert_eq!(t.to_oci(), oci, "{t}");
            assert_eq!(MediaType::parse(t.as_str()), t);
        }
    }

    #[test]
    fn parameters_and_unknown() {
        assert_eq!(MediaType::parse("application/vnd.oci.image.index.v1+json; charset=utf-8"), MediaType::OciIndex);
        let other = MediaType::parse("application/x-foo");
        assert_eq!(other, MediaType::Other("application/x-foo".into()));
        assert!(!other.is_layer());
        assert_eq!(MediaType::OciLayerZstd.layer_compression(), Some(Compression::Zstd));
    }
}
