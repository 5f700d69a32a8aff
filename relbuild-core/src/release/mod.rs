//! Release payload formats: the pure, synchronous half of
//! `oc adm release new`.
//!
//! | file | what |
//! |---|---|
//! | [`imagestream`] | the `image.openshift.io/v1` `ImageStream` model, parsing, tag resolution (`-f`) |
//! | [`metadata`] | `release-manifests/release-metadata` (Cincinnati) and the release name |
//! | [`rewrite`] | per-operator pullspec rewriting and `0.0.1-snapshot` substitution |
//! | [`naming`] | `0000_50_<tag>_<file>` names and collision renames |
//! | [`payload`] | the `release-manifests/` layer tar |
//! | [`config`] | the release image config derived from the base image config |
//!
//! Nothing here touches the network; the orchestration that fetches images
//! and pushes the result sits on top of these.

pub mod config;
pub mod imagestream;
pub mod include;
pub mod info;
pub mod lint;
pub mod metadata;
pub mod naming;
pub mod payload;
pub mod read;
pub mod rewrite;

pub use config::{DockerImageConfig, ReleaseConfigEdit};
pub use imagestream::{ImageStream, ReferenceMode, ResolvedTag, TagReference};
pub use metadata::CincinnatiMetadata;
pub use naming::{Collision, PayloadNamer};
pub use payload::{ManifestFile, Operator, PayloadOptions, PayloadSummary, write_payload};
pub use rewrite::{ImageMapper, ImageReference, OperatorTransform, RewriteMode, VersionMapper, VersionRefError};

/// Errors of the `release` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A YAML or JSON document that does not parse as the expected type.
    #[error("`{file}`{}: not a valid {what}", location_suffix(*.line, *.column))]
    Parse {
        /// The file (or description of the input) that was read.
        file: String,
        /// What the document should have been.
        what: &'static str,
        /// 1-based line of the error, when known.
        line: Option<u64>,
        /// 1-based column of the error, when known.
        column: Option<u64>,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An image stream file with the wrong `kind`.
    #[error("`{file}`: unknown kind `{kind}`, expected `ImageStream`")]
    UnknownKind {
        /// The file.
        file: String,
        /// The kind found.
        kind: String,
    },
    /// An image stream file with the wrong `apiVersion`.
    #[error("`{file}`: unknown apiVersion `{api_version}`, expected `image.openshift.io/v1`")]
    UnknownApiVersion {
        /// The file.
        file: String,
        /// The apiVersion found.
        api_version: String,
    },
    /// `--reference-mode` with a value other than `public`, `source` or empty.
    #[error("unknown reference mode `{0}`: supported reference modes are: \"public\" (default) and \"source\"")]
    UnknownReferenceMode(String),
    /// The default reference mode needs `status.publicDockerImageRepository`.
    #[error(
        "only image streams or releases with public image repositories can be the source for releases when using the default --reference-mode"
    )]
    NoPublicRepository,
    /// A tag whose import has not completed (or failed).
    #[error("the tag {tag:?} in the source input stream has not been imported yet")]
    TagNotImported {
        /// The tag.
        tag: String,
    },
    /// A spec tag whose newest status item has no image ID.
    #[error("the tag {tag:?} in the source input stream has no image id")]
    TagNoImageId {
        /// The tag.
        tag: String,
    },
    /// A pullspec that cannot be used as an image reference.
    #[error("the tag {tag:?} points to source {pullspec:?} which is not valid")]
    InvalidTagSource {
        /// The tag.
        tag: String,
        /// The pullspec.
        pullspec: String,
    },
    /// `--name` (or a `--previous`/`--next` value) that is not semver.
    #[error("`{value}` is not a valid semantic version for {what}")]
    InvalidVersion {
        /// What the value was for (`--name`, `--previous`, `--next`).
        what: &'static str,
        /// The value given.
        value: String,
        /// The semver error.
        #[source]
        source: semver::Error,
    },
    /// `--metadata` that is not JSON.
    #[error("--metadata is not valid JSON")]
    MetadataJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `--metadata` that is not a JSON object.
    #[error("--metadata must be a JSON object")]
    MetadataNotObject,
    /// A `--metadata` value that is not a string (Cincinnati reads
    /// `metadata` as `map<string,string>` and drops the whole release otherwise).
    #[error("--metadata key `{key}` must have a string value (Cincinnati only reads strings), found {found}")]
    MetadataValueNotString {
        /// The key.
        key: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A tag of an operator's `image-references` without `from.name`.
    #[error("operator {operator:?} contained an invalid image-references file: no from.name for the tag {tag}")]
    EmptyFromName {
        /// The operator (tag name).
        operator: String,
        /// The tag in its image-references.
        tag: String,
    },
    /// A tag of an operator's `image-references` that the release does not have.
    #[error("operator {operator:?} contained an invalid image-references file: no input image tag named {tag:?}")]
    UnknownTag {
        /// The operator (tag name).
        operator: String,
        /// The missing tag.
        tag: String,
    },
    /// Two tags of one `image-references` with the same source pullspec.
    #[error(
        "operator {operator:?} contained an invalid image-references file: the source repository {source_repository:?} was defined more than once (for {first:?} and {second:?})"
    )]
    DuplicateSource {
        /// The operator (tag name).
        operator: String,
        /// The repeated source pullspec.
        source_repository: String,
        /// The first tag naming it.
        first: String,
        /// The second tag naming it.
        second: String,
    },
    /// An invalid `io.openshift.build.versions` annotation on a referenced tag.
    #[error("operator {operator:?}: input image stream has an invalid version annotation for tag {tag:?}: {value}")]
    InvalidVersionsAnnotation {
        /// The operator whose image-references names the tag.
        operator: String,
        /// The tag carrying the annotation.
        tag: String,
        /// The annotation value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Two referenced tags declaring different versions for one component.
    #[error(
        "operator {:?}: input image stream has multiple versions defined for version {}: {} defines {} but was already set to {} on {}",
        .0.operator, .0.key, .0.tag, .0.value, .0.existing, .0.tags.join(", ")
    )]
    ConflictingVersions(Box<VersionConflict>),
    /// A manifest whose `0.0.1-snapshot…` references cannot be substituted.
    #[error("operator {operator:?}, file `{file}`: cannot substitute versions")]
    Version {
        /// The operator.
        operator: String,
        /// The source file name.
        file: String,
        /// What is wrong.
        #[source]
        source: VersionRefError,
    },
    /// Serialising one of our types failed (a bug).
    #[error("could not serialise {what}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the payload layer failed.
    #[error("could not write the release-manifests layer")]
    Write {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The data of [`Error::ConflictingVersions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConflict {
    /// The operator whose image-references names both tags.
    pub operator: String,
    /// The component.
    pub key: String,
    /// The tag declaring the new value.
    pub tag: String,
    /// The new value.
    pub value: String,
    /// The value already recorded.
    pub existing: String,
    /// The tags that declared the existing value.
    pub tags: Vec<String>,
}

fn location_suffix(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" line {l}, column {c}"),
        (Some(l), None) => format!(" line {l}"),
        _ => String::new(),
    }
}
