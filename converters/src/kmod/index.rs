//! kmod's binary index format (`modules.dep.bin`, `modules.alias.bin`, ...): a compressed
//! trie of keys, each key holding values with priorities. Read in full and written back in
//! the layout `depmod` uses (children written before their parent, root offset in the header).

use std::collections::BTreeMap;

use super::KmodError;

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
const NODE_MASK: u32 = 0x0FFF_FFFF;
/// Trie depth bound while reading (keys are module names and aliases, far shorter).
const MAX_DEPTH: usize = 512;

/// One value of a key: its priority (depmod's module order) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Lower sorts first.
    pub priority: u32,
    /// The value string.
    pub value: String,
}

/// A whole index: keys in byte order, each with its values sorted by priority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Key → values.
    pub entries: BTreeMap<String, Vec<Value>>,
}

impl Index {
    /// Adds a value to a key (after the values of the same or lower priority).
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) {
        let values = self.entries.entry(key.to_string()).or_default();
        let pos = values
            .iter()
            .position(|v| v.priority > priority)
            .unwrap_or(values.len());
        values.insert(
            pos,
            Value {
                priority,
                value: value.to_string(),
            },
        );
    }

    /// The highest priority in use (0 when empty).
    pub fn max_priority(&self) -> u32 {
        self.entries
            .values()
            .flatten()
            .map(|v| v.priority)
            .max()
            .unwrap_or(0)
    }

    /// Parses a binary index; `name` is used in error messages.
    pub fn parse(name: &str, data: &[u8]) -> Result<Index, KmodError> {
        let r = Reader { name, data };
        if r.u32(0)? != MAGIC {
            return Err(KmodError::invalid(name, "index magic", format!("{:#x}", r.u32(0)?), "not a kmod index"));
        }
        let version = r.u32(4)?;
        if version >> 16 != VERSION >> 16 {
            return Err(KmodError::invalid(name, "index version", format!("{version:#x}"), "only major version 2 is known"));
        }
        let mut index = Index::default();
        let mut key = Vec::new();
        let mut budget = data.len();
        r.node(r.u32(8)?, &mut key, &mut index, 0, &mut budget)?;
        Ok(index)
    }

    /// Serialises the index the way depmod does.
    pub fn write(&self) -> Result<Vec<u8>, KmodError> {
        let mut root = Node::default();
        for (key, values) in &self.entries {
            if let Some(bad) = key.bytes().find(|b| *b == 0 || *b >= 128) {
                return Err(KmodError::invalid("index", "key", key, format!("byte {bad:#x} cannot be stored")));
            }
            root.insert(key.as_bytes(), values);
        }
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let root_offset = root.write(&mut out, true)?;
        out[8..12].copy_from_slice(&root_offset.to_be_bytes());
        Ok(out)
    }
}

struct Reader<'a> {
    name: &'a str,
    data: &'a [u8],
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> Result<u32, KmodError> {
        let bytes = at
            .checked_add(4)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| KmodError::invalid(self.name, "index offset", at, "past the end of the file"))?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn byte(&self, at: usize) -> Result<u8, KmodError> {
        self.data
            .get(at)
            .copied()
            .ok_or_else(|| KmodError::invalid(self.name, "index offset", at, "past the end of the file"))
    }

    /// Reads a NUL-terminated string at `at`; returns it and the offset after the NUL.
    fn string(&self, at: usize) -> Result<(&[u8], usize), KmodError> {
        let rest = self
            .data
            .get(at..)
            .ok_or_else(|| KmodError::invalid(self.name, "index offset", at, "past the end of the file"))?;
        let len = memchr::memchr(0, rest)
            .ok_or_else(|| KmodError::invalid(self.name, "index string", at, "no terminating NUL"))?;
        Ok((&rest[..len], at + len + 1))
    }

    fn node(
        &self,
        offset: u32,
        key: &mut Vec<u8>,
        index: &mut Index,
        depth: usize,
        budget: &mut usize,
    ) -> Result<(), KmodError> {
        // A well-formed trie has fewer nodes than bytes; shared or looping children do not.
        *budget = budget.checked_sub(1).ok_or_else(|| {
            KmodError::invalid(self.name, "index node", offset, "more nodes than the file can hold")
        })?;
        if depth > MAX_DEPTH {
            return Err(KmodError::invalid(self.name, "index node", offset, "trie too deep (loop?)"));
        }
        let key_len = key.len();
        let mut at = (offset & NODE_MASK) as usize;
        if offset & NODE_PREFIX != 0 {
            let (prefix, next) = self.string(at)?;
            key.extend_from_slice(prefix);
            at = next;
        }
        let mut children = Vec::new();
        if offset & NODE_CHILDS != 0 {
            let first = self.byte(at)?;
            let last = self.byte(at + 1)?;
            if last < first {
                return Err(KmodError::invalid(self.name, "index child range", format!("{first}..{last}"), "last before first"));
            }
            at += 2;
            for (i, ch) in (first..=last).enumerate() {
                let child = self.u32(at + 4 * i)?;
                if child != 0 {
                    children.push((ch, child));
                }
            }
            at += 4 * (usize::from(last - first) + 1);
        }
        if offset & NODE_VALUES != 0 {
            let count = self.u32(at)?;
            at += 4;
            let key_str = String::from_utf8_lossy(key).into_owned();
            for _ in 0..count {
                let priority = self.u32(at)?;
                let (value, next) = self.string(at + 4)?;
                index.insert(&key_str, &String::from_utf8_lossy(value), priority);
                at = next;
            }
        }
        let base = key.len();
        for (ch, child) in children {
            key.push(ch);
            self.node(child, key, index, depth + 1, budget)?;
            key.truncate(base);
        }
        key.truncate(key_len);
        Ok(())
    }
}

