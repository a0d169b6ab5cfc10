//! Helpers for the `ferry convert` integration tests.
#![allow(dead_code)]

pub mod qmp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/configs")
}

pub fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("run ferry")
}

/// Runs ferry and asserts success; returns stdout.
pub fn ferry_ok(args: &[&str]) -> String {
    let o = ferry(args);
    assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs ferry and asserts failure; returns stderr.
pub fn ferry_err(args: &[&str]) -> String {
    let o = ferry(args);
    assert!(!o.status.success(), "ferry {args:?} succeeded");
    String::from_utf8(o.stderr).unwrap()
}

/// `virt-xml-validate FILE domain`; None when the tool is absent.
pub fn validate_xml(path: &Path) -> Option<Result<(), String>> {
    let o = Command::new("virt-xml-validate").arg(path).arg("domain").output().ok()?;
    Some(if o.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    })
}

pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// The three descriptions `-o local` writes for NAME in DIR, with DIR replaced by @OUT@.
pub fn outputs(dir: &Path, name: &str) -> [(String, String); 3] {
    let d = dir.display().to_string();
    ["xml", "sh", "ferry.json"].map(|ext| {
        let text = std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_else(|e| panic!("{name}.{ext}: {e}"));
        (ext.to_string(), text.replace(&d, "@OUT@"))
    })
}
