//! `oc adm release new` as a library call: [`new_release`].
//!
//! The pipeline (spec §1.6):
//! 1. assemble the release image stream from the [`Source`] and the
//!    mappings, name it and build its `release-metadata` ([`assemble_stream`]
//!    stops here, for `-o json`);
//! 2. inspect every image concurrently: copy the build labels onto the tags,
//!    extract `/manifests` of the operators (top layer; all layers for
//!    mapped images);
//! 3. validate the manifests, prune unreferenced tags (also honouring the
//!    base image's own `image-references`, openshift/oc#2287);
//! 4. write the `release-manifests/` layer on a blocking thread
//!    (tar → sha256 → gzip → sha256 → temporary file), then lint it
//!    ([`NewOptions::lint`]: warn, or refuse the build on errors);
//! 5. append it to the base image (one image per architecture of a base
//!    manifest list), editing the config as oc does;
//! 6. write the outputs; a push sends every blob first and the manifest
//!    last, so a failed build pushes nothing.
//!
//! A `--from-release` build that changes nothing is a *canonical rebuild*:
//! it takes the input's creation time, reuses the input's payload blob when
//! our tar has the same diff ID, and must reproduce the input digest.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::config::{DockerImageConfig, ReleaseConfigEdit};
use super::inspect::{self, Fetcher, tag_annotations};
use super::lint::{self, LintMode};
use super::metadata::{self, CincinnatiMetadata, parse_metadata_flag};
use super::names::{ANNOTATION_FROM_RELEASE, IMAGE_REFERENCES, RELEASE_METADATA};
use super::naming::Collision;
use super::output::{self, ManifestFlavour, Payload, ReleaseImage, Written};
use super::payload::{Operator, PayloadOptions, PayloadSummary, WrittenFiles, write_payload_observed};
use super::reproduce::{self, Attempt};
use super::rewrite::{OperatorTransform, RewriteMode};
use super::source::{self, DirSource, InputRelease, Mapped, Mapping, Source};
use super::{Error, ImageStream, UnknownTag};
use crate::digest::HashingWriter;
use crate::image::{
    Compression, Descriptor, Digest, ImageIndex, ImageManifest, Manifest, MediaType, Platform, RawManifest, Reference,
};
use crate::layer::{ExtractOptions, LayerInfo, OffThreadWriter};
use crate::progress::{Reporter, WarningKind};
use crate::registry::Client;
use crate::store::{Cache, RecordKey};
use crate::transfer::{CopyOptions, ImageDestination, ImageLocation, ImageSource, copy_image};

/// The required inputs of [`new_release`].
#[derive(Debug, Clone)]
pub struct NewContext {
    /// Where the tags come from.
    pub source: Source,
    /// Positional `NAME=PULLSPEC` mappings and `--mapping-file` entries, in order.
    pub mappings: Vec<Mapping>,
    /// The release creation time (`--created`; the CLI passes
    /// `SOURCE_DATE_EPOCH` or now). Truncated to the second.
    pub created: jiff::Timestamp,
}

/// The settings of [`new_release`]; every field has oc's default.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// `--name` (semver). Default: the input release's name, else `0.0.1-<created>`.
    pub name: Option<String>,
    /// `--previous`. Default: the input release's.
    pub previous: Option<Vec<String>>,
    /// `--next`. Default: the input release's.
    pub next: Option<Vec<String>>,
    /// `--metadata`: a JSON object of strings. Default: the input release's.
    pub metadata: Option<String>,
    /// `--include`: tags kept even when nothing references them.
    pub include: Vec<String>,
    /// `--exclude`: tags, mappings and directories dropped first.
    pub exclude: Vec<String>,
    /// `--to-image-base`: the image the payload is appended to.
    pub to_image_base: Option<String>,
    /// `--to-image-base-tag` (default `cluster-version-operator`).
    pub to_image_base_tag: String,
    /// How pullspecs are rewritten. `None` (the default) is
    /// [`RewriteMode::Fixed`], except that a canonical rebuild takes
    /// whichever rules reproduce the input ([`reproduce`](super::reproduce)).
    pub rewrite_mode: Option<RewriteMode>,
    /// `--allow-missing-images`.
    pub allow_missing_images: bool,
    /// `--skip-manifest-check`.
    pub skip_manifest_check: bool,
    /// `--manifests-arch`: the list entry manifests are read from (default `linux/amd64`).
    pub manifests_arch: String,
    /// `--filter-by-os`: build only this `os/arch` of a manifest-list base.
    pub filter_by_os: Option<String>,
    /// Components `io.openshift.build.versions` may name.
    pub allowed_components: Vec<String>,
    /// Images inspected at once (the client also limits each registry).
    pub max_concurrent: usize,
    /// Caps for operator manifest extraction.
    pub extract: ExtractOptions,
    /// Where the result goes.
    pub output: OutputOptions,
    /// The signature's `creator` (default `relbuild/<version>`).
    pub creator: String,
    /// Directory for temporary files (default: the system's).
    pub work_dir: Option<PathBuf>,
    /// The content-addressed cache of inputs (`--cache-dir`); `None` is `--no-cache`.
    pub cache: Option<crate::store::Cache>,
    /// `--lint`: check the payload built, before anything is written or
    /// pushed (default [`LintMode::Warn`]).
    pub lint: LintMode,
}

impl Default for NewOptions {
    fn default() -> Self {
        Self {
            name: None,
            previous: None,
            next: None,
            metadata: None,
            include: Vec::new(),
            exclude: Vec::new(),
            to_image_base: None,
            to_image_base_tag: "cluster-version-operator".to_owned(),
            rewrite_mode: None,
            allow_missing_images: false,
            skip_manifest_check: false,
            manifests_arch: "linux/amd64".to_owned(),
            filter_by_os: None,
            allowed_components: inspect::ALLOWED_COMPONENTS.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrent: 32,
            extract: ExtractOptions::default(),
            output: OutputOptions::default(),
            creator: concat!("relbuild/", env!("CARGO_PKG_VERSION")).to_owned(),
            work_dir: None,
            cache: None,
            lint: LintMode::Warn,
        }
    }
}

/// The destinations (spec §1.5). With none of `to_dir`, `to_file`,
/// `to_image` and `to_oci_layout` the release is built and its digest
/// computed, as oc's dry run.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// `--to-image REPO[:TAG]` (no digest; the tag defaults to the name).
    pub to_image: Option<String>,
    /// `--to-dir`: the flat payload files.
    pub to_dir: Option<PathBuf>,
    /// `--to-file`: the gzipped payload layer.
    pub to_file: Option<PathBuf>,
    /// `--to-oci-layout`: the whole image as an OCI layout, tagged with the name.
    pub to_oci_layout: Option<PathBuf>,
    /// `--to-signature`: the unsigned signature message (needs `to_image`).
    pub to_signature: Option<PathBuf>,
    /// `--dry-run`: push nothing.
    pub dry_run: bool,
    /// `--force`: push also when `to_image` has no tag and the defaulted
    /// tag (the release name) holds another release. An explicit tag is
    /// always overwritten, as oc does.
    pub force: bool,
}

