//! The SCSI command set of one virtio-scsi target, answered as QEMU's `scsi-hd` answers it
//! (hw/scsi/scsi-disk.c, scsi-bus.c): the transfer length and direction of each CDB, the
//! emulated commands' data (INQUIRY and its VPD pages, READ CAPACITY, MODE SENSE, REQUEST
//! SENSE, REPORT LUNS, VERIFY without byte check, SEEK(10)) and the sense of every refusal.
//! READ/WRITE/SYNCHRONIZE CACHE/UNMAP/WRITE SAME/MODE SELECT are returned as
//! [`Command::Read`] / [`Command::Write`] / [`Command::Flush`] / [`Command::Unmap`] /
//! [`Command::WriteSame`] / [`Command::ModeSelect`] for the caller to carry out on its disk
//! ([`mode_select`] checks the parameter list). Every field comes from the CDB bytes the guest wrote: nothing here
//! panics or allocates more than [`MAX_EMULATED`] bytes.

/// Emulated commands return at most this many bytes (QEMU's SCSI_MAX_INQUIRY_LEN is 256,
/// a MODE SENSE of every page fits well below).
pub const MAX_EMULATED: usize = 4096;
/// The block size of every disk (QEMU's default logical block size).
pub const BLOCK: u64 = 512;
/// QEMU's `scsi-hd` identity.
const VENDOR: &[u8; 8] = b"QEMU    ";
const PRODUCT: &[u8; 16] = b"QEMU HARDDISK   ";
/// `qemu_hw_version()` for machine types from 2.5 on.
const REVISION: &[u8; 4] = b"2.5+";

/// Fixed-format sense: key, additional sense code and qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

pub const NO_SENSE: Sense = Sense { key: 0, asc: 0, ascq: 0 };
/// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
pub const INVALID_OPCODE: Sense = Sense { key: 5, asc: 0x20, ascq: 0 };
/// ILLEGAL REQUEST, INVALID FIELD IN CDB.
pub const INVALID_FIELD: Sense = Sense { key: 5, asc: 0x24, ascq: 0 };
/// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
pub const LBA_OUT_OF_RANGE: Sense = Sense { key: 5, asc: 0x21, ascq: 0 };
/// ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
pub const LUN_NOT_SUPPORTED: Sense = Sense { key: 5, asc: 0x25, ascq: 0 };
/// ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED.
pub const SAVING_PARAMS_NOT_SUPPORTED: Sense = Sense { key: 5, asc: 0x39, ascq: 0 };
/// DATA PROTECT, WRITE PROTECTED.
pub const WRITE_PROTECTED: Sense = Sense { key: 7, asc: 0x27, ascq: 0 };
/// UNIT ATTENTION, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
pub const POWER_ON_RESET: Sense = Sense { key: 6, asc: 0x29, ascq: 0 };
/// ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST.
pub const INVALID_PARAM: Sense = Sense { key: 5, asc: 0x26, ascq: 0 };
/// ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR.
pub const INVALID_PARAM_LEN: Sense = Sense { key: 5, asc: 0x1a, ascq: 0 };
/// ABORTED COMMAND, I/O PROCESS TERMINATED (QEMU's EIO).
pub const IO_ERROR: Sense = Sense { key: 0x0b, asc: 0, ascq: 6 };

impl Sense {
    /// The 18-byte fixed-format sense data (response code 0x70).
    pub fn fixed(&self) -> [u8; 18] {
        let mut b = [0u8; 18];
        b[0] = 0x70;
        b[2] = self.key;
        b[7] = 10;
        b[12] = self.asc;
        b[13] = self.ascq;
        b
    }
}

/// Which way data moves (QEMU's SCSIXferMode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    None,
    FromDev,
    ToDev,
}

/// What a CDB asks of the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// GOOD with these bytes of data-in (already cut to the allocation length).
    Data(Vec<u8>),
    /// Read `blocks` blocks at `lba` (checked against the capacity).
    Read { lba: u64, blocks: u64 },
    /// Write `blocks` blocks at `lba` (checked against the capacity).
    Write { lba: u64, blocks: u64 },
    /// SYNCHRONIZE CACHE.
    Flush,
    /// UNMAP: the data-out holds `len` bytes of parameter list (see [`unmap_ranges`]).
    Unmap { len: u64 },
    /// WRITE SAME: `blocks` blocks at `lba` (checked) get the data-out's one block, or zeros
    /// when `zeros` (NDOB: no data-out).
    WriteSame { lba: u64, blocks: u64, zeros: bool },
    /// MODE SELECT: the data-out holds `len` bytes of parameter list (see [`mode_select`]).
    ModeSelect { len: u64 },
    /// CHECK CONDITION with this sense.
    Check(Sense),
}

