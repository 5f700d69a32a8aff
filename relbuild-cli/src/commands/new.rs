//! `relbuild new`: arguments → `NewContext`/`NewOptions` → `new_release` → oc's output lines.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use relbuild_core::release::{
    Error as ReleaseError, LintMode, Mapping, NewContext, NewOptions, NewOutcome, OutputOptions, ReferenceMode,
    RewriteMode, Source, Written, assemble_stream, new_release, parse_mapping_file,
};
use relbuild_core::store::Cache;

use crate::cli::{GlobalArgs, LintArg, NewArgs, RewriteArg};
use crate::printer;
use crate::reporter::BarReporter;

/// `SOURCE_DATE_EPOCH`, else now; `--created` wins over both.
#[allow(clippy::disallowed_methods)] // the CLI is where the environment is read
fn creation_time(flag: Option<&str>) -> Result<jiff::Timestamp> {
    if let Some(s) = flag {
        return s.parse().with_context(|| format!("`--created {s}` is not an RFC 3339 time"));
    }
    if let Some(epoch) = std::env::var_os("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) {
        let s = epoch.to_string_lossy();
        let secs: i64 = s.parse().with_context(|| format!("SOURCE_DATE_EPOCH=`{s}` is not a number of seconds"))?;
        return jiff::Timestamp::from_second(secs).with_context(|| format!("SOURCE_DATE_EPOCH=`{s}` is out of range"));
    }
    Ok(jiff::Timestamp::now())
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/relbuild`, else `~/.cache/relbuild`.
#[allow(clippy::disallowed_methods)] // the CLI is where the environment is read
pub(crate) fn cache_dir(flag: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.clone());
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("relbuild"));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache/relbuild"))
}

fn read_stream_file(arg: &str) -> Result<(Vec<u8>, String)> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("reading the image stream from stdin")?;
        return Ok((buf, "<stdin>".to_owned()));
    }
    let bytes = std::fs::read(arg).with_context(|| format!("reading image stream file `{arg}`"))?;
    Ok((bytes, arg.to_owned()))
}

fn context(args: &NewArgs) -> Result<NewContext> {
    let sources = [args.from_image_stream_file.is_some(), args.from_release.is_some(), args.from_dir.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        bail!("only one of --from-image-stream-file, --from-release and --from-dir may be given");
    }
    let source = if let Some(f) = &args.from_image_stream_file {
        let mode: ReferenceMode = args.reference_mode.parse()?;
        if f.starts_with("http://") || f.starts_with("https://") {
            Source::ImageStreamUrl { url: f.clone(), mode }
        } else {
            let (bytes, file) = read_stream_file(f)?;
            Source::ImageStreamFile { bytes, file, mode }
        }
    } else if let Some(r) = &args.from_release {
        Source::Release(r.clone())
    } else if let Some(d) = &args.from_dir {
        Source::Dir(d.clone())
    } else {
        Source::None
    };
    let mut mappings = Vec::new();
    if let Some(f) = &args.mapping_file {
        let bytes = std::fs::read(f).with_context(|| format!("reading mapping file `{}`", f.display()))?;
        mappings.extend(parse_mapping_file(&bytes, &f.display().to_string())?);
    }
    for m in args.mappings.iter().chain(&args.replace) {
        mappings.push(m.parse::<Mapping>()?);
    }
    if matches!(source, Source::None) && mappings.is_empty() {
        bail!("must specify image mappings when no other source is defined (-f, --from-release or --from-dir)");
    }
    Ok(NewContext { source, mappings, created: creation_time(args.created.as_deref())? })
}

fn options(args: &NewArgs) -> Result<NewOptions> {
    let cache = if args.no_cache {
        None
    } else {
        match cache_dir(args.cache_dir.as_ref()) {
            Some(dir) => {
                Some(Cache::open(&dir).with_context(|| format!("opening cache directory `{}`", dir.display()))?)
            }
            None => None,
        }
    };
    Ok(NewOptions {
        name: args.name.clone(),
        previous: args.previous.clone(),
        next: args.next.clone(),
        metadata: args.metadata.clone(),
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        to_image_base: args.to_image_base.clone(),
        to_image_base_tag: args.to_image_base_tag.clone(),
        rewrite_mode: args.rewrite.map(|r| match r {
            RewriteArg::Fixed => RewriteMode::Fixed,
            RewriteArg::Oc => RewriteMode::Oc,
        }),
        allow_missing_images: args.allow_missing_images,
        skip_manifest_check: args.skip_manifest_check,
        manifests_arch: args.manifests_arch.clone(),
        filter_by_os: args.filter_by_os.clone(),
        output: OutputOptions {
            to_image: args.to_image.clone(),
            to_dir: args.to_dir.clone(),
            to_file: args.to_file.clone(),
            to_oci_layout: args.to_oci_layout.clone(),
            to_signature: args.to_signature.clone(),
            dry_run: args.dry_run,
            force: args.force,
        },
        cache,
        lint: match args.lint {
            LintArg::Off => LintMode::Off,
            LintArg::Warn => LintMode::Warn,
            LintArg::Error => LintMode::Error,
        },
        ..NewOptions::default()
    })
}

/// Whether any `--to-*` output was given.
fn has_output(args: &NewArgs) -> bool {
    args.to_image.is_some() || args.to_dir.is_some() || args.to_file.is_some() || args.to_oci_layout.is_some()
}

pub(crate) async fn run(args: &NewArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if args.to_signature.is_some() && args.to_image.is_none() {
        bail!("--to-signature requires --to-image");
    }
    let ctx = context(args)?;
    let opts = options(args)?;
    let reporter = Arc::new(BarReporter::new(global.quiet));
    let client = args.registry.client(reporter.clone())?;
    let json = match args.output.as_deref() {
        None => false,
        // oc's `-o json`: the assembled stream, nothing built.
        Some("json") if !has_output(args) => {
            let stream = assemble_stream(&client, &ctx, &opts).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&stream.to_json()?)?;
            writeln!(out)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some("json") => true,
        Some(other) => bail!("`-o {other}`: the only output format of `new` is `json`"),
    };
    let result = new_release(&client, &ctx, &opts, reporter.as_ref()).await;
    reporter.finish();
    // Warnings (collisions included) were printed by the reporter as they came.
    let outcome = match result {
        Ok(o) => o,
        Err(e) => match hint(&e) {
            Some(hint) => {
                printer::error(&format!("{:#}", anyhow::Error::from(e)));
                printer::hint(&hint);
                return Ok(ExitCode::FAILURE);
            }
            None => return Err(e.into()),
        },
    };
    if !outcome.pruned.is_empty() {
        printer::info(
            global.quiet,
            &format!(
                "Included {} images from {} input operators into the release (pruned: {})",
                outcome.release.spec.tags.len(),
                outcome.operators.len(),
                outcome.pruned.join(", ")
            ),
        );
    }
    if let (Some(old), Some(Written::Image { reference, digest, .. })) = (&outcome.overwritten, outcome.outputs.first())
    {
        printer::warn(&format!("`{reference}` held another release, {old}; it now holds {digest}"));
    }
    let mut out = std::io::stdout().lock();
    if json {
        out.write_all(serde_json::to_string_pretty(&outcome_json(&outcome))?.as_bytes())?;
        writeln!(out)?;
    } else {
        for line in summary_lines(&outcome) {
            writeln!(out, "{line}")?;
        }
    }
    drop(out);
    if let Some(pushed) = &outcome.pushed
        && !args.dry_run
    {
        printer::info(global.quiet, &format!("Pushed to {pushed}"));
    }
    if !has_output(args) && !global.quiet {
        printer::info(false, "dry run: no output was given, so nothing was written or pushed");
        printer::hint(
            "write the release with `--to-image REPO[:TAG]`, `--to-oci-layout DIR`, `--to-dir DIR` or `--to-file FILE`",
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// oc's `<digest> <name> <created>` for one image output (or none: the
/// digest as it would be pushed). With several, one line per output with
/// its location as a fourth field, the registry's first, so a script that
/// reads the first field of the first line still gets the pushed digest.
fn summary_lines(outcome: &NewOutcome) -> Vec<String> {
    let images: Vec<&Written> = outcome.outputs.iter().filter(|w| w.holds_image()).collect();
    if images.len() < 2 {
        return outcome.summary_line().into_iter().collect();
    }
    images
        .iter()
        .filter_map(|w| w.digest().map(|d| format!("{d} {} {} {}", outcome.name, outcome.created, w.location())))
        .collect()
}

/// `-o json` with outputs: the release and what each output holds.
fn outcome_json(outcome: &NewOutcome) -> serde_json::Value {
    let outputs: Vec<serde_json::Value> = outcome
        .outputs
        .iter()
        .map(|w| {
            let mut o = serde_json::json!({ "location": w.location() });
            let kind = match w {
                Written::Image { pushed, .. } => {
                    o["pushed"] = (*pushed).into();
                    if let Some(old) = &outcome.overwritten {
                        o["overwritten"] = old.to_string().into();
                    }
                    "image"
                }
                Written::OciLayout { .. } => "oci-layout",
                Written::File { .. } => "file",
                Written::Dir { files, .. } => {
                    o["files"] = (*files).into();
                    "dir"
                }
                _ => "other",
            };
            o["kind"] = kind.into();
            if let Some(d) = w.digest() {
                o["digest"] = d.to_string().into();
            }
            o
        })
        .collect();
    serde_json::json!({
        "name": outcome.name,
        "created": outcome.created,
        "digest": outcome.digest.as_ref().map(ToString::to_string),
        "outputs": outputs,
        "pruned": outcome.pruned,
    })
}

/// The `hint:` for a refusal the user can lift with a flag.
fn hint(e: &relbuild_core::Error) -> Option<String> {
    let relbuild_core::Error::Release(e) = e else { return None };
    match e.as_ref() {
        ReleaseError::WouldOverwrite { reference, .. } => Some(format!(
            "to replace it, pass the tag explicitly (`--to-image {reference}`) or add `--force`; to keep it, choose another `--name` or tag"
        )),
        ReleaseError::UnknownMappedTags { tags } => {
            let names: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
            Some(format!("to add a new tag that nothing references, keep it with `--include {}`", names.join(",")))
        }
        _ => None,
    }
}
