//! Inspecting the stream's images for operators, and checking their manifests.

use super::*;

/// What inspecting one tag found.
pub(super) struct Inspected {
    tag: String,
    annotations: BTreeMap<String, String>,
    operator: Option<Operator>,
    warnings: Vec<String>,
    /// The operator's manifest check.
    check: Result<(), Error>,
}

pub(super) async fn inspect_tag(
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
        let file = crate::release::payload::ManifestFile { data: f.data, mtime: f.mtime };
        if f.path == IMAGE_REFERENCES {
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
pub(super) async fn inspect_tags(
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
pub(super) struct ManifestHead {
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default, rename = "apiVersion")]
    api_version: Option<serde_json::Value>,
}

/// The cache namespace of passed manifest checks. Bump it (or the crate
/// version) whenever [`validate_operator`] changes.
pub(super) const MANIFEST_CHECK_RECORD: &str = "manifest-check/1";

pub(super) fn validate_operator_cached(op: &Operator, cache: Option<&Cache>) -> Result<(), Error> {
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

pub(super) fn validate_operator(op: &Operator) -> Result<(), Error> {
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
        let is_json = crate::release::looks_like_json(&content.data);
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
                        .map_err(|e| syntax(crate::release::yaml_error(&e)))?
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
pub(super) fn first_yaml_head(data: &[u8]) -> Option<ManifestHead> {
    // Where the fast path answers, serde-saphyr's Value parse succeeds with
    // the same heads, and so does its parse into ManifestHead.
    if let Some(heads) = crate::release::heads::document_heads(data) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(tag: &str, files: &[(&str, &str)]) -> Operator {
        Operator {
            tag: tag.to_owned(),
            files: files
                .iter()
                .map(|(n, d)| {
                    ((*n).to_owned(), crate::release::payload::ManifestFile { data: d.as_bytes().to_vec(), mtime: 0 })
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
    fn first_failing_operator_in_order_is_reported() {
        let bad = "kind: x\n";
        let ops: Vec<Operator> = (0..9)
            .map(|i| operator(&format!("op{i}"), &[("a.yaml", if i >= 4 { bad } else { "apiVersion: v1\nkind: A\n" })]))
            .collect();
        let e = validate_manifests(&ops, None).expect_err("op4 onwards are bad");
        assert!(e.to_string().starts_with("op4/a.yaml"), "{e}");
    }
}