/// What the command emulation needs to know of a logical unit.
#[derive(Clone, Debug)]
pub struct Unit<'a> {
    /// Capacity in 512-byte blocks.
    pub blocks: u64,
    pub serial: &'a str,
    pub readonly: bool,
    /// LUN 0 of an existing target (else the target answers for a LUN it does not have).
    pub present: bool,
    /// The write cache is on (the caching page's WCE; MODE SELECT turns it off and on).
    pub write_cache: bool,
}

fn be16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2).map_or(0, |s| u64::from(u16::from_be_bytes([s[0], s[1]])))
}

fn be32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

/// Whether `n` blocks from `lba` lie inside a disk of `total` blocks (no overflow).
fn fits(lba: u64, n: u64, total: u64) -> bool {
    lba <= total && n <= total - lba
}

fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// The CDB length of an opcode's group (SPC: 6, 10, 10, reserved, 16, 12, vendor, vendor);
/// None where QEMU refuses the CDB (INVALID FIELD).
pub fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

const WRITE_6: u8 = 0x0a;
const WRITE_10: u8 = 0x2a;
const WRITE_16: u8 = 0x8a;
const READ_6: u8 = 0x08;
const READ_10: u8 = 0x28;
const READ_16: u8 = 0x88;
const VERIFY_10: u8 = 0x2f;
const VERIFY_12: u8 = 0xaf;
const VERIFY_16: u8 = 0x8f;
const WRITE_SAME_10: u8 = 0x41;
const WRITE_SAME_16: u8 = 0x93;
const MODE_SELECT_6: u8 = 0x15;
const MODE_SELECT_10: u8 = 0x55;
const SEEK_10: u8 = 0x2b;
const FORMAT_UNIT: u8 = 0x04;

/// Transfer length (bytes) and direction of `cdb`, as QEMU's `scsi_req_xfer` computes them
/// for a disk; None when the CDB is shorter than its group's length.
pub fn transfer(cdb: &[u8]) -> Option<(u64, Dir)> {
    let op = *cdb.first()?;
    let len = cdb_len(op)?;
    if cdb.len() < len {
        return None;
    }
    let blocks = |n: u64| n * BLOCK;
    // The length field of the CDB's group, where the opcode does not say otherwise.
    let counted = match len {
        6 => u64::from(byte(cdb, 4)),
        10 => be16(cdb, 7),
        16 => be32(cdb, 10),
        _ => be32(cdb, 6),
    };
    let xfer = match op {
        0x00 | 0x35 | 0x91 | 0x1b | 0x1e | SEEK_10 => 0, // TEST UNIT READY, SYNC CACHE 10/16, START STOP, PREVENT ALLOW, SEEK
        // VERIFY: no data without BYTCHK, one block for BYTCHK 1x, else the blocks named.
        VERIFY_10 | VERIFY_12 | VERIFY_16 if byte(cdb, 1) & 2 == 0 => 0,
        VERIFY_10 | VERIFY_12 | VERIFY_16 if byte(cdb, 1) & 4 != 0 => BLOCK,
        VERIFY_10 | VERIFY_12 | VERIFY_16 => blocks(counted),
        WRITE_SAME_10 | WRITE_SAME_16 if byte(cdb, 1) & 1 != 0 => 0, // NDOB
        WRITE_SAME_10 | WRITE_SAME_16 => BLOCK,
        FORMAT_UNIT if byte(cdb, 1) & 16 == 0 => 0,
        FORMAT_UNIT => if byte(cdb, 1) & 32 != 0 { 8 } else { 4 },
        READ_6 | WRITE_6 => blocks(match byte(cdb, 4) {
            0 => 256,
            n => u64::from(n),
        }),
        READ_10 | WRITE_10 => blocks(be16(cdb, 7)),
        READ_16 | WRITE_16 => blocks(be32(cdb, 10)),
        0x25 => 8,                // READ CAPACITY(10)
        0x9e => be32(cdb, 10),    // SERVICE ACTION IN(16)
        0xa0 => be32(cdb, 6),     // REPORT LUNS
        0x12 => be16(cdb, 3),     // INQUIRY
        0x5a => be16(cdb, 7),     // MODE SENSE(10)
        _ => counted,
    };
    let dir = match (xfer, op) {
        (0, _) => Dir::None,
        (_, WRITE_6 | WRITE_10 | WRITE_16 | MODE_SELECT_6 | MODE_SELECT_10 | 0x2e | 0x8e | 0x3b | WRITE_SAME_10 | WRITE_SAME_16 | 0x42 | VERIFY_10 | VERIFY_12 | VERIFY_16 | FORMAT_UNIT) => {
            Dir::ToDev
        }
        _ => Dir::FromDev,
    };
    Some((xfer, dir))
}

