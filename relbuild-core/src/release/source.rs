//! The inputs of `release new` (spec §1.1, §1.2): exactly one source
//! (an image stream file, an input release, a directory, or none) plus
//! positional `NAME=PULLSPEC` mappings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::imagestream::{self, ObjectReference, ReferenceMode, TagReference};
use std::sync::Arc;

use super::inspect::Fetcher;
use super::names::{ANNOTATION_OVERRIDE, IMAGE_REFERENCES, PAYLOAD_DIR, RELEASE_METADATA};
use super::payload::{ManifestFile, Operator};
use super::read::{self, ReadImage};
use super::{Error, ImageStream};
use crate::image::{Descriptor, Digest, ImageConfig, RawManifest};
use crate::layer::{ExtractOptions, Extracted};
use crate::transfer::{ImageLocation, ImageSource};

/// Where the release's tags come from.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Source {
    /// No source: the mappings alone make the release.
    #[default]
    None,
    /// `-f/--from-image-stream-file`: an `ImageStream` in YAML or JSON.
    ImageStreamFile {
        /// The file content.
        bytes: Vec<u8>,
        /// The file name, for errors.
        file: String,
        /// `--reference-mode`.
        mode: ReferenceMode,
    },
    /// `-f/--from-image-stream-file URL`: an `ImageStream` fetched over
    /// `http(s)` with the registry client's TLS settings (at most 64 MiB).
    ImageStreamUrl {
        /// The URL.
        url: String,
        /// `--reference-mode`.
        mode: ReferenceMode,
    },
    /// `--from-release PULLSPEC`: the tags, name and metadata of a release image.
    Release(String),
    /// `--from-dir DIR`: each subdirectory holds one operator's manifests.
    Dir(PathBuf),
}

impl Source {
    /// What kind of source this is, for logs: `none`, `image-stream-file`,
    /// `image-stream-url`, `release` or `dir`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ImageStreamFile { .. } => "image-stream-file",
            Self::ImageStreamUrl { .. } => "image-stream-url",
            Self::Release(_) => "release",
            Self::Dir(_) => "dir",
        }
    }
}

/// A positional `NAME=PULLSPEC` (or mapping-file) entry: tag `NAME` is
/// replaced by (or added as) image `PULLSPEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The tag name.
    pub tag: String,
    /// The image.
    pub pullspec: String,
}

impl std::str::FromStr for Mapping {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once('=') {
            Some((tag, pullspec)) if !tag.is_empty() && !pullspec.is_empty() => {
                Ok(Self { tag: tag.to_owned(), pullspec: pullspec.to_owned() })
            }
            _ => Err(Error::InvalidMapping { value: s.to_owned(), file: None, line: None }),
        }
    }
}

/// Parses a `--mapping-file`: whitespace-separated `NAME=PULLSPEC` entries,
/// any number per line, `#` starting a comment.
pub fn parse_mapping_file(bytes: &[u8], file: &str) -> Result<Vec<Mapping>, Error> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(l, _)| l);
        for word in line.split_whitespace() {
            let m = word.parse::<Mapping>().map_err(|_| Error::InvalidMapping {
                value: word.to_owned(),
                file: Some(file.to_owned()),
                line: Some(i + 1),
            })?;
            out.push(m);
        }
    }
    Ok(out)
}

/// The tags the mappings touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    /// Every mapped tag.
    pub all: BTreeSet<String>,
    /// Mapped tags that replaced a tag of the input (oc processes such an
    /// operator twice; see [`Operator::is_override`]).
    pub replaced: BTreeSet<String>,
}