#[derive(Default)]
struct Node<'a> {
    prefix: Vec<u8>,
    values: Option<&'a [Value]>,
    children: BTreeMap<u8, Node<'a>>,
}

impl<'a> Node<'a> {
    /// Inserts a key into a compressed trie whose root never has a prefix (as depmod builds it).
    fn insert(&mut self, key: &[u8], values: &'a [Value]) {
        let Some((&first, rest)) = key.split_first() else {
            self.values = Some(values);
            return;
        };
        match self.children.get_mut(&first) {
            None => {
                self.children.insert(
                    first,
                    Node {
                        prefix: rest.to_vec(),
                        values: Some(values),
                        children: BTreeMap::new(),
                    },
                );
            }
            Some(child) => child.insert_below(rest, values),
        }
    }

    /// Inserts `key` (what follows the edge into this node) below this node, splitting its prefix.
    fn insert_below(&mut self, key: &[u8], values: &'a [Value]) {
        let common = self
            .prefix
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count();
        if common < self.prefix.len() {
            let tail = self.prefix.split_off(common);
            let Some((&edge, tail_rest)) = tail.split_first() else {
                return;
            };
            let old = Node {
                prefix: tail_rest.to_vec(),
                values: self.values.take(),
                children: std::mem::take(&mut self.children),
            };
            self.children.insert(edge, old);
        }
        self.insert(&key[common..], values);
    }

    fn write(&self, out: &mut Vec<u8>, is_root: bool) -> Result<u32, KmodError> {
        let mut child_offsets = BTreeMap::new();
        for (ch, child) in &self.children {
            child_offsets.insert(*ch, child.write(out, false)?);
        }
        let offset = u32::try_from(out.len())
            .ok()
            .filter(|o| *o <= NODE_MASK)
            .ok_or_else(|| KmodError::invalid("index", "size", out.len(), "too large for an offset"))?;
        let mut flags = 0;
        if !self.prefix.is_empty() && !is_root {
            out.extend_from_slice(&self.prefix);
            out.push(0);
            flags |= NODE_PREFIX;
        }
        if let (Some((&first, _)), Some((&last, _))) =
            (child_offsets.first_key_value(), child_offsets.last_key_value())
        {
            out.push(first);
            out.push(last);
            for ch in first..=last {
                out.extend_from_slice(&child_offsets.get(&ch).copied().unwrap_or(0).to_be_bytes());
            }
            flags |= NODE_CHILDS;
        }
        if let Some(values) = self.values {
            out.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for v in values {
                out.extend_from_slice(&v.priority.to_be_bytes());
                out.extend_from_slice(v.value.as_bytes());
                out.push(0);
            }
            flags |= NODE_VALUES;
        }
        Ok(offset | flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_shared_prefixes() {
        let mut idx = Index::default();
        for (i, k) in ["virtio", "virtio_blk", "virtio_net", "virtio_pci", "ext4", "e", "virt"].iter().enumerate() {
            idx.insert(k, &format!("value-{k}"), i as u32);
        }
        idx.insert("virtio", "second", 0);
        let bytes = idx.write().unwrap();
        assert_eq!(Index::parse("t", &bytes).unwrap(), idx);
    }

    #[test]
    fn rejects_garbage_without_panic() {
        for data in [&b""[..], b"\xb0\x07\xf4\x57\x00\x02\x00\x01\xff\xff\xff\xff", b"\xb0\x07\xf4\x57\x00\x02\x00\x01\xa0\x00\x00\x0c\x01"] {
            assert!(Index::parse("t", data).is_err());
        }
    }
}
