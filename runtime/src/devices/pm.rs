//! ACPI fixed hardware (PM1a event/control, PM timer, GPE0) at QEMU's ports, with the SCI as a
//! level interrupt on GSI 9 while any enabled status bit is set.
//!
//! Ports measured from QEMU 10 + SeaBIOS (`testdata/microguests/acpi.c`): PM base 0x600 for both
//! ICH9 (q35) and PIIX4 (pc): PM1a_EVT 0x600 (4 bytes), PM1a_CNT 0x604 (2), PM_TMR 0x608 (4,
//! 24-bit), GPE0 0x620 (16 bytes) on q35 and 0xafe0 (4 bytes) on pc; SCI IRQ 9; `\_S5` SLP_TYP 0.
use crate::pci::Machine;
use std::time::Instant;

/// PM1 status/enable bit of the power button.
pub const PWRBTN: u16 = 1 << 8;
/// PM1 status/enable bit of the timer carry.
const TMR: u16 = 1 << 0;
/// PM1 control: SCI_EN.
const SCI_EN: u16 = 1 << 0;
/// PM1 control: SLP_EN (write-only).
const SLP_EN: u16 = 1 << 13;
/// PM timer frequency.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The SCI's interrupt line (ISA IRQ 9 = GSI 9, level, active high).
pub const SCI_IRQ: u32 = 9;
/// SLP_TYP of `\_S5` (QEMU powers off on SLP_TYP 0).
pub const S5_SLP_TYP: u16 = 0;

/// Where the fixed-hardware blocks live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmPorts {
    /// PM1a event block (status, enable), 4 bytes.
    pub evt: u16,
    /// PM1a control block, 2 bytes.
    pub cnt: u16,
    /// PM timer, 4 bytes (24-bit counter).
    pub tmr: u16,
    /// GPE0 block (status half, enable half).
    pub gpe0: u16,
    /// GPE0 block length in bytes.
    pub gpe0_len: u8,
}

impl PmPorts {
    /// QEMU's layout for the profile's chipset (ICH9 or PIIX4).
    pub fn for_profile(p: Machine) -> Self {
        match p {
            Machine::Q35 => PmPorts { evt: 0x600, cnt: 0x604, tmr: 0x608, gpe0: 0x620, gpe0_len: 16 },
            Machine::Pc => PmPorts { evt: 0x600, cnt: 0x604, tmr: 0x608, gpe0: 0xafe0, gpe0_len: 4 },
        }
    }
}

/// What a PM register write asks the VMM to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmAction {
    /// SLP_EN with the S5 sleep type: power off.
    PowerOff,
}

/// Drives the SCI line (KVM_IRQ_LINE on GSI 9 in the VMM).
pub type SciLine = Box<dyn FnMut(bool) + Send>;

/// The PM1a + timer + GPE0 register file.
pub struct Pm {
    ports: PmPorts,
    sts: u16,
    en: u16,
    cnt: u16,
    gpe_sts: Vec<u8>,
    gpe_en: Vec<u8>,
    start: Instant,
    sci: SciLine,
    level: bool,
}

impl Pm {
    /// Fixed hardware at `ports`, already in ACPI mode (SCI_EN set; the FADT has no SMI_CMD).
    pub fn new(ports: PmPorts, sci: SciLine) -> Self {
        let half = usize::from(ports.gpe0_len / 2);
        Pm { ports, sts: 0, en: 0, cnt: SCI_EN, gpe_sts: vec![0; half], gpe_en: vec![0; half], start: Instant::now(), sci, level: false }
    }

    /// Whether `port` is one of this device's registers.
    pub fn decodes(&self, port: u16) -> bool {
        let p = self.ports;
        let in_block = |base: u16, len: u16| port >= base && port - base < len;
        in_block(p.evt, 4) || in_block(p.cnt, 2) || in_block(p.tmr, 4) || in_block(p.gpe0, u16::from(p.gpe0_len))
    }

    /// 24-bit PM timer value now.
    fn timer(&self) -> u32 {
        let ticks = self.start.elapsed().as_nanos() * u128::from(PM_TIMER_HZ) / 1_000_000_000;
        (ticks & 0x00ff_ffff) as u32
    }

    /// The register byte at `port` (None when undecoded); `tmr` is the timer sampled once per access.
    fn read_byte(&self, port: u16, tmr: u32) -> Option<u8> {
        let p = self.ports;
        let word_byte = |v: u16, i: u16| v.to_le_bytes()[usize::from(i & 1)];
        if port >= p.evt && port - p.evt < 2 {
            Some(word_byte(self.sts, port - p.evt))
        } else if port >= p.evt + 2 && port - p.evt < 4 {
            Some(word_byte(self.en, port - p.evt))
        } else if port >= p.cnt && port - p.cnt < 2 {
            Some(word_byte(self.cnt & !SLP_EN, port - p.cnt))
        } else if port >= p.tmr && port - p.tmr < 4 {
            tmr.to_le_bytes().get(usize::from(port - p.tmr)).copied()
        } else if port >= p.gpe0 && port - p.gpe0 < u16::from(p.gpe0_len) {
            let i = usize::from(port - p.gpe0);
            let half = self.gpe_sts.len();
            if i < half {
                self.gpe_sts.get(i).copied()
            } else {
                self.gpe_en.get(i - half).copied()
            }
        } else {
            None
        }
    }