/// What [`new_release`] built.
#[derive(Debug)]
#[non_exhaustive]
pub struct NewOutcome {
    /// The release digest (the list's for a multi-arch release); `None`
    /// when only files were written.
    pub digest: Option<Digest>,
    /// The release name.
    pub name: String,
    /// The creation time, RFC 3339.
    pub created: String,
    /// The final `image-references` (pruned, sorted).
    pub release: ImageStream,
    /// The `release-metadata`.
    pub metadata: CincinnatiMetadata,
    /// The operators whose manifests are in the payload, in processing order.
    pub operators: Vec<String>,
    /// Tags pruned because nothing referenced them.
    pub pruned: Vec<String>,
    /// Destination-name collisions (also in `warnings`).
    pub collisions: Vec<Collision>,
    /// Everything the reporter was warned about.
    pub warnings: Vec<String>,
    /// The payload layer we wrote.
    pub layer: LayerInfo,
    /// True when the input release's payload blob was reused (canonical rebuild).
    pub layer_reused: bool,
    /// The release image of each platform.
    pub images: Vec<ReleaseImage>,
    /// The manifest list, for a multi-arch release.
    pub list: Option<RawManifest>,
    /// Where the release was pushed.
    pub pushed: Option<Reference>,
    /// The rewriting rules the payload was written with.
    pub rewrite_mode: RewriteMode,
    /// Every destination written, and the digest of what each holds: the
    /// image first, then the OCI layout, the layer file and the directory.
    pub outputs: Vec<Written>,
    /// The digest the `to_image` tag held before, when it held another
    /// release (now overwritten; under `--dry-run`, would have been).
    pub overwritten: Option<Digest>,
}

impl NewOutcome {
    /// oc's stdout line: `<digest> <name> <created>`, with the digest of
    /// the first output that holds an image (the pushed one when there is
    /// one), else the release digest as it would be pushed.
    pub fn summary_line(&self) -> Option<String> {
        let first = self.outputs.iter().find(|w| w.holds_image()).and_then(Written::digest);
        first.or(self.digest.as_ref()).map(|d| format!("{d} {} {}", self.name, self.created))
    }

    /// The top manifest (the list's for a multi-arch release).
    pub fn manifest(&self) -> Option<&RawManifest> {
        self.list.as_ref().or_else(|| self.images.first().map(|i| &i.manifest))
    }
}

/// The assembled release before inspection.
struct Plan {
    stream: ImageStream,
    /// The source's tag names, before the mappings.
    input_tags: Vec<String>,
    metadata: CincinnatiMetadata,
    created: jiff::Timestamp,
    mapped: Mapped,
    input: Option<InputRelease>,
    canonical: bool,
    dir: Option<DirSource>,
}

/// The largest image stream `-f URL` reads.
const STREAM_URL_LIMIT: u64 = 64 << 20;

fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn plan(fetcher: &Fetcher, ctx: &NewContext, options: &NewOptions) -> Result<Plan, crate::Error> {
    let exclude = &options.exclude;
    let mut input = None;
    let mut dir = None;
    let mut stream = match &ctx.source {
        Source::None if ctx.mappings.is_empty() => return Err(Error::NoSource.into()),
        Source::None => source::new_stream(),
        Source::ImageStreamFile { bytes, file, mode } => source::stream_from_file(bytes, file, *mode, exclude)?,
        Source::ImageStreamUrl { url, mode } => {
            let bytes = fetcher
                .client()
                .get_url(url, STREAM_URL_LIMIT)
                .await
                .map_err(|e| Error::StreamUrl { url: crate::registry::redact_url(url), source: Box::new(e) })?;
            source::stream_from_file(&bytes, &crate::registry::redact_url(url), *mode, exclude)?
        }
        Source::Release(pullspec) => {
            let release = source::read_release(fetcher, pullspec).await?;
            let mut stream = release.stream.clone();
            stream.spec.tags.retain(|t| !exclude.contains(&t.name));
            input = Some(release);
            stream
        }
        Source::Dir(path) => {
            let (path, exclude, caps) = (path.clone(), exclude.clone(), options.extract.clone());
            let d =
                inspect::join(tokio::task::spawn_blocking(move || source::read_dir(&path, &exclude, &caps))).await?;
            let stream = d.stream.clone();
            dir = Some(d);
            stream
        }
    };
    let has_overrides = options.name.is_some()
        || options.metadata.is_some()
        || options.previous.is_some()
        || options.next.is_some()
        || options.to_image_base.is_some()
        || !ctx.mappings.is_empty()
        || !options.exclude.is_empty()
        || !options.include.is_empty();
    let canonical = input.is_some() && !has_overrides;
    let mut created = jiff::Timestamp::from_second(ctx.created.as_second()).unwrap_or(ctx.created);
    if canonical
        && let Some(t) = stream.metadata.creation_timestamp.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        created = t;
    }
    let input_md = input.as_ref().and_then(|i| i.metadata.clone()).unwrap_or_default();
    let name = match (&options.name, &input) {
        (Some(n), _) => n.clone(),
        (None, Some(i)) if !i.stream.metadata.name.is_empty() => i.stream.metadata.name.clone(),
        _ => metadata::default_name(created),
    };
    let md = match &options.metadata {
        Some(json) => parse_metadata_flag(json)?,
        None => input_md.metadata.clone(),
    };
    let previous = options.previous.clone().unwrap_or(input_md.previous);
    let next = options.next.clone().unwrap_or(input_md.next);
    let metadata = CincinnatiMetadata::new(&name, &previous, &next, md)?;
    stream.metadata.name = name;
    stream.metadata.creation_timestamp = Some(format_time(created));
    if let Some(i) = &input
        && has_overrides
    {
        stream.metadata.annotations.insert(ANNOTATION_FROM_RELEASE.to_owned(), i.pullspec.clone());
    }
    let input_tags = stream.spec.tags.iter().map(|t| t.name.clone()).collect();
    let mut mapped = source::apply_mappings(&mut stream, &ctx.mappings, exclude);
    // oc reads every layer of an overridden image, whether this build or an
    // earlier one overrode it (the annotation says so).
    mapped.all.extend(source::overridden_tags(&stream));
    Ok(Plan { stream, input_tags, metadata, created, mapped, input, canonical, dir })
}

/// The release image stream after the source, the mappings and sorting,
/// before any image is inspected: what `-o json` prints.
pub async fn assemble_stream(
    client: &Client,
    ctx: &NewContext,
    options: &NewOptions,
) -> Result<ImageStream, crate::Error> {
    let fetcher = Fetcher::new(client.clone(), &options.manifests_arch).with_cache(options.cache.clone());
    let planned = plan(&fetcher, ctx, options).await;
    fetcher.stop().await;
    Ok(planned?.stream)
}

