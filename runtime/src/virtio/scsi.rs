//! virtio-scsi (device type 8): one controller, one target per disk (LUN 0), QEMU 10's
//! defaults (a request queue per vCPU, 256-entry queues, seg_max 254, max_sectors 0xFFFF,
//! cmd_per_lun 128, sense 96 and CDB 32 bytes, max_target 255, max_lun 16383). Queue 0 is
//! the control queue (task management answered as QEMU does: every request completes before
//! its notification returns, so there is never a task to abort), queue 1 the event queue
//! (buffers held; no hotplug events are sent), queues 2.. carry commands, served on the
//! notifying vCPU thread. The commands themselves are [`cdb`]'s; READ and WRITE go to the
//! disk backend through vm-memory's Reader/Writer in 1 MiB steps, UNMAP to its discard. A malformed request (no
//! room for the header or the response, data both ways) sets NEEDS_RESET, as QEMU's
//! `virtio_error` does.
pub mod cdb;

use super::{check_avail, check_chain, log, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::disk::Backend;
use crate::memory::Memory;
use cdb::{Command, Dir, Sense, Unit};
use std::io::{Read, Write};
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};

/// VIRTIO_SCSI_F_HOTPLUG and VIRTIO_SCSI_F_CHANGE (QEMU offers both by default).
const F_HOTPLUG: u64 = 1 << 1;
const F_CHANGE: u64 = 1 << 2;
const QUEUE_SIZE: u16 = 256;
const MAX_SECTORS: u32 = 0xffff;
const CMD_PER_LUN: u32 = 128;
/// Default sense and CDB sizes of the config (the driver may change them).
const SENSE_SIZE: u32 = 96;
const CDB_SIZE: u32 = 32;
/// The largest the driver may set them to (QEMU's VIRTIO_SCSI_SENSE_SIZE / CDB_SIZE bounds).
const MAX_SENSE_CDB: u32 = 256;
const MAX_TARGET: u16 = 255;
const MAX_LUN: u32 = 16383;
/// virtio_scsi_cmd_req without its CDB: lun[8], tag, task_attr, prio, crn.
const REQ_HEAD: usize = 19;
/// virtio_scsi_cmd_resp without its sense: sense_len, resid, status_qualifier, status, response.
const RESP_HEAD: usize = 12;
/// Response codes.
const S_OK: u8 = 0;
const S_OVERRUN: u8 = 1;
const S_BAD_TARGET: u8 = 3;
const S_FUNCTION_REJECTED: u8 = 11;
const S_INCORRECT_LUN: u8 = 12;
/// SCSI status.
const GOOD: u8 = 0;
const CHECK_CONDITION: u8 = 2;
/// Bytes moved per backend call.
const STEP: u64 = 1 << 20;

/// One target's disk (LUN 0).
pub struct Target {
    id: String,
    target: u8,
    serial: String,
    disk: Box<dyn Backend>,
    /// POWER ON OR RESET reported to the first command after a reset, as QEMU does.
    unit_attention: bool,
    /// The sense of the last command (kept until the next completes), for REQUEST SENSE.
    sense: Option<Sense>,
    /// The caching page's WCE: off, every write is flushed (QEMU's writethrough).
    write_cache: bool,
}

impl Target {
    /// Target number `target` (SCSI id, LUN 0) serving `disk`.
    pub fn new(id: &str, target: u8, serial: &str, disk: Box<dyn Backend>) -> Self {
        Target { id: id.to_string(), target, serial: serial.to_string(), disk, unit_attention: true, sense: None, write_cache: true }
    }

    /// With the write cache off (write-through), the disk is flushed now: IO_ERROR if that fails.
    fn write_through(&mut self) -> Option<Sense> {
        if self.write_cache {
            return None;
        }
        self.disk.flush().err().map(|_| cdb::IO_ERROR)
    }
}

/// A virtio-scsi controller.
pub struct Scsi {
    id: String,
    targets: Vec<Target>,
    /// Request queues (QEMU 10: one per vCPU).
    queues: u16,
    sense_size: u32,
    cdb_size: u32,
    buf: Vec<u8>,
}