/// Answers `cdb` (at least its group's length: see [`transfer`]) for `unit`.
pub fn execute(cdb: &[u8], unit: &Unit<'_>) -> Command {
    let op = byte(cdb, 0);
    if cdb_len(op).is_none_or(|n| cdb.len() < n) {
        return Command::Check(INVALID_FIELD);
    }
    let (xfer, _) = transfer(cdb).unwrap_or((0, Dir::None));
    let cut = |mut v: Vec<u8>| {
        v.truncate(usize::try_from(xfer).unwrap_or(usize::MAX));
        Command::Data(v)
    };
    // A LUN the target lacks: REPORT LUNS and INQUIRY are the target's, the rest refused.
    if !unit.present {
        return match op {
            0xa0 => report_luns(cdb, xfer).map_or(Command::Check(INVALID_FIELD), cut),
            0x12 if byte(cdb, 1) & 1 == 0 && byte(cdb, 2) == 0 => {
                let mut v = vec![0u8; 36];
                v[0] = 0x7f; // peripheral qualifier 3, no device type
                cut(v)
            }
            0x12 => Command::Check(INVALID_FIELD),
            0x03 => cut(NO_SENSE.fixed().to_vec()),
            _ => Command::Check(LUN_NOT_SUPPORTED),
        };
    }
    match op {
        0x00 | 0x1b | 0x1e => Command::Data(Vec::new()),
        0x35 | 0x91 => Command::Flush,
        0x42 if unit.readonly => Command::Check(WRITE_PROTECTED),
        0x42 => Command::Unmap { len: xfer },
        0x03 => cut(NO_SENSE.fixed().to_vec()),
        0x12 => inquiry(cdb, unit, xfer).map_or(Command::Check(INVALID_FIELD), cut),
        0x25 => {
            let last = unit.blocks.saturating_sub(1).min(0xffff_ffff) as u32;
            let mut v = last.to_be_bytes().to_vec();
            v.extend_from_slice(&(BLOCK as u32).to_be_bytes());
            cut(v)
        }
        0x9e if byte(cdb, 1) & 0x1f == 0x10 => {
            // READ CAPACITY(16): as many bytes as asked (zeros past the fields).
            let mut v = vec![0u8; usize::try_from(xfer).unwrap_or(0).clamp(32, MAX_EMULATED)];
            v[0..8].copy_from_slice(&unit.blocks.saturating_sub(1).to_be_bytes());
            v[8..12].copy_from_slice(&(BLOCK as u32).to_be_bytes());
            v[14] = 0x80; // TPE: discard granularity is set
            cut(v)
        }
        0x9e => Command::Check(INVALID_FIELD),
        // scsi-hd verifies nothing: without BYTCHK it answers GOOD, with it INVALID FIELD.
        VERIFY_10 | VERIFY_12 | VERIFY_16 if byte(cdb, 1) & 6 != 0 => Command::Check(INVALID_FIELD),
        VERIFY_10 | VERIFY_12 | VERIFY_16 | FORMAT_UNIT => Command::Data(Vec::new()),
        SEEK_10 if be32(cdb, 2) >= unit.blocks => Command::Check(LBA_OUT_OF_RANGE),
        SEEK_10 => Command::Data(Vec::new()),
        WRITE_SAME_10 | WRITE_SAME_16 => {
            let (lba, blocks) = if op == WRITE_SAME_10 { (be32(cdb, 2), be16(cdb, 7)) } else { (be64(cdb, 2), be32(cdb, 10)) };
            // PBDATA, LBDATA and ANCHOR are refused, as is a count of zero.
            if blocks == 0 || byte(cdb, 1) & 0x16 != 0 {
                Command::Check(INVALID_FIELD)
            } else if unit.readonly {
                Command::Check(WRITE_PROTECTED)
            } else if !fits(lba, blocks, unit.blocks) {
                Command::Check(LBA_OUT_OF_RANGE)
            } else {
                Command::WriteSame { lba, blocks, zeros: byte(cdb, 1) & 1 != 0 }
            }
        }
        // Without a parameter list QEMU completes at once; PF=1 SP=0 is all it takes.
        MODE_SELECT_6 | MODE_SELECT_10 if xfer == 0 => Command::Data(Vec::new()),
        MODE_SELECT_6 | MODE_SELECT_10 if byte(cdb, 1) & 0x11 != 0x10 => Command::Check(INVALID_FIELD),
        MODE_SELECT_6 | MODE_SELECT_10 => Command::ModeSelect { len: xfer },
        0xa0 => report_luns(cdb, xfer).map_or(Command::Check(INVALID_FIELD), cut),
        0x1a | 0x5a => match mode_sense(cdb, unit) {
            Ok(v) => cut(v),
            Err(s) => Command::Check(s),
        },
        READ_6 | READ_10 | READ_16 | WRITE_6 | WRITE_10 | WRITE_16 => {
            let (lba, blocks) = match op {
                READ_6 | WRITE_6 => (be32(cdb, 0) & 0x1f_ffff, xfer / BLOCK),
                READ_10 | WRITE_10 => (be32(cdb, 2), xfer / BLOCK),
                _ => (be64(cdb, 2), xfer / BLOCK),
            };
            if !fits(lba, blocks, unit.blocks) {
                return Command::Check(LBA_OUT_OF_RANGE);
            }
            match op {
                READ_6 | READ_10 | READ_16 => Command::Read { lba, blocks },
                _ if unit.readonly => Command::Check(WRITE_PROTECTED),
                _ => Command::Write { lba, blocks },
            }
        }
        _ => Command::Check(INVALID_OPCODE),
    }
}

