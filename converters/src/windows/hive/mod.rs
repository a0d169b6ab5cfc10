//! Registry hives (regf) edited in place, as hivex does: keys and values created,
//! overwritten and deleted, cells allocated first-fit in the existing bins (a bin appended
//! when nothing fits), subkey lists rewritten sorted (split under an "ri" when long),
//! security records shared by reference count, and on [`Hive::to_bytes`] the sequence
//! numbers bumped equal and the base block checksum recomputed. Everything not edited keeps
//! its bytes.
//!
//! A hive whose sequence numbers differ has transaction logs (.LOG1/.LOG2) not yet applied;
//! it is refused in one line. No crate on crates.io writes hives (nt-hive, notatin and
//! frnsc-hive read only), hence this module.
//!
//! ```
//! use ferry_converters::windows::hive::{Hive, Value};
//! # fn f(bytes: Vec<u8>) -> Result<(), ferry_converters::windows::hive::HiveError> {
//! let mut h = Hive::open("SYSTEM", bytes)?;
//! let k = h.create_key("ControlSet001\\Services\\viostor")?;
//! h.set_value(k, "Start", &Value::Dword(0))?;
//! let out = h.to_bytes();
//! # Ok(()) }
//! ```

mod base;
mod bins;
mod error;
mod key;
mod list;
mod name;
mod security;
mod value;

pub use error::HiveError;
pub use value::Value;

use bins::Store;
use key::NONE;

/// Paths deeper than this are refused (Windows allows 512 levels).
const MAX_DEPTH: usize = 512;
/// Key and value names longer than this (in characters) are refused, as Windows does.
const MAX_KEY_NAME: usize = 255;
const MAX_VALUE_NAME: usize = 16383;

/// A key: the offset of its node. Invalid once the key (or an ancestor) is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(u32);

/// A hive held in memory for editing.
pub struct Hive {
    s: Store,
    sequence: u32,
    minor: u32,
    root: Key,
}

impl Hive {
    /// Checks the base block, every bin and cell, and the root key. `file` names the hive in
    /// errors.
    pub fn open(file: &str, data: Vec<u8>) -> Result<Hive, HiveError> {
        let b = base::parse(file, &data)?;
        let s = Store::open(file, data, b.bins_size)?;
        let nk = key::read(&s, b.root)?;
        if nk.flags & key::FLAG_ROOT == 0 {
            return Err(s.bad("root key flags", format!("{:#06x}", nk.flags), "not marked as the hive root"));
        }
        Ok(Hive { s, sequence: b.sequence, minor: b.minor, root: Key(b.root) })
    }

    /// The file name given to [`Hive::open`].
    pub fn file(&self) -> &str {
        &self.s.file
    }

    pub fn root(&self) -> Key {
        self.root
    }

    fn path_err(&self, path: &str, problem: &str) -> HiveError {
        HiveError::Path { file: self.s.file.clone(), path: error::escape_str(path), problem: problem.into() }
    }

    /// The key's name (empty-named roots as stored).
    pub fn name(&self, k: Key) -> Result<String, HiveError> {
        Ok(key::read(&self.s, k.0)?.name)
    }

    /// The key's subkeys in stored order with their names.
    pub fn subkeys(&self, k: Key) -> Result<Vec<(String, Key)>, HiveError> {
        let nk = key::read(&self.s, k.0)?;
        if nk.subkeys == 0 || nk.subkey_list == NONE {
            return Ok(Vec::new());
        }
        let offs = list::read(&self.s, nk.subkey_list)?;
        if offs.len() != nk.subkeys as usize {
            return Err(self.s.bad(
                &format!("subkey count of key at {:#x}", k.0),
                nk.subkeys.to_string(),
                &format!("its list holds {}", offs.len()),
            ));
        }
        offs.into_iter().map(|o| Ok((key::read(&self.s, o)?.name, Key(o)))).collect()
    }

    /// The subkey of `k` named `name` (case-insensitive).
    pub fn subkey(&self, k: Key, name: &str) -> Result<Option<Key>, HiveError> {
        let want = name::upper(name);
        for e in self.entries(k)? {
            let (raw, comp) = key::raw_name(&self.s, e.off)?;
            if name::cmp_raw(raw, comp, &want).is_eq() {
                return Ok(Some(Key(e.off)));
            }
        }
        Ok(None)
    }

