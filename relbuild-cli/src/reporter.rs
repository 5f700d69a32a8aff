//! Progress bars for core's [`Reporter`] events: one bar per phase (images
//! inspected, layers fetched, blobs pushed) and a byte counter for blob
//! traffic. Only on a terminal, and never with `--quiet`.
//!
//! Warnings are printed above the bars as they come, grouped by kind (the
//! first few of each, then one `N more` line at the end), and a registry
//! that keeps failing gets one line while its requests are retried.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use relbuild_core::Digest;
use relbuild_core::progress::{BlobKind, Reporter, WarningKind};

use crate::printer;

/// How many warnings of one kind are printed before the rest are only counted.
pub(crate) const SHOWN_PER_KIND: usize = 3;

/// Draws indicatif bars on stderr and prints warnings and retry notes.
#[derive(Debug)]
pub(crate) struct BarReporter {
    multi: MultiProgress,
    phases: Mutex<HashMap<String, ProgressBar>>,
    bytes: ProgressBar,
    /// False when the bars are hidden: then events cost nothing (a build
    /// reports about a thousand of them).
    visible: bool,
    warnings: Mutex<WarningGroups>,
    /// Hosts whose requests are being retried, with their line in the
    /// progress area when the bars are shown.
    retrying: Mutex<BTreeMap<String, Option<ProgressBar>>>,
}

impl BarReporter {
    /// Bars when stderr is a terminal and not `quiet`; otherwise hidden.
    pub(crate) fn new(quiet: bool) -> Self {
        Self::with_bars(!quiet && std::io::stderr().is_terminal())
    }

    /// No bars, only warnings and retry notes: for commands whose output
    /// would interleave with the bars on a terminal.
    pub(crate) fn without_bars() -> Self {
        Self::with_bars(false)
    }

    fn with_bars(visible: bool) -> Self {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let bytes = multi.add(ProgressBar::new_spinner());
        bytes.set_style(
            ProgressStyle::with_template("{spinner} blobs: {bytes} ({binary_bytes_per_sec}) {msg}")
                .expect("the template is valid"),
        );
        if visible {
            bytes.enable_steady_tick(Duration::from_millis(120));
        }
        Self {
            multi,
            phases: Mutex::new(HashMap::new()),
            bytes,
            visible,
            warnings: Mutex::new(WarningGroups::new(printer::every_warning())),
            retrying: Mutex::new(BTreeMap::new()),
        }
    }

    /// Removes the bars, then prints how many warnings of each kind were not shown.
    pub(crate) fn finish(&self) {
        if let Ok(phases) = self.phases.lock() {
            for bar in phases.values() {
                bar.finish_and_clear();
            }
        }
        if let Ok(retrying) = self.retrying.lock() {
            for bar in retrying.values().flatten() {
                bar.finish_and_clear();
            }
        }
        self.bytes.finish_and_clear();
        let _ = self.multi.clear();
        let more = self.warnings.lock().map(|w| w.summary()).unwrap_or_default();
        for line in more {
            printer::warn(&line);
        }
    }

    /// Prints above the bars.
    fn print(&self, f: impl FnOnce()) {
        if self.visible { self.multi.suspend(f) } else { f() }
    }
}

impl Reporter for BarReporter {
    fn on_blob_start(&self, kind: BlobKind, _digest: &Digest, _size: Option<u64>) {
        if !self.visible {
            return;
        }
        let verb = match kind {
            BlobKind::Pull => "pulling",
            BlobKind::Push => "pushing",
            BlobKind::Mount => "mounting",
            _ => "moving",
        };
        self.bytes.set_message(verb);
    }

    fn on_blob_progress(&self, _digest: &Digest, bytes: u64) {
        if self.visible {
            self.bytes.inc(bytes);
        }
    }

    fn on_phase_start(&self, phase: &str, total: u64) {
        if !self.visible {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_owned());
        if let Ok(mut phases) = self.phases.lock() {
            phases.insert(phase.to_owned(), bar);
        }
    }

    fn on_phase_step(&self, phase: &str) {
        if !self.visible {
            return;
        }
        if let Ok(phases) = self.phases.lock()
            && let Some(bar) = phases.get(phase)
        {
            bar.inc(1);
        }
    }