/// What inspecting one tag found.
struct Inspected {
    tag: String,
    annotations: BTreeMap<String, String>,
    operator: Option<Operator>,
    warnings: Vec<String>,
    /// The operator's manifest check.
    check: Result<(), Error>,
}

async fn inspect_tag(
    fetcher: &Fetcher,
    tag: String,
    pullspec: String,
    mapped: bool,
    replaced: bool,
    options: &NewOptions,
) -> Result<Inspected, Error> {
    let reference: Reference = pullspec.parse().map_err(|source| Error::InvalidPullspec {
        tag: tag.clone(),
        pullspec: pullspec.clone(),
        source,
    })?;
    let image = fetcher.fetch_image(&reference).await.map_err(|e| Error::Inspect {
        tag: tag.clone(),
        pullspec: pullspec.clone(),
        source: Box::new(e),
    })?;
    let labels = image.parsed_config.labels();
    let annotations = tag_annotations(&tag, &labels, &options.allowed_components)?;
    let mut out = Inspected { tag: tag.clone(), annotations, operator: None, warnings: Vec::new(), check: Ok(()) };
    if !inspect::is_operator(&labels) {
        return Ok(out);
    }
    let layers = &image.image.layers;
    let layers = if mapped { &layers[..] } else { &layers[layers.len().saturating_sub(1)..] };
    let caps = options.extract.clone().top_level_only(true);
    let extracted = fetcher.extract(&image.reference, layers, "manifests", caps).await.map_err(|e| Error::Extract {
        operator: tag.clone(),
        pullspec: pullspec.clone(),
        source: Box::new(e),
    })?;
    if !extracted.found {
        return Err(Error::NoManifests { tag, pullspec, all_layers: mapped });
    }
    for s in &extracted.skipped {
        let what = match (&s.reason, &s.kind) {
            (crate::layer::SkipReason::InSubdirectory, _) => "in a subdirectory".to_owned(),
            (_, crate::layer::EntryKind::Symlink { target }) => format!("a symlink to `{target}`"),
            (_, crate::layer::EntryKind::Hardlink { target }) => format!("a hard link to `{target}`"),
            (crate::layer::SkipReason::NonUtf8Path, _) => "not a UTF-8 name".to_owned(),
            _ => "not a regular file".to_owned(),
        };
        out.warnings.push(format!("operator `{tag}` ({pullspec}): skipped `manifests/{}`: {what}", s.path));
    }
    let mut op = Operator { tag, files: BTreeMap::new(), image_references: None, is_override: replaced };
    for f in extracted.files {
        let file = super::payload::ManifestFile { data: f.data, mtime: f.mtime };
        if f.path == "image-references" {
            op.image_references = Some(file);
        } else {
            op.files.insert(f.path, file);
        }
    }
    out.operator = Some(op);
    Ok(out)
}

/// Inspects every `DockerImage` tag concurrently: annotations go onto the
/// tags, operators are returned sorted by tag.
async fn inspect_tags(
    fetcher: &Fetcher,
    stream: &mut ImageStream,
    mapped: &Mapped,
    options: &NewOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<Operator>, Vec<String>), Error> {
    const PHASE: &str = "inspecting images";
    let jobs: Vec<(String, String)> =
        stream.spec.tags.iter().filter_map(|t| t.docker_pullspec().map(|p| (t.name.clone(), p.to_owned()))).collect();
    reporter.on_phase_start(PHASE, jobs.len() as u64);
    let mut results = futures_util::stream::iter(jobs)
        .map(|(tag, pullspec)| {
            let (is_mapped, replaced) = (mapped.all.contains(&tag), mapped.replaced.contains(&tag));
            async move {
                let mut r = inspect_tag(fetcher, tag, pullspec, is_mapped, replaced, options).await;
                // The manifest check of an operator runs as soon as it is
                // extracted, on a blocking thread, while other images are
                // still being fetched.
                if let Ok(inspected) = &mut r
                    && !options.skip_manifest_check
                    && let Some(op) = inspected.operator.take()
                {
                    let cache = options.cache.clone();
                    let (op, check) = inspect::join(fetcher.spawn_blocking(move || {
                        let check = validate_operator_cached(&op, cache.as_ref());
                        Ok::<_, Error>((op, check))
                    }))
                    .await?;
                    inspected.operator = Some(op);
                    inspected.check = check;
                }
                reporter.on_phase_step(PHASE);
                r
            }
        })
        .buffer_unordered(options.max_concurrent.max(1));
    let mut operators = Vec::new();
    let mut warnings = Vec::new();
    let mut annotations = BTreeMap::new();
    let mut failed = Vec::new();
    while let Some(r) = results.next().await {
        let r = r?;
        if let Err(e) = r.check {
            failed.push((r.tag.clone(), e));
        }
        annotations.insert(r.tag, r.annotations);
        operators.extend(r.operator);
        warnings.extend(r.warnings);
    }
    // The first failing operator in tag order wins, as in a sequential check.
    if let Some((_, e)) = failed.into_iter().min_by(|a, b| a.0.cmp(&b.0)) {
        return Err(e);
    }
    for tag in &mut stream.spec.tags {
        if let Some(a) = annotations.remove(&tag.name) {
            tag.annotations.get_or_insert_with(BTreeMap::new).extend(a);
        }
    }
    operators.sort_by(|a, b| a.tag.cmp(&b.tag));
    warnings.sort();
    Ok((operators, warnings))
}

/// The checks of `--skip-manifest-check`'s absence (spec §1.3): every
/// `.yaml`, `.yml` and `.json` file must parse, and its first document must
/// be an object with non-empty `kind` and `apiVersion`.
///
/// With a `cache`, an operator whose files passed before (same names, same
/// bytes) is not parsed again.
pub fn validate_manifests(operators: &[Operator], cache: Option<&Cache>) -> Result<(), Error> {
    // CPU-bound and independent per operator: split across the cores. The
    // first error in operator order wins, as in a sequential check.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = operators.len().div_ceil(threads).max(1);
    let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = operators
            .chunks(chunk)
            .map(|ops| scope.spawn(move || ops.iter().try_for_each(|op| validate_operator_cached(op, cache))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    results.into_iter().collect()
}

/// The two fields the check needs (everything else is skipped, not built).
#[derive(serde::Deserialize)]
struct ManifestHead {
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default, rename = "apiVersion")]
    api_version: Option<serde_json::Value>,
}

/// The cache namespace of passed manifest checks. Bump it (or the crate
/// version) whenever [`validate_operator`] changes.
const MANIFEST_CHECK_RECORD: &str = "manifest-check/1";

