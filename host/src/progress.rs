//! Progress shown on long work: a spinner while a component compiles, a bar while many
//! records are removed. Only on a terminal: when stderr is not one, or the output is
//! `--json`, nothing is drawn, so logs and reports never hold progress output.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Off once [`quiet`] is called (the output is `--json`).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Draws no progress from now on, whatever stderr is.
pub fn quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether progress is drawn: stderr is a terminal and the output is not `--json`.
pub fn shown() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// Progress of one piece of work; cleared from the terminal when dropped.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A spinner with `message` and the time elapsed, for work of unknown length.
    pub fn spinner(message: &str) -> Progress {
        Progress(shown().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"));
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    /// A bar over `len` steps with `message`, shown only for work of at least `from` steps.
    pub fn bar(len: usize, from: usize, message: &str) -> Progress {
        Progress((shown() && len >= from).then(|| {
            let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(message.to_owned());
            bar.tick();
            bar
        }))
    }

    /// One more step done.
    pub fn step(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Whether anything is drawn.
    pub fn is_drawn(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_when_quiet() {
        quiet();
        assert!(!shown());
        assert!(!Progress::spinner("compiling").is_drawn());
        assert!(!Progress::bar(10_000, 1, "removing").is_drawn());
    }
}
