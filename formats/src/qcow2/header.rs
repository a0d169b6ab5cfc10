//! The qcow2 header and its extensions (qemu `docs/interop/qcow2.txt`), parsed from the
//! image's first cluster and checked against the file before anything is sized by them.
use crate::disk::DiskError;
use std::path::Path;

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Incompatible feature bits.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1f;
/// Header extension types.
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// qemu's limit on the L1 table: 32 MiB.
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// Longest backing file name the spec allows.
const MAX_BACKING_NAME: u32 = 1023;

/// How compressed clusters are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// Raw deflate (qemu uses a 4 KiB window; any window is accepted).
    Zlib,
    /// zstd frames.
    Zstd,
}

impl CompressionType {
    /// The name qemu-img prints.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Zlib => "zlib",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// A validated qcow2 header.
#[derive(Clone, Debug)]
pub struct Header {
    pub version: u32,
    pub backing_file: Option<String>,
    pub backing_format: Option<String>,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible: u64,
    pub compatible: u64,
    pub autoclear: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    pub compression: CompressionType,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

impl Header {
    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// L2 entries per table (one cluster of 8-byte entries).
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / 8
    }

    /// Entries the L1 table needs to cover `size`.
    pub fn l1_needed(size: u64, cluster_bits: u32) -> u64 {
        let per_l1 = 1u64 << (cluster_bits * 2 - 3);
        size.div_ceil(per_l1)
    }

