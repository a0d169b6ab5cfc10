//! Extended attributes, read (SELinux labels live in `security.selinux`), and the writes
//! that fit in the inode: a new inode inherits its parent directory's SELinux label, and
//! [`Xfs::set_xattr`] sets one attribute in a shortform fork. Read: shortform
//! attribute forks in the inode, and the leaf blocks of extent- or btree-format attribute
//! forks (the da-btree node blocks above them are indexes, skipped), with local values in the
//! leaf and remote values in their own blocks (v5: `XARM` header, CRC-checked).

use super::bmap::Extent;
use super::bytes::{be16, be32, be64, byte, crc_ok};
use super::inode::{Inode, FMT_BTREE, FMT_EXTENTS, FMT_LOCAL};
use super::Xfs;
use crate::fs::FsError;

const ATTR_ROOT: u8 = 2;
const ATTR_SECURE: u8 = 4;
const ATTR_LOCAL: u8 = 1;
const ATTR_INCOMPLETE: u8 = 0x80;
const LEAF_MAGIC_V4: u16 = 0xfbee;
const LEAF_MAGIC_V5: u16 = 0x3bee;
/// Largest attribute value Linux allows.
const MAX_VALUE: usize = 65536;
/// Most attribute-fork blocks scanned for one lookup.
const MAX_BLOCKS: u64 = 4096;
const RMT_HDR: usize = 56;

/// `security.selinux` → (namespace flags, `selinux`); `None` for other namespaces.
fn split_name(name: &str) -> Option<(u8, &[u8])> {
    let (ns, n) = name.split_once('.')?;
    let flags = match ns {
        "user" => 0,
        "trusted" => ATTR_ROOT,
        "security" => ATTR_SECURE,
        _ => return None,
    };
    Some((flags, n.as_bytes()))
}