/// Applies mappings as oc does: an existing tag gets its annotations reset
/// to `io.openshift.release.override: "true"` and its image replaced; a new
/// tag is appended with that annotation. Mappings named in `exclude` are
/// skipped; the tags are then sorted by name.
pub fn apply_mappings(stream: &mut ImageStream, mappings: &[Mapping], exclude: &[String]) -> Mapped {
    let mut mapped = Mapped::default();
    let annotations = || Some(BTreeMap::from([(ANNOTATION_OVERRIDE.to_owned(), "true".to_owned())]));
    for m in mappings.iter().filter(|m| !exclude.contains(&m.tag)) {
        match stream.spec.tags.iter_mut().find(|t| t.name == m.tag) {
            Some(tag) => {
                tag.annotations = annotations();
                tag.from = Some(ObjectReference::docker_image(&m.pullspec));
                if !mapped.all.contains(&m.tag) {
                    mapped.replaced.insert(m.tag.clone());
                }
            }
            None => {
                stream.spec.tags.push(TagReference {
                    annotations: annotations(),
                    ..TagReference::docker_image(&m.tag, &m.pullspec)
                });
            }
        }
        mapped.all.insert(m.tag.clone());
    }
    stream.sort_tags();
    mapped
}

/// The tags annotated `io.openshift.release.override: "true"`: replaced or
/// added by a mapping, in this build or in the one that made the input.
pub fn overridden_tags(stream: &ImageStream) -> BTreeSet<String> {
    stream
        .spec
        .tags
        .iter()
        .filter(|t| t.annotations.as_ref().and_then(|a| a.get(ANNOTATION_OVERRIDE)).is_some_and(|v| v == "true"))
        .map(|t| t.name.clone())
        .collect()
}

/// An empty release image stream.
pub fn new_stream() -> ImageStream {
    ImageStream {
        kind: imagestream::KIND.to_owned(),
        api_version: imagestream::API_VERSION.to_owned(),
        ..ImageStream::default()
    }
}

/// The release tags of an image stream file (`resolveImageStreamTagsToReferenceMode`).
pub fn stream_from_file(
    bytes: &[u8],
    file: &str,
    mode: ReferenceMode,
    exclude: &[String],
) -> Result<ImageStream, Error> {
    let input = ImageStream::parse(bytes, file)?;
    let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
    let mut stream = new_stream();
    stream.spec.tags =
        imagestream::resolve_tags(&input, mode, &exclude)?.iter().map(|t| t.to_tag_reference()).collect();
    Ok(stream)
}

/// `release-metadata` as read from an input release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InputMetadata {
    /// `version`.
    #[serde(default)]
    pub version: String,
    /// `previous`.
    #[serde(default)]
    pub previous: Vec<String>,
    /// `next`.
    #[serde(default)]
    pub next: Vec<String>,
    /// `metadata`.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An input release (`--from-release`).
#[derive(Debug, Clone)]
pub struct InputRelease {
    /// The release as given: a pullspec, or an `oci:`, `oci-archive:` or
    /// `dist:` location.
    pub pullspec: String,
    /// Where it is read from (a canonical rebuild reuses its payload blob).
    pub source: Arc<ImageSource>,
    /// Its manifest (for the manifests platform).
    pub manifest: RawManifest,
    /// The manifest list it was picked from, if any.
    pub list: Option<RawManifest>,
    /// Its `release-manifests/image-references`.
    pub stream: ImageStream,
    /// Its `release-manifests/release-metadata`, if any.
    pub metadata: Option<InputMetadata>,
    /// Its `io.openshift.release.base-image-digest` label.
    pub base_image_digest: Option<String>,
    /// Its top (payload) layer and that layer's diff ID.
    pub top_layer: Option<(Descriptor, Digest)>,
    /// Every file directly under its `release-manifests/`, by name: what a
    /// canonical rebuild is compared with.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl InputRelease {
    /// The digest the release is known by: its list's, else its manifest's.
    pub fn top_digest(&self) -> &Digest {
        self.list.as_ref().unwrap_or(&self.manifest).digest()
    }
}

