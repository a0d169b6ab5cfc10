//! Platform devices on the I/O-port bus.
pub mod intx;
pub mod legacy;
pub mod pcihp;
pub mod pm;
pub mod serial;

/// What a device access asks the VMM to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The guest wrote to the debug-exit port.
    Exit(u8),
    /// The guest pulsed the reset line (i8042 0xfe, port 0xcf9).
    Reset,
    /// The guest entered S5 through PM1a_CNT.
    PowerOff,
    /// The guest ejected hot-plugged devices (their ids wait in the VM's eject list).
    Ejected,
}
