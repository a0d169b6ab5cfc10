//! PCI: config spaces, the chipset stubs of each profile, the root bus (CF8/CFC + ECAM) and
//! the bridges behind which the buses 1.. hang.
pub mod bridge;
pub mod bus;
pub mod chipset;
pub mod config;

pub use bridge::{Bridge, BridgeKind};
pub use bus::{PciBus, PciFunction};
pub use chipset::ChipsetError;
pub use config::{BarKind, ConfigSpace};

/// The chipset family of a profile's machine: ACPI tables, PM ports and INTx routing follow it
/// (the profile's version pins the rest as data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// q35 + ICH9 (`-machine q35`).
    Q35,
    /// i440FX + PIIX3/4 (`-machine pc`).
    Pc,
}

impl Machine {
    /// The family of `profile`, from its `machine` field; None for one the runtime can't run.
    pub fn of(profile: &ferry_formats::layout::Profile) -> Option<Self> {
        match profile.machine.as_str() {
            "q35" => Some(Machine::Q35),
            "pc" => Some(Machine::Pc),
            _ => None,
        }
    }
}
