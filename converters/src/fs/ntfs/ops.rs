//! Path operations: read, list, create or rewrite a file, make a directory, rename, delete.
//! Paths are `/` or `\` separated from the volume's root; names are looked up
//! case-insensitively, as Windows does.

use super::bytes::*;
use super::index::{Entry, Index};
use super::name::*;
use super::record::*;
use super::runs;
use super::Ntfs;
use crate::fs::{FsError, PathProblem};
use std::time::{SystemTime, UNIX_EPOCH};

const ROOT: u64 = 5;
const REF_MASK: u64 = (1 << 48) - 1;
const FILE_ATTR_ARCHIVE: u32 = 0x20;
const FILE_ATTR_DIR_INDEX: u32 = 0x1000_0000;
/// Compressed, encrypted, sparse: attribute flags the writer refuses to change.
const UNWRITABLE: u16 = 0x00ff | 0x4000 | 0x8000;

/// A directory entry as listed (DOS-only names left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub record: u64,
    pub dir: bool,
}

pub(super) fn now() -> u64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() + 11_644_473_600) * 10_000_000 + d.subsec_nanos() as u64 / 100
}

fn components(path: &str) -> Vec<Vec<u16>> {
    path.split(['/', '\\']).filter(|c| !c.is_empty()).map(|c| c.encode_utf16().collect()).collect()
}

/// A `$FILE_NAME` value.
fn file_name(parent: u64, name: &[u16], ns: u8, t: u64, alloc: u64, size: u64, attrs: u32) -> Vec<u8> {
    let mut v = vec![0u8; 0x42 + 2 * name.len()];
    put64(&mut v, 0, parent);
    for o in [8, 0x10, 0x18, 0x20] {
        put64(&mut v, o, t);
    }
    put64(&mut v, 0x28, alloc);
    put64(&mut v, 0x30, size);
    put32(&mut v, 0x38, attrs);
    v[0x40] = name.len() as u8;
    v[0x41] = ns;
    for (i, c) in name.iter().enumerate() {
        put16(&mut v, 0x42 + 2 * i, *c);
    }
    v
}

fn std_info(t: u64, attrs: u32, security_id: u32) -> Vec<u8> {
    let mut v = vec![0u8; 72];
    for o in [0, 8, 0x10, 0x18] {
        put64(&mut v, o, t);
    }
    put32(&mut v, 0x20, attrs);
    put32(&mut v, 0x34, security_id);
    v
}

impl<'a> Ntfs<'a> {
    fn path_err(&self, path: &str, problem: PathProblem) -> FsError {
        FsError::Path { fs: self.name.clone(), path: path.into(), problem }
    }

    /// Reads the record a file reference names, checking its sequence number.
    pub(super) fn read_ref(&self, fref: u64) -> Result<Record, FsError> {
        let rec = self.read_record(fref & REF_MASK)?;
        let seq = (fref >> 48) as u16;
        if rec.flags() & REC_IN_USE == 0 || (seq != 0 && rec.seq() != seq) || rec.base() != 0 {
            return Err(self.bad("file reference", format!("record {} sequence {seq}", fref & REF_MASK), format!("stale or not a base record (record sequence {}, flags {:#x})", rec.seq(), rec.flags())));
        }
        Ok(rec)
    }

    /// Refuses files other metadata indexes point at: reparse points (`$Extend\$Reparse`)
    /// for any change, object ids (`$Extend\$ObjId`) for deletion.
    fn check_indexed(&self, path: &str, rec: &Record, deleting: bool) -> Result<(), FsError> {
        if rec.find(AT_REPARSE_POINT, &[]).is_some() {
            return Err(self.unsupported(path, "changing a reparse point (symbolic link, junction, deduplicated or cloud file)"));
        }
        if deleting && rec.find(AT_OBJECT_ID, &[]).is_some() {
            return Err(self.unsupported(path, "deleting a file with an object id (indexed in $Extend\\$ObjId)"));
        }
        Ok(())
    }

    fn with_index<T>(&mut self, dir: u64, f: impl FnOnce(&mut Self, &mut Index) -> Result<T, FsError>) -> Result<T, FsError> {
        let mut ix = self.take_index(dir)?;
        let r = f(self, &mut ix);
        if r.is_ok() {
            self.put_index(ix);
        }
        r
    }