/// UNMAP's parameter list `p` (as QEMU's `scsi_disk_emulate_unmap` checks it): the (LBA,
/// blocks) ranges of its descriptors, at most 255, each inside a disk of `blocks` blocks.
pub fn unmap_ranges(p: &[u8], blocks: u64) -> Result<Vec<(u64, u64)>, Sense> {
    let len = p.len() as u64;
    if len < 8 || len < be16(p, 0) + 2 || len < be16(p, 2) + 8 || be16(p, 2) & 15 != 0 {
        return Err(INVALID_PARAM_LEN);
    }
    let n = (be16(p, 2) / 16) as usize;
    if n > 255 {
        return Err(INVALID_FIELD);
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let (lba, count) = (be64(p, 8 + 16 * i), be32(p, 16 + 16 * i));
        if !fits(lba, count, blocks) {
            return Err(LBA_OUT_OF_RANGE);
        }
        v.push((lba, count));
    }
    Ok(v)
}

/// MODE SELECT(6)/(10)'s parameter list `p` for `unit`, checked as QEMU's
/// `scsi_disk_emulate_mode_select` checks it: the header, a block descriptor of 0 or 8 bytes
/// (its block size 0 or the disk's: Ferry's disks keep 512-byte blocks, where QEMU would change
/// them), then each page against MODE SENSE's current and changeable values, all before any
/// change. Returns the write cache setting of a caching page, if the list has one.
pub fn mode_select(cdb: &[u8], p: &[u8], unit: &Unit<'_>) -> Result<Option<bool>, Sense> {
    let six = byte(cdb, 0) == MODE_SELECT_6;
    let hdr = if six { 4 } else { 8 };
    if p.len() < hdr {
        return Err(INVALID_PARAM_LEN);
    }
    let bd_len = if six { usize::from(byte(p, 3)) } else { be16(p, 6) as usize };
    let rest = &p[hdr..];
    if rest.len() < bd_len {
        return Err(INVALID_PARAM_LEN);
    }
    if bd_len != 0 && bd_len != 8 {
        return Err(INVALID_PARAM);
    }
    if bd_len == 8 {
        let bs = (u64::from(byte(rest, 5)) << 16) | (u64::from(byte(rest, 6)) << 8) | u64::from(byte(rest, 7));
        if bs != 0 && bs != BLOCK {
            return Err(INVALID_PARAM);
        }
    }
    let mut pages = &rest[bd_len..];
    let mut wce = None;
    while !pages.is_empty() {
        let page = pages[0] & 0x3f;
        let (sub, page_len, head) = if pages[0] & 0x40 != 0 {
            if pages.len() < 4 {
                return Err(INVALID_PARAM_LEN);
            }
            (pages[1], be16(pages, 2) as usize, 4)
        } else {
            if pages.len() < 2 {
                return Err(INVALID_PARAM_LEN);
            }
            (0, usize::from(pages[1]), 2)
        };
        pages = &pages[head..];
        if sub != 0 {
            return Err(INVALID_PARAM);
        }
        if page_len > pages.len() {
            return Err(INVALID_PARAM_LEN);
        }
        let body = &pages[..page_len];
        let (Some(cur), Some(chg)) = (mode_page(page, unit, false), mode_page(page, unit, true)) else { return Err(INVALID_PARAM) };
        if page == 0x3f || cur.len() != page_len + 2 {
            return Err(INVALID_PARAM);
        }
        if cur[2..].iter().zip(&chg[2..]).zip(body).any(|((c, m), b)| (c ^ b) & !m != 0) {
            return Err(INVALID_PARAM);
        }
        if page == 0x08 {
            wce = Some(body[0] & 4 != 0);
        }
        pages = &pages[page_len..];
    }
    Ok(wce)
}