    /// The subkey list entries of `k`, checked against its subkey count.
    fn entries(&self, k: Key) -> Result<Vec<list::Entry>, HiveError> {
        let nk = key::read(&self.s, k.0)?;
        if nk.subkeys == 0 || nk.subkey_list == NONE {
            return Ok(Vec::new());
        }
        let entries = list::entries(&self.s, nk.subkey_list, self.minor)?;
        if entries.len() != nk.subkeys as usize {
            return Err(self.s.bad(
                &format!("subkey count of key at {:#x}", k.0),
                nk.subkeys.to_string(),
                &format!("its list holds {}", entries.len()),
            ));
        }
        Ok(entries)
    }

    /// (node, hint) pairs for rewriting a list, decoding names only where no hint is stored.
    fn with_hints(&self, entries: &[list::Entry]) -> Result<Vec<(u32, u32)>, HiveError> {
        entries
            .iter()
            .map(|e| match e.hint {
                Some(h) => Ok((e.off, h)),
                None => Ok((e.off, list::hint(self.minor, &key::read(&self.s, e.off)?.name))),
            })
            .collect()
    }

    /// The key at a backslash-separated path from the root (case-insensitive).
    pub fn lookup(&self, path: &str) -> Result<Option<Key>, HiveError> {
        let mut k = self.root;
        for part in components(path) {
            match self.subkey(k, part)? {
                Some(sub) => k = sub,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    }

    fn value_offsets(&self, k: Key) -> Result<Vec<u32>, HiveError> {
        let nk = key::read(&self.s, k.0)?;
        if nk.values == 0 || nk.value_list == NONE {
            return Ok(Vec::new());
        }
        let c = self.s.cell(nk.value_list)?;
        let n = nk.values as usize;
        if n.saturating_mul(4) > c.len() {
            return Err(self.s.bad(&format!("value count of key at {:#x}", k.0), n.to_string(), "runs past its value list"));
        }
        Ok((0..n).map(|i| base::u32_at(c, i * 4)).collect())
    }

    /// The key's values in stored order (the default value has an empty name).
    pub fn values(&self, k: Key) -> Result<Vec<(String, Value)>, HiveError> {
        let mut out = Vec::new();
        for o in self.value_offsets(k)? {
            let vk = value::read(&self.s, o)?;
            let data = value::data(&self.s, self.minor, &vk)?;
            out.push((vk.name, Value::decode(vk.ty, data)));
        }
        Ok(out)
    }

    /// The value of `k` named `name` (case-insensitive; "" is the default value).
    pub fn value(&self, k: Key, name: &str) -> Result<Option<Value>, HiveError> {
        for o in self.value_offsets(k)? {
            let vk = value::read(&self.s, o)?;
            if name::eq(&vk.name, name) {
                let data = value::data(&self.s, self.minor, &vk)?;
                return Ok(Some(Value::decode(vk.ty, data)));
            }
        }
        Ok(None)
    }

    /// Creates the key at `path` and any missing parents; returns it (existing or new).
    pub fn create_key(&mut self, path: &str) -> Result<Key, HiveError> {
        let parts: Vec<&str> = components(path).collect();
        if parts.len() > MAX_DEPTH {
            return Err(self.path_err(path, "deeper than 512 keys"));
        }
        let mut k = self.root;
        for part in parts {
            if part.chars().count() > MAX_KEY_NAME {
                return Err(self.path_err(path, "key name longer than 255 characters"));
            }
            k = match self.subkey(k, part)? {
                Some(sub) => sub,
                None => self.add_subkey(k, part)?,
            };
        }
        Ok(k)
    }

    fn add_subkey(&mut self, parent: Key, name: &str) -> Result<Key, HiveError> {
        let now = base::filetime_now();
        let p = key::read(&self.s, parent.0)?;
        let mut keys = self.entries(parent)?;
        if p.security != NONE {
            security::retain(&mut self.s, p.security)?;
        }
        let rec = key::build(name, parent.0, p.security, now);
        let off = self.s.alloc(rec.len())?;
        self.s.cell_mut(off)?[..rec.len()].copy_from_slice(&rec);
        let want = name::upper(name);
        let (mut lo, mut hi) = (0, keys.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (raw, comp) = key::raw_name(&self.s, keys[mid].off)?;
            if name::cmp_raw(raw, comp, &want).is_lt() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        keys.insert(lo, list::Entry { off, hint: Some(list::hint(self.minor, name)) });
        let keys = self.with_hints(&keys)?;
        self.replace_subkey_list(parent, p.subkey_list, &keys)?;
        let longest = key::MAX_SUBKEY_NAME;
        let cur = base::u32_at(self.s.cell(parent.0)?, longest);
        let len = name::utf16_len(name);
        if len > cur & 0xffff {
            key::set(&mut self.s, parent.0, longest, (cur & !0xffff) | len)?;
        }
        key::touch(&mut self.s, parent.0, now)?;
        Ok(Key(off))
    }

    fn replace_subkey_list(&mut self, parent: Key, old: u32, keys: &[(u32, u32)]) -> Result<(), HiveError> {
        let new = list::write(&mut self.s, self.minor, keys)?;
        if old != NONE {
            list::free(&mut self.s, old)?;
        }
        key::set(&mut self.s, parent.0, key::SUBKEY_LIST, new.unwrap_or(NONE))?;
        key::set(&mut self.s, parent.0, key::SUBKEYS, keys.len() as u32)
    }

    /// Sets (creates or overwrites) the value `name` of `k`.
    pub fn set_value(&mut self, k: Key, name: &str, v: &Value) -> Result<(), HiveError> {
        if name.chars().count() > MAX_VALUE_NAME {
            return Err(self.path_err(name, "value name longer than 16383 characters"));
        }
        let (ty, bytes) = v.encode();
        let offs = self.value_offsets(k)?;
        let mut existing = None;
        for &o in &offs {
            let vk = value::read(&self.s, o)?;
            if name::eq(&vk.name, name) {
                existing = Some((o, vk));
                break;
            }
        }
        let (size, data) = value::store_data(&mut self.s, self.minor, &bytes)?;
        match existing {
            Some((o, vk)) => {
                value::free_data(&mut self.s, self.minor, &vk)?;
                value::set_data(&mut self.s, o, ty, size, data)?;
            }
            None => {
                let rec = value::build(name, ty, size, data);
                let o = self.s.alloc(rec.len())?;
                self.s.cell_mut(o)?[..rec.len()].copy_from_slice(&rec);
                let mut all = offs;
                all.push(o);
                self.replace_value_list(k, &all)?;
            }
        }
        self.refresh_value_maxima(k)?;
        key::touch(&mut self.s, k.0, base::filetime_now())
    }

    fn replace_value_list(&mut self, k: Key, offs: &[u32]) -> Result<(), HiveError> {
        let old = key::read(&self.s, k.0)?.value_list;
        let new = if offs.is_empty() {
            NONE
        } else {
            let l = self.s.alloc(offs.len() * 4)?;
            let c = self.s.cell_mut(l)?;
            for (i, o) in offs.iter().enumerate() {
                c[i * 4..i * 4 + 4].copy_from_slice(&o.to_le_bytes());
            }
            l
        };
        if old != NONE {
            self.s.free(old)?;
        }
        key::set(&mut self.s, k.0, key::VALUE_LIST, new)?;
        key::set(&mut self.s, k.0, key::VALUES, offs.len() as u32)
    }

    fn refresh_value_maxima(&mut self, k: Key) -> Result<(), HiveError> {
        let (mut name_len, mut data_len) = (0, 0);
        for o in self.value_offsets(k)? {
            let vk = value::read(&self.s, o)?;
            name_len = name_len.max(name::utf16_len(&vk.name));
            data_len = data_len.max(vk.size & 0x7fff_ffff);
        }
        key::set(&mut self.s, k.0, key::MAX_VALUE_NAME, name_len)?;
        key::set(&mut self.s, k.0, key::MAX_VALUE_DATA, data_len)
    }

    /// Deletes the value `name` of `k`; false if it did not exist.
    pub fn delete_value(&mut self, k: Key, name: &str) -> Result<bool, HiveError> {
        let mut offs = self.value_offsets(k)?;
        let mut found = None;
        for (i, &o) in offs.iter().enumerate() {
            let vk = value::read(&self.s, o)?;
            if name::eq(&vk.name, name) {
                found = Some((i, vk));
                break;
            }
        }
        let Some((i, vk)) = found else { return Ok(false) };
        let o = offs.remove(i);
        value::free_data(&mut self.s, self.minor, &vk)?;
        self.s.free(o)?;
        self.replace_value_list(k, &offs)?;
        self.refresh_value_maxima(k)?;
        key::touch(&mut self.s, k.0, base::filetime_now())?;
        Ok(true)
    }

    /// Deletes the key at `path` with all its subkeys and values; false if it did not exist.
    /// The root cannot be deleted.
    pub fn delete_key(&mut self, path: &str) -> Result<bool, HiveError> {
        let parts: Vec<&str> = components(path).collect();
        let Some((last, up)) = parts.split_last() else {
            return Err(self.path_err(path, "the root key cannot be deleted"));
        };
        let Some(parent) = self.lookup(&up.join("\\"))? else { return Ok(false) };
        let Some(victim) = self.subkey(parent, last)? else { return Ok(false) };
        let mut keys = self.entries(parent)?;
        keys.retain(|e| e.off != victim.0);
        let keys = self.with_hints(&keys)?;
        let old = key::read(&self.s, parent.0)?.subkey_list;
        self.free_tree(victim)?;
        self.replace_subkey_list(parent, old, &keys)?;
        let mut longest = 0;
        for (o, _) in &keys {
            longest = longest.max(name::utf16_len(&key::read(&self.s, *o)?.name));
        }
        let cur = base::u32_at(self.s.cell(parent.0)?, key::MAX_SUBKEY_NAME);
        key::set(&mut self.s, parent.0, key::MAX_SUBKEY_NAME, (cur & !0xffff) | longest)?;
        key::touch(&mut self.s, parent.0, base::filetime_now())?;
        Ok(true)
    }

    /// Frees a key, its values, its subkeys (depth first, iteratively) and their lists.
    fn free_tree(&mut self, top: Key) -> Result<(), HiveError> {
        let mut stack = vec![(top, 0usize)];
        while let Some((k, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(self.s.bad(&format!("key depth at {:#x}", k.0), depth.to_string(), "deeper than 512 keys"));
            }
            let nk = key::read(&self.s, k.0)?;
            for (_, sub) in self.subkeys(k)? {
                stack.push((sub, depth + 1));
            }
            for o in self.value_offsets(k)? {
                let vk = value::read(&self.s, o)?;
                value::free_data(&mut self.s, self.minor, &vk)?;
                self.s.free(o)?;
            }
            if nk.value_list != NONE && nk.values != 0 {
                self.s.free(nk.value_list)?;
            }
            if nk.subkey_list != NONE && nk.subkeys != 0 {
                list::free(&mut self.s, nk.subkey_list)?;
            }
            if nk.class != NONE {
                self.s.free(nk.class)?;
            }
            if nk.security != NONE {
                security::release(&mut self.s, nk.security)?;
            }
            self.s.free(k.0)?;
        }
        Ok(())
    }

    /// The security record offset of `k` and its reference count (for checks).
    pub fn security_refs(&self, k: Key) -> Result<(u32, u32), HiveError> {
        let off = key::read(&self.s, k.0)?.security;
        Ok((off, security::refs(&self.s, off)?))
    }

    /// Number of allocated cells (for checks that deletes free what creates allocated).
    pub fn used_cells(&self) -> usize {
        self.s.used_cells()
    }

    /// The hive file: sequence numbers bumped (equal), write time and checksum updated.
    pub fn to_bytes(&mut self) -> Vec<u8> {
        self.sequence = self.sequence.wrapping_add(1);
        let bins = self.s.bins_size();
        base::finish(&mut self.s.data, self.sequence, base::filetime_now(), bins);
        self.s.data.clone()
    }
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('\\').filter(|p| !p.is_empty())
}