fn validate_operator_cached(op: &Operator, cache: Option<&Cache>) -> Result<(), Error> {
    let Some(cache) = cache else { return validate_operator(op) };
    let key = RecordKey::of_files(MANIFEST_CHECK_RECORD, op.files.iter().map(|(f, c)| (f.as_str(), c.data.as_slice())));
    if cache.get_record(&key).is_some() {
        return Ok(());
    }
    validate_operator(op)?;
    if let Err(e) = cache.put_record(&key, b"ok") {
        tracing::debug!(error = %e, "manifest check result not cached");
    }
    Ok(())
}

fn validate_operator(op: &Operator) -> Result<(), Error> {
    for (file, content) in &op.files {
        let Some(ext) = file.rsplit_once('.').map(|(_, e)| e) else { continue };
        if !matches!(ext, "yaml" | "yml" | "json") {
            continue;
        }
        let syntax = |source: Box<dyn std::error::Error + Send + Sync>| Error::ManifestSyntax {
            operator: op.tag.clone(),
            file: file.clone(),
            source,
        };
        let is_json = super::looks_like_json(&content.data);
        let head: Option<ManifestHead> =
            if is_json { serde_json::from_slice(&content.data).ok() } else { first_yaml_head(&content.data) };
        let (kind, api_version) = match head {
            Some(h) => (h.kind, h.api_version),
            None => {
                // Not a mapping, or not valid at all: parse the whole first
                // document to tell a syntax error from a non-object.
                let doc: Option<serde_json::Value> = if is_json {
                    Some(serde_json::from_slice(&content.data).map_err(|e| syntax(Box::new(e)))?)
                } else {
                    let mut reader = std::io::Cursor::new(&content.data[..]);
                    serde_saphyr::read::<_, serde_json::Value>(&mut reader)
                        .next()
                        .transpose()
                        .map_err(|e| syntax(super::yaml_error(&e)))?
                };
                let field = |key: &str| doc.as_ref().and_then(|d| d.get(key)).cloned();
                (field("kind"), field("apiVersion"))
            }
        };
        let has = |v: &Option<serde_json::Value>| {
            v.as_ref().and_then(serde_json::Value::as_str).is_some_and(|s| !s.is_empty())
        };
        if !has(&kind) || !has(&api_version) {
            return Err(Error::ManifestNotObject { operator: op.tag.clone(), file: file.clone() });
        }
    }
    Ok(())
}

/// The head of the first non-null YAML document of `data`, as oc's check
/// reads it (later documents are not checked), or `None` when that document
/// is not a mapping or does not parse.
///
/// In order of cost: the event-level fast path ([`super::heads`]); then
/// serde-saphyr's slice parse of all documents, which is faster than its
/// streaming reader parsing the first document alone (28-34 ms against
/// 48-52 ms for the benchmark's 1,000 manifests); and only when some
/// document fails, the reader, to settle what the first one holds.
fn first_yaml_head(data: &[u8]) -> Option<ManifestHead> {
    // Where the fast path answers, serde-saphyr's Value parse succeeds with
    // the same heads, and so does its parse into ManifestHead.
    if let Some(heads) = super::heads::document_heads(data) {
        let string = |s: String| (!s.is_empty()).then_some(serde_json::Value::String(s));
        return heads
            .into_iter()
            .next()
            .map(|h| ManifestHead { kind: string(h.kind), api_version: string(h.api_version) });
    }
    if let Ok(docs) = serde_saphyr::from_slice_multiple::<ManifestHead>(data) {
        return docs.into_iter().next();
    }
    let mut reader = std::io::Cursor::new(data);
    serde_saphyr::read::<_, ManifestHead>(&mut reader).next().and_then(Result::ok)
}

/// The tag names of an `image-references` document.
fn referenced_tags(operator: &str, data: &[u8]) -> Result<Vec<String>, Error> {
    let is = ImageStream::parse(data, &format!("{operator}/manifests/image-references"))?;
    Ok(is.spec.tags.into_iter().map(|t| t.name).collect())
}

/// `pruneUnreferencedImageStreams` (spec §1.3, §2.7): keeps a tag only when
/// an operator's `image-references` names it, it is in `always` (`--include`
/// plus the base tag), it is an operator, or the base image's own
/// `image-references` (`base_references`) names it. Returns the pruned tags.
pub fn prune_unreferenced(
    stream: &mut ImageStream,
    operators: &[Operator],
    always: &[String],
    base_references: &[String],
) -> Result<Vec<String>, Error> {
    let mut keep: BTreeSet<&str> = always.iter().map(String::as_str).collect();
    keep.extend(base_references.iter().map(String::as_str));
    let mut referenced = Vec::new();
    for op in operators {
        keep.insert(&op.tag);
        if let Some(ir) = &op.image_references {
            referenced.extend(referenced_tags(&op.tag, &ir.data)?);
        }
    }
    keep.extend(referenced.iter().map(String::as_str));
    let mut pruned = Vec::new();
    stream.spec.tags.retain(|t| {
        let k = keep.contains(t.name.as_str());
        if !k {
            pruned.push(t.name.clone());
        }
        k
    });
    Ok(pruned)
}