    fn on_warning(&self, kind: WarningKind, message: &str) {
        // Printed once, here, as they happen (the outcome's `warnings` repeat
        // them for library callers); above the bars; not with `--quiet`.
        if printer::quiet() || !self.warnings.lock().is_ok_and(|mut w| w.admit(kind)) {
            return;
        }
        self.print(|| printer::warn(message));
    }

    fn on_retry(&self, host: &str, _attempt: u32, _delay: Duration, error: &dyn std::error::Error) {
        // Every request in flight to an unreachable registry retries: one
        // line per host says so, and the error that ends the command follows.
        if printer::quiet() {
            return;
        }
        let Ok(mut retrying) = self.retrying.lock() else { return };
        if retrying.contains_key(host) {
            return;
        }
        let line = format!("retrying requests to `{host}`: {error}");
        if self.visible {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_message(line);
            bar.enable_steady_tick(Duration::from_millis(120));
            retrying.insert(host.to_owned(), Some(bar));
        } else {
            retrying.insert(host.to_owned(), None);
            drop(retrying);
            self.print(|| printer::warn(&line));
        }
    }
}

/// Which warnings are printed: all of them with `-v`; otherwise the first
/// [`SHOWN_PER_KIND`] of each kind that comes in numbers (skipped entries,
/// name collisions, lint warnings by code), and at the end one line per
/// kind counting the rest. Lint errors and other warnings are all printed.
#[derive(Debug, Default)]
pub(crate) struct WarningGroups {
    every: bool,
    seen: BTreeMap<WarningKind, usize>,
}

impl WarningGroups {
    pub(crate) fn new(every: bool) -> Self {
        Self { every, seen: BTreeMap::new() }
    }

    /// Counts a warning of `kind`; true when it is to be printed.
    pub(crate) fn admit(&mut self, kind: WarningKind) -> bool {
        if self.every || group_name(kind).is_none() {
            return true;
        }
        let seen = self.seen.entry(kind).or_default();
        *seen += 1;
        *seen <= SHOWN_PER_KIND
    }

    /// One `N more … of this kind` line per kind with warnings not printed.
    pub(crate) fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (kind, seen) in &self.seen {
            let (Some(name), Some(more)) = (group_name(*kind), seen.checked_sub(SHOWN_PER_KIND)) else { continue };
            if more > 0 {
                lines.push(format!("{name}: {more} more of this kind (`-v` shows them all)"));
            }
        }
        lines
    }
}

/// The plural name of a kind that is grouped; `None` for kinds printed in full.
fn group_name(kind: WarningKind) -> Option<String> {
    match kind {
        WarningKind::SkippedEntry => Some("skipped `manifests/` entries".to_owned()),
        WarningKind::NameCollision => Some("file name collisions".to_owned()),
        WarningKind::LintWarning(code) => Some(format!("lint[{code}]")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_grouped_by_kind() {
        use WarningKind::{LintError, LintWarning, NameCollision, Other, SkippedEntry};
        // (kinds in arrival order, every?, how many printed, summary lines)
        let skipped = [SkippedEntry; 8];
        let cases: &[(&[WarningKind], bool, usize, &[&str])] = &[
            (&[], false, 0, &[]),
            (&skipped[..3], false, 3, &[]),
            (&skipped, false, 3, &["skipped `manifests/` entries: 5 more of this kind (`-v` shows them all)"]),
            (&skipped, true, 8, &[]),
            (&[NameCollision, LintWarning("a"), LintWarning("b"), NameCollision], false, 4, &[]),
            (&[Other; 9], false, 9, &[]),
            (&[LintError("x"); 7], false, 7, &[]),
            (
                &[
                    LintWarning("no-profile"),
                    NameCollision,
                    LintWarning("no-profile"),
                    NameCollision,
                    LintWarning("no-profile"),
                    NameCollision,
                    LintWarning("no-profile"),
                    NameCollision,
                    NameCollision,
                ],
                false,
                6,
                &[
                    "file name collisions: 2 more of this kind (`-v` shows them all)",
                    "lint[no-profile]: 1 more of this kind (`-v` shows them all)",
                ],
            ),
        ];
        for (kinds, every, printed, summary) in cases {
            let mut g = WarningGroups::new(*every);
            let n = kinds.iter().filter(|k| g.admit(**k)).count();
            assert_eq!(n, *printed, "{kinds:?}");
            assert_eq!(g.summary(), *summary, "{kinds:?}");
        }
    }
}
