//! Subvolumes: the list from the root tree (ROOT_ITEM, ROOT_BACKREF), their paths from
//! the top level, the default subvolume, snapshots (`parent_uuid`) and snapper's
//! `.snapshots/N/snapshot` layout, and the compression types the data extents use.

use super::file::{self, DIR_ITEM, EXTENT_DATA, INODE_REF, ROOT_BACKREF, ROOT_ITEM};
use super::tree::{Key, Root};
use super::{BtrfsFs, TOP_LEVEL};
use crate::bytes::{array, u16le, u64le};
use serde::Serialize;
use std::collections::BTreeSet;

/// Last objectid a subvolume can have (`BTRFS_LAST_FREE_OBJECTID`).
const LAST_FREE_OBJECTID: u64 = u64::MAX - 255;
/// Most tree blocks the compression scan reads before reporting itself incomplete.
const SCAN_BLOCKS: usize = 4096;
/// Most subvolumes listed (snapper keeps tens to hundreds).
const MAX_SUBVOLUMES: usize = 16384;
/// `BTRFS_ROOT_SUBVOL_RDONLY`.
const ROOT_SUBVOL_RDONLY: u64 = 1;

/// One subvolume.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Subvolume {
    pub id: u64,
    /// Path from the top level, without a leading `/` (the top level itself is `""`).
    pub path: String,
    /// The subvolume it lives in (0 for the top level).
    pub parent_id: u64,
    pub uuid: String,
    pub readonly: bool,
    /// The subvolume this one is a snapshot of (by `parent_uuid`), if it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_of: Option<u64>,
    /// Snapper's snapshot number where the path is `…/.snapshots/N/snapshot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapper: Option<u64>,
    #[serde(skip)]
    parent_uuid: Option<[u8; 16]>,
    #[serde(skip)]
    uuid_raw: [u8; 16],
}

/// What inspection reports of one btrfs filesystem.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BtrfsReport {
    /// crc32c, xxhash64, sha256 or blake2b.
    pub csum: String,
    pub default_subvolume: u64,
    pub subvolumes: Vec<Subvolume>,
    /// Compression types found in file extents (zlib, lzo, zstd), sorted.
    pub compression: Vec<String>,
    /// False when the extent scan stopped at its block budget before reading every tree.
    pub compression_scan_complete: bool,
}

/// Snapper's number for a path `…/.snapshots/N/snapshot`.
pub fn snapper_number(path: &str) -> Option<u64> {
    let rest = path.strip_suffix("/snapshot")?;
    let (head, n) = rest.rsplit_once('/')?;
    (head == ".snapshots" || head.ends_with("/.snapshots")).then_some(())?;
    n.parse().ok().filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
}

impl BtrfsFs {
    /// The default subvolume: the root tree directory's `default` entry, else the top level.
    pub fn default_subvolume(&self) -> Result<u64, super::FsError> {
        let dir = self.core.sb.root_dir_objectid;
        let key = Key::new(dir, DIR_ITEM, file::name_hash(b"default"));
        let found = self.core.get(self.root_tree(), key).map_err(|r| self.err("/", r))?;
        let Some(d) = found else { return Ok(TOP_LEVEL) };
        let entries = file::dir_entries(&d).map_err(|r| self.err("/", format!("default subvolume: {r}")))?;
        Ok(entries.iter().find(|e| e.name == b"default").map_or(TOP_LEVEL, |e| e.location_id))
    }

    /// Every subvolume with its path, the top level first.
    pub fn subvolumes(&self) -> Result<Vec<Subvolume>, super::FsError> {
        self.list().map_err(|r| self.err("/", format!("subvolume list: {r}")))
    }

