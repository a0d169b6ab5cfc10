//! Member names inside an OVA, and a byte-counting reader that bounds decompression.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Normalises a member name or href to `a/b/c`: drops `.` and empty parts, refuses `..`,
/// absolute names, drive letters, backslashes and URLs (None).
pub fn normalize(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\\') || name.contains("://") || name.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p if p.len() == 2 && p.ends_with(':') => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Normalises `href` relative to the directory `base` (a normalised name or "").
pub fn join(base: &str, href: &str) -> Option<String> {
    let href = normalize(href)?;
    Some(if base.is_empty() { href } else { format!("{base}/{href}") })
}

/// Like [`join`], but `..` components are allowed while they stay inside the top (for a
/// directory OVA, whose files are plain files below one directory).
pub fn join_within(base: &str, href: &str) -> Option<String> {
    if href.starts_with('/') || href.contains('\\') || href.contains("://") || href.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for p in href.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p if p.len() == 2 && p.ends_with(':') => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The directory part of a normalised member name ("" at the top).
pub fn dir_of(name: &str) -> &str {
    name.rfind('/').and_then(|i| name.get(..i)).unwrap_or("")
}

/// The last path component.
pub fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// macOS `._x` resource-fork junk.
pub fn is_junk(name: &str) -> bool {
    base_name(name).starts_with("._")
}

/// Shared byte counter with a moving limit.
#[derive(Clone, Default)]
pub struct Budget {
    pub used: Rc<Cell<u64>>,
    pub limit: Rc<Cell<u64>>,
}

/// Counts bytes read through it and fails once the budget's limit is passed.
pub struct Counting<R> {
    pub inner: R,
    pub budget: Budget,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.budget.used.get().saturating_add(n as u64);
        self.budget.used.set(used);
        if used > self.budget.limit.get() {
            return Err(io::Error::other(format!(
                "decompressed more than {} bytes, more than the OVF declares (decompression bomb?)",
                self.budget.limit.get()
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize("./a//b/./c.vmdk").as_deref(), Some("a/b/c.vmdk"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("a/../../x"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("C:/x"), None);
        assert_eq!(normalize("http://h/x.vmdk"), None);
        assert_eq!(normalize("a\\..\\b"), None);
        assert_eq!(join("sub", "d.vmdk").as_deref(), Some("sub/d.vmdk"));
        assert_eq!(dir_of("sub/x.ovf"), "sub");
        assert_eq!(dir_of("x.ovf"), "");
        assert!(is_junk("sub/._x.ovf"));
        assert_eq!(join_within("sub", "../disks/d.vmdk").as_deref(), Some("disks/d.vmdk"));
        assert_eq!(join_within("", "a/../d.vmdk").as_deref(), Some("d.vmdk"));
        assert_eq!(join_within("", "../d.vmdk"), None);
        assert_eq!(join_within("sub", "../../d.vmdk"), None);
        assert_eq!(join_within("", "/etc/passwd"), None);
    }
}
