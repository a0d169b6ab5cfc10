//! The batch's peak memory: VmRSS summed over this process and every descendant alive at the
//! same moment (the `ferry convert`/`validate` children and what they run), sampled every
//! 20 ms from /proc on a background thread. Pages shared between processes count once per
//! process, so it is an upper bound of what the batch held resident.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(20);

pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let root = std::process::id();
        let thread = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    p.fetch_max(tree_rss_kib(root), Ordering::Relaxed);
                    std::thread::sleep(INTERVAL);
                }
            })
            .ok();
        Sampler { stop, peak, thread }
    }

    /// Stops sampling; the peak in KiB (None when /proc could not be read).
    pub fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Some(self.peak.load(Ordering::Relaxed)).filter(|&k| k > 0)
    }
}

/// The parent of every process, from /proc/PID/stat.
fn parents() -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            out.insert(pid, ppid);
        }
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// VmRSS of `root` and all its descendants, in KiB.
pub fn tree_rss_kib(root: u32) -> u64 {
    let parents = parents();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &ppid) in &parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut total = 0;
    let mut todo = vec![root];
    let mut seen = 0usize;
    while let Some(p) = todo.pop() {
        seen += 1;
        if seen > parents.len() + 1 {
            break;
        }
        total += rss_kib(p);
        todo.extend(children.get(&p).into_iter().flatten().copied());
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_child_counts_in_the_tree() {
        let alone = super::tree_rss_kib(std::process::id());
        assert!(alone > 0);
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let with = super::tree_rss_kib(std::process::id());
        let own = super::rss_kib(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(own > 0 && with >= own, "{alone} {with} {own}");
    }
}