    fn list(&self) -> Result<Vec<Subvolume>, String> {
        let mut items = Vec::new();
        let rt = self.root_tree();
        self.core.search(rt, Key::new(TOP_LEVEL, ROOT_ITEM, 0), Key::new(TOP_LEVEL, ROOT_ITEM, u64::MAX), &mut items)?;
        self.core.search(rt, Key::new(256, ROOT_ITEM, 0), Key::new(LAST_FREE_OBJECTID, ROOT_BACKREF, u64::MAX), &mut items)?;
        let mut subs: Vec<Subvolume> = Vec::new();
        // (child, parent, dirid, name) from ROOT_BACKREF items.
        let mut backrefs = Vec::new();
        for (k, d) in &items {
            match k.ty {
                ROOT_ITEM => {
                    if subs.last().is_some_and(|s| s.id == k.objectid) {
                        subs.pop(); // a newer root item of the same subvolume follows
                    }
                    if subs.len() >= MAX_SUBVOLUMES {
                        return Err(format!("more than {MAX_SUBVOLUMES} subvolumes"));
                    }
                    let extended = d.len() >= 279;
                    let uuid_raw = if extended { array(d, 247) } else { [0; 16] };
                    let parent: [u8; 16] = if extended { array(d, 263) } else { [0; 16] };
                    subs.push(Subvolume {
                        id: k.objectid,
                        path: String::new(),
                        parent_id: 0,
                        uuid: if uuid_raw == [0; 16] { String::new() } else { crate::bytes::uuid_be(&uuid_raw) },
                        readonly: u64le(d, 208) & ROOT_SUBVOL_RDONLY != 0,
                        snapshot_of: None,
                        snapper: None,
                        parent_uuid: (parent != [0; 16]).then_some(parent),
                        uuid_raw,
                    });
                }
                ROOT_BACKREF => {
                    let n = usize::from(u16le(d, 16));
                    let name = d.get(18..18 + n).ok_or_else(|| format!("root backref of {} name_len {n}", k.objectid))?;
                    backrefs.push((k.objectid, k.offset, u64le(d, 0), name.to_vec()));
                }
                _ => {}
            }
        }
        // Subvolumes without a back reference are deleted ones still being cleaned.
        subs.retain(|s| s.id == TOP_LEVEL || backrefs.iter().any(|b| b.0 == s.id));
        for s in &mut subs {
            if let Some((_, parent, dirid, name)) = backrefs.iter().find(|b| b.0 == s.id) {
                s.parent_id = *parent;
                let dir = self.dir_path(*parent, *dirid)?;
                s.path = format!("{dir}{}", String::from_utf8_lossy(name));
            }
        }
        // Prefix each path with its parent's, up the chain.
        let rel: Vec<(u64, u64, String)> = subs.iter().map(|s| (s.id, s.parent_id, s.path.clone())).collect();
        for s in &mut subs {
            let (mut p, mut path, mut hops) = (s.parent_id, s.path.clone(), 0);
            while p != TOP_LEVEL && p != 0 {
                let Some((_, pp, ppath)) = rel.iter().find(|r| r.0 == p) else { break };
                path = format!("{ppath}/{path}");
                p = *pp;
                hops += 1;
                if hops > super::MAX_DEPTH {
                    return Err(format!("subvolume {} parent chain is a loop", s.id));
                }
            }
            s.path = path;
            s.snapper = snapper_number(&s.path);
        }
        let uuids: Vec<(u64, [u8; 16])> = subs.iter().map(|s| (s.id, s.uuid_raw)).collect();
        for s in &mut subs {
            s.snapshot_of = s.parent_uuid.and_then(|pu| uuids.iter().find(|(_, u)| *u == pu).map(|(i, _)| *i));
        }
        Ok(subs)
    }

    /// The path (ending in `/`, or empty) of directory `dirid` inside subvolume `subvol`.
    fn dir_path(&self, subvol: u64, dirid: u64) -> Result<String, String> {
        let root = self.subvol_root(subvol)?;
        let mut parts = Vec::new();
        let mut ino = dirid;
        while ino != file::FIRST_FREE_OBJECTID {
            if parts.len() > super::MAX_DEPTH {
                return Err(format!("directory {dirid} of subvolume {subvol} is too deep"));
            }
            let mut items = Vec::new();
            self.core.search(root, Key::new(ino, INODE_REF, 0), Key::new(ino, INODE_REF, u64::MAX), &mut items)?;
            let (k, d) = items.into_iter().next().ok_or_else(|| format!("directory {ino} of subvolume {subvol} has no inode ref"))?;
            let name = file::inode_refs(&d)?.into_iter().next().unwrap_or_default();
            parts.push(String::from_utf8_lossy(&name).into_owned());
            if k.offset == ino {
                break;
            }
            ino = k.offset;
        }
        parts.reverse();
        Ok(parts.iter().map(|p| format!("{p}/")).collect())
    }

    /// The compression types found in the extents of every subvolume, reading at most
    /// [`SCAN_BLOCKS`] tree blocks; and whether the scan read everything.
    pub fn compression(&self, subs: &[Subvolume]) -> Result<(Vec<String>, bool), super::FsError> {
        let mut found = BTreeSet::new();
        let mut budget = SCAN_BLOCKS;
        let mut complete = true;
        for s in subs {
            let root = self.subvol_root(s.id).map_err(|r| self.err("/", r))?;
            if !self.scan(root, &mut found, &mut budget).map_err(|r| self.err("/", format!("subvolume {}: {r}", s.id)))? {
                complete = false;
                break;
            }
        }
        Ok((found.into_iter().map(|c| file::compression_name(c).to_string()).collect(), complete))
    }

    fn scan(&self, root: Root, found: &mut BTreeSet<u8>, budget: &mut usize) -> Result<bool, String> {
        if *budget == 0 {
            return Ok(false);
        }
        *budget -= 1;
        let b = self.core.block(root.bytenr, root.level)?;
        let n = crate::bytes::u32le(&b, 0x60) as usize;
        if root.level == 0 {
            for i in 0..n {
                let p = 101 + i * 25;
                if b.get(p + 8) == Some(&EXTENT_DATA) {
                    let off = crate::bytes::u32le(&b, p + 17) as usize;
                    if let Some(&c) = b.get(101 + off + 16) {
                        if c != 0 {
                            found.insert(c);
                        }
                    }
                }
            }
            return Ok(true);
        }
        for i in 0..n {
            let child = Root { bytenr: u64le(&b, 101 + i * 33 + 17), level: root.level - 1 };
            if !self.scan(child, found, budget)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The report of this filesystem: checksum, default subvolume, subvolumes, compression.
    pub fn report(&self) -> Result<BtrfsReport, super::FsError> {
        let subvolumes = self.subvolumes()?;
        let (compression, compression_scan_complete) = self.compression(&subvolumes)?;
        Ok(BtrfsReport {
            csum: self.csum_type().name().into(),
            default_subvolume: self.default_subvolume()?,
            subvolumes,
            compression,
            compression_scan_complete,
        })
    }
}
