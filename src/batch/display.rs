//! What a batch shows while it runs: on a terminal an indicatif display (one line per
//! running VM plus a total bar), otherwise one plain line per step on stderr.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub enum Display {
    Bars { multi: MultiProgress, total: ProgressBar, lines: Mutex<HashMap<String, ProgressBar>> },
    Lines { total: usize, done: Mutex<usize> },
}

impl Display {
    pub fn new(total: usize) -> Display {
        if !std::io::stderr().is_terminal() {
            return Display::Lines { total, done: Mutex::new(0) };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let bar = multi.add(ProgressBar::new(total as u64));
        if let Ok(s) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} VMs {msg}") {
            bar.set_style(s.progress_chars("=> "));
        }
        Display::Bars { multi, total: bar, lines: Mutex::new(HashMap::new()) }
    }

    /// VM `name` starts `step`.
    pub fn step(&self, name: &str, step: &str) {
        match self {
            Display::Bars { multi, lines, .. } => {
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                let line = lines.entry(name.to_string()).or_insert_with(|| {
                    let l = multi.add(ProgressBar::new_spinner());
                    if let Ok(s) = ProgressStyle::with_template("  {spinner} {prefix}: {msg} ({elapsed})") {
                        l.set_style(s);
                    }
                    l.set_prefix(name.to_string());
                    l.enable_steady_tick(Duration::from_millis(200));
                    l
                });
                line.set_message(step.to_string());
            }
            Display::Lines { .. } => eprintln!("ferry batch: {name}: {step}"),
        }
    }

    /// VM `name` is finished with `outcome` ("ok", "failed: ...", "already done").
    pub fn finish(&self, name: &str, outcome: &str) {
        match self {
            Display::Bars { multi, total, lines } => {
                if let Some(l) = lines.lock().unwrap_or_else(|e| e.into_inner()).remove(name) {
                    l.finish_and_clear();
                    multi.remove(&l);
                }
                let _ = multi.println(format!("{name}: {outcome}"));
                total.inc(1);
            }
            Display::Lines { total, done } => {
                let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
                *d += 1;
                eprintln!("ferry batch: [{}/{}] {name}: {outcome}", *d, total);
            }
        }
    }

    pub fn close(&self) {
        if let Display::Bars { total, .. } = self {
            total.finish();
        }
    }
}