/// Writes the gzipped `release-manifests/` layer to a temporary file:
/// tar → sha256 (diff ID) → gzip (Go's header) → sha256 (digest) → file.
///
/// `observe` sees every group of files written ([`write_payload_observed`]).
pub fn write_payload_layer(
    stream: &ImageStream,
    metadata: &CincinnatiMetadata,
    operators: &[Operator],
    options: PayloadOptions,
    work_dir: Option<&std::path::Path>,
    observe: &mut dyn FnMut(WrittenFiles),
) -> Result<(PayloadSummary, LayerInfo, tempfile::TempPath), Error> {
    let io = |source| Error::Write { source };
    let tmp = match work_dir {
        Some(d) => tempfile::Builder::new().prefix(".relbuild-payload-").tempfile_in(d),
        None => tempfile::Builder::new().prefix("relbuild-payload-").tempfile(),
    }
    .map_err(io)?;
    let blob = HashingWriter::new(BufWriter::new(tmp));
    // Go's compress/gzip header: no name, MTIME 0, OS 255, default level.
    let gz = flate2::GzBuilder::new().mtime(0).operating_system(255).write(blob, flate2::Compression::new(6));
    // Compressing and hashing the blob overlaps with writing the tar.
    let gz = OffThreadWriter::new(gz).map_err(io)?;
    let (summary, tar) = write_payload_observed(HashingWriter::new(gz), stream, metadata, operators, options, observe)?;
    let (gz, diff_id, uncompressed_size) = tar.finish();
    let (mut blob, digest, size) = gz.finish().map_err(io)?.finish().map_err(io)?.finish();
    blob.flush().map_err(io)?;
    let tmp = blob.into_inner().map_err(|e| io(e.into_error()))?;
    Ok((summary, LayerInfo { diff_id, digest, size, uncompressed_size }, tmp.into_temp_path()))
}

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
async fn build_images(
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
async fn base_references(
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
    match extracted.get("image-references") {
        Some(f) => Ok((referenced_tags(&base.to_string(), &f.data)?, true)),
        None => Ok((Vec::new(), extracted.found)),
    }
}

/// Lints the payload from the groups [`write_payload_observed`] hands over:
/// the release files, then each operator's files (memoised per operator).
fn lint_payload(
    groups: std::sync::mpsc::Receiver<WrittenFiles>,
    cache: Option<&Cache>,
    base_has_manifests: Option<bool>,
) -> Vec<lint::Finding> {
    let mut release = Vec::new();
    let mut per_file = Vec::new();
    for group in groups {
        match group.operator {
            None => release = group.files,
            Some(_) => per_file.extend(lint::lint_manifests_cached(&group.files, cache)),
        }
    }
    let get = |name: &str| release.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
    let mut findings = lint::lint_release(get(IMAGE_REFERENCES), get(RELEASE_METADATA), base_has_manifests);
    findings.extend(per_file);
    findings
}

/// Builds a release: `oc adm release new` (see the module documentation).
///
/// What was fetched is published to [`NewOptions::cache`] at the end, also
/// when the build fails, so a retry starts warm.
#[tracing::instrument(skip_all, fields(source = %ctx.source.kind_name()))]
pub async fn new_release(
    client: &Client,
    ctx: &NewContext,
    options: &NewOptions,
    reporter: &dyn Reporter,
) -> Result<NewOutcome, crate::Error> {
    let fetcher = Fetcher::new(client.clone(), &options.manifests_arch).with_cache(options.cache.clone());
    let result = build_release(&fetcher, ctx, options, reporter).await;
    // On failure, other images' layer reads may still be under way.
    fetcher.stop().await;
    if let Some(cache) = &options.cache
        && let Err(e) = cache.flush()
    {
        reporter.on_warning(WarningKind::Other, &format!("could not save the build cache: {e}"));
    }
    result
}

async fn build_release(
    fetcher: &Fetcher,
    ctx: &NewContext,
    options: &NewOptions,
    reporter: &dyn Reporter,
) -> Result<NewOutcome, crate::Error> {
    let out = &options.output;
    let to_image = match &out.to_image {
        Some(s) => {
            let r: Reference = s.parse().map_err(|source| Error::InvalidPullspec {
                tag: "--to-image".to_owned(),
                pullspec: s.clone(),
                source,
            })?;
            if r.digest().is_some() {
                return Err(Error::ToImageDigest { reference: s.clone() }.into());
            }
            Some(r)
        }
        None => None,
    };
    if out.to_signature.is_some() && to_image.is_none() {
        return Err(Error::SignatureNeedsImage.into());
    }
    let client = fetcher.client();
    // A wrong or read-only destination fails now, not after the whole build.
    if let Some(dest) = &to_image
        && !out.dry_run
    {
        client
            .check_push_access(dest)
            .await
            .map_err(|e| Error::Destination { reference: dest.name(), source: Box::new(e.into()) })?;
    }
    let mut plan = plan(fetcher, ctx, options).await?;
    let name = plan.stream.metadata.name.clone();
    let created = format_time(plan.created);
    let need_image = to_image.is_some()
        || out.to_oci_layout.is_some()
        || plan.canonical
        || (out.to_dir.is_none() && out.to_file.is_none());

    // The base image, resolved before anything is fetched so a missing tag fails fast.
    let base_tag = &options.to_image_base_tag;
    let base: Option<(Reference, bool)> = if let Some(b) = &options.to_image_base {
        let r = b.parse().map_err(|source| Error::InvalidPullspec {
            tag: "--to-image-base".to_owned(),
            pullspec: b.clone(),
            source,
        })?;
        Some((r, false))
    } else {
        let from_label =
            plan.input.as_ref().and_then(|i| {
                let digest = i.base_image_digest.as_deref()?;
                let hit =
                    plan.stream.spec.tags.iter().find(|t| {
                        t.docker_pullspec().and_then(|p| p.split_once('@')).is_some_and(|(_, d)| d == digest)
                    });
                Some(hit.map(|t| t.name.clone()).ok_or_else(|| digest.to_owned()))
            });
        let tag_name = match from_label {
            Some(Ok(t)) => Some(t),
            // A multi-arch input labels the per-arch child; fall back to the base tag.
            Some(Err(_)) if plan.input.as_ref().is_some_and(|i| i.list.is_some()) => Some(base_tag.clone()),
            Some(Err(digest)) if need_image => return Err(Error::BaseImageNotInRelease { digest }.into()),
            Some(Err(_)) => None,
            None => Some(base_tag.clone()),
        };
        match tag_name.as_deref().and_then(|t| plan.stream.tag(t)).and_then(|t| t.docker_pullspec()) {
            Some(p) => Some((
                p.parse().map_err(|source| Error::InvalidPullspec {
                    tag: base_tag.clone(),
                    pullspec: p.to_owned(),
                    source,
                })?,
                true,
            )),
            None if need_image => {
                return Err(Error::MissingBaseTag { tag: tag_name.unwrap_or_else(|| base_tag.clone()) }.into());
            }
            None => None,
        }
    };

    let mut warnings = Vec::new();
    let warn = |warnings: &mut Vec<String>, kind: WarningKind, w: String| {
        reporter.on_warning(kind, &w);
        warnings.push(w);
    };
    let from_dir = plan.dir.is_some();
    let (operators, w) = match plan.dir.take() {
        Some(d) => (d.operators, d.warnings),
        None => inspect_tags(fetcher, &mut plan.stream, &plan.mapped, options, reporter).await?,
    };
    // Inspecting and reading a directory warn only about skipped entries.
    for w in w {
        warn(&mut warnings, WarningKind::SkippedEntry, w);
    }
    if operators.is_empty() {
        let w = "no operator metadata was found, no operators will be part of the release";
        warn(&mut warnings, WarningKind::Other, w.to_owned());
    }
    // Inspected operators were checked as they arrived.
    if from_dir && !options.skip_manifest_check {
        validate_manifests(&operators, options.cache.as_ref())?;
    }

    // Pruning, honouring the base image's own image-references.
    // Whether the base has `/manifests` is known when it is an operator we
    // extracted, or when its top layer has them; otherwise lint does not check.
    let (base_refs, base_has_manifests) = match &base {
        Some((_, true)) if let Some(op) = operators.iter().find(|o| &o.tag == base_tag) => {
            let refs = match &op.image_references {
                Some(ir) => referenced_tags(&op.tag, &ir.data)?,
                None => Vec::new(),
            };
            (refs, Some(true))
        }
        Some((r, _)) if !from_dir => {
            let (refs, found) = base_references(fetcher, r, options).await?;
            (refs, found.then_some(true))
        }
        _ => (Vec::new(), None),
    };
    let mut always = options.include.clone();
    always.push(base_tag.clone());
    let pruned = prune_unreferenced(&mut plan.stream, &operators, &always, &base_refs)?;
    check_added_tags_kept(&plan, &ctx.mappings, &pruned)?;
    plan.stream.sort_tags();

    // The payload layer: once, or for a canonical rebuild once per set of
    // rewriting rules until one reproduces the input.
    let (inputs, built) = choose_payload(
        PayloadInputs { stream: plan.stream, metadata: plan.metadata, operators },
        PayloadContext {
            input: plan.input.as_ref(),
            canonical: plan.canonical,
            mapped: &plan.mapped,
            mappings: &ctx.mappings,
        },
        options,
        base_has_manifests,
        &mut |w| warn(&mut warnings, WarningKind::Other, w),
    )
    .await?;
    let PayloadInputs { stream, metadata, .. } = inputs;
    let BuiltPayload { summary, info, file, findings, differences, attempt, .. } = built;
    for c in &summary.collisions {
        warn(&mut warnings, WarningKind::NameCollision, format!("file name collision: {c}"));
    }
    if options.lint != LintMode::Off {
        let errors: Vec<String> =
            findings.iter().filter(|f| f.severity == lint::Severity::Error).map(lint::finding_line).collect();
        if options.lint == LintMode::Error && !errors.is_empty() {
            return Err(Error::Lint { findings: errors }.into());
        }
        // Every finding goes to the reporter, which decides how many to show.
        for f in &findings {
            let kind = match f.severity {
                lint::Severity::Error => WarningKind::LintError(f.code),
                _ => WarningKind::LintWarning(f.code),
            };
            warn(&mut warnings, kind, lint::finding_line(f));
        }
    }
    let reused = match (&plan.input, plan.canonical) {
        (Some(i), true) => i
            .top_layer
            .as_ref()
            .filter(|(_, diff)| diff == &info.diff_id)
            .map(|(d, _)| (Arc::clone(&i.source), d.clone())),
        _ => None,
    };
    let payload = Payload { info, file, reused };

    let (images, list) = match (&base, need_image) {
        (Some((b, _)), true) => {
            build_images(fetcher, b, &payload, &stream, plan.created, options, &mut warnings).await?
        }
        _ => (Vec::new(), None),
    };
    let digest = list.as_ref().or_else(|| images.first().map(|i| &i.manifest)).map(|m| m.digest().clone());
    if let (Some(input), true) = (&plan.input, plan.canonical) {
        let expected = input.top_digest().clone();
        let found = digest.clone().unwrap_or_else(|| payload.info.digest.clone());
        if expected != found {
            let tried = match options.rewrite_mode {
                Some(_) => vec![attempt],
                None => reproduce::attempts(None, !source::overridden_tags(&stream).is_empty()),
            };
            return Err(
                Error::NotReproduced { expected, found, tried, differences: differences.unwrap_or_default() }.into()
            );
        }
    }

    // The destination tag, checked before anything is written: a defaulted
    // tag over another release is refused, an explicit one overwritten.
    let dest = match &to_image {
        Some(dest) if dest.tag().is_some() => Some((dest.clone(), true)),
        Some(dest) => Some((
            dest.with_tag(&name).map_err(|source| Error::InvalidPullspec {
                tag: "--to-image".to_owned(),
                pullspec: format!("{dest}:{name}"),
                source,
            })?,
            false,
        )),
        None => None,
    };
    let mut overwritten = None;
    if let (Some((dest, explicit)), Some(built), false) = (&dest, &digest, out.dry_run) {
        let push_err =
            |e: crate::registry::Error| Error::Push { reference: dest.to_string(), source: Box::new(e.into()) };
        if let Some(existing) = client.head_manifest(dest).await.map_err(push_err)?.map(|d| d.digest)
            && &existing != built
        {
            if !explicit && !out.force {
                let tag = name.clone();
                return Err(
                    Error::WouldOverwrite { reference: dest.to_string(), tag, existing, built: built.clone() }.into()
                );
            }
            overwritten = Some(existing);
        }
    }

    // Outputs: local files, then the push (manifest last), then the signature.
    // Listed image first, then the layout, the file and the directory.
    let mut local = Vec::new();
    if let Some(dir) = &out.to_dir {
        let (path, gz) = (dir.clone(), payload.file.to_path_buf());
        let files = inspect::join(tokio::task::spawn_blocking(move || output::write_dir(&path, &gz))).await?;
        local.push(Written::Dir { path: dir.clone(), files });
    }
    if let Some(path) = &out.to_file {
        output::write_file(path, &payload, plan.created).await?;
        local.push(Written::File { path: path.clone(), digest: payload.blob().0 });
    }
    let copy_options = CopyOptions::default().max_concurrent_blobs(options.max_concurrent);
    if let Some(dir) = &out.to_oci_layout {
        let wrap = |e: crate::Error| Error::OciLayout { path: dir.clone(), source: Box::new(e) };
        let location = ImageLocation::Layout { path: dir.clone(), tag: Some(name.clone()) };
        let src = output::release_image_source(
            client,
            &location.to_string(),
            &images,
            list.as_ref(),
            &payload,
            ManifestFlavour::Oci,
        )
        .map_err(wrap)?;
        let dst = ImageDestination::open(&location, client).map_err(|e| wrap(e.into()))?;
        let copied =
            copy_image(&ImageSource::new(src), &dst, &copy_options, reporter).await.map_err(|e| wrap(e.into()))?;
        local.push(Written::OciLayout { path: dir.clone(), tag: name.clone(), digest: copied.digest });
    }
    let mut outputs: Vec<Written> = local.into_iter().rev().collect();
    let mut pushed = None;
    if let Some((dest, _)) = dest {
        if !out.dry_run {
            let wrap = |e: crate::Error| Error::Push { reference: dest.to_string(), source: Box::new(e) };
            let src =
                output::release_image_source(client, &name, &images, list.as_ref(), &payload, ManifestFlavour::Docker)
                    .map_err(wrap)?;
            let dst =
                ImageDestination::open(&ImageLocation::Registry(dest.clone()), client).map_err(|e| wrap(e.into()))?;
            copy_image(&ImageSource::new(src), &dst, &copy_options, reporter).await.map_err(|e| wrap(e.into()))?;
            pushed = Some(dest.clone());
        }
        if let Some(d) = &digest {
            if let Some(path) = &out.to_signature {
                output::write_atomic(path, &output::signature_message(&dest, d, &options.creator, plan.created))?;
            }
            outputs.insert(0, Written::Image { reference: dest, digest: d.clone(), pushed: !out.dry_run });
        }
    }
    Ok(NewOutcome {
        digest,
        name,
        created,
        release: stream,
        metadata,
        operators: summary.operators,
        pruned,
        collisions: summary.collisions,
        warnings,
        layer: payload.info.clone(),
        layer_reused: payload.reused.is_some(),
        images,
        list,
        pushed,
        rewrite_mode: attempt.mode,
        outputs,
        overwritten,
    })
}

/// What the payload phase reads.
struct PayloadInputs {
    stream: ImageStream,
    metadata: CincinnatiMetadata,
    operators: Vec<Operator>,
}

/// What the payload phase needs of the plan.
#[derive(Clone, Copy)]
struct PayloadContext<'a> {
    input: Option<&'a InputRelease>,
    canonical: bool,
    mapped: &'a Mapped,
    mappings: &'a [Mapping],
}