    fn lookup(&mut self, dir: u64, name: &[u16]) -> Result<Option<Entry>, FsError> {
        self.with_index(dir, |fs, ix| fs.index_find(ix, name))
    }

    /// The file reference of `path` (None if missing); `/` is the root directory.
    pub(super) fn resolve(&mut self, path: &str) -> Result<Option<u64>, FsError> {
        let root = self.read_record(ROOT)?;
        let mut cur = ROOT | (root.seq() as u64) << 48;
        for c in components(path) {
            let rec = self.read_ref(cur)?;
            if rec.flags() & REC_DIRECTORY == 0 {
                return Err(self.path_err(path, PathProblem::NotDirectory));
            }
            match self.lookup(cur & REF_MASK, &c)? {
                Some(e) => cur = e.file_ref,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// The parent directory's reference and the last name of `path`.
    fn parent_of(&mut self, path: &str) -> Result<(u64, Vec<u16>), FsError> {
        let mut comps = components(path);
        let Some(name) = comps.pop() else { return Err(self.path_err(path, PathProblem::Exists)) };
        if let Some(why) = invalid(&name) {
            return Err(FsError::Invalid { fs: self.name.clone(), field: "file name".into(), value: format!("{path:?}"), reason: why.into() });
        }
        let parent: String = comps.iter().map(|c| format!("/{}", name_str(c))).collect();
        let p = self.resolve(&parent)?.ok_or_else(|| self.path_err(path, PathProblem::NotFound))?;
        if self.read_ref(p)?.flags() & REC_DIRECTORY == 0 {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        Ok((p, name))
    }

    /// The first `max` bytes of the file at `path`; None if it does not exist.
    pub(super) fn read_head(&mut self, path: &str, max: u64) -> Result<Option<Vec<u8>>, FsError> {
        let Some(f) = self.resolve(path)? else { return Ok(None) };
        let rec = self.read_ref(f)?;
        let Some(a) = rec.find(AT_DATA, &[]) else { return Ok(Some(Vec::new())) };
        if !a.nonres {
            return Ok(Some(rec.value(&a).iter().take(max as usize).copied().collect()));
        }
        let (r, s) = self.attr_runs(&rec, &a)?;
        let mut v = vec![0u8; s.size.min(max) as usize];
        let n = (s.init.min(max)) as usize;
        self.read_runs(&r, 0, &mut v[..n])?;
        Ok(Some(v))
    }

    /// The data of the file at `path`, refused above `limit` bytes; None if missing.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
        let Some(f) = self.resolve(path)? else { return Ok(None) };
        let rec = self.read_ref(f)?;
        if rec.flags() & REC_DIRECTORY != 0 {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        match rec.find(AT_DATA, &[]) {
            Some(a) => self.attr_value(&rec, &a, limit).map(Some),
            None if rec.find(AT_ATTRIBUTE_LIST, &[]).is_some() => Err(self.unsupported(path, "a file whose $DATA is in an attribute list")),
            None => Ok(Some(Vec::new())),
        }
    }

    /// True if `path` exists.
    pub fn exists(&mut self, path: &str) -> Result<bool, FsError> {
        Ok(self.resolve(path)?.is_some())
    }

    /// The entries of the directory at `path` (Win32/POSIX names; DOS-only ones left out).
    pub fn list(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let d = self.resolve(path)?.ok_or_else(|| self.path_err(path, PathProblem::NotFound))?;
        if self.read_ref(d)?.flags() & REC_DIRECTORY == 0 {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        let all = self.with_index(d & REF_MASK, |fs, ix| fs.index_all(ix))?;
        Ok(all
            .into_iter()
            .filter(|e| e.namespace() != NS_DOS)
            .map(|e| DirEntry { name: name_str(&e.name()), record: e.file_ref & REF_MASK, dir: u32_at(&e.key, 0x38).unwrap_or(0) & FILE_ATTR_DIR_INDEX != 0 })
            .collect())
    }

    /// Whether directory `dir`'s entries carry DOS names (some entry is DOS-only).
    fn uses_dos(&mut self, dir: u64) -> Result<bool, FsError> {
        self.with_index(dir, |fs, ix| {
            if let Some(d) = ix.uses_dos {
                return Ok(d);
            }
            let d = fs.index_all(ix)?.iter().any(|e| e.namespace() == NS_DOS);
            ix.uses_dos = Some(d);
            Ok(d)
        })
    }

    /// The `$FILE_NAME` values a new name `name` in `parent` gets: (namespace, name).
    fn names_for(&mut self, parent: u64, name: &[u16]) -> Result<Vec<(u8, Vec<u16>)>, FsError> {
        if !self.uses_dos(parent & REF_MASK)? {
            return Ok(vec![(NS_WIN32, name.to_vec())]);
        }
        if is_dos(name) {
            return Ok(vec![(NS_BOTH, name.to_vec())]);
        }
        for n in 1..=999_999 {
            let d = dos_name(name, n);
            if self.lookup(parent & REF_MASK, &d)?.is_none() {
                return Ok(vec![(NS_WIN32, name.to_vec()), (NS_DOS, d)]);
            }
        }
        Err(FsError::NoSpace { fs: self.name.clone(), what: format!("a DOS name for {}", name_str(name)) })
    }

    fn security_id(&self, parent: &Record) -> u32 {
        parent.find(AT_STANDARD_INFORMATION, &[]).map(|a| parent.value(&a)).and_then(|v| if v.len() >= 0x38 { u32_at(v, 0x34) } else { None }).unwrap_or(0)
    }

    /// Puts `data` into `rec` as its unnamed `$DATA` (none there): resident when it fits,
    /// otherwise in newly allocated clusters. Returns (allocated, size).
    fn put_data(&mut self, path: &str, rec: &mut Record, data: &[u8]) -> Result<(u64, u64), FsError> {
        let small = data.len() <= self.geo.record / 2;
        if small && rec.insert(resident(AT_DATA, &[], data, false)) {
            return Ok((align8(data.len()) as u64, data.len() as u64));
        }
        let c = self.geo.cluster;
        let n = (data.len() as u64).div_ceil(c);
        let r = self.alloc_clusters(n)?;
        let mut padded = data.to_vec();
        padded.resize((n * c) as usize, 0);
        self.write_runs(&r, 0, &padded)?;
        let attr = nonresident(AT_DATA, &[], &runs::encode(&r), n, n * c, data.len() as u64, data.len() as u64);
        if !rec.insert(attr) {
            self.free_clusters(&r)?;
            return Err(self.unsupported(path, format!("data in {} fragments (would need an attribute list)", r.len())));
        }
        Ok((n * c, data.len() as u64))
    }

    /// Creates the file or directory `path` (must not exist) with `data`.
    fn create(&mut self, path: &str, data: Option<&[u8]>) -> Result<u64, FsError> {
        let (parent, name) = self.parent_of(path)?;
        if self.lookup(parent & REF_MASK, &name)?.is_some() {
            return Err(self.path_err(path, PathProblem::Exists));
        }
        let prec = self.read_ref(parent)?;
        let sid = self.security_id(&prec);
        let names = self.names_for(parent, &name)?;
        let (n, seq) = self.alloc_record()?;
        let fref = n | (seq as u64) << 48;
        let t = now();
        let mut rec = Record::blank(n, self.geo.record, seq);
        let dir = data.is_none();
        rec.set_flags(REC_IN_USE | if dir { REC_DIRECTORY } else { 0 });
        rec.set_links(names.len() as u16);
        let attrs = if dir { FILE_ATTR_DIR_INDEX } else { FILE_ATTR_ARCHIVE };
        rec.insert(resident(AT_STANDARD_INFORMATION, &[], &std_info(t, if dir { 0 } else { FILE_ATTR_ARCHIVE }, sid), false));
        // A parent without a $Secure id but with its own descriptor (as ntfs-3g leaves
        // them): the new file gets a copy.
        if sid == 0 {
            if let Some(a) = prec.find(AT_SECURITY_DESCRIPTOR, &[]).filter(|a| !a.nonres) {
                rec.insert(resident(AT_SECURITY_DESCRIPTOR, &[], prec.value(&a), false));
            }
        }
        let (alloc, size) = match data {
            Some(d) => match self.put_data(path, &mut rec, d) {
                Ok(s) => s,
                Err(e) => {
                    self.free_record(rec)?;
                    return Err(e);
                }
            },
            None => {
                let block = self.geo.index_block;
                let cpb = if block as u64 >= self.geo.cluster { block as u64 / self.geo.cluster } else { block as u64 / 512 };
                let mut v = vec![0u8; 0x30];
                put32(&mut v, 0, AT_FILE_NAME);
                put32(&mut v, 4, 1);
                put32(&mut v, 8, block as u32);
                v[12] = cpb as u8;
                put32(&mut v, 0x10, 0x10);
                put32(&mut v, 0x14, 0x20);
                put32(&mut v, 0x18, 0x20);
                put16(&mut v, 0x28, 0x10);
                put32(&mut v, 0x2c, 2);
                rec.insert(resident(AT_INDEX_ROOT, &i30(), &v, false));
                (0, 0)
            }
        };
        let keys: Vec<Vec<u8>> = names.iter().map(|(ns, nm)| file_name(parent, nm, *ns, t, alloc, size, attrs)).collect();
        for k in &keys {
            rec.insert(resident(AT_FILE_NAME, &[], k, true));
        }
        self.write_record(&rec)?;
        for k in keys {
            self.with_index(parent & REF_MASK, |fs, ix| {
                if names.iter().any(|(ns, _)| *ns == NS_DOS) {
                    ix.uses_dos = Some(true);
                }
                fs.index_insert(ix, Entry { file_ref: fref, key: k, child: None })
            })?;
        }
        self.dir_changed(parent)?;
        Ok(fref)
    }

    /// Makes the directory `path` (its parent must exist).
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        self.create(path, None).map(|_| ())
    }

    /// Writes `data` as the whole content of the file `path`: created if missing, else
    /// its data replaced (grown, shrunk, or rewritten through its clusters when the
    /// cluster count is unchanged).
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), FsError> {
        let Some(f) = self.resolve(path)? else {
            return self.create(path, Some(data)).map(|_| ());
        };
        let mut rec = self.read_ref(f)?;
        if rec.flags() & REC_DIRECTORY != 0 {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        self.check_indexed(path, &rec, false)?;
        if rec.find(AT_ATTRIBUTE_LIST, &[]).is_some() {
            return Err(self.unsupported(path, "a file with an attribute list"));
        }
        let (alloc, size) = match rec.find(AT_DATA, &[]) {
            None => self.put_data(path, &mut rec, data)?,
            Some(a) if a.flags & UNWRITABLE != 0 => {
                return Err(self.bad("$DATA flags", format!("{path}: {:#06x}", a.flags), "compressed, encrypted or sparse files are not written"));
            }
            Some(a) if !a.nonres => {
                rec.remove(&a);
                self.put_data(path, &mut rec, data)?
            }
            Some(a) if data.is_empty() => {
                let (r, _) = self.attr_runs(&rec, &a)?;
                self.free_clusters(&r)?;
                rec.remove(&a);
                self.put_data(path, &mut rec, data)?
            }
            Some(a) => {
                let (mut r, _) = self.attr_runs(&rec, &a)?;
                if r.iter().any(|x| x.lcn.is_none()) {
                    return Err(self.bad("$DATA runs", path.to_string(), "sparse runs are not written"));
                }
                let c = self.geo.cluster;
                let (have, need) = (runs::clusters(&r), (data.len() as u64).div_ceil(c));
                let mut fresh = Vec::new();
                if need < have {
                    let tail = runs::truncate(&mut r, need);
                    self.free_clusters(&tail)?;
                } else if need > have {
                    fresh = self.alloc_after(&r, need - have)?;
                    runs::append(&mut r, &fresh);
                }
                let attr = nonresident(AT_DATA, &[], &runs::encode(&r), need, need * c, data.len() as u64, data.len() as u64);
                if !rec.replace(&a, attr) {
                    self.free_clusters(&fresh)?;
                    return Err(self.unsupported(path, "data in more fragments than its record holds (would need an attribute list)"));
                }
                let mut padded = data.to_vec();
                padded.resize((need * c) as usize, 0);
                self.write_runs(&r, 0, &padded)?;
                (need * c, data.len() as u64)
            }
        };
        self.touch(&mut rec, alloc, size)?;
        self.write_record(&rec)?;
        Ok(())
    }

    /// Directory `dir` changed (an entry added, removed or renamed): its modification and
    /// MFT change times in `$STANDARD_INFORMATION` set to now, as Windows does.
    fn dir_changed(&mut self, dir: u64) -> Result<(), FsError> {
        let mut rec = self.read_record(dir & REF_MASK)?;
        let Some(a) = rec.find(AT_STANDARD_INFORMATION, &[]) else { return Ok(()) };
        let mut v = rec.value(&a).to_vec();
        if v.len() < 0x20 {
            return Ok(());
        }
        let t = now();
        put64(&mut v, 8, t);
        put64(&mut v, 0x10, t);
        if rec.replace(&a, resident(AT_STANDARD_INFORMATION, &[], &v, false)) {
            self.write_record(&rec)?;
        }
        Ok(())
    }

    /// New times in `$STANDARD_INFORMATION`; new sizes in the `$FILE_NAME`s and their
    /// index entries.
    fn touch(&mut self, rec: &mut Record, alloc: u64, size: u64) -> Result<(), FsError> {
        let t = now();
        if let Some(a) = rec.find(AT_STANDARD_INFORMATION, &[]) {
            let mut v = rec.value(&a).to_vec();
            if v.len() >= 0x20 {
                put64(&mut v, 8, t);
                put64(&mut v, 0x10, t);
                rec.replace(&a, resident(AT_STANDARD_INFORMATION, &[], &v, false));
            }
        }
        for a in rec.attrs().into_iter().filter(|a| a.ty == AT_FILE_NAME && !a.nonres) {
            let mut v = rec.value(&a).to_vec();
            if v.len() < 0x42 {
                continue;
            }
            put64(&mut v, 0x28, alloc);
            put64(&mut v, 0x30, size);
            let a2 = rec.attrs().into_iter().find(|x| x.off == a.off).unwrap_or(a);
            rec.replace(&a2, resident(AT_FILE_NAME, &[], &v, true));
            let parent = u64_at(&v, 0).unwrap_or(0) & REF_MASK;
            let name: Vec<u16> = (0..v[0x40] as usize).map(|i| u16_at(&v, 0x42 + 2 * i).unwrap_or(0)).collect();
            self.with_index(parent, |fs, ix| fs.index_update(ix, &name, &v))?;
        }
        Ok(())
    }

    /// The index entries of `f` in `dir` (named `names`): removed from their leaves, or
    /// the index rebuilt without them.
    fn unlink_entries(&mut self, dir: u64, f: u64, names: &[Vec<u16>]) -> Result<(), FsError> {
        self.with_index(dir, |fs, ix| {
            let mut done = 0;
            for n in names {
                if fs.index_remove_leaf(ix, n)? {
                    done += 1;
                } else {
                    break;
                }
            }
            if done == names.len() {
                return Ok(());
            }
            let all = fs.index_all(ix)?;
            let keep: Vec<Entry> = all.iter().filter(|e| e.file_ref & REF_MASK != f & REF_MASK).cloned().collect();
            if keep.len() == all.len() {
                return Err(fs.bad("directory index", format!("record {dir}"), format!("no entry for record {}", f & REF_MASK)));
            }
            fs.index_rebuild(ix, keep)
        })
    }

    /// The parent directory and names of `rec`'s `$FILE_NAME`s.
    fn links(&self, rec: &Record) -> Vec<(u64, u8, Vec<u16>)> {
        rec.attrs()
            .into_iter()
            .filter(|a| a.ty == AT_FILE_NAME && !a.nonres)
            .filter_map(|a| {
                let v = rec.value(&a);
                let n = *v.get(0x40)? as usize;
                let name = (0..n).map(|i| u16_at(v, 0x42 + 2 * i)).collect::<Option<Vec<u16>>>()?;
                Some((u64_at(v, 0)?, *v.get(0x41)?, name))
            })
            .collect()
    }

    /// Deletes the file or empty directory `path`: its index entries, clusters and record.
    pub fn remove(&mut self, path: &str) -> Result<(), FsError> {
        let f = self.resolve(path)?.ok_or_else(|| self.path_err(path, PathProblem::NotFound))?;
        if f & REF_MASK < 24 {
            return Err(self.unsupported(path, "deleting a system file"));
        }
        let rec = self.read_ref(f)?;
        if rec.find(AT_ATTRIBUTE_LIST, &[]).is_some() {
            return Err(self.unsupported(path, "a file with an attribute list"));
        }
        self.check_indexed(path, &rec, true)?;
        let links = self.links(&rec);
        let parents: Vec<u64> = links.iter().map(|l| l.0 & REF_MASK).collect();
        if links.iter().filter(|l| l.1 != NS_DOS).count() != 1 || parents.iter().any(|p| *p != parents[0]) {
            return Err(self.unsupported(path, format!("a file with {} hard links", links.len())));
        }
        if rec.flags() & REC_DIRECTORY != 0 {
            let mut ix = self.take_index(f & REF_MASK)?;
            if !self.index_all(&mut ix)?.is_empty() {
                return Err(self.path_err(path, PathProblem::NotEmpty));
            }
            self.free_clusters(&Self::index_clusters(&ix))?;
        }
        for a in rec.attrs().into_iter().filter(|a| a.nonres && a.ty != AT_INDEX_ALLOCATION) {
            let (r, _) = self.attr_runs(&rec, &a)?;
            self.free_clusters(&r)?;
        }
        let names: Vec<Vec<u16>> = links.into_iter().map(|l| l.2).collect();
        self.unlink_entries(parents[0], f, &names)?;
        self.free_record(rec)?;
        self.dir_changed(parents[0])
    }

    /// Renames (or moves) `from` to `to`; `to` must not exist (a case-only change of the
    /// same name is allowed).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let f = self.resolve(from)?.ok_or_else(|| self.path_err(from, PathProblem::NotFound))?;
        if f & REF_MASK < 24 {
            return Err(self.unsupported(from, "renaming a system file"));
        }
        let (np, name) = self.parent_of(to)?;
        if let Some(e) = self.lookup(np & REF_MASK, &name)? {
            if e.file_ref & REF_MASK != f & REF_MASK {
                return Err(self.path_err(to, PathProblem::Exists));
            }
        }
        // A directory never moves under itself.
        let mut up = np;
        for _ in 0..4096 {
            if up & REF_MASK == f & REF_MASK {
                return Err(self.path_err(to, PathProblem::IntoItself));
            }
            if up & REF_MASK == ROOT {
                break;
            }
            let r = self.read_ref(up)?;
            up = self.links(&r).first().map(|l| l.0).unwrap_or(ROOT);
        }
        let mut rec = self.read_ref(f)?;
        if rec.find(AT_ATTRIBUTE_LIST, &[]).is_some() {
            return Err(self.unsupported(from, "a file with an attribute list"));
        }
        self.check_indexed(from, &rec, false)?;
        let links = self.links(&rec);
        let old_parent = links.first().map(|l| l.0 & REF_MASK).unwrap_or(ROOT);
        if links.iter().filter(|l| l.1 != NS_DOS).count() != 1 || links.iter().any(|l| l.0 & REF_MASK != old_parent) {
            return Err(self.unsupported(from, format!("a file with {} hard links", links.len())));
        }
        let fn_old = rec.attrs().into_iter().find(|a| a.ty == AT_FILE_NAME).map(|a| rec.value(&a).to_vec()).unwrap_or_default();
        let (t, alloc, size, attrs) = (now(), u64_at(&fn_old, 0x28).unwrap_or(0), u64_at(&fn_old, 0x30).unwrap_or(0), u32_at(&fn_old, 0x38).unwrap_or(0));
        let names: Vec<Vec<u16>> = links.iter().map(|l| l.2.clone()).collect();
        self.unlink_entries(old_parent, f, &names)?;
        let names = self.names_for(np, &name)?;
        while let Some(a) = rec.attrs().into_iter().find(|a| a.ty == AT_FILE_NAME) {
            rec.remove(&a);
        }
        let keys: Vec<Vec<u8>> = names.iter().map(|(ns, nm)| file_name(np, nm, *ns, t, alloc, size, attrs)).collect();
        rec.set_links(keys.len() as u16);
        for k in &keys {
            if !rec.insert(resident(AT_FILE_NAME, &[], k, true)) {
                return Err(self.unsupported(to, "a name that does not fit in the file's record"));
            }
        }
        self.write_record(&rec)?;
        for k in keys {
            self.with_index(np & REF_MASK, |fs, ix| {
                if names.iter().any(|(ns, _)| *ns == NS_DOS) {
                    ix.uses_dos = Some(true);
                }
                fs.index_insert(ix, Entry { file_ref: f, key: k, child: None })
            })?;
        }
        self.dir_changed(old_parent)?;
        if np & REF_MASK != old_parent {
            self.dir_changed(np)?;
        }
        Ok(())
    }
}
