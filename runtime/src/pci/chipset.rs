//! The chipset functions of a machine profile, built from the profile's data
//! (`formats/machines/*.json`, `chipset[].config`): a new profile version needs no code here.
use super::config::{BarKind, ConfigSpace};
use ferry_formats::layout::chipset::{self, Header};
use ferry_formats::layout::{LayoutError, Profile};

/// QEMU's default PCI subsystem (Red Hat, "QEMU"), which the virtio functions present.
pub const QEMU_SUBSYSTEM: (u16, u16) = (0x1af4, 0x1100);

/// A chipset function: (slot, function, header).
pub type Stub = (u8, u8, ConfigSpace);

/// A profile the runtime cannot present.
#[derive(Debug, thiserror::Error)]
pub enum ChipsetError {
    /// The profile's data is invalid.
    #[error(transparent)]
    Profile(#[from] LayoutError),
    /// The profile's ECAM is not where the runtime serves it.
    #[error("machine profile {name}: ecam {ecam:#x} differs from the runtime's ECAM window at {runtime:#x}")]
    Ecam {
        /// Profile name.
        name: String,
        /// The profile's ECAM base.
        ecam: u64,
        /// The runtime's.
        runtime: u64,
    },
}

/// The chipset functions of `profile`, with their config spaces.
pub fn functions(profile: &Profile) -> Result<Vec<Stub>, ChipsetError> {
    if let Some(ecam) = profile.ecam_base()? {
        if ecam != crate::layout::ECAM_BASE {
            return Err(ChipsetError::Ecam { name: profile.name.clone(), ecam, runtime: crate::layout::ECAM_BASE });
        }
    }
    Ok(profile.chipset_headers()?.into_iter().map(|(a, h)| (a.slot, a.function, config_space(&h))).collect())
}

/// The data-only functions of `profile`'s device classes (the VGA adapter): placed where the
/// spec leaves their slot free, which every allocated spec does.
pub fn class_stubs(profile: &Profile) -> Result<Vec<Stub>, ChipsetError> {
    Ok(profile.stub_headers()?.into_iter().map(|(a, h)| (a.slot, a.function, config_space(&h))).collect())
}

/// Builds the config space a decoded header describes.
fn config_space(h: &Header) -> ConfigSpace {
    let mut c = ConfigSpace::new(h.vendor, h.device, h.class_rev, h.header_type, h.subsystem);
    for r in &h.registers {
        for (i, b) in r.bytes.iter().enumerate() {
            c.set8(r.at + i, *b);
        }
    }
    for b in &h.bars {
        let kind = match b.kind {
            chipset::BarKind::Io => BarKind::Io,
            chipset::BarKind::Mem32 => BarKind::Mem32,
            chipset::BarKind::Mem32Prefetch => BarKind::Mem32Prefetch,
            chipset::BarKind::Mem64 { prefetch } => BarKind::Mem64 { prefetch },
        };
        c.add_bar(b.index, b.size, kind);
    }
    c.set8(0x3d, h.interrupt_pin);
    if let Some(first) = h.caps.first() {
        c.set_cap_head(first.at as u8);
    }
    for cap in &h.caps {
        c.add_cap(cap.at, cap.id, cap.next, &cap.body, &cap.wmask);
    }
    for (from, to) in &h.writable {
        c.writable(*from, *to);
    }
    if let Some(rom) = h.rom {
        c.add_rom(rom);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_builds() {
        for name in Profile::names() {
            let p = Profile::builtin(name).expect("profile");
            let f = functions(&p).expect("chipset");
            assert_eq!(f.len(), p.chipset.len(), "{name}");
        }
    }

    #[test]
    fn foreign_ecam_is_refused() {
        let mut p = Profile::builtin("q35-v1").expect("profile");
        p.ecam = Some("e0000000".into());
        let e = functions(&p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("ecam 0xe0000000 differs"), "{e}");
    }
}