    /// Port read of `data.len()` bytes at `port`.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let tmr = self.timer();
        for (i, d) in data.iter_mut().enumerate() {
            *d = port.checked_add(i as u16).and_then(|p| self.read_byte(p, tmr)).unwrap_or(0xff);
        }
    }

    /// Port write of `data` at `port`.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<PmAction> {
        let p = self.ports;
        let mut action = None;
        for (i, &v) in data.iter().enumerate() {
            let Some(a) = port.checked_add(i as u16) else { break };
            let shift = |base: u16| 8 * u32::from((a - base) & 1);
            if a >= p.evt && a - p.evt < 2 {
                self.sts &= !(u16::from(v) << shift(p.evt)); // write 1 to clear
            } else if a >= p.evt + 2 && a - p.evt < 4 {
                let s = shift(p.evt);
                self.en = (self.en & !(0xff << s)) | (u16::from(v) << s);
            } else if a >= p.cnt && a - p.cnt < 2 {
                let s = shift(p.cnt);
                self.cnt = (self.cnt & !(0xff << s)) | (u16::from(v) << s) | SCI_EN;
            } else if a >= p.gpe0 && a - p.gpe0 < u16::from(p.gpe0_len) {
                let j = usize::from(a - p.gpe0);
                let half = self.gpe_sts.len();
                if let Some(s) = self.gpe_sts.get_mut(j) {
                    *s &= !v;
                } else if let Some(e) = self.gpe_en.get_mut(j - half) {
                    *e = v;
                }
            }
        }
        if self.cnt & SLP_EN != 0 {
            self.cnt &= !SLP_EN;
            if (self.cnt >> 10) & 7 == S5_SLP_TYP {
                action = Some(PmAction::PowerOff);
            } else {
                crate::virtio::log("pm", &format!("sleep type {} is not supported: ignored", (self.cnt >> 10) & 7));
            }
        }
        self.update_sci();
        action
    }

    /// The power button was pressed (QMP `system_powerdown`): PWRBTN_STS, SCI if enabled.
    /// Returns whether the guest had enabled the event.
    pub fn press_power_button(&mut self) -> bool {
        self.sts |= PWRBTN;
        self.update_sci();
        self.en & PWRBTN != 0
    }

    /// Sets GPE0 status bit `bit` (PCI hotplug: bit 1) and raises the SCI if the guest enabled it.
    pub fn gpe_event(&mut self, bit: u8) {
        if let Some(s) = self.gpe_sts.get_mut(usize::from(bit / 8)) {
            *s |= 1 << (bit % 8);
        }
        self.update_sci();
    }

    fn update_sci(&mut self) {
        let gpe = self.gpe_sts.iter().zip(&self.gpe_en).any(|(s, e)| s & e != 0);
        let level = (self.sts & self.en & !TMR) != 0 || gpe;
        if level != self.level {
            self.level = level;
            (self.sci)(level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn pm() -> (Pm, Arc<Mutex<Vec<bool>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let pm = Pm::new(PmPorts::for_profile(Machine::Q35), Box::new(move |l| s2.lock().unwrap_or_else(|e| e.into_inner()).push(l)));
        (pm, seen)
    }

    #[test]
    fn power_button_raises_and_clears_sci() {
        let (mut pm, seen) = pm();
        assert!(!pm.press_power_button()); // not enabled: status only, no SCI
        assert!(seen.lock().map(|s| s.is_empty()).unwrap_or(false));
        let mut b = [0u8; 2];
        pm.read(0x600, &mut b);
        assert_eq!(u16::from_le_bytes(b), PWRBTN);
        pm.write(0x602, &PWRBTN.to_le_bytes());
        pm.write(0x600, &PWRBTN.to_le_bytes()); // clear
        pm.read(0x600, &mut b);
        assert_eq!(u16::from_le_bytes(b), 0);
        assert!(pm.press_power_button());
        pm.write(0x600, &[0, 1]);
        assert_eq!(*seen.lock().unwrap_or_else(|e| e.into_inner()), vec![true, false, true, false]);
    }

    #[test]
    fn s5_powers_off_and_sci_en_stays_set() {
        let (mut pm, _) = pm();
        let mut b = [0u8; 2];
        pm.read(0x604, &mut b);
        assert_eq!(u16::from_le_bytes(b) & SCI_EN, SCI_EN);
        assert_eq!(pm.write(0x604, &(1u16 << 10 | SLP_EN).to_le_bytes()), None); // S1: ignored
        assert_eq!(pm.write(0x604, &SLP_EN.to_le_bytes()), Some(PmAction::PowerOff));
        assert!(!pm.decodes(0x60c) && pm.decodes(0x62f) && !pm.decodes(0x630));
    }

    #[test]
    fn timer_counts_at_3_58_mhz() {
        let (mut pm, _) = pm();
        let mut a = [0u8; 4];
        pm.read(0x608, &mut a);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut b = [0u8; 4];
        pm.read(0x608, &mut b);
        let d = u32::from_le_bytes(b).wrapping_sub(u32::from_le_bytes(a)) & 0x00ff_ffff;
        assert!((357_000..450_000).contains(&d), "{d} ticks in 100 ms");
    }
}
