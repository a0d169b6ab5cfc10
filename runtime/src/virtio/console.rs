//! virtio-console with MULTIPORT: port 0 is a console (output goes to the VM's console sink),
//! port 1 is a named host↔guest channel ("org.ferry.channel.0", announced with PORT_NAME).
//! With a [`Channel`] its host end is a unix socket (bytes both ways, connects and hang-ups
//! as PORT_OPEN events); without one the guest's output on it is only captured.
use super::channel::Channel;
use super::{check_chain, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::memory::Memory;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};

const F_MULTIPORT: u64 = 1 << 1;
const PORTS: u32 = 2;
/// Name of the host channel port.
pub const CHANNEL_NAME: &str = "org.ferry.channel.0";
const CTRL_RX: usize = 2;
const CTRL_TX: usize = 3;
const CHANNEL_RX: usize = 4;
const EV_PORT_OPEN: u16 = 6;

/// A multiport console.
pub struct Console {
    console_out: Box<dyn Write + Send>,
    /// Bytes the guest wrote to the channel port.
    pub channel_out: Arc<Mutex<Vec<u8>>>,
    pending: VecDeque<Vec<u8>>,
    channel: Option<Arc<Channel>>,
    /// The guest sent PORT_READY for port 1 (PORT_OPEN events may be sent from then on).
    channel_ready: bool,
}