/// Reads an input release from any location the transfer engine reads (a
/// registry, an OCI layout, an oci-archive, a distribution tree): the
/// image, then `image-references` and `release-metadata` from its top
/// layer (from all layers if the top one lacks them).
pub async fn read_release(fetcher: &Fetcher, pullspec: &str) -> Result<InputRelease, Error> {
    let wrap = |source: crate::Error| Error::FromRelease { reference: pullspec.to_owned(), source: Box::new(source) };
    let location: ImageLocation = pullspec.parse().map_err(|e: crate::transfer::Error| wrap(e.into()))?;
    let source = ImageSource::open(&location, fetcher.client()).await.map_err(|e| wrap(e.into()))?;
    let read_err = |e: read::Error| wrap(e.into());
    let ReadImage { manifest, image, list, config } =
        read::read_image(&source, pullspec, fetcher.platform()).await.map_err(read_err)?;
    let config = ImageConfig::from_slice(&config).map_err(|e| wrap(e.into()))?;
    let options = ExtractOptions::default().top_level_only(true);
    let layers = &image.layers;
    // Through the fetcher, so a warm build reads the payload from its cache.
    let extract = |layers| fetcher.extract_from(&source, pullspec, layers, PAYLOAD_DIR, options.clone());
    let mut extracted = match layers.last() {
        Some(top) => extract(std::slice::from_ref(top)).await.map_err(wrap)?,
        None => Extracted::default(),
    };
    if extracted.get(IMAGE_REFERENCES).is_none() && layers.len() > 1 {
        extracted = extract(layers).await.map_err(wrap)?;
    }
    let Some(refs) = extracted.get(IMAGE_REFERENCES) else {
        if !extracted.found {
            // Worded as `info` and `extract` say it.
            let e = read::Error::NotARelease { image: pullspec.to_owned(), layers: layers.len() };
            return Err(wrap(e.into()));
        }
        return Err(Error::NoImageReferences { reference: pullspec.to_owned() });
    };
    let stream = ImageStream::parse(&refs.data, &format!("{pullspec} {PAYLOAD_DIR}/{IMAGE_REFERENCES}"))?;
    let metadata = match extracted.get(RELEASE_METADATA) {
        Some(f) => Some(serde_json::from_slice::<InputMetadata>(&f.data).map_err(|e| Error::Parse {
            file: format!("{pullspec} {PAYLOAD_DIR}/{RELEASE_METADATA}"),
            what: "release-metadata",
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            source: Box::new(e),
        })?),
        None => None,
    };
    let base_image_digest = config.label(super::names::LABEL_BASE_IMAGE_DIGEST).map(str::to_owned);
    let top_layer = match (image.layers.last(), config.rootfs.diff_ids.last()) {
        (Some(d), Some(diff)) if image.layers.len() == config.rootfs.diff_ids.len() => Some((d.clone(), diff.clone())),
        _ => None,
    };
    let files = extracted.files.into_iter().map(|f| (f.path, f.data)).collect();
    Ok(InputRelease {
        pullspec: pullspec.to_owned(),
        source: Arc::new(source),
        manifest,
        list,
        stream,
        metadata,
        base_image_digest,
        top_layer,
        files,
    })
}

/// What `--from-dir` provides.
#[derive(Debug, Clone, Default)]
pub struct DirSource {
    /// The top-level `image-references`, or an empty stream.
    pub stream: ImageStream,
    /// One operator per subdirectory, by name.
    pub operators: Vec<Operator>,
    /// Entries skipped (not regular files, nested directories).
    pub warnings: Vec<String>,
}

