//! Progress bars for core's [`Reporter`] events: one bar per phase (images
//! inspected, layers fetched, blobs pushed) and a byte counter for blob
//! traffic. Only on a terminal, and never with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use relbuild_core::Digest;
use relbuild_core::progress::{BlobKind, Reporter};

/// Draws indicatif bars on stderr.
#[derive(Debug)]
pub(crate) struct BarReporter {
    multi: MultiProgress,
    phases: Mutex<HashMap<String, ProgressBar>>,
    bytes: ProgressBar,
    /// False when the bars are hidden: then events cost nothing (a build
    /// reports about a thousand of them).
    visible: bool,
}

impl BarReporter {
    /// Bars when stderr is a terminal and not `quiet`; otherwise hidden.
    pub(crate) fn new(quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
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
        Self { multi, phases: Mutex::new(HashMap::new()), bytes, visible }
    }

    /// Removes the bars.
    pub(crate) fn finish(&self) {
        if let Ok(phases) = self.phases.lock() {
            for bar in phases.values() {
                bar.finish_and_clear();
            }
        }
        self.bytes.finish_and_clear();
        let _ = self.multi.clear();
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

    fn on_warning(&self, message: &str) {
        // Printed once, here, as they happen (the outcome's `warnings` repeat
        // them for library callers); above the bars, even with `--quiet`.
        self.multi.suspend(|| crate::printer::warn(message));
    }
}