/// REPORT LUNS: the one LUN (0) of the target; None for a bad SELECT REPORT or an
/// allocation length under 16.
fn report_luns(cdb: &[u8], xfer: u64) -> Option<Vec<u8>> {
    if byte(cdb, 2) > 2 || xfer < 16 {
        return None;
    }
    let mut v = vec![0u8; 16];
    v[3] = 8; // one 8-byte entry: LUN 0
    Some(v)
}

/// Standard INQUIRY data or a VPD page; None for a page QEMU does not have.
fn inquiry(cdb: &[u8], unit: &Unit<'_>, xfer: u64) -> Option<Vec<u8>> {
    let page = byte(cdb, 2);
    if byte(cdb, 1) & 1 == 0 {
        if page != 0 {
            return None;
        }
        let len = usize::try_from(xfer).unwrap_or(256).min(256);
        let mut v = vec![0u8; len.max(36)];
        v[2] = 5; // SPC-3
        v[3] = 2 | 0x10; // response data format 2, HiSup
        v[4] = if len > 36 { (len - 5) as u8 } else { 36 - 5 };
        v[7] = 0x10 | 0x02; // sync, CmdQue (virtio-scsi has TCQ)
        v[8..16].copy_from_slice(VENDOR);
        v[16..32].copy_from_slice(PRODUCT);
        v[32..36].copy_from_slice(REVISION);
        v.truncate(len);
        return Some(v);
    }
    let mut v = vec![0u8, page, 0, 0];
    let serial = unit.serial.as_bytes();
    match page {
        0x00 => {
            v.push(0x00);
            if !serial.is_empty() {
                v.push(0x80);
            }
            v.extend_from_slice(&[0x83, 0xb0, 0xb1, 0xb2]);
        }
        0x80 if !serial.is_empty() => v.extend_from_slice(&serial[..serial.len().min(36)]),
        0x83 => {
            // The device id is the serial: one ASCII, vendor-specific designator.
            let id = &serial[..serial.len().min(255 - 8)];
            if !id.is_empty() {
                v.extend_from_slice(&[0x02, 0x00, 0x00, id.len() as u8]);
                v.extend_from_slice(id);
            }
        }
        0xb0 => {
            // Block limits, QEMU's defaults for a 512-byte disk: WSNZ, no transfer
            // granularity, max transfer INT_MAX bytes, max unmap 1 GiB in 255 descriptors,
            // unmap granularity 4 KiB, max WRITE SAME as max transfer.
            let max_io: u32 = 0x7fff_ffff / BLOCK as u32;
            let mut b = [0u8; 0x3c];
            b[0] = 1;
            b[4..8].copy_from_slice(&max_io.to_be_bytes());
            b[16..20].copy_from_slice(&((1u32 << 30) / BLOCK as u32).to_be_bytes());
            b[20..24].copy_from_slice(&255u32.to_be_bytes());
            b[24..28].copy_from_slice(&(4096 / BLOCK as u32).to_be_bytes());
            b[36..40].copy_from_slice(&max_io.to_be_bytes());
            v.extend_from_slice(&b);
        }
        0xb1 => v.resize(0x40, 0), // block device characteristics: rotation rate not reported
        0xb2 => v.extend_from_slice(&[0, 0xe0, 2, 0]), // thin provisioning: UNMAP, WRITE SAME; LBPRZ 2
        _ => return None,
    }
    let n = v.len() - 4;
    v[3] = u8::try_from(n).unwrap_or(255);
    Some(v)
}