impl Xfs<'_> {
    /// Gives the new inode `child` (no attribute fork yet) the `security.selinux` label of
    /// its parent directory, as a shortform attribute fork, when the parent has one (what a
    /// new file gets under most policies: its directory's context). True when labelled;
    /// false when the parent has no label, or the filesystem or label does not allow a
    /// shortform fork (v4 without attr2, a label over 255 bytes): that file is left to the
    /// guest's relabel.
    pub(super) fn inherit_label(&self, parent: &Inode, child: &mut Inode) -> Result<bool, FsError> {
        if !self.sb.attr2() {
            return Ok(false);
        }
        let Some(label) = self.inode_xattr(parent, "security.selinux")? else { return Ok(false) };
        Ok(child.set_local_attr(ATTR_SECURE, b"selinux", &label))
    }

    /// Sets extended attribute `name` (`security.selinux`...) of `path` itself (no symlink
    /// following) to `value`, in the inode's shortform attribute fork: a new fork when it has
    /// none, else the fork rewritten with the entry replaced or added. Refused with
    /// [`FsError::Unsupported`], nothing written, where that does not fit (attribute blocks,
    /// a fork that would have to grow, v4 without attr2, names or values over 255 bytes).
    pub fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), FsError> {
        let Some((ns, want)) = split_name(name) else { return Err(self.unsupported(format!("extended attribute namespace of {name}"))) };
        let mut i = self.resolve(path, false)?;
        if !self.sb.attr2() {
            return Err(self.unsupported("extended attribute writes on XFS v4 without attr2"));
        }
        if want.is_empty() || want.len() > 255 || value.len() > 255 {
            return Err(self.unsupported(format!("extended attribute {name} of {} bytes outside an inode", value.len())));
        }
        let fork = i.attr_fork();
        let mut entries: Vec<Vec<u8>> = Vec::new();
        if !fork.is_empty() {
            let field = format!("inode {} attribute fork", i.ino);
            if i.aformat() != FMT_LOCAL {
                return Err(self.unsupported(format!("setting {name} of {path}: inode {} keeps its attributes in blocks", i.ino)));
            }
            let total = usize::from(be16(fork, 0));
            if total < 4 || total > fork.len() {
                return Err(self.invalid(&format!("{field} totsize"), total, format!("not 4..{}", fork.len())));
            }
            let mut at = 4;
            for _ in 0..byte(fork, 2) {
                let (nlen, vlen, flags) = (usize::from(byte(fork, at)), usize::from(byte(fork, at + 1)), byte(fork, at + 2));
                let end = at + 3 + nlen + vlen;
                if end > total {
                    return Err(self.invalid(&format!("{field} entry at {at}"), nlen, "runs past totsize"));
                }
                let same = flags & (ATTR_ROOT | ATTR_SECURE) == ns && &fork[at + 3..at + 3 + nlen] == want;
                if !same {
                    entries.push(fork[at..end].to_vec());
                }
                at = end;
            }
        }
        let mut e = vec![want.len() as u8, value.len() as u8, ns];
        e.extend_from_slice(want);
        e.extend_from_slice(value);
        entries.push(e);
        let total = 4 + entries.iter().map(Vec::len).sum::<usize>();
        let (Ok(count), Ok(tot16)) = (u8::try_from(entries.len()), u16::try_from(total)) else {
            return Err(self.unsupported(format!("inode {} attribute fork of {total} bytes", i.ino)));
        };
        let mut sf = Vec::with_capacity(total);
        sf.extend_from_slice(&tot16.to_be_bytes());
        sf.extend_from_slice(&[count, 0]);
        entries.iter().for_each(|e| sf.extend_from_slice(e));
        let done = i.set_attr_sf(&sf);
        if !done {
            return Err(self.unsupported(format!("setting {name} of {path}: inode {} has no room for it in its shortform attribute fork", i.ino)));
        }
        i.touch_ctime();
        self.write_inode(&mut i)
    }

    /// The value of extended attribute `name` (`security.selinux`, `user.x`, `trusted.x`) of
    /// the inode, `None` if it has none by that name.
    pub(super) fn inode_xattr(&self, ino: &Inode, name: &str) -> Result<Option<Vec<u8>>, FsError> {
        let Some((ns, want)) = split_name(name) else { return Ok(None) };
        let fork = ino.attr_fork();
        if fork.is_empty() {
            return Ok(None);
        }
        let field = format!("inode {} attribute fork", ino.ino);
        match ino.aformat() {
            FMT_LOCAL => {
                let total = usize::from(be16(fork, 0));
                if total < 4 || total > fork.len() {
                    return Err(self.invalid(&format!("{field} totsize"), total, format!("not 4..{}", fork.len())));
                }
                let count = byte(fork, 2);
                let mut at = 4;
                for _ in 0..count {
                    let (nlen, vlen, flags) = (usize::from(byte(fork, at)), usize::from(byte(fork, at + 1)), byte(fork, at + 2));
                    let end = at + 3 + nlen + vlen;
                    if end > total {
                        return Err(self.invalid(&format!("{field} entry at {at}"), nlen, "runs past totsize"));
                    }
                    if flags & (ATTR_ROOT | ATTR_SECURE) == ns && &fork[at + 3..at + 3 + nlen] == want {
                        return Ok(Some(fork[at + 3 + nlen..end].to_vec()));
                    }
                    at = end;
                }
                Ok(None)
            }
            FMT_EXTENTS | FMT_BTREE => {
                let ext = self.attr_extents(ino)?;
                let mut scanned = 0u64;
                for e in &ext {
                    for k in 0..e.len {
                        scanned += 1;
                        if scanned > MAX_BLOCKS {
                            return Err(self.invalid(&field, scanned, "too many attribute blocks"));
                        }
                        let mut b = vec![0u8; self.sb.block as usize];
                        self.read_fsb(&mut b, e.fsb + k, &field)?;
                        if let Some(v) = self.leaf_lookup(ino.ino, &ext, &b, ns, want)? {
                            return Ok(Some(v));
                        }
                    }
                }
                Ok(None)
            }
            f => Err(self.invalid(&format!("{field} format"), f, "not an attribute fork format")),
        }
    }

    /// Looks `want` up in one attribute leaf block (other block types are skipped).
    fn leaf_lookup(&self, ino: u64, ext: &[Extent], b: &[u8], ns: u8, want: &[u8]) -> Result<Option<Vec<u8>>, FsError> {
        let (magic, hdr, count_at) = if self.sb.v5 { (LEAF_MAGIC_V5, 80, 56) } else { (LEAF_MAGIC_V4, 32, 12) };
        if be16(b, 8) != magic {
            return Ok(None);
        }
        let field = format!("inode {ino} attribute leaf");
        if self.sb.v5 && (!crc_ok(b, 12) || be64(b, 48) != ino) {
            return Err(self.invalid(&format!("{field} crc/owner"), format!("{:#010x}", be32(b, 12)), "checksum mismatch or another inode's block"));
        }
        let count = usize::from(be16(b, count_at));
        if hdr + count * 8 > b.len() {
            return Err(self.invalid(&format!("{field} count"), count, "more entries than the block holds"));
        }
        for i in 0..count {
            let e = hdr + i * 8;
            let (idx, flags) = (usize::from(be16(b, e + 4)), byte(b, e + 6));
            if flags & ATTR_INCOMPLETE != 0 || flags & (ATTR_ROOT | ATTR_SECURE) != ns {
                continue;
            }
            if flags & ATTR_LOCAL != 0 {
                let (vlen, nlen) = (usize::from(be16(b, idx)), usize::from(byte(b, idx + 2)));
                let Some(nv) = b.get(idx + 3..idx + 3 + nlen + vlen) else {
                    return Err(self.invalid(&format!("{field} entry {i}"), idx, "runs past the block"));
                };
                if &nv[..nlen] == want {
                    return Ok(Some(nv[nlen..].to_vec()));
                }
            } else {
                let (blk, vlen, nlen) = (u64::from(be32(b, idx)), be32(b, idx + 4) as usize, usize::from(byte(b, idx + 8)));
                if b.get(idx + 9..idx + 9 + nlen) != Some(want) {
                    continue;
                }
                if vlen > MAX_VALUE {
                    return Err(self.invalid(&format!("{field} entry {i} valuelen"), vlen, "larger than 64 KiB"));
                }
                return Ok(Some(self.remote_value(ino, ext, blk, vlen)?));
            }
        }
        Ok(None)
    }

    /// A remote attribute value of `vlen` bytes starting at attribute-fork block `blk`.
    fn remote_value(&self, ino: u64, ext: &[Extent], mut blk: u64, vlen: usize) -> Result<Vec<u8>, FsError> {
        let field = format!("inode {ino} remote attribute value");
        let bs = self.sb.block as usize;
        let mut out = Vec::with_capacity(vlen);
        while out.len() < vlen {
            let Some(e) = ext.iter().find(|e| e.off <= blk && blk < e.off + e.len) else {
                return Err(self.invalid(&format!("{field} block"), blk, "not mapped"));
            };
            let mut b = vec![0u8; bs];
            self.read_fsb(&mut b, e.fsb + (blk - e.off), &field)?;
            let data = if self.sb.v5 {
                if b.get(0..4) != Some(b"XARM") || !crc_ok(&b, 12) || be64(&b, 32) != ino {
                    return Err(self.invalid(&format!("{field} header"), format!("{:#010x}", be32(&b, 0)), "bad magic, checksum or owner"));
                }
                let n = (be32(&b, 8) as usize).min(bs - RMT_HDR);
                b[RMT_HDR..RMT_HDR + n].to_vec()
            } else {
                b
            };
            if data.is_empty() {
                return Err(self.invalid(&format!("{field} block"), blk, "empty"));
            }
            let take = data.len().min(vlen - out.len());
            out.extend_from_slice(&data[..take]);
            blk += 1;
        }
        Ok(out)
    }
}
