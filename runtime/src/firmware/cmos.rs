//! The CMOS bytes QEMU's x86 machines set for the firmware (`hw/i386/x86.c`, `pc.c`
//! `pc_cmos_init`) beyond the memory sizes the RTC always carries.
use crate::devices::legacy::Rtc;

/// Base memory in KiB (0x15/0x16).
const BASE_MEM_KIB: u16 = 640;

/// Fills the firmware's CMOS fields for `vcpus` processors.
pub fn fill(rtc: &mut Rtc, vcpus: u32) {
    let [lo, hi] = BASE_MEM_KIB.to_le_bytes();
    rtc.set(0x15, lo);
    rtc.set(0x16, hi);
    rtc.set(0x10, 0); // no floppy drives
    rtc.set(0x14, 0x06); // equipment: FPU, PS/2 mouse; no floppy, no display adapter bits
    rtc.set(0x12, 0); // no IDE hard disk types
    rtc.set(0x5f, vcpus.saturating_sub(1).min(0xff) as u8); // SeaBIOS waits for this many APs
    rtc.set(0x3d, 0x02); // legacy boot order: hard disk first (bootorder overrides it)
    rtc.set(0x38, 0x00); // boot signature check on, third boot device none
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_fields_read_back() {
        let mut r = Rtc::new(256 << 20);
        fill(&mut r, 4);
        let mut get = |i: u8| {
            r.write(0x70, i);
            r.read(0x71)
        };
        assert_eq!((get(0x15), get(0x16)), (0x80, 0x02));
        assert_eq!(get(0x5f), 3);
        // 256 MiB: 240 MiB above 16 MiB in 64 KiB units
        assert_eq!(u16::from_le_bytes([get(0x34), get(0x35)]), 240 * 16);
    }
}
