//! The small ISA ports firmware touches on QEMU's machines: the debug console (isa-debugcon,
//! 0x402), System Control Port A (0x92: fast A20 and reset), the APM control/status pair
//! (0xb2/0xb3), and on q35 ICH9's SMI_EN register (PMBASE + 0x30). The runtime offers no SMM,
//! so they behave as QEMU's with `smm=off`: an APM command raises no SMI and SMI_EN reads
//! APMC_EN set, which tells SeaBIOS SMM is already set up (it then leaves it alone).
use crate::devices::Action;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The debug console port.
pub const DEBUGCON: u16 = 0x402;
/// QEMU's isa-debugcon reads back this byte (its `readback` default).
const DEBUGCON_READBACK: u8 = 0xe9;
/// System Control Port A.
pub const PORT_A: u16 = 0x92;
/// ICH9 SMI_EN (PMBASE 0x600 + 0x30).
pub const ICH9_SMI_EN: u16 = 0x630;
/// SMI_EN.APMC_EN.
const APMC_EN: u32 = 1 << 5;
/// Most debug-console bytes kept in memory (the file sink, if any, gets all of them).
const DEBUGCON_KEEP: usize = 1 << 20;

/// The ports' state.
pub struct Ports {
    port_a: u8,
    apm: [u8; 2],
    smi_en: Option<u32>,
    /// What the firmware wrote to 0x402 (the first MiB).
    pub debugcon: Arc<Mutex<Vec<u8>>>,
    sink: Option<Box<dyn Write + Send>>,
}

impl Ports {
    /// The ports of a q35 (`ich9`) or pc machine; debug-console bytes also go to `sink`.
    pub fn new(ich9: bool, sink: Option<Box<dyn Write + Send>>) -> Self {
        Ports { port_a: 0, apm: [0; 2], smi_en: ich9.then_some(APMC_EN), debugcon: Arc::default(), sink }
    }

    /// Whether `port` is one of these.
    pub fn decodes(&self, port: u16) -> bool {
        matches!(port, DEBUGCON | PORT_A | 0xb2 | 0xb3) || (self.smi_en.is_some() && (ICH9_SMI_EN..ICH9_SMI_EN + 4).contains(&port))
    }

    /// A read.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        data.fill(0);
        match port {
            DEBUGCON => data.fill(DEBUGCON_READBACK),
            PORT_A => data[0] = self.port_a | 0x02, // A20 always on
            0xb2 | 0xb3 => data[0] = self.apm[usize::from(port - 0xb2)],
            p => {
                let v = self.smi_en.unwrap_or(0).to_le_bytes();
                let at = usize::from(p - ICH9_SMI_EN);
                for (i, b) in data.iter_mut().enumerate() {
                    *b = v.get(at + i).copied().unwrap_or(0);
                }
            }
        }
    }

    /// A write; a reset request through port A becomes [`Action::Reset`].
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<Action> {
        let v = data.first().copied().unwrap_or(0);
        match port {
            DEBUGCON => {
                if let Ok(mut d) = self.debugcon.lock() {
                    let room = DEBUGCON_KEEP.saturating_sub(d.len());
                    d.extend_from_slice(&data[..data.len().min(room)]);
                }
                if let Some(s) = self.sink.as_mut() {
                    let _ = s.write_all(data).and_then(|_| s.flush());
                }
            }
            PORT_A => {
                self.port_a = v & !1;
                if v & 1 != 0 {
                    return Some(Action::Reset);
                }
            }
            0xb2 | 0xb3 => self.apm[usize::from(port - 0xb2)] = v, // no SMI: SMM is not offered
            p => {
                if let Some(cur) = self.smi_en.as_mut() {
                    let mut b = cur.to_le_bytes();
                    let at = usize::from(p - ICH9_SMI_EN);
                    for (i, x) in data.iter().enumerate() {
                        if let Some(t) = b.get_mut(at + i) {
                            *t = *x;
                        }
                    }
                    *cur = u32::from_le_bytes(b);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smm_reads_as_set_up_and_port_a_resets() {
        let mut p = Ports::new(true, None);
        let mut d = [0u8; 4];
        assert!(p.decodes(0x630) && !Ports::new(false, None).decodes(0x630));
        p.read(0x630, &mut d);
        assert_eq!(u32::from_le_bytes(d) & APMC_EN, APMC_EN);
        assert_eq!(p.write(PORT_A, &[0x02]), None);
        assert_eq!(p.write(PORT_A, &[0x03]), Some(Action::Reset));
        p.write(DEBUGCON, b"ok\n");
        assert_eq!(p.debugcon.lock().map(|d| d.clone()).unwrap_or_default(), b"ok\n");
    }
}