/// What a request's LUN field addresses.
enum Address {
    /// No such target (or not a LUN address virtio-scsi knows).
    None,
    /// Target index, and whether the LUN is 0.
    Unit(usize, bool),
}

impl Scsi {
    /// A controller with these targets and `queues` request queues (clamped to 1..=64).
    pub fn new(id: &str, targets: Vec<Target>, queues: u16) -> Self {
        Scsi { id: id.to_string(), targets, queues: queues.clamp(1, 64), sense_size: SENSE_SIZE, cdb_size: CDB_SIZE, buf: Vec::new() }
    }

    /// QEMU's `virtio_scsi_device_get`: lun[0] 1, lun[1] the target, lun[2..4] a flat LUN.
    fn address(&self, lun: &[u8; 8]) -> Address {
        if lun[0] != 1 || (lun[2] != 0 && !(0x40..0x80).contains(&lun[2])) {
            return Address::None;
        }
        let l = (u16::from(lun[2]) << 8 | u16::from(lun[3])) & 0x3fff;
        match self.targets.iter().position(|t| t.target == lun[1]) {
            Some(i) => Address::Unit(i, l == 0),
            None => Address::None,
        }
    }

    /// Serves every available buffer of queue `q`; true when some were used.
    fn serve(&mut self, q: usize, queue: &mut Queue, mem: &Memory) -> Result<bool, VirtioError> {
        check_avail(q, queue, mem)?;
        let mut used = false;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            let bad = |reason: String| VirtioError::BadChain { queue: q, head, reason };
            check_chain(q, &chain, mem)?;
            let mut r = Reader::new(mem, chain.clone()).map_err(|e| bad(e.to_string()))?;
            let mut w = Writer::new(mem, chain).map_err(|e| bad(e.to_string()))?;
            let n = if q == 0 { self.control(&mut r, &mut w).map_err(bad)? } else { self.command(&mut r, &mut w).map_err(bad)? };
            queue.add_used(mem, head, n).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    /// A control-queue request (TMF or asynchronous-notification query/subscribe); returns
    /// the bytes written.
    fn control(&mut self, r: &mut Reader<'_>, w: &mut Writer<'_>) -> Result<u32, String> {
        let kind = r.read_obj::<u32>().map_err(|_| "control request shorter than its type".to_string())?;
        match kind {
            0 => {
                // virtio_scsi_ctrl_tmf_req: subtype, lun[8], tag; response: u8.
                let subtype = r.read_obj::<u32>().map_err(|e| e.to_string())?;
                let lun = r.read_obj::<[u8; 8]>().map_err(|e| e.to_string())?;
                let _tag = r.read_obj::<u64>().map_err(|e| e.to_string())?;
                let addr = self.address(&lun);
                // Subtypes: 0 ABORT TASK, 1 ABORT TASK SET, 2 CLEAR ACA, 3 CLEAR TASK SET,
                // 4 I_T NEXUS RESET, 5 LOGICAL UNIT RESET, 6 QUERY TASK, 7 QUERY TASK SET. Every
                // command completes before its notification returns: nothing is ever in flight
                // to abort or find, so they complete; CLEAR ACA and unknown ones are rejected.
                let response = match (subtype, addr) {
                    (0 | 1 | 3 | 5 | 6 | 7, Address::None) | (4, Address::None) => S_BAD_TARGET,
                    (0 | 1 | 3 | 5 | 6 | 7, Address::Unit(_, false)) => S_INCORRECT_LUN,
                    (0 | 1 | 3 | 6 | 7, Address::Unit(_, true)) => S_OK,
                    // A reset leaves a unit attention for the next command, as QEMU's.
                    (4 | 5, Address::Unit(i, _)) => {
                        if let Some(t) = self.targets.get_mut(i) {
                            t.unit_attention = true;
                        }
                        S_OK
                    }
                    _ => S_FUNCTION_REJECTED,
                };
                if w.available_bytes() < 1 {
                    return Err("TMF request has no room for its response".into());
                }
                w.write_all(&[response]).map_err(|e| e.to_string())?;
                Ok(1)
            }
            1 | 2 => {
                // virtio_scsi_ctrl_an_req: lun[8], event_requested; response: event_actual, u8.
                let _ = r.read_obj::<[u8; 8]>().map_err(|e| e.to_string())?;
                let _ = r.read_obj::<u32>().map_err(|e| e.to_string())?;
                if w.available_bytes() < 5 {
                    return Err("AN request has no room for its response".into());
                }
                w.write_all(&[0, 0, 0, 0, S_OK]).map_err(|e| e.to_string())?;
                Ok(5)
            }
            other => Err(format!("unknown control request type {other}")),
        }
    }

    /// A command request: header and CDB, data-out; response and sense, data-in. Returns the
    /// bytes written.
    fn command(&mut self, r: &mut Reader<'_>, w: &mut Writer<'_>) -> Result<u32, String> {
        let cdb_size = self.cdb_size as usize;
        let resp_size = RESP_HEAD + self.sense_size as usize;
        if r.available_bytes() < REQ_HEAD + cdb_size || w.available_bytes() < resp_size {
            return Err(format!("request shorter than its {}-byte header or response shorter than {resp_size} bytes", REQ_HEAD + cdb_size));
        }
        let mut head = [0u8; REQ_HEAD];
        r.read_exact(&mut head).map_err(|e| e.to_string())?;
        let mut cdb = vec![0u8; cdb_size];
        r.read_exact(&mut cdb).map_err(|e| e.to_string())?;
        let mut resp_w = w.split_at(resp_size).map_err(|e| e.to_string())?;
        // `w` is the response, `resp_w` the data-in after it.
        let (data_in, data_out) = (resp_w.available_bytes() as u64, r.available_bytes() as u64);
        if data_in > 0 && data_out > 0 {
            return Err("request moves data both ways".into());
        }
        let mut lun = [0u8; 8];
        lun.copy_from_slice(&head[..8]);
        let (present, i) = match self.address(&lun) {
            Address::None => return respond(self.sense_size, w, S_BAD_TARGET, GOOD, 0, None, 0),
            Address::Unit(i, l0) => (l0, i),
        };
        let buffers = data_in.max(data_out);
        let mode = match (data_in, data_out) {
            (0, 0) => Dir::None,
            (_, 0) => Dir::FromDev,
            _ => Dir::ToDev,
        };
        // The CDB's own length: QEMU parses by opcode group, never past it.
        let op_len = cdb::cdb_len(cdb[0]).unwrap_or(cdb_size).min(cdb_size);
        if let Some((xfer, dir)) = cdb::transfer(&cdb[..op_len]) {
            if dir != Dir::None && (dir != mode || xfer > buffers) {
                return respond(self.sense_size, w, S_OVERRUN, GOOD, 0, None, 0);
            }
        }
        let sense_size = self.sense_size;
        let Some(t) = self.targets.get_mut(i) else { return respond(sense_size, w, S_BAD_TARGET, GOOD, 0, None, 0) };
        let unit = Unit { blocks: t.disk.size() / cdb::BLOCK, serial: &t.serial, readonly: t.disk.readonly(), present, write_cache: t.write_cache };
        let op = cdb[0];
        let outcome = if t.unit_attention && !matches!(op, 0x12 | 0xa0 | 0x03) {
            t.unit_attention = false;
            Command::Check(cdb::POWER_ON_RESET)
        } else if op == 0x03 && t.sense.is_some() && op_len >= 6 {
            // REQUEST SENSE returns the last command's sense.
            let mut v = t.sense.unwrap_or(cdb::NO_SENSE).fixed().to_vec();
            v.truncate(cdb.get(4).map_or(0, |&b| usize::from(b)));
            Command::Data(v)
        } else {
            cdb::execute(&cdb[..op_len], &unit)
        };
        let xfer = cdb::transfer(&cdb[..op_len]).map_or(0, |(x, _)| x);
        let (done, sense) = match outcome {
            Command::Data(v) => {
                let n = v.len().min(resp_w.available_bytes());
                resp_w.write_all(&v[..n]).map_err(|e| e.to_string())?;
                (n as u64, None)
            }
            Command::Flush => (0, t.disk.flush().err().map(|_| cdb::IO_ERROR)),
            Command::Unmap { len } => {
                // At most 8 + 255 descriptors of 16 bytes are read; a longer list is refused.
                let n = usize::try_from(len).unwrap_or(usize::MAX);
                let mut p = vec![0u8; n.min(8 + 16 * 256)];
                if r.read_exact(&mut p).is_err() {
                    (0, Some(cdb::IO_ERROR))
                } else {
                    match cdb::unmap_ranges(&p, t.disk.size() / cdb::BLOCK) {
                        Ok(ranges) => {
                            let failed = ranges.iter().any(|&(lba, count)| t.disk.discard(lba * cdb::BLOCK, count * cdb::BLOCK).is_err());
                            (len, failed.then_some(cdb::IO_ERROR))
                        }
                        Err(s) => (len, Some(s)),
                    }
                }
            }
            Command::Check(s) => (0, Some(s)),
            Command::Read { lba, blocks } => in_steps(&mut self.buf, lba, blocks, |b, off| t.disk.read_at(b, off).is_ok() && resp_w.write_all(b).is_ok()),
            Command::Write { lba, blocks } => {
                let (n, sense) = in_steps(&mut self.buf, lba, blocks, |b, off| r.read_exact(b).is_ok() && t.disk.write_at(b, off).is_ok());
                (n, sense.or_else(|| t.write_through()))
            }
            Command::WriteSame { lba, blocks, zeros } => {
                let mut block = [0u8; cdb::BLOCK as usize];
                if !zeros && r.read_exact(&mut block).is_err() {
                    (0, Some(cdb::IO_ERROR))
                } else if block.iter().all(|&b| b == 0) {
                    (0, t.disk.write_zeroes(lba * cdb::BLOCK, blocks * cdb::BLOCK).err().map(|_| cdb::IO_ERROR))
                } else {
                    let fill = |b: &mut [u8]| b.chunks_mut(block.len()).for_each(|c| c.copy_from_slice(&block[..c.len()]));
                    let (_, sense) = in_steps(&mut self.buf, lba, blocks, |b, off| {
                        fill(b);
                        t.disk.write_at(b, off).is_ok()
                    });
                    (0, sense)
                }
            }
            Command::ModeSelect { len } => {
                // The list is read whole (MODE SELECT(10) allows 64 KiB) and checked before any change.
                let mut p = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 16)];
                if r.read_exact(&mut p).is_err() {
                    (0, Some(cdb::IO_ERROR))
                } else {
                    match cdb::mode_select(&cdb[..op_len], &p, &unit) {
                        Ok(wce) => {
                            t.write_cache = wce.unwrap_or(t.write_cache);
                            // With the cache now off, what it held is flushed first (as QEMU does).
                            (0, t.write_through())
                        }
                        Err(s) => (0, Some(s)),
                    }
                }
            }
        };
        if sense == Some(cdb::IO_ERROR) {
            log(&self.id, &format!("target {}: I/O error", t.target));
        }
        t.sense = sense;
        let written_in = if mode == Dir::FromDev { done } else { 0 };
        // QEMU's residual counts from the CDB's transfer length, not the data returned.
        match sense {
            None => respond(sense_size, w, S_OK, GOOD, buffers.saturating_sub(xfer.max(done)), None, written_in),
            Some(s) => respond(sense_size, w, S_OK, CHECK_CONDITION, 0, Some(s), written_in),
        }
    }
}

