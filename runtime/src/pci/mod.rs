//! PCI: config spaces, the chipset stubs of each profile, and the root bus (CF8/CFC + ECAM).
pub mod bus;
pub mod chipset;
pub mod config;

pub use bus::{PciBus, PciFunction};
pub use chipset::ChipsetError;
pub use config::{BarKind, ConfigSpace};
