//! `relbuild verify`: an offline check of a distribution storage tree or an
//! OCI layout, with exit code 0 (clean), 1 (damaged) or 2 (could not run).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use relbuild_core::store::{self, ProblemKind, Verification};

use crate::cli::VerifyArgs;
use crate::printer;

/// Exit code 2: the check could not run, as opposed to 1 (it ran and found damage).
const COULD_NOT_RUN: u8 = 2;

pub(crate) async fn run(args: &VerifyArgs) -> Result<ExitCode> {
    if let Some(o) = args.output.as_deref().filter(|o| *o != "json") {
        printer::error(&format!("`-o {o}`: use `json`"));
        return Ok(ExitCode::from(COULD_NOT_RUN));
    }
    // Hashing every blob is CPU and disk work: off the async thread.
    let path = args.path.clone();
    let checked = tokio::task::spawn_blocking(move || store::verify(&path)).await?;
    let v = match checked {
        Ok(v) => v,
        Err(e) => {
            printer::error(&format!("{:#}", anyhow::Error::from(e)));
            return Ok(ExitCode::from(COULD_NOT_RUN));
        }
    };
    let mut out = std::io::stdout().lock();
    if args.output.is_some() {
        writeln!(out, "{}", serde_json::to_string_pretty(&json(args, &v))?)?;
    } else {
        for p in &v.report.problems {
            writeln!(out, "{p}")?;
        }
        writeln!(out, "{}", summary(args, &v))?;
    }
    Ok(if v.report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn damaged(v: &Verification) -> usize {
    v.report.problems.iter().filter(|p| p.kind != ProblemKind::Leftover).count()
}

/// `<path>: <kind>, N blobs, … : ok | N problems`, the last line.
fn summary(args: &VerifyArgs, v: &Verification) -> String {
    let r = &v.report;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut counts = vec![plural(r.blobs, "blob")];
    if v.kind == store::StoreKind::Tree {
        counts.extend([plural(r.manifests, "manifest"), plural(r.links, "link"), plural(r.tags, "tag")]);
    }
    let verdict = match damaged(v) {
        0 => "ok".to_owned(),
        n => plural(n, "problem"),
    };
    format!("`{}`: {}, {} checked: {verdict}", args.path.display(), v.kind, counts.join(", "))
}

fn json(args: &VerifyArgs, v: &Verification) -> serde_json::Value {
    let r = &v.report;
    serde_json::json!({
        "path": args.path,
        "kind": match v.kind { store::StoreKind::Tree => "tree", _ => "layout" },
        "ok": r.is_ok(),
        "blobs": r.blobs,
        "manifests": r.manifests,
        "links": r.links,
        "tags": r.tags,
        "problems": r.problems.iter().map(|p| serde_json::json!({
            "problem": p.to_string(),
            "damage": p.kind != ProblemKind::Leftover,
            "digest": p.digest.as_ref().map(ToString::to_string),
            "path": p.path,
        })).collect::<Vec<_>>(),
    })
}
