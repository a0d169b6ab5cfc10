//! VMware datastore paths (`[datastore1] dir/disk.vmdk`, `/vmfs/volumes/datastore1/...`)
//! mapped to local directories.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where VMware datastores are on this host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datastores {
    /// Datastore name → local directory.
    pub map: BTreeMap<String, PathBuf>,
    /// Fallback: datastore `ds` is `dir/ds`.
    pub dir: Option<PathBuf>,
    /// A reference exactly as the description writes it (`rbd:pool/img`, `[ds] a.vmdk`) →
    /// the local file or device holding that disk.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
}

/// Splits `[ds] rel/path` into (ds, rel/path).
pub fn split_datastore_path(s: &str) -> Option<(&str, &str)> {
    let rest = s.trim().strip_prefix('[')?;
    let (ds, path) = rest.split_once(']')?;
    Some((ds.trim(), path.trim_start()))
}

/// Joins a relative path below `base`, refusing `..` and absolute components.
fn join_below(base: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return None;
    }
    Some(base.join(rel))
}

impl Datastores {
    /// Whether any mapping is configured.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.dir.is_none() && self.files.is_empty()
    }

    fn base(&self, ds: &str) -> Option<PathBuf> {
        if let Some(p) = self.map.get(ds) {
            return Some(p.clone());
        }
        let dir = self.dir.as_ref()?;
        join_below(dir, ds)
    }

    /// `[ds] path` → local path, if `ds` is mapped.
    pub fn resolve_bracket(&self, s: &str) -> Option<PathBuf> {
        let (ds, rel) = split_datastore_path(s)?;
        join_below(&self.base(ds)?, rel)
    }

    /// `/vmfs/volumes/ds/path` → local path, if `ds` is mapped.
    pub fn resolve_vmfs(&self, p: &Path) -> Option<PathBuf> {
        let rest = p.to_str()?.strip_prefix("/vmfs/volumes/")?;
        let (ds, rel) = rest.split_once('/')?;
        join_below(&self.base(ds)?, rel)
    }
}

impl super::VmModel {
    /// Maps `[ds] path` references and `/vmfs/volumes/ds/...` files through `stores`.
    /// Unmapped references stay as they are.
    pub fn resolve_datastores(&mut self, stores: &Datastores) {
        if stores.is_empty() {
            return;
        }
        for d in &mut self.disks {
            let new = match &d.source {
                super::DiskSource::Unresolved { reference } => {
                    stores.files.get(reference).cloned().or_else(|| stores.resolve_bracket(reference))
                }
                super::DiskSource::File { path } => stores.resolve_vmfs(path),
                _ => None,
            };
            if let Some(path) = new {
                d.source = super::DiskSource::File { path };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves() {
        let mut d = Datastores { dir: Some("/srv/ds".into()), ..Default::default() };
        d.map.insert("fast".into(), "/mnt/fast".into());
        assert_eq!(d.resolve_bracket("[datastore1] web/web.vmdk"), Some("/srv/ds/datastore1/web/web.vmdk".into()));
        assert_eq!(d.resolve_bracket("[fast] a b/c.vmdk"), Some("/mnt/fast/a b/c.vmdk".into()));
        assert_eq!(d.resolve_bracket("[fast] ../etc/passwd"), None);
        assert_eq!(d.resolve_vmfs(Path::new("/vmfs/volumes/fast/x/y.vmdk")), Some("/mnt/fast/x/y.vmdk".into()));
        assert_eq!(Datastores::default().resolve_bracket("[x] y"), None);
    }
}
