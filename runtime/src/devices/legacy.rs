//! i8042 (reset only), CMOS RTC, q35 reset control (0xcf9), debug-exit and boot-marker ports.
use super::Action;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Debug-exit port (QEMU `isa-debug-exit,iobase=0xf4,iosize=4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Boot-marker port: the guest writes a code byte, the VMM timestamps it.
pub const MARKER_PORT: u16 = 0x80;

/// The keyboard controller, enough for Linux's probe and the 0xfe CPU-reset command. With
/// [`I8042::with_keyboard`] (firmware boots) a keyboard answers its commands as QEMU's PS/2
/// keyboard does (ACK, self-test, ID), for firmware that polls for the answers; it raises no
/// IRQ 1 and has no keys.
#[derive(Default)]
pub struct I8042 {
    cmd: u8,
    ram0: u8,
    out: std::collections::VecDeque<u8>,
    keyboard: bool,
    kbd_param: bool,
}

/// Bytes the output queue holds at most.
const I8042_QUEUE: usize = 16;

impl I8042 {
    /// A controller with a keyboard that answers commands.
    pub fn with_keyboard() -> Self {
        I8042 { keyboard: true, ..Default::default() }
    }
    fn push(&mut self, bytes: &[u8]) {
        for b in bytes {
            if self.out.len() < I8042_QUEUE {
                self.out.push_back(*b);
            }
        }
    }
    /// Reads port 0x60 or 0x64.
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            0x64 => u8::from(!self.out.is_empty()) | 0x04 | 0x10, // OBF, system flag, unlocked
            _ => self.out.pop_front().unwrap_or(0),
        }
    }
    /// A byte for the keyboard (port 0x60 with no controller command pending).
    fn keyboard_write(&mut self, v: u8) {
        if !self.keyboard {
            return;
        }
        if self.kbd_param {
            self.kbd_param = false;
            return self.push(&[0xfa]);
        }
        match v {
            0xff => self.push(&[0xfa, 0xaa]),       // reset: ACK, self-test passed
            0xf2 => self.push(&[0xfa, 0xab, 0x83]), // get ID: MF2 keyboard
            0xee => self.push(&[0xee]),             // echo
            0xed | 0xf0 | 0xf3 => {
                self.kbd_param = true; // LEDs, scan-code set, typematic rate: a parameter follows
                self.push(&[0xfa]);
            }
            _ => self.push(&[0xfa]),
        }
    }
    /// Writes port 0x60 or 0x64.
    pub fn write(&mut self, port: u16, v: u8) -> Option<Action> {
        match (port, v) {
            (0x64, 0xfe) => return Some(Action::Reset),
            (0x64, 0x20) => self.push(&[self.ram0]),
            (0x64, 0xaa) => self.push(&[0x55]), // self test passed
            (0x64, 0xab) => self.push(&[0x00]), // port test passed
            (0x64, 0xd0) => self.push(&[0x01]), // output port: reset line high
            (0x64, c) => self.cmd = c,
            (_, v) => {
                match self.cmd {
                    0x60 => self.ram0 = v,
                    0xd1 if v & 1 == 0 => return Some(Action::Reset),
                    0xd4 => {} // the mouse: not present
                    0 => self.keyboard_write(v),
                    _ => {}
                }
                self.cmd = 0;
            }
        }
        None
    }
}

/// MC146818 CMOS RTC with the host's UTC time in BCD and QEMU's memory-size bytes.
pub struct Rtc {
    index: u8,
    ram: [u8; 128],
}

fn bcd(v: u64) -> u8 {
    (((v / 10) % 10) << 4 | (v % 10)) as u8
}

impl Rtc {
    /// CMOS for a guest with `mem_bytes` of RAM.
    pub fn new(mem_bytes: u64) -> Self {
        let mut ram = [0u8; 128];
        ram[0x0a] = 0x26;
        ram[0x0b] = 0x02; // 24-hour, BCD
        ram[0x0d] = 0x80; // valid RAM and time
        let ext = (mem_bytes.saturating_sub(1 << 20) / 1024).min(0xffff) as u16;
        ram[0x17..0x19].copy_from_slice(&ext.to_le_bytes());
        ram[0x30..0x32].copy_from_slice(&ext.to_le_bytes());
        let above16 = (mem_bytes.min(crate::layout::LOW_RAM_END).saturating_sub(16 << 20) >> 16).min(0xffff) as u16;
        ram[0x34..0x36].copy_from_slice(&above16.to_le_bytes());
        let high = (mem_bytes.saturating_sub(crate::layout::LOW_RAM_END) >> 16).min(0xff_ffff) as u32;
        ram[0x5b..0x5e].copy_from_slice(&high.to_le_bytes()[..3]);
        Rtc { index: 0, ram }
    }
    /// Sets CMOS byte `index` (firmware-visible configuration).
    pub fn set(&mut self, index: u8, v: u8) {
        self.ram[usize::from(index & 0x7f)] = v;
    }
    /// Reads port 0x70/0x71.
    pub fn read(&mut self, port: u16) -> u8 {
        if port == 0x70 {
            return self.index;
        }
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let days = secs / 86400;
        let (y, m, d) = civil_from_days(days as i64);
        match self.index {
            0x00 => bcd(secs % 60),
            0x02 => bcd(secs / 60 % 60),
            0x04 => bcd(secs / 3600 % 24),
            0x06 => bcd((days + 4) % 7 + 1),
            0x07 => bcd(d),
            0x08 => bcd(m),
            0x09 => bcd(y % 100),
            0x32 => bcd(y / 100),
            0x0c => 0,
            i => self.ram[usize::from(i & 0x7f)],
        }
    }
    /// Writes port 0x70/0x71.
    pub fn write(&mut self, port: u16, v: u8) {
        if port == 0x70 {
            self.index = v & 0x7f;
        } else if !matches!(self.index, 0x0c | 0x0d) {
            self.ram[usize::from(self.index)] = v;
        }
    }
}

/// Gregorian date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as u64, m as u64, d as u64)
}

/// Timestamps of boot-marker writes, relative to VM start.
pub struct Markers {
    start: Instant,
    /// (code, microseconds since start)
    pub seen: Vec<(u8, u64)>,
}

impl Markers {
    /// Starts the clock.
    pub fn new() -> Self {
        Markers { start: Instant::now(), seen: Vec::new() }
    }
    /// Records a marker.
    pub fn mark(&mut self, code: u8) {
        if self.seen.len() < 4096 {
            self.seen.push((code, self.start.elapsed().as_micros() as u64));
        }
    }
}

impl Default for Markers {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn i8042_reset_command() {
        let mut k = I8042::default();
        assert_eq!(k.write(0x64, 0xaa), None);
        assert_eq!(k.read(0x64) & 1, 1);
        assert_eq!(k.read(0x60), 0x55);
        assert_eq!(k.write(0x64, 0xfe), Some(Action::Reset));
    }

    #[test]
    fn keyboard_answers_reset_and_id_only_when_present() {
        let mut k = I8042::with_keyboard();
        k.write(0x60, 0xff);
        assert_eq!((k.read(0x60), k.read(0x60), k.read(0x64) & 1), (0xfa, 0xaa, 0));
        k.write(0x60, 0xf2);
        assert_eq!((k.read(0x60), k.read(0x60), k.read(0x60)), (0xfa, 0xab, 0x83));
        k.write(0x60, 0xed);
        k.write(0x60, 0x07);
        assert_eq!((k.read(0x60), k.read(0x60)), (0xfa, 0xfa));
        let mut none = I8042::default();
        none.write(0x60, 0xff);
        assert_eq!(none.read(0x64) & 1, 0);
    }
}