/// Moves `blocks` blocks from `lba` through `buf` in pieces of at most STEP bytes, `step(piece,
/// disk offset)` moving one; returns the bytes moved, and IO_ERROR when a piece failed.
fn in_steps(buf: &mut Vec<u8>, lba: u64, blocks: u64, mut step: impl FnMut(&mut [u8], u64) -> bool) -> (u64, Option<Sense>) {
    let (start, end) = (lba * cdb::BLOCK, (lba + blocks) * cdb::BLOCK);
    let mut off = start;
    while off < end {
        let n = (end - off).min(STEP) as usize;
        buf.resize(n, 0);
        if !step(&mut buf[..n], off) {
            return (off - start, Some(cdb::IO_ERROR));
        }
        off += n as u64;
    }
    (off - start, None)
}

/// Writes the response (`w` holds exactly its bytes); returns the bytes written in all.
fn respond(sense_size: u32, w: &mut Writer<'_>, response: u8, status: u8, resid: u64, sense: Option<Sense>, data_in: u64) -> Result<u32, String> {
    let mut resp = vec![0u8; RESP_HEAD + sense_size as usize];
    if let Some(s) = sense {
        let fixed = s.fixed();
        let n = fixed.len().min(sense_size as usize);
        resp[0..4].copy_from_slice(&(n as u32).to_le_bytes());
        resp[RESP_HEAD..RESP_HEAD + n].copy_from_slice(&fixed[..n]);
    }
    resp[4..8].copy_from_slice(&u32::try_from(resid).unwrap_or(u32::MAX).to_le_bytes());
    resp[10] = status;
    resp[11] = response;
    w.write_all(&resp).map_err(|e| e.to_string())?;
    Ok(u32::try_from(resp.len() as u64 + data_in).unwrap_or(u32::MAX))
}