    /// Parses the header from `head`, the first bytes of the file (at least the first
    /// cluster, or the whole file if shorter), and checks every offset against `file_len`.
    pub fn parse(path: &Path, head: &[u8], file_len: u64) -> Result<Header, DiskError> {
        let bad = |field: &str, value: &dyn std::fmt::Display, reason: &str| {
            DiskError::invalid(path, field, value, reason)
        };
        if head.len() < 72 {
            return Err(bad("header length", &head.len(), "file is shorter than a qcow2 header (72 bytes)"));
        }
        if head[..4] != MAGIC {
            let m: String = head[..4].iter().map(|b| format!("{b:02x}")).collect();
            return Err(bad("magic", &format!("0x{m}"), "not a qcow2 image (expected QFI\\xfb)"));
        }
        let version = be32(head, 4);
        if version != 2 && version != 3 {
            return Err(bad("version", &version, "only qcow2 versions 2 and 3 exist"));
        }
        let cluster_bits = be32(head, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(bad("cluster_bits", &cluster_bits, "must be between 9 and 21"));
        }
        let cs = 1u64 << cluster_bits;
        let size = be64(head, 24);
        if size > (1u64 << 56) {
            return Err(bad("size", &size, "larger than the 64 PiB qcow2 can address"));
        }
        let crypt = be32(head, 32);
        if crypt != 0 {
            return Err(DiskError::unsupported(path, format!("encryption (crypt_method {crypt})")));
        }
        let (mut incompatible, mut compatible, mut autoclear) = (0, 0, 0);
        let (mut refcount_order, mut header_length) = (4, 72);
        if version == 3 {
            if head.len() < 104 {
                return Err(bad("header length", &head.len(), "file is shorter than a qcow2 v3 header"));
            }
            incompatible = be64(head, 72);
            compatible = be64(head, 80);
            autoclear = be64(head, 88);
            refcount_order = be32(head, 96);
            header_length = be32(head, 100);
            if header_length < 104 || header_length % 8 != 0 || u64::from(header_length) > cs {
                return Err(bad(
                    "header_length",
                    &header_length,
                    "must be at least 104, a multiple of 8 and inside the first cluster",
                ));
            }
            if refcount_order > 6 {
                return Err(bad("refcount_order", &refcount_order, "must be at most 6"));
            }
        }
        if head.len() < header_length as usize {
            return Err(bad("header_length", &header_length, "past end of file"));
        }
        if incompatible & INCOMPAT_CORRUPT != 0 {
            return Err(bad("incompatible_features", &format!("0x{incompatible:x}"), "the image is marked corrupt"));
        }
        if incompatible & INCOMPAT_DATA_FILE != 0 {
            return Err(DiskError::unsupported(path, "external data file (incompatible feature bit 2)"));
        }
        if incompatible & INCOMPAT_EXTL2 != 0 {
            return Err(DiskError::unsupported(path, "extended L2 entries (incompatible feature bit 4)"));
        }
        if incompatible & !INCOMPAT_KNOWN != 0 {
            return Err(DiskError::unsupported(
                path,
                format!("incompatible feature bits 0x{:x}", incompatible & !INCOMPAT_KNOWN),
            ));
        }
        let compression_field = if header_length > 104 { head[104] } else { 0 };
        let compression = match (incompatible & INCOMPAT_COMPRESSION != 0, compression_field) {
            (false, 0) => CompressionType::Zlib,
            (true, 1) => CompressionType::Zstd,
            (bit, t) => {
                return Err(bad(
                    "compression_type",
                    &t,
                    if bit { "unknown compression type" } else { "non-zlib type without incompatible bit 3" },
                ))
            }
        };

        let l1_size = be32(head, 36);
        let l1_table_offset = be64(head, 40);
        let need = Self::l1_needed(size, cluster_bits);
        if u64::from(l1_size) < need {
            return Err(bad("l1_size", &l1_size, &format!("too small for the virtual size (needs {need})")));
        }
        if u64::from(l1_size) * 8 > MAX_L1_BYTES {
            return Err(bad("l1_size", &l1_size, "larger than the 32 MiB L1 table limit"));
        }
        check_table(path, "l1_table_offset", l1_table_offset, u64::from(l1_size) * 8, cs, file_len)?;
        let refcount_table_offset = be64(head, 48);
        let refcount_table_clusters = be32(head, 56);
        let rt_bytes = u64::from(refcount_table_clusters) * cs;
        check_table(path, "refcount_table_offset", refcount_table_offset, rt_bytes, cs, file_len)?;
        let nb_snapshots = be32(head, 60);
        let snapshots_offset = be64(head, 64);
        if nb_snapshots > 0 {
            check_table(path, "snapshots_offset", snapshots_offset, 40 * u64::from(nb_snapshots), cs, file_len)?;
        }

        let mut h = Header {
            version,
            backing_file: None,
            backing_format: None,
            cluster_bits,
            size,
            l1_size,
            l1_table_offset,
            refcount_table_offset,
            refcount_table_clusters,
            nb_snapshots,
            snapshots_offset,
            incompatible,
            compatible,
            autoclear,
            refcount_order,
            header_length,
            compression,
        };
        if version == 3 {
            h.parse_extensions(path, head)?;
        }
        let backing_offset = be64(head, 8);
        let backing_size = be32(head, 16);
        if backing_offset != 0 {
            if backing_size > MAX_BACKING_NAME {
                return Err(bad("backing_file_size", &backing_size, "longer than 1023 bytes"));
            }
            let end = backing_offset.checked_add(u64::from(backing_size));
            let name = end
                .filter(|&e| e <= cs)
                .and_then(|e| head.get(backing_offset as usize..e as usize))
                .ok_or_else(|| bad("backing_file_offset", &backing_offset, "name lies outside the first cluster"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            if !name.is_empty() {
                h.backing_file = Some(name);
            }
        }
        Ok(h)
    }

    fn parse_extensions(&mut self, path: &Path, head: &[u8]) -> Result<(), DiskError> {
        let end = head.len().min(1usize << self.cluster_bits);
        let mut at = self.header_length as usize;
        while at + 8 <= end {
            let kind = be32(head, at);
            let len = be32(head, at + 4) as usize;
            let data_at = at + 8;
            let data = head.get(data_at..data_at.saturating_add(len)).filter(|_| data_at + len <= end);
            let Some(data) = data else {
                return Err(DiskError::invalid(
                    path,
                    "header extension length",
                    len,
                    format!("extension 0x{kind:08x} at offset {at} runs past the first cluster"),
                ));
            };
            match kind {
                EXT_END => return Ok(()),
                EXT_BACKING_FORMAT => self.backing_format = Some(String::from_utf8_lossy(data).into_owned()),
                EXT_DATA_FILE => return Err(DiskError::unsupported(path, "external data file")),
                _ => {}
            }
            at = data_at + len.div_ceil(8) * 8;
        }
        Ok(())
    }
}

/// Checks that a table at `offset` of `bytes` is cluster-aligned and inside the file.
pub fn check_table(path: &Path, field: &str, offset: u64, bytes: u64, cs: u64, file_len: u64) -> Result<(), DiskError> {
    if !offset.is_multiple_of(cs) {
        return Err(DiskError::invalid(path, field, offset, format!("not aligned to the cluster size {cs}")));
    }
    if offset.checked_add(bytes).is_none_or(|e| e > file_len) || (bytes > 0 && offset == 0) {
        return Err(DiskError::invalid(
            path,
            field,
            offset,
            format!("table of {bytes} bytes lies outside the file ({file_len} bytes)"),
        ));
    }
    Ok(())
}