/// One payload layer written (and linted).
struct BuiltPayload {
    summary: PayloadSummary,
    info: LayerInfo,
    file: tempfile::TempPath,
    findings: Vec<lint::Finding>,
    /// Every group of files written, when asked for (`--from-release`).
    written: Option<Vec<WrittenFiles>>,
    /// The files that differ from the input release's (`--from-release`).
    differences: Option<Vec<reproduce::FileDifference>>,
    /// The rules it was written with.
    attempt: Attempt,
}

impl BuiltPayload {
    /// The files written, by name under `release-manifests/`.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.written.iter().flatten().flat_map(|g| g.files.iter().cloned()).collect()
    }
}

/// Writes the payload layer on a blocking thread: tar, gzip and hashing
/// here, lint of the files on a thread of its own as they are written.
async fn payload_phase(
    mut inputs: PayloadInputs,
    attempt: Attempt,
    overridden: &BTreeSet<String>,
    replaced: &BTreeSet<String>,
    options: &NewOptions,
    base_has_manifests: Option<bool>,
    collect: bool,
) -> Result<(PayloadInputs, BuiltPayload), Error> {
    for op in &mut inputs.operators {
        op.is_override = replaced.contains(&op.tag) || (attempt.overrides_twice && overridden.contains(&op.tag));
    }
    let payload_options = PayloadOptions { mode: attempt.mode, allow_missing_images: options.allow_missing_images };
    let (lint_on, cache, work_dir) = (options.lint != LintMode::Off, options.cache.clone(), options.work_dir.clone());
    inspect::join(tokio::task::spawn_blocking(move || {
        let mut written = collect.then(Vec::new);
        let result = std::thread::scope(|scope| {
            let (tx, linter) = if lint_on {
                let (tx, rx) = std::sync::mpsc::sync_channel::<WrittenFiles>(32);
                let cache = cache.as_ref();
                (Some(tx), Some(scope.spawn(move || lint_payload(rx, cache, base_has_manifests))))
            } else {
                (None, None)
            };
            let mut observe = |group: WrittenFiles| {
                if let Some(w) = &mut written {
                    w.push(group.clone());
                }
                if let Some(tx) = &tx {
                    // Only fails when the linter panicked, which join reports.
                    let _ignored = tx.send(group);
                }
            };
            let result = write_payload_layer(
                &inputs.stream,
                &inputs.metadata,
                &inputs.operators,
                payload_options,
                work_dir.as_deref(),
                &mut observe,
            );
            drop(tx);
            let findings =
                linter.map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).unwrap_or_default();
            result.map(|(summary, info, file)| (summary, info, file, findings))
        });
        let (summary, info, file, findings) = result?;
        Ok((inputs, BuiltPayload { summary, info, file, findings, written, differences: None, attempt }))
    }))
    .await
}

