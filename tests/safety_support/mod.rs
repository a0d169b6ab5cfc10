//! Helpers of the data-safety tests: `ferry` under `timeout`, one-line refusals, listings
//! of the filesystem around an output directory, sha256 of sources.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `timeout SECS ferry ARGS`: (exit code, stdout, stderr). A hang exits 124.
pub fn ferry_t(secs: u32, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run timeout ferry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Expects a refusal: exit `code`, exactly one line on stderr containing each of `want`.
pub fn refused(r: (i32, String, String), code: i32, want: &[&str]) -> String {
    let (c, _, err) = r;
    assert_eq!(c, code, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
    err
}

/// sha256 of a file, by sha256sum (the oracle).
pub fn sha(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// Every entry under `root` (not following symlinks): kind, size, and content hash of
/// regular files. Two listings equal means nothing was created, removed or changed.
pub fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let v = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                format!("file {} {}", m.len(), sha(&p))
            } else {
                format!("special {:o}", m.mode())
            };
            out.insert(p, v);
        }
    }
    out
}

/// Names of temporaries (`.NAME.part-PID`) under `dir`.
pub fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part"))
        .collect()
}

pub fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

/// A raw file of `len` bytes with a pattern.
pub fn raw(p: &Path, len: usize) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(p, bytes).unwrap();
}

