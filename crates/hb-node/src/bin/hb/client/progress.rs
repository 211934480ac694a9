//! Progress of long operations on stderr: an `indicatif` bar when stderr
//! is a terminal and the work spans more than one page, plain lines when
//! `--progress` asks for them on a stderr that is no terminal, and nothing
//! otherwise (so scripts and tests see clean output).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work at most this large shows no bar unless asked (one page).
const QUIET_UP_TO: u64 = 1_000;

/// A progress report of `total` slots.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<&'static str>,
    total: u64,
}

impl Progress {
    /// Progress of `label` over `total` slots; `forced` by `--progress`.
    pub fn new(label: &'static str, total: u64, forced: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let mut progress = Progress {
            bar: None,
            plain: None,
            total,
        };
        if terminal && (forced || total > QUIET_UP_TO) {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} slots, eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(label);
            progress.bar = Some(bar);
        } else if forced {
            progress.plain = Some(label);
        }
        progress
    }

    /// `done` slots so far.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
        if let Some(label) = self.plain {
            eprintln!("hb: {label}: {done}/{} slots", self.total);
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    /// Runs `f` (which writes on stdout) with the bar hidden meanwhile.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}