/// A page of MODE SENSE as QEMU gives a disk (current values, or all zeros for the
/// changeable ones); None for a page a disk does not have.
fn mode_page(page: u8, unit: &Unit<'_>, changeable: bool) -> Option<Vec<u8>> {
    // The geometry QEMU guesses for a disk without a partition table: 16 heads, 63 sectors.
    let cyls = (unit.blocks / (16 * 63)).clamp(2, 16383);
    let mut p = match page {
        0x01 => vec![0u8; 10],
        0x04 => vec![0u8; 0x16],
        0x05 => vec![0u8; 0x1e],
        0x08 => vec![0u8; 0x12],
        _ => return None,
    };
    match page {
        0x01 if !changeable => p[0] = 0x80, // AWRE
        0x04 if !changeable => {
            p[0..3].copy_from_slice(&(cyls as u32).to_be_bytes()[1..]);
            p[3] = 16;
            p[4..7].copy_from_slice(&(cyls as u32).to_be_bytes()[1..]);
            p[7..10].copy_from_slice(&(cyls as u32).to_be_bytes()[1..]);
            p[11] = 200;
            p[12..15].copy_from_slice(&[0xff, 0xff, 0xff]);
            p[18..20].copy_from_slice(&5400u16.to_be_bytes());
        }
        0x05 if !changeable => {
            p[0..2].copy_from_slice(&5000u16.to_be_bytes());
            p[2] = 16;
            p[3] = 63;
            p[4] = (BLOCK >> 8) as u8;
            let c = ((cyls & 0xffff) as u16).to_be_bytes();
            p[6..8].copy_from_slice(&c);
            p[8..10].copy_from_slice(&c);
            p[10..12].copy_from_slice(&c);
            p[13] = 1;
            p[14] = 1;
            p[16] = 1;
            p[17] = 1;
            p[18] = 1;
            p[26..28].copy_from_slice(&5400u16.to_be_bytes());
        }
        0x08 if changeable || unit.write_cache => p[0] = 4, // WCE: the write cache is on (and changeable)
        _ => {}
    }
    let mut v = vec![page, p.len() as u8];
    v.extend_from_slice(&p);
    Some(v)
}