/// The payload of the build. A canonical rebuild tries the rules of
/// [`reproduce::attempts`] until one gives the input's payload (diff ID, or
/// files when the input's diff ID is unknown) and says which it took; with
/// none, it keeps the first and the differences for the error. A modified
/// `--from-release` build with the default rules warns which unchanged
/// operators' files change because the input was built with oc's rules.
async fn choose_payload(
    mut inputs: PayloadInputs,
    plan: PayloadContext<'_>,
    options: &NewOptions,
    base_has_manifests: Option<bool>,
    warn: &mut dyn FnMut(String),
) -> Result<(PayloadInputs, BuiltPayload), Error> {
    let overridden = source::overridden_tags(&inputs.stream);
    let input = plan.input;
    let collect = input.is_some();
    let tries = match plan.canonical {
        true => reproduce::attempts(options.rewrite_mode, !overridden.is_empty()),
        false => vec![Attempt { mode: options.rewrite_mode.unwrap_or_default(), overrides_twice: false }],
    };
    let mut first: Option<BuiltPayload> = None;
    for attempt in tries {
        let (back, mut built) =
            payload_phase(inputs, attempt, &overridden, &plan.mapped.replaced, options, base_has_manifests, collect)
                .await?;
        inputs = back;
        let Some(input) = input else { return Ok((inputs, built)) };
        if !plan.canonical {
            if options.rewrite_mode.is_none() {
                let changed: BTreeSet<String> = plan.mappings.iter().map(|m| m.tag.clone()).collect();
                let rules = RuleCheck { input, options };
                let names =
                    rules.changed_by_rules(&inputs.operators, built.written.as_deref().unwrap_or(&[]), &changed);
                if !names.is_empty() {
                    warn(format!(
                        "`{}` was built with oc's rewriting: {} beyond the replaced references change under \
                         relbuild's fixed rules ({}); `--rewrite oc` keeps them as they were",
                        input.pullspec,
                        files_count(names.len()),
                        list_some(&names, 5)
                    ));
                }
            }
            return Ok((inputs, built));
        }
        built.differences = Some(reproduce::differences(&input.files, &built.files()));
        let reproduces = match &input.top_layer {
            Some((_, diff)) => &built.info.diff_id == diff,
            None => built.differences.as_ref().is_some_and(Vec::is_empty),
        };
        match (reproduces, first.take()) {
            (true, Some(default)) => {
                let names: Vec<String> = default.differences.iter().flatten().map(|d| d.name.clone()).collect();
                warn(format!(
                    "`{}` was built with {attempt}: {} differ under {} ({}); rebuilding with {attempt}",
                    input.pullspec,
                    files_count(names.len()),
                    default.attempt,
                    list_some(&names, 5)
                ));
                return Ok((inputs, built));
            }
            (true, None) => return Ok((inputs, built)),
            (false, Some(default)) => first = Some(default),
            (false, None) => first = Some(built),
        }
    }
    Ok((inputs, first.expect("a canonical rebuild tries at least one set of rules")))
}

fn files_count(n: usize) -> String {
    if n == 1 { "1 file".to_owned() } else { format!("{n} files") }
}

/// Up to `n` backquoted names, then `and N more`.
fn list_some(names: &[String], n: usize) -> String {
    let mut s: Vec<String> = names.iter().take(n).map(|x| format!("`{x}`")).collect();
    if names.len() > n {
        s.push(format!("and {} more", names.len() - n));
    }
    s.join(", ")
}