impl Console {
    /// Port 0 output goes to `console_out`; port 1 has no host end.
    pub fn new(console_out: Box<dyn Write + Send>) -> Self {
        Self::with_channel(console_out, None)
    }
    /// Port 0 output goes to `console_out`; port 1's host end is `channel`.
    pub fn with_channel(console_out: Box<dyn Write + Send>, channel: Option<Arc<Channel>>) -> Self {
        Console { console_out, channel_out: Default::default(), pending: VecDeque::new(), channel, channel_ready: false }
    }
    /// Reports host connects / hang-ups and moves host bytes into port 1's receive buffers.
    fn deliver(&mut self, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        let Some(ch) = self.channel.as_ref() else { return Ok(0) };
        let inbox = ch.inbox.clone();
        let Ok(mut inbox) = inbox.lock() else { return Ok(0) };
        let opens = std::mem::take(&mut inbox.opens);
        if self.channel_ready {
            for open in opens {
                self.ctrl(1, EV_PORT_OPEN, u16::from(open), &[]);
            }
        }
        let mut used = 0u64;
        if let Some(rx) = queues.get_mut(CHANNEL_RX) {
            while !inbox.data.is_empty() {
                let Some(chain) = rx.iter(mem).ok().and_then(|mut it| it.next()) else { break };
                let head = chain.head_index();
                check_chain(CHANNEL_RX, &chain, mem)?;
                let mut w = Writer::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: CHANNEL_RX, head, reason: e.to_string() })?;
                let n = w.available_bytes().min(inbox.data.len());
                let bytes: Vec<u8> = inbox.data.drain(..n).collect();
                w.write_all(&bytes).map_err(|e| VirtioError::BadChain { queue: CHANNEL_RX, head, reason: e.to_string() })?;
                rx.add_used(mem, head, n as u32).map_err(|e| VirtioError::BadRing(CHANNEL_RX, e.to_string()))?;
                used |= 1 << CHANNEL_RX;
            }
        }
        drop(inbox);
        if let Some(ctrl) = queues.get_mut(CTRL_RX) {
            if self.flush_ctrl(ctrl, mem)? {
                used |= 1 << CTRL_RX;
            }
        }
        Ok(used)
    }
    fn ctrl(&mut self, id: u32, event: u16, value: u16, extra: &[u8]) {
        let mut m = Vec::with_capacity(8 + extra.len());
        m.extend_from_slice(&id.to_le_bytes());
        m.extend_from_slice(&event.to_le_bytes());
        m.extend_from_slice(&value.to_le_bytes());
        m.extend_from_slice(extra);
        if self.pending.len() < 256 {
            self.pending.push_back(m);
        }
    }
    fn flush_ctrl(&mut self, queue: &mut Queue, mem: &Memory) -> Result<bool, VirtioError> {
        let mut used = false;
        while !self.pending.is_empty() {
            let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) else { break };
            let head = chain.head_index();
            check_chain(CTRL_RX, &chain, mem)?;
            let mut w = Writer::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: CTRL_RX, head, reason: e.to_string() })?;
            let msg = self.pending.pop_front().unwrap_or_default();
            let n = msg.len().min(w.available_bytes());
            let _ = w.write_all(&msg[..n]);
            queue.add_used(mem, head, n as u32).map_err(|e| VirtioError::BadRing(CTRL_RX, e.to_string()))?;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for Console {
    fn device_type(&self) -> u16 {
        3
    }
    fn class_code(&self) -> u32 {
        0x07_8000 << 8
    }
    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_MULTIPORT
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![128; (2 * PORTS + 2) as usize]
    }
    fn read_config(&self, off: u64, data: &mut [u8]) {
        let mut c = [0u8; 12];
        c[4..8].copy_from_slice(&PORTS.to_le_bytes());
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }
    fn reset(&mut self) {
        self.pending.clear();
        self.channel_ready = false;
    }
    fn poll_fd(&self) -> Option<std::os::unix::io::RawFd> {
        self.channel.as_ref().map(|c| c.wake_fd())
    }
    fn poll(&mut self, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        if let Some(ch) = self.channel.as_ref() {
            let _ = ch.wake.read();
        }
        self.deliver(queues, mem)
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        let mut used = 0u64;
        let tx_port = match q {
            1 => Some(0),
            CTRL_TX => None,
            n if n >= 4 && n % 2 == 1 => Some((n as u32 - 2) / 2),
            CHANNEL_RX => return self.deliver(queues, mem),
            _ => {
                if q == CTRL_RX {
                    if let Some(rx) = queues.get_mut(CTRL_RX) {
                        if self.flush_ctrl(rx, mem)? {
                            used |= 1 << CTRL_RX;
                        }
                    }
                }
                return Ok(used); // port 0 receive: nothing to send to the guest
            }
        };
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(q, &chain, mem)?;
            let mut r = Reader::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: q, head, reason: e.to_string() })?;
            let mut buf = vec![0u8; r.available_bytes().min(1 << 16)];
            let n = r.read(&mut buf).unwrap_or(0);
            buf.truncate(n);
            queue.add_used(mem, head, 0).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used |= 1 << q;
            match tx_port {
                Some(0) => {
                    let _ = self.console_out.write_all(&buf);
                }
                Some(_) => {
                    if let Some(ch) = self.channel.as_ref() {
                        ch.send(&buf);
                    }
                    if let Ok(mut c) = self.channel_out.lock() {
                        if c.len() < 1 << 20 {
                            c.extend_from_slice(&buf);
                        }
                    }
                }
                None if buf.len() >= 8 => {
                    let id = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    let event = u16::from_le_bytes([buf[4], buf[5]]);
                    match event {
                        0 => (0..PORTS).for_each(|p| self.ctrl(p, 1, 1, &[])), // DEVICE_READY -> PORT_ADD
                        3 if id == 0 => {
                            self.ctrl(0, 4, 1, &[]); // CONSOLE_PORT
                            self.ctrl(0, 6, 1, &[]); // PORT_OPEN
                        }
                        3 if id < PORTS => {
                            let mut name = CHANNEL_NAME.as_bytes().to_vec();
                            name.push(0);
                            self.ctrl(id, 7, 1, &name); // PORT_NAME
                            // PORT_OPEN says whether the host end is there (always, uncaptured).
                            let open = self.channel.as_ref().is_none_or(|c| c.connected());
                            self.ctrl(id, EV_PORT_OPEN, u16::from(open), &[]);
                            self.channel_ready = true;
                            if let Some(ch) = self.channel.as_ref() {
                                if let Ok(mut i) = ch.inbox.lock() {
                                    i.opens.clear(); // the state just sent covers them
                                }
                            }
                        }
                        _ => {}
                    }
                }
                None => {}
            }
        }
        if let Some(rx) = queues.get_mut(CTRL_RX) {
            if self.flush_ctrl(rx, mem)? {
                used |= 1 << CTRL_RX;
            }
        }
        Ok(used)
    }
}
