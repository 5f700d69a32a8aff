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

mod image;
mod operators;
mod payload;
mod prune;

pub use image::release_image;
pub use operators::validate_manifests;
pub use payload::write_payload_layer;
pub use prune::prune_unreferenced;

use image::{base_references, build_images};
use operators::inspect_tags;
use payload::{BuiltPayload, PayloadContext, PayloadInputs, choose_payload};
use prune::{check_added_tags_kept, referenced_tags};

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
    /// whichever rules reproduce the input ([`reproduce`]).
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
    let client = fetcher.client();
    let to_image = check_destination(client, out).await?;
    let mut plan = plan(fetcher, ctx, options).await?;
    let name = plan.stream.metadata.name.clone();
    let need_image = to_image.is_some()
        || out.to_oci_layout.is_some()
        || plan.canonical
        || (out.to_dir.is_none() && out.to_file.is_none());
    let base = resolve_base(&plan, options, need_image)?;
    let mut warnings = Warnings { reporter, list: Vec::new() };
    let from_dir = plan.dir.is_some();
    let operators = collect_operators(fetcher, &mut plan, options, reporter, &mut warnings).await?;
    let (pruned, base_has_manifests) =
        prune(fetcher, &mut plan, &operators, base.as_ref(), from_dir, ctx, options).await?;

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
        &mut |w| warnings.push(WarningKind::Other, w),
    )
    .await?;
    let PayloadInputs { stream, metadata, .. } = inputs;
    let BuiltPayload { summary, info, file, findings, differences, attempt, .. } = built;
    report_findings(&summary, &findings, options, &mut warnings)?;
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
            build_images(fetcher, b, &payload, &stream, plan.created, options, &mut warnings.list).await?
        }
        _ => (Vec::new(), None),
    };
    let digest = list.as_ref().or_else(|| images.first().map(|i| &i.manifest)).map(|m| m.digest().clone());
    if let (Some(input), true) = (&plan.input, plan.canonical) {
        check_reproduced(input, digest.as_ref(), &payload, &stream, options, attempt, differences)?;
    }
    let dest = destination_tag(to_image, &name)?;
    let overwritten = match (&dest, &digest) {
        (Some(dest), Some(built)) if !out.dry_run => check_overwrite(client, dest, built, &name, out.force).await?,
        _ => None,
    };
    let release =
        BuiltRelease { name: &name, created: plan.created, payload: &payload, images: &images, list: list.as_ref() };
    let (outputs, pushed) = write_outputs(client, &release, dest, digest.as_ref(), options, reporter).await?;
    Ok(NewOutcome {
        digest,
        created: format_time(plan.created),
        name,
        release: stream,
        metadata,
        operators: summary.operators,
        pruned,
        collisions: summary.collisions,
        warnings: warnings.list,
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

/// Warnings of the build: each goes to the reporter as it happens, and
/// into [`NewOutcome::warnings`].
struct Warnings<'a> {
    reporter: &'a dyn Reporter,
    list: Vec<String>,
}

impl Warnings<'_> {
    fn push(&mut self, kind: WarningKind, w: String) {
        self.reporter.on_warning(kind, &w);
        self.list.push(w);
    }
}

/// `--to-image`, parsed and checked before anything is built: a wrong or
/// read-only destination fails now, not after the whole build.
async fn check_destination(client: &Client, out: &OutputOptions) -> Result<Option<Reference>, crate::Error> {
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
    if let Some(dest) = &to_image
        && !out.dry_run
    {
        client
            .check_push_access(dest)
            .await
            .map_err(|e| Error::Destination { reference: dest.name(), source: Box::new(e.into()) })?;
    }
    Ok(to_image)
}