/// Whether an input release's files were written with oc's rules, file by
/// file, for the operators a build leaves unchanged.
struct RuleCheck<'a> {
    input: &'a InputRelease,
    options: &'a NewOptions,
}

impl RuleCheck<'_> {
    /// The payload names of files of unchanged operators whose input bytes
    /// are oc's rewriting of the operator's file against the input release,
    /// where the fixed rules give other bytes. Only files the build wrote
    /// differently from the input are looked at, so a build from a release
    /// relbuild made costs one comparison per file.
    fn changed_by_rules(
        &self,
        operators: &[Operator],
        written: &[WrittenFiles],
        changed: &BTreeSet<String>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for group in written {
            let Some(tag) = group.operator.as_deref().filter(|t| !changed.contains(*t)) else { continue };
            let Some(op) = operators.iter().find(|o| o.tag == tag) else { continue };
            let mut transforms: Option<(OperatorTransform, OperatorTransform)> = None;
            for ((_, content), (dst, ours)) in op.files.iter().zip(&group.files) {
                let Some(theirs) = self.input.files.get(dst) else { continue };
                if theirs == ours {
                    continue;
                }
                if transforms.is_none() {
                    let make = |mode| {
                        let options = PayloadOptions { mode, allow_missing_images: self.options.allow_missing_images };
                        super::payload::operator_transform(op, &self.input.stream, options)
                    };
                    match (make(RewriteMode::Oc), make(RewriteMode::Fixed)) {
                        (Ok(oc), Ok(fixed)) => transforms = Some((oc, fixed)),
                        _ => break,
                    }
                }
                let Some((oc, fixed)) = &transforms else { break };
                if let (Ok(by_oc), Ok(by_fixed)) = (oc.apply(&content.data), fixed.apply(&content.data))
                    && &by_oc == theirs
                    && by_oc != by_fixed
                {
                    out.push(dst.clone());
                }
            }
        }
        out
    }
}

/// The closest names to `tag` among `names`: within an edit distance of a
/// third of its length (transpositions count once), closest first, at most three.
fn closest_names(tag: &str, names: &[String]) -> Vec<String> {
    let limit = (tag.chars().count() / 3).max(1);
    let mut near: Vec<(usize, &String)> =
        names.iter().map(|n| (strsim::damerau_levenshtein(tag, n), n)).filter(|(d, _)| *d <= limit).collect();
    near.sort();
    near.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

/// Fails when a mapping added a tag the input does not have and pruning
/// dropped it: a misspelt component would otherwise replace nothing,
/// silently. `--include` keeps a tag meant to be new (it is then not pruned).
fn check_added_tags_kept(plan: &Plan, mappings: &[Mapping], pruned: &[String]) -> Result<(), Error> {
    // Tags this build's mappings added (not the ones an earlier build
    // overrode, which `mapped.all` also holds).
    let added: BTreeSet<&String> =
        mappings.iter().map(|m| &m.tag).filter(|t| !plan.mapped.replaced.contains(*t)).collect();
    let tags: Vec<UnknownTag> = added
        .into_iter()
        .filter(|t| pruned.contains(t))
        .map(|tag| UnknownTag {
            tag: tag.clone(),
            pullspec: mappings.iter().rev().find(|m| &m.tag == tag).map(|m| m.pullspec.clone()).unwrap_or_default(),
            suggestions: closest_names(tag, &plan.input_tags),
        })
        .collect();
    if tags.is_empty() { Ok(()) } else { Err(Error::UnknownMappedTags { tags }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(tag: &str, files: &[(&str, &str)]) -> Operator {
        Operator {
            tag: tag.to_owned(),
            files: files
                .iter()
                .map(|(n, d)| {
                    ((*n).to_owned(), super::super::payload::ManifestFile { data: d.as_bytes().to_vec(), mtime: 0 })
                })
                .collect(),
            image_references: None,
            is_override: false,
        }
    }

    #[test]
    fn manifest_check_table() {
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("a.yaml", ok, None),
            ("a.yml", "# comment\n---\napiVersion: v1\nkind: Secret\n---\nnot: checked\n", None),
            ("a.json", r#"{"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": [1, {"y": null}]}}"#, None),
            ("notes.txt", "not: [a manifest", None),
            ("a.yaml", "apiVersion: v1\nmetadata: {}\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "kind: ConfigMap\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "apiVersion: v1\nkind: 3\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "apiVersion: v1\nkind: \"\"\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "- apiVersion: v1\n  kind: List\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "apiVersion: v1\nkind: [unclosed\n", Some("invalid YAML/JSON")),
            ("a.json", r#"{"apiVersion": "v1", "kind": "#, Some("invalid YAML/JSON")),
            // Only the first non-null document is checked, as oc's yaml.Unmarshal does.
            ("a.yaml", "apiVersion: v1\nkind: A\n---\nkind: [unclosed\n", None),
            ("a.yaml", "apiVersion: v1\nkind: A\n---\n- a list\n", None),
            ("a.yaml", "---\n---\napiVersion: v1\nkind: A\n", None),
            ("a.yaml", "- a list\n---\napiVersion: v1\nkind: A\n", Some("'kind' and 'apiVersion'")),
            ("a.yaml", "kind: [unclosed\n---\napiVersion: v1\nkind: A\n", Some("invalid YAML/JSON")),
        ];
        for (name, data, want) in cases {
            let got = validate_manifests(&[operator("op", &[(name, data)])], None);
            match (want, got) {
                (None, Ok(())) => {}
                (Some(w), Err(e)) => assert!(
                    e.to_string().contains(w) && e.to_string().starts_with(&format!("op/{name}")),
                    "{name} {data:?}: {e}"
                ),
                (want, got) => panic!("{name} {data:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn closest_names_table() {
        let names: Vec<String> = ["prometheus", "prometheus-operator", "cluster-monitoring-operator", "cli", "console"]
            .map(String::from)
            .into();
        let cases: &[(&str, &[&str])] = &[
            ("promethues", &["prometheus"]),
            ("prometheus-opertor", &["prometheus-operator"]),
            ("cluster-monitoring-operater", &["cluster-monitoring-operator"]),
            ("clu", &["cli"]),
            ("brand-new-thing", &[]),
            ("consol", &["console"]),
        ];
        for (tag, want) in cases {
            assert_eq!(closest_names(tag, &names), *want, "{tag}");
        }
    }

    #[test]
    fn first_failing_operator_in_order_is_reported() {
        let bad = "kind: x\n";
        let ops: Vec<Operator> = (0..9)
            .map(|i| operator(&format!("op{i}"), &[("a.yaml", if i >= 4 { bad } else { "apiVersion: v1\nkind: A\n" })]))
            .collect();
        let e = validate_manifests(&ops, None).expect_err("op4 onwards are bad");
        assert!(e.to_string().starts_with("op4/a.yaml"), "{e}");
    }
}
