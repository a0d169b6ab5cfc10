//! A whole initramfs image: its segments, their members, and writing a changed image.

use std::collections::HashMap;

use super::compress::Compression;
use super::cpio::{self, Entry};
use super::{InitramfsError, Limits};

/// One segment of an image.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Byte offset of the segment in the image.
    pub offset: usize,
    /// Bytes of the image it spans (its zero padding excluded).
    pub len: usize,
    /// `None` for a stored cpio archive (e.g. the early-microcode prefix).
    pub compression: Option<Compression>,
    /// The members of its archive(s), in order.
    pub entries: Vec<Entry>,
}

/// A parsed image; the original bytes are kept so that untouched segments are copied as-is.
#[derive(Debug, Clone)]
pub struct Initramfs {
    name: String,
    raw: Vec<u8>,
    /// Segments in image order.
    pub segments: Vec<Segment>,
}

impl Initramfs {
    /// Parses an image the way the kernel unpacks it; `name` is used in error messages.
    pub fn parse(name: &str, raw: Vec<u8>, limits: Limits) -> Result<Initramfs, InitramfsError> {
        let mut segments = Vec::new();
        let mut pos = 0;
        let mut total = 0u64;
        while pos < raw.len() {
            let rest = &raw[pos..];
            if rest[0] == 0 {
                pos += 1;
                continue;
            }
            if rest[0] == b'0' && pos % 4 == 0 {
                let (entries, used) = cpio::parse_archive(name, rest, pos)?;
                segments.push(Segment {
                    offset: pos,
                    len: used,
                    compression: None,
                    entries,
                });
                pos += used.max(1);
                continue;
            }
            let c = Compression::detect(&format!("{name} at offset {pos}"), rest)?;
            let seg_name = format!("{name} ({} segment at offset {pos})", c.name());
            let budget = limits
                .max_segment
                .min(limits.max_total.saturating_sub(total));
            let (data, used) = c.decompress(&seg_name, rest, budget)?;
            total += data.len() as u64;
            let entries = cpio::parse_stream(&seg_name, &data)?;
            segments.push(Segment {
                offset: pos,
                len: used,
                compression: Some(c),
                entries,
            });
            pos += used.max(1);
        }
        if segments.is_empty() {
            return Err(InitramfsError::invalid(
                name,
                "image",
                "empty",
                "no cpio archive in it",
            ));
        }
        Ok(Initramfs {
            name: name.to_string(),
            raw,
            segments,
        })
    }

    /// The image's name as given to [`Initramfs::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The original bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The index of the main segment: the last compressed one, else the last one.
    pub fn main_segment(&self) -> usize {
        self.segments
            .iter()
            .rposition(|s| s.compression.is_some())
            .unwrap_or(self.segments.len().saturating_sub(1))
    }

    /// What the unpacked root holds: for each normalised path, the last member written there.
    pub fn files(&self) -> HashMap<String, &Entry> {
        let mut map = HashMap::new();
        for e in self.segments.iter().flat_map(|s| &s.entries) {
            map.insert(e.path(), e);
        }
        map
    }

    /// The contents of a regular file member, following newc hard links: in a link group
    /// (same inode and device, nlink > 1) only one member, usually the last, carries the data.
    pub fn data<'a>(&'a self, entry: &'a Entry) -> &'a [u8] {
        if !entry.is_file() || entry.nlink < 2 || !entry.data.is_empty() {
            return &entry.data;
        }
        let same_archive = self
            .segments
            .iter()
            .find(|s| s.entries.iter().any(|e| std::ptr::eq(e, entry)));
        same_archive
            .and_then(|s| {
                s.entries.iter().find(|e| {
                    e.ino == entry.ino
                        && e.dev_major == entry.dev_major
                        && e.dev_minor == entry.dev_minor
                        && e.is_file()
                        && !e.data.is_empty()
                })
            })
            .map(|e| e.data.as_slice())
            .unwrap_or(&entry.data)
    }

    /// The last member at `path` (normalised), if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        let want = cpio::normalize(path);
        self.segments
            .iter()
            .flat_map(|s| &s.entries)
            .rev()
            .find(|e| e.path() == want)
    }

    /// A new image where segment `index` holds `entries`, compressed as before; every other
    /// segment (the microcode prefix included) is copied byte for byte.
    pub fn rewrite_segment(
        &self,
        index: usize,
        entries: &[Entry],
    ) -> Result<Vec<u8>, InitramfsError> {
        let compression = self.segments.get(index).and_then(|s| s.compression);
        self.rewrite_segment_with(index, entries, compression)
    }

    /// Like [`Initramfs::rewrite_segment`], with another compression (`None`: stored).
    pub fn rewrite_segment_with(
        &self,
        index: usize,
        entries: &[Entry],
        compression: Option<Compression>,
    ) -> Result<Vec<u8>, InitramfsError> {
        let seg = self.segments.get(index).ok_or_else(|| {
            InitramfsError::invalid(&self.name, "segment index", index, "no such segment")
        })?;
        let mut archive = Vec::new();
        cpio::write_archive(&mut archive, entries)?;
        let body = match compression {
            Some(c) => c.compress(&archive)?,
            None => archive,
        };
        let bad = |what: usize| {
            InitramfsError::invalid(&self.name, "segment offset", what, "outside the image")
        };
        let mut out = Vec::with_capacity(self.raw.len() + body.len());
        out.extend_from_slice(self.raw.get(..seg.offset).ok_or_else(|| bad(seg.offset))?);
        out.extend_from_slice(&body);
        if let Some(next) = self.segments.get(index + 1) {
            // keep the next segment 4-aligned (a stored cpio archive must start aligned)
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            out.extend_from_slice(
                self.raw
                    .get(next.offset..)
                    .ok_or_else(|| bad(next.offset))?,
            );
        }
        Ok(out)
    }

    /// A new image: `prefix` (stored cpio members, e.g. early microcode) first, then this image.
    pub fn prepend_stored(&self, prefix: &[Entry]) -> Result<Vec<u8>, InitramfsError> {
        let mut out = Vec::new();
        cpio::write_archive(&mut out, prefix)?;
        // pad like the tools do (to 512 bytes), keeping what follows 4-aligned
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
        out.extend_from_slice(&self.raw);
        Ok(out)
    }

    /// A new image: this one, zero-padded to 4 bytes, then one more segment holding `entries`.
    pub fn append_segment(
        &self,
        entries: &[Entry],
        compression: Option<Compression>,
    ) -> Result<Vec<u8>, InitramfsError> {
        let mut archive = Vec::new();
        cpio::write_archive(&mut archive, entries)?;
        let mut out = self.raw.clone();
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        match compression {
            Some(c) => out.extend_from_slice(&c.compress(&archive)?),
            None => out.extend_from_slice(&archive),
        }
        Ok(out)
    }
}