/// The base image, resolved before anything is fetched so a missing tag
/// fails fast: `--to-image-base`, else the tag the input release's base
/// label names, else `--to-image-base-tag`. True when it is a tag of the
/// release.
fn resolve_base(plan: &Plan, options: &NewOptions, need_image: bool) -> Result<Option<(Reference, bool)>, Error> {
    let base_tag = &options.to_image_base_tag;
    if let Some(b) = &options.to_image_base {
        let r = b.parse().map_err(|source| Error::InvalidPullspec {
            tag: "--to-image-base".to_owned(),
            pullspec: b.clone(),
            source,
        })?;
        return Ok(Some((r, false)));
    }
    let from_label = plan.input.as_ref().and_then(|i| {
        let digest = i.base_image_digest.as_deref()?;
        let hit = plan
            .stream
            .spec
            .tags
            .iter()
            .find(|t| t.docker_pullspec().and_then(|p| p.split_once('@')).is_some_and(|(_, d)| d == digest));
        Some(hit.map(|t| t.name.clone()).ok_or_else(|| digest.to_owned()))
    });
    let tag_name = match from_label {
        Some(Ok(t)) => Some(t),
        // A multi-arch input labels the per-arch child; fall back to the base tag.
        Some(Err(_)) if plan.input.as_ref().is_some_and(|i| i.list.is_some()) => Some(base_tag.clone()),
        Some(Err(digest)) if need_image => return Err(Error::BaseImageNotInRelease { digest }),
        Some(Err(_)) => None,
        None => Some(base_tag.clone()),
    };
    match tag_name.as_deref().and_then(|t| plan.stream.tag(t)).and_then(|t| t.docker_pullspec()) {
        Some(p) => Ok(Some((
            p.parse().map_err(|source| Error::InvalidPullspec {
                tag: base_tag.clone(),
                pullspec: p.to_owned(),
                source,
            })?,
            true,
        ))),
        None if need_image => Err(Error::MissingBaseTag { tag: tag_name.unwrap_or_else(|| base_tag.clone()) }),
        None => Ok(None),
    }
}

/// The operators: read from `--from-dir`, or inspected from the stream's
/// images (checked as they arrive).
async fn collect_operators(
    fetcher: &Fetcher,
    plan: &mut Plan,
    options: &NewOptions,
    reporter: &dyn Reporter,
    warnings: &mut Warnings<'_>,
) -> Result<Vec<Operator>, crate::Error> {
    let from_dir = plan.dir.is_some();
    let (operators, skipped) = match plan.dir.take() {
        Some(d) => (d.operators, d.warnings),
        None => inspect_tags(fetcher, &mut plan.stream, &plan.mapped, options, reporter).await?,
    };
    // Inspecting and reading a directory warn only about skipped entries.
    for w in skipped {
        warnings.push(WarningKind::SkippedEntry, w);
    }
    if operators.is_empty() {
        let w = "no operator metadata was found, no operators will be part of the release";
        warnings.push(WarningKind::Other, w.to_owned());
    }
    if from_dir && !options.skip_manifest_check {
        validate_manifests(&operators, options.cache.as_ref())?;
    }
    Ok(operators)
}

/// Prunes the tags no operator references, honouring the base image's own
/// image-references; returns the pruned tags and whether the base has
/// `/manifests` (known when it is an operator we extracted, or when its top
/// layer has them; otherwise lint does not check).
async fn prune(
    fetcher: &Fetcher,
    plan: &mut Plan,
    operators: &[Operator],
    base: Option<&(Reference, bool)>,
    from_dir: bool,
    ctx: &NewContext,
    options: &NewOptions,
) -> Result<(Vec<String>, Option<bool>), crate::Error> {
    let base_tag = &options.to_image_base_tag;
    let (base_refs, base_has_manifests) = match base {
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
    let pruned = prune_unreferenced(&mut plan.stream, operators, &always, &base_refs)?;
    check_added_tags_kept(plan, &ctx.mappings, &pruned)?;
    plan.stream.sort_tags();
    Ok((pruned, base_has_manifests))
}

/// Name collisions and lint findings, to the reporter; lint errors fail the
/// build in [`LintMode::Error`].
fn report_findings(
    summary: &PayloadSummary,
    findings: &[lint::Finding],
    options: &NewOptions,
    warnings: &mut Warnings<'_>,
) -> Result<(), Error> {
    for c in &summary.collisions {
        warnings.push(WarningKind::NameCollision, format!("file name collision: {c}"));
    }
    if options.lint == LintMode::Off {
        return Ok(());
    }
    let errors: Vec<String> =
        findings.iter().filter(|f| f.severity == lint::Severity::Error).map(lint::finding_line).collect();
    if options.lint == LintMode::Error && !errors.is_empty() {
        return Err(Error::Lint { findings: errors });
    }
    // Every finding goes to the reporter, which decides how many to show.
    for f in findings {
        let kind = match f.severity {
            lint::Severity::Error => WarningKind::LintError(f.code),
            _ => WarningKind::LintWarning(f.code),
        };
        warnings.push(kind, lint::finding_line(f));
    }
    Ok(())
}

/// A canonical rebuild must give the input's digest.
fn check_reproduced(
    input: &InputRelease,
    digest: Option<&Digest>,
    payload: &Payload,
    stream: &ImageStream,
    options: &NewOptions,
    attempt: Attempt,
    differences: Option<Vec<reproduce::FileDifference>>,
) -> Result<(), Error> {
    let expected = input.top_digest().clone();
    let found = digest.cloned().unwrap_or_else(|| payload.info.digest.clone());
    if expected == found {
        return Ok(());
    }
    let tried = match options.rewrite_mode {
        Some(_) => vec![attempt],
        None => reproduce::attempts(None, !source::overridden_tags(stream).is_empty()),
    };
    Err(Error::NotReproduced { expected, found, tried, differences: differences.unwrap_or_default() })
}

/// The destination tag, and whether it was given: `--to-image`'s tag, else
/// the release name.
fn destination_tag(to_image: Option<Reference>, name: &str) -> Result<Option<(Reference, bool)>, Error> {
    Ok(match to_image {
        Some(dest) if dest.tag().is_some() => Some((dest, true)),
        Some(dest) => Some((
            dest.with_tag(name).map_err(|source| Error::InvalidPullspec {
                tag: "--to-image".to_owned(),
                pullspec: format!("{dest}:{name}"),
                source,
            })?,
            false,
        )),
        None => None,
    })
}

/// Checked before anything is written: a defaulted tag over another
/// release is refused (unless `force`), an explicit one overwritten. Returns
/// the digest overwritten.
async fn check_overwrite(
    client: &Client,
    (dest, explicit): &(Reference, bool),
    built: &Digest,
    name: &str,
    force: bool,
) -> Result<Option<Digest>, Error> {
    let push_err = |e: crate::registry::Error| Error::Push { reference: dest.to_string(), source: Box::new(e.into()) };
    let Some(existing) = client.head_manifest(dest).await.map_err(push_err)?.map(|d| d.digest) else {
        return Ok(None);
    };
    if &existing == built {
        return Ok(None);
    }
    if !explicit && !force {
        let (reference, tag) = (dest.to_string(), name.to_owned());
        return Err(Error::WouldOverwrite { reference, tag, existing, built: built.clone() });
    }
    Ok(Some(existing))
}

/// The release as built, for the outputs.
struct BuiltRelease<'a> {
    name: &'a str,
    created: jiff::Timestamp,
    payload: &'a Payload,
    images: &'a [ReleaseImage],
    list: Option<&'a RawManifest>,
}

