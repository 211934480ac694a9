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
    unit: &'static str,
}

impl Progress {
    /// Progress of `label` over `total` slots; `forced` by `--progress`.
    pub fn new(label: &'static str, total: u64, forced: bool) -> Progress {
        Progress::with_unit(label, total, "slots", forced)
    }

    /// Progress of `label` over `total` of `unit` (`slots`, `s`, …).
    pub fn with_unit(
        label: &'static str,
        total: u64,
        unit: &'static str,
        forced: bool,
    ) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let mut progress = Progress {
            bar: None,
            plain: None,
            total,
            unit,
        };
        if terminal && (forced || total > QUIET_UP_TO) {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(&format!(
                "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit}, eta {{eta}}"
            ))
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
            eprintln!("hb: {label}: {done}/{} {}", self.total, self.unit);
        }
    }

    /// `done` so far, with a note (`12 ok, 0 errors`).
    pub fn set_with(&self, done: u64, note: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(note.to_string());
        }
        if let Some(label) = self.plain {
            eprintln!("hb: {label}: {done}/{} {}, {note}", self.total, self.unit);
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