impl VirtioDevice for Scsi {
    fn device_type(&self) -> u16 {
        8
    }
    fn class_code(&self) -> u32 {
        0x01_0000 << 8
    }
    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_HOTPLUG | F_CHANGE
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE; 2 + usize::from(self.queues)]
    }
    fn msix_vectors(&self) -> u16 {
        // QEMU: num_queues + 3 (config, control, event).
        self.queues + 3
    }
    fn read_config(&self, off: u64, data: &mut [u8]) {
        let mut c = [0u8; 36];
        c[0..4].copy_from_slice(&u32::from(self.queues).to_le_bytes());
        c[4..8].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes()); // seg_max
        c[8..12].copy_from_slice(&MAX_SECTORS.to_le_bytes());
        c[12..16].copy_from_slice(&CMD_PER_LUN.to_le_bytes());
        c[16..20].copy_from_slice(&16u32.to_le_bytes()); // event_info_size
        c[20..24].copy_from_slice(&self.sense_size.to_le_bytes());
        c[24..28].copy_from_slice(&self.cdb_size.to_le_bytes());
        c[28..30].copy_from_slice(&0u16.to_le_bytes()); // max_channel
        c[30..32].copy_from_slice(&MAX_TARGET.to_le_bytes());
        c[32..36].copy_from_slice(&MAX_LUN.to_le_bytes());
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }
    fn write_config(&mut self, off: u64, data: &[u8]) {
        // sense_size (20) and cdb_size (24) are the driver's to set, as whole 32-bit fields.
        let Ok(b) = <[u8; 4]>::try_from(data) else { return };
        let v = u32::from_le_bytes(b).min(MAX_SENSE_CDB);
        match off {
            20 => self.sense_size = v,
            24 => self.cdb_size = v.max(1),
            _ => {}
        }
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        // The event queue's buffers stay available: no events are sent.
        if q == 1 {
            return Ok(0);
        }
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let used = self.serve(q, queue, mem)?;
        Ok(if used { 1 << q } else { 0 })
    }
    fn reset(&mut self) {
        self.sense_size = SENSE_SIZE;
        self.cdb_size = CDB_SIZE;
        for t in &mut self.targets {
            t.unit_attention = true;
            t.sense = None;
        }
    }
    fn describe(&self) -> serde_json::Value {
        let t: Vec<serde_json::Value> = self
            .targets
            .iter()
            .map(|t| serde_json::json!({ "device": t.id, "target": t.target, "file": t.disk.describe(), "size": t.disk.size(), "serial": t.serial, "ro": t.disk.readonly() }))
            .collect();
        serde_json::json!({ "device": self.id, "targets": t })
    }
}
