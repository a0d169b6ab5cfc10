//! A VMDK with its parent chain (parentCID / parentFileNameHint) as one [`BlockDevice`]:
//! reads fall through unallocated grains to the parent, then to zeros; zeroed grains stop.
use super::cache::GtCache;
use super::layer::{Layer, Opener};
use super::source::Source;
use super::sparse::push_extent;
use crate::disk::{check_range, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest parent chain we follow.
pub const MAX_DEPTH: usize = 64;

/// A VMDK image and its parents, read-only.
pub struct VmdkDevice {
    layers: Vec<Layer>,
}

impl VmdkDevice {
    /// Opens `src` and every parent it names.
    pub fn open(src: Arc<dyn Source>, cache: Arc<GtCache>, opener: Opener) -> Result<Self, DiskError> {
        let top = Layer::open(src, cache.clone(), opener)?;
        let mut seen = HashSet::new();
        seen.insert(canonical(&top.path));
        let mut layers = vec![top];
        while let Some(child) = layers.last() {
            let Some(pcid) = child.parent_cid() else { break };
            let Some(hint) = child.parent_hint() else {
                return Err(DiskError::invalid(
                    &child.path,
                    "parentFileNameHint",
                    "(missing)",
                    format!("parentCID {pcid:08x} says there is a parent"),
                ));
            };
            // At most MAX_DEPTH images in all, as qcow2's backing chains (MAX_CHAIN).
            if layers.len() >= MAX_DEPTH {
                return Err(DiskError::invalid(&child.path, "parent chain depth", layers.len(), "more than 64 images"));
            }
            let dir = child.path.parent().map(Path::to_path_buf).unwrap_or_default();
            let ppath = super::layer::resolve(&dir, hint);
            if !seen.insert(canonical(&ppath)) {
                return Err(DiskError::invalid(
                    &child.path,
                    "parentFileNameHint",
                    hint,
                    "loops back to an image already in the chain",
                ));
            }
            let psrc = opener(&ppath).map_err(|e| match e {
                DiskError::Io { source, .. } => {
                    DiskError::invalid(&child.path, "parentFileNameHint", hint, source.to_string())
                }
                e => e,
            })?;
            let parent = Layer::open(psrc, cache.clone(), opener)?;
            if parent.cid() != Some(pcid) {
                let got = parent.cid().map_or("no CID".to_string(), |c| format!("CID {c:08x}"));
                return Err(DiskError::invalid(
                    &child.path,
                    "parentCID",
                    format!("{pcid:08x}"),
                    format!("parent {} has {got}", parent.path.display()),
                ));
            }
            layers.push(parent);
        }
        Ok(VmdkDevice { layers })
    }

    fn read_layer(&self, i: usize, buf: &mut [u8], off: u64) -> Result<(), DiskError> {
        let Some(layer) = self.layers.get(i) else {
            buf.fill(0);
            return Ok(());
        };
        let mut holes = Vec::new();
        layer.read(buf, off, &mut holes)?;
        if i + 1 < self.layers.len() {
            let psize = self.layers[i + 1].size;
            for (hoff, hlen) in holes {
                if hoff >= psize {
                    continue;
                }
                let n = hlen.min(psize - hoff) as usize;
                let s = (hoff - off) as usize;
                self.read_layer(i + 1, &mut buf[s..s + n], hoff)?;
            }
        }
        Ok(())
    }

    fn map_layer(&self, i: usize, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        let mut mine = Vec::new();
        self.layers[i].map(off, len, &mut mine)?;
        let parent = self.layers.get(i + 1);
        for e in mine {
            match parent {
                Some(p) if e.kind == ExtentKind::Unallocated && e.offset < p.size => {
                    let n = e.length.min(p.size - e.offset);
                    self.map_layer(i + 1, e.offset, n, out)?;
                    push_extent(out, e.offset + n, e.length - n, ExtentKind::Unallocated);
                }
                _ => push_extent(out, e.offset, e.length, e.kind),
            }
        }
        Ok(())
    }

    /// The allocation map of `[offset, offset + length)` in the top image alone (a delta's
    /// own grains: `Unallocated` where reads fall through to the parent). `ferry img sync`
    /// applies exactly these ranges.
    pub fn own_map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.layers[0].path, offset, length, self.size())?;
        let mut out = Vec::new();
        self.layers[0].map(offset, length, &mut out)?;
        Ok(out)
    }

    /// The images of the chain, child first.
    pub fn chain(&self) -> Vec<PathBuf> {
        self.layers.iter().map(|l| l.path.clone()).collect()
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl BlockDevice for VmdkDevice {
    fn size(&self) -> u64 {
        self.layers[0].size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.layers[0].path, offset, buf.len() as u64, self.size())?;
        self.read_layer(0, buf, offset)
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.layers[0].path, offset, length, self.size())?;
        let mut out = Vec::new();
        self.map_layer(0, offset, length, &mut out)?;
        Ok(out)
    }

    fn info(&self) -> ImageInfo {
        let top = &self.layers[0];
        let files = top.files();
        let mut details = std::collections::BTreeMap::new();
        details.insert("create_type".into(), top.create_type.clone().into());
        if let Some(d) = &top.desc {
            details.insert("descriptor_version".into(), d.version.into());
            if let Some(c) = d.cid {
                details.insert("cid".into(), format!("{c:08x}").into());
            }
            details.insert("parent_cid".into(), d.parent_cid.map_or("ffffffff".into(), |c| format!("{c:08x}")).into());
            details.insert("extents".into(), d.extents.len().into());
        }
        if let Some(v) = top.header_version {
            details.insert("version".into(), v.into());
        }
        details.insert("compressed".into(), top.compressed.into());
        details.insert("chain_depth".into(), self.layers.len().into());
        ImageInfo {
            format: "vmdk".into(),
            virtual_size: self.size(),
            actual_size: files.iter().map(|(_, a)| a).sum(),
            cluster_size: top.grain(),
            files: files.into_iter().map(|(p, _)| p).collect(),
            backing: self.layers.get(1).map(|l| l.path.clone()),
            details,
        }
    }

    /// The top image's grain, raised to 64 KiB when it divides 64 KiB (COWD and seSparse
    /// grains of 512 B / 4 KiB would make copies needlessly small).
    fn granularity(&self) -> u64 {
        match self.layers[0].grain() {
            Some(g) if g > 0 && g < 65536 && 65536 % g == 0 => 65536,
            Some(g) if g > 0 => g,
            _ => 65536,
        }
    }
}