/// MODE SENSE(6) / (10): header, an 8-byte block descriptor unless DBD, the page(s).
fn mode_sense(cdb: &[u8], unit: &Unit<'_>) -> Result<Vec<u8>, Sense> {
    let six = byte(cdb, 0) == 0x1a;
    let dbd = byte(cdb, 1) & 0x08 != 0;
    let page = byte(cdb, 2) & 0x3f;
    let control = byte(cdb, 2) >> 6;
    let dev_specific = if unit.readonly { 0x80 } else { 0 };
    let mut v = if six { vec![0, 0, dev_specific, 0] } else { vec![0, 0, 0, dev_specific, 0, 0, 0, 0] };
    if !dbd && unit.blocks > 0 {
        if six { v[3] = 8 } else { v[7] = 8 }
        let n = if unit.blocks > 0xff_ffff { 0 } else { unit.blocks as u32 };
        v.extend_from_slice(&[0, (n >> 16) as u8, (n >> 8) as u8, n as u8, 0, 0, (BLOCK >> 8) as u8, 0]);
    }
    if control == 3 {
        return Err(SAVING_PARAMS_NOT_SUPPORTED);
    }
    if page == 0x3f {
        for p in 0..=0x3e {
            if let Some(b) = mode_page(p, unit, control == 1) {
                v.extend_from_slice(&b);
            }
        }
    } else {
        v.extend_from_slice(&mode_page(page, unit, control == 1).ok_or(INVALID_FIELD)?);
    }
    let n = v.len();
    if six {
        v[0] = u8::try_from(n - 1).unwrap_or(255);
    } else {
        v[0..2].copy_from_slice(&u16::try_from(n - 2).unwrap_or(u16::MAX).to_be_bytes());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Unit<'static> = Unit { blocks: 0x20000, serial: "FRY0123", readonly: false, present: true, write_cache: true };

    #[test]
    fn inquiry_is_qemus_scsi_hd() {
        let Command::Data(v) = execute(&[0x12, 0, 0, 0, 96, 0], &UNIT) else { panic!() };
        assert_eq!(v.len(), 96);
        assert_eq!(&v[8..36], b"QEMU    QEMU HARDDISK   2.5+");
        assert_eq!(v[4], 91);
        let Command::Data(v) = execute(&[0x12, 1, 0x83, 0, 255, 0], &UNIT) else { panic!() };
        assert_eq!(v, [&[0, 0x83, 0, 11, 2, 0, 0, 7][..], b"FRY0123"].concat());
        assert_eq!(execute(&[0x12, 0, 1, 0, 96, 0], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[0x12, 1, 0x42, 0, 96, 0], &UNIT), Command::Check(INVALID_FIELD));
    }

    #[test]
    fn ranges_opcodes_and_short_cdbs() {
        // The last block reads; one past it, or a length running past the end, is refused.
        assert_eq!(execute(&[0x28, 0, 0, 1, 0xff, 0xff, 0, 0, 1, 0], &UNIT), Command::Read { lba: 0x1ffff, blocks: 1 });
        assert_eq!(execute(&[0x28, 0, 0, 2, 0, 0, 0, 0, 1, 0], &UNIT), Command::Check(LBA_OUT_OF_RANGE));
        assert_eq!(execute(&[0x28, 0, 0, 1, 0xff, 0xff, 0, 0, 2, 0], &UNIT), Command::Check(LBA_OUT_OF_RANGE));
        assert_eq!(execute(&[0x28, 0, 0, 1, 0xff, 0xff, 0, 0, 1, 0][..2], &UNIT), Command::Check(INVALID_FIELD));
        let far = [0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0];
        assert_eq!(execute(&far, &UNIT), Command::Check(LBA_OUT_OF_RANGE));
        assert_eq!(execute(&[0x08, 0, 0, 2, 0, 0], &UNIT), Command::Read { lba: 2, blocks: 256 });
        assert_eq!(execute(&[0x01, 0, 0, 0, 0, 0], &UNIT), Command::Check(INVALID_OPCODE));
        assert_eq!(execute(&[0xff; 16], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[], &UNIT), Command::Check(INVALID_FIELD));
        let ro = Unit { readonly: true, ..UNIT };
        assert_eq!(execute(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &ro), Command::Check(WRITE_PROTECTED));
        let absent = Unit { present: false, ..UNIT };
        assert_eq!(execute(&[0x00; 6], &absent), Command::Check(LUN_NOT_SUPPORTED));
    }

    #[test]
    fn unmap_parameter_lists() {
        assert_eq!(execute(&[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], &UNIT), Command::Unmap { len: 24 });
        let mut p = vec![0, 22, 0, 16, 0, 0, 0, 0];
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(unmap_ranges(&p, 0x20000), Ok(vec![(8, 16)]));
        assert_eq!(unmap_ranges(&p[..20], 0x20000), Err(INVALID_PARAM_LEN));
        assert_eq!(unmap_ranges(&p, 20), Err(LBA_OUT_OF_RANGE));
        assert_eq!(unmap_ranges(&[], 20), Err(INVALID_PARAM_LEN));
    }

    #[test]
    fn mode_sense_caching_and_all_pages() {
        let Command::Data(v) = execute(&[0x1a, 0x08, 0x08, 0, 255, 0], &UNIT) else { panic!() };
        assert_eq!(v, [23, 0, 0, 0, 0x08, 0x12, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let Command::Data(v) = execute(&[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0], &UNIT) else { panic!() };
        assert_eq!(v.len(), 8 + 8 + 12 + 24 + 32 + 20);
        assert_eq!(execute(&[0x1a, 0, 0xc8, 0, 255, 0], &UNIT), Command::Check(SAVING_PARAMS_NOT_SUPPORTED));
    }

    #[test]
    fn verify_seek_and_write_same() {
        assert_eq!(transfer(&[0x2f, 0, 0, 0, 0, 4, 0, 0, 2, 0]), Some((0, Dir::None)));
        assert_eq!(transfer(&[0x2f, 2, 0, 0, 0, 4, 0, 0, 2, 0]), Some((1024, Dir::ToDev)));
        assert_eq!(transfer(&[0x2f, 6, 0, 0, 0, 4, 0, 0, 2, 0]), Some((512, Dir::ToDev)));
        assert_eq!(execute(&[0x2f, 0, 0, 0, 0, 4, 0, 0, 2, 0], &UNIT), Command::Data(Vec::new()));
        assert_eq!(execute(&[0x2f, 2, 0, 0, 0, 4, 0, 0, 2, 0], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[0x2b, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0], &UNIT), Command::Data(Vec::new()));
        assert_eq!(execute(&[0x2b, 0, 0, 2, 0, 0, 0, 0, 0, 0], &UNIT), Command::Check(LBA_OUT_OF_RANGE));
        assert_eq!(transfer(&[0x41, 0, 0, 0, 0, 8, 0, 0, 3, 0]), Some((512, Dir::ToDev)));
        assert_eq!(transfer(&[0x41, 1, 0, 0, 0, 8, 0, 0, 3, 0]), Some((0, Dir::None)));
        assert_eq!(execute(&[0x41, 0, 0, 0, 0, 8, 0, 0, 3, 0], &UNIT), Command::WriteSame { lba: 8, blocks: 3, zeros: false });
        let ws16 = [0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0];
        assert_eq!(execute(&ws16, &UNIT), Command::WriteSame { lba: 9, blocks: 1, zeros: true });
        assert_eq!(execute(&[0x41, 0, 0, 0, 0, 8, 0, 0, 0, 0], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[0x41, 0x02, 0, 0, 0, 8, 0, 0, 1, 0], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[0x41, 0, 0, 1, 0xff, 0xff, 0, 0, 2, 0], &UNIT), Command::Check(LBA_OUT_OF_RANGE));
        let ro = Unit { readonly: true, ..UNIT };
        assert_eq!(execute(&[0x41, 0, 0, 0, 0, 8, 0, 0, 3, 0], &ro), Command::Check(WRITE_PROTECTED));
    }

    #[test]
    fn mode_select_checks_then_sets_the_write_cache() {
        let cdb6 = [0x15, 0x10, 0, 0, 24, 0];
        assert_eq!(execute(&cdb6, &UNIT), Command::ModeSelect { len: 24 });
        assert_eq!(execute(&[0x15, 0x11, 0, 0, 24, 0], &UNIT), Command::Check(INVALID_FIELD));
        assert_eq!(execute(&[0x15, 0x01, 0, 0, 0, 0], &UNIT), Command::Data(Vec::new()));
        let mut p = vec![0u8; 24];
        p[4] = 0x08;
        p[5] = 0x12;
        assert_eq!(mode_select(&cdb6, &p, &UNIT), Ok(Some(false)));
        p[6] = 4;
        assert_eq!(mode_select(&cdb6, &p, &UNIT), Ok(Some(true)));
        p[8] = 1; // an unchangeable field
        assert_eq!(mode_select(&cdb6, &p, &UNIT), Err(INVALID_PARAM));
        assert_eq!(mode_select(&cdb6, &p[..3], &UNIT), Err(INVALID_PARAM_LEN));
        assert_eq!(mode_select(&cdb6, &p[..20], &UNIT), Err(INVALID_PARAM_LEN));
        // MODE SELECT(10): a block descriptor of 512-byte blocks and no page.
        let cdb10 = [0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0];
        let mut q = vec![0u8; 16];
        q[7] = 8;
        q[14] = 2;
        assert_eq!(mode_select(&cdb10, &q, &UNIT), Ok(None));
        q[14] = 8; // 2048-byte blocks
        assert_eq!(mode_select(&cdb10, &q, &UNIT), Err(INVALID_PARAM));
        // The caching page reads back as set.
        let off = Unit { write_cache: false, ..UNIT };
        let Command::Data(v) = execute(&[0x1a, 0x08, 0x08, 0, 255, 0], &off) else { panic!() };
        assert_eq!(v[6], 0);
    }
}
