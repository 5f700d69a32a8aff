//! Writing the payload layer (and linting it as it is written), once or
//! once per set of rewriting rules for a canonical rebuild.

use super::*;

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

/// Lints the payload from the groups [`write_payload_observed`] hands over:
/// the release files, then each operator's files (memoised per operator).
pub(super) fn lint_payload(
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

/// What the payload phase reads.
pub(super) struct PayloadInputs {
    pub(super) stream: ImageStream,
    pub(super) metadata: CincinnatiMetadata,
    pub(super) operators: Vec<Operator>,
}

/// What the payload phase needs of the plan.
#[derive(Clone, Copy)]
pub(super) struct PayloadContext<'a> {
    pub(super) input: Option<&'a InputRelease>,
    pub(super) canonical: bool,
    pub(super) mapped: &'a Mapped,
    pub(super) mappings: &'a [Mapping],
}

/// One payload layer written (and linted).
pub(super) struct BuiltPayload {
    pub(super) summary: PayloadSummary,
    pub(super) info: LayerInfo,
    pub(super) file: tempfile::TempPath,
    pub(super) findings: Vec<lint::Finding>,
    /// Every group of files written, when asked for (`--from-release`).
    pub(super) written: Option<Vec<WrittenFiles>>,
    /// The files that differ from the input release's (`--from-release`).
    pub(super) differences: Option<Vec<reproduce::FileDifference>>,
    /// The rules it was written with.
    pub(super) attempt: Attempt,
}

impl BuiltPayload {
    /// The files written, by name under `release-manifests/`.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.written.iter().flatten().flat_map(|g| g.files.iter().cloned()).collect()
    }
}

/// Writes the payload layer on a blocking thread: tar, gzip and hashing
/// here, lint of the files on a thread of its own as they are written.
pub(super) async fn payload_phase(
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
pub(super) async fn choose_payload(
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

pub(super) fn files_count(n: usize) -> String {
    if n == 1 { "1 file".to_owned() } else { format!("{n} files") }
}

/// Up to `n` backquoted names, then `and N more`.
pub(super) fn list_some(names: &[String], n: usize) -> String {
    let mut s: Vec<String> = names.iter().take(n).map(|x| format!("`{x}`")).collect();
    if names.len() > n {
        s.push(format!("and {} more", names.len() - n));
    }
    s.join(", ")
}

/// Whether an input release's files were written with oc's rules, file by
/// file, for the operators a build leaves unchanged.
pub(super) struct RuleCheck<'a> {
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
                        crate::release::payload::operator_transform(op, &self.input.stream, options)
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