/// Writes the outputs: local files, then the push (manifest last, through
/// the transfer engine), then the signature. Returns them listed image
/// first, then the layout, the file and the directory, and where the
/// release was pushed.
async fn write_outputs(
    client: &Client,
    release: &BuiltRelease<'_>,
    dest: Option<(Reference, bool)>,
    digest: Option<&Digest>,
    options: &NewOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<Written>, Option<Reference>), crate::Error> {
    let out = &options.output;
    let (name, payload) = (release.name, release.payload);
    let mut local = Vec::new();
    if let Some(dir) = &out.to_dir {
        let (path, gz) = (dir.clone(), payload.file.to_path_buf());
        let files = inspect::join(tokio::task::spawn_blocking(move || output::write_dir(&path, &gz))).await?;
        local.push(Written::Dir { path: dir.clone(), files });
    }
    if let Some(path) = &out.to_file {
        output::write_file(path, payload, release.created).await?;
        local.push(Written::File { path: path.clone(), digest: payload.blob().0 });
    }
    let copy_options = CopyOptions::default().max_concurrent_blobs(options.max_concurrent);
    let copy_to = async |location: &ImageLocation, flavour: ManifestFlavour| -> Result<Digest, crate::Error> {
        let shown = location.to_string();
        let src = output::release_image_source(client, &shown, release.images, release.list, payload, flavour)?;
        let dst = ImageDestination::open(location, client)?;
        Ok(copy_image(&ImageSource::new(src), &dst, &copy_options, reporter).await?.digest)
    };
    if let Some(dir) = &out.to_oci_layout {
        let location = ImageLocation::Layout { path: dir.clone(), tag: Some(name.to_owned()) };
        let digest = copy_to(&location, ManifestFlavour::Oci)
            .await
            .map_err(|e| Error::OciLayout { path: dir.clone(), source: Box::new(e) })?;
        local.push(Written::OciLayout { path: dir.clone(), tag: name.to_owned(), digest });
    }
    let mut outputs: Vec<Written> = local.into_iter().rev().collect();
    let mut pushed = None;
    if let Some((dest, _)) = dest {
        if !out.dry_run {
            copy_to(&ImageLocation::Registry(dest.clone()), ManifestFlavour::Docker)
                .await
                .map_err(|e| Error::Push { reference: dest.to_string(), source: Box::new(e) })?;
            pushed = Some(dest.clone());
        }
        if let Some(d) = digest {
            if let Some(path) = &out.to_signature {
                output::write_atomic(path, &output::signature_message(&dest, d, &options.creator, release.created))?;
            }
            outputs.insert(0, Written::Image { reference: dest, digest: d.clone(), pushed: !out.dry_run });
        }
    }
    Ok((outputs, pushed))
}