/// Reads `--from-dir DIR`: every subdirectory (except `exclude`d ones) is
/// an operator named after it, holding its regular files (mtimes from disk,
/// rounded to the second as Go's tar writer does); an optional top-level
/// JSON `image-references` is the release image stream.
pub fn read_dir(dir: &Path, exclude: &[String], options: &ExtractOptions) -> Result<DirSource, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::ReadInput { path, source }
    };
    let mut out = DirSource { stream: new_stream(), ..DirSource::default() };
    let top = dir.join(IMAGE_REFERENCES);
    if top.is_file() {
        let bytes = std::fs::read(&top).map_err(io(&top))?;
        out.stream = ImageStream::parse_json(&bytes, &top.display().to_string())?;
        out.stream.spec.tags.retain(|t| !exclude.contains(&t.name));
    }
    let mut total = 0u64;
    for entry in sorted_entries(dir)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || exclude.contains(&name) {
            continue;
        }
        let mut op = Operator { tag: name.clone(), files: BTreeMap::new(), image_references: None, is_override: false };
        for file in sorted_entries(&path)? {
            let fpath = file.path();
            let fname = file.file_name().to_string_lossy().into_owned();
            let meta = std::fs::metadata(&fpath).map_err(io(&fpath))?;
            if !meta.is_file() {
                let what = if meta.is_dir() { "a subdirectory" } else { "not a regular file" };
                out.warnings.push(format!("operator `{name}`: skipped `{fname}` ({what})"));
                continue;
            }
            if meta.len() > options.max_file_size {
                return Err(Error::ReadInput {
                    path: fpath,
                    source: std::io::Error::other(format!(
                        "the file is {} bytes, over the limit of {} bytes",
                        meta.len(),
                        options.max_file_size
                    )),
                });
            }
            total += meta.len();
            if total > options.max_total_size {
                return Err(Error::ReadInput {
                    path: fpath,
                    source: std::io::Error::other(format!(
                        "the directory holds over {} bytes of manifests",
                        options.max_total_size
                    )),
                });
            }
            let data = std::fs::read(&fpath).map_err(io(&fpath))?;
            let mtime = meta.modified().map_err(io(&fpath))?;
            let mtime = match mtime.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_secs() as i64 + i64::from(d.subsec_nanos() >= 500_000_000),
                Err(_) => 0,
            };
            let f = ManifestFile { data, mtime };
            if fname == IMAGE_REFERENCES {
                op.image_references = Some(f);
            } else {
                op.files.insert(fname, f);
            }
        }
        out.operators.push(op);
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, Error> {
    let io = |source| Error::ReadInput { path: dir.to_path_buf(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings() {
        let m: Mapping = "a=quay.io/x/a:1".parse().expect("valid");
        assert_eq!((m.tag.as_str(), m.pullspec.as_str()), ("a", "quay.io/x/a:1"));
        for bad in ["a", "=x", "a="] {
            assert_eq!(
                bad.parse::<Mapping>().expect_err(bad).to_string(),
                format!("invalid mapping `{bad}`: expected NAME=PULLSPEC with both sides non-empty")
            );
        }
        let file = b"# comment\na=r/a b=r/b # trailing\n\nc=r/c\nbroken\n";
        let err = parse_mapping_file(file, "m.txt").expect_err("line 5").to_string();
        assert_eq!(err, "`m.txt` line 5: invalid mapping `broken`: expected NAME=PULLSPEC with both sides non-empty");
        let ok = parse_mapping_file(&file[..file.len() - 7], "m.txt").expect("valid");
        assert_eq!(ok.iter().map(|m| m.tag.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn apply() {
        let mut is = new_stream();
        is.spec.tags.push(TagReference::docker_image("b", "r/b@sha256:1"));
        is.spec.tags[0].annotations = Some(BTreeMap::from([("x".to_owned(), "y".to_owned())]));
        let maps = [
            Mapping { tag: "b".into(), pullspec: "r/b2".into() },
            Mapping { tag: "a".into(), pullspec: "r/a".into() },
            Mapping { tag: "z".into(), pullspec: "r/z".into() },
        ];
        let mapped = apply_mappings(&mut is, &maps, &["z".to_owned()]);
        assert_eq!(is.spec.tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(is.spec.tags[1].docker_pullspec(), Some("r/b2"));
        assert_eq!(is.spec.tags[1].annotations.as_ref().map(|a| a.len()), Some(1));
        assert_eq!(mapped.replaced.iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(mapped.all.len(), 2);
    }
}
