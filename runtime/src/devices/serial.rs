//! COM1 (0x3f8, IRQ 4): vm-superio's 16550 writing to a log file or stdout.
use std::io::Write;
use vm_superio::{serial::NoEvents, Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// An eventfd registered as an irqfd on GSI 4.
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// Where the guest console goes: the sink plus an in-memory copy for milestone watching.
pub struct ConsoleOut {
    sink: Option<Box<dyn Write + Send>>,
    /// Every byte written, capped.
    pub captured: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl ConsoleOut {
    /// A console writing to `sink` (if any) and capturing up to 16 MiB.
    pub fn new(sink: Option<Box<dyn Write + Send>>) -> Self {
        ConsoleOut { sink, captured: Default::default() }
    }
    /// A console sharing another one's capture buffer.
    pub fn with_capture(sink: Option<Box<dyn Write + Send>>, captured: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> Self {
        ConsoleOut { sink, captured }
    }
}

impl Write for ConsoleOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut c) = self.captured.lock() {
            if c.len() < 16 << 20 {
                c.extend_from_slice(buf);
            }
        }
        if let Some(s) = self.sink.as_mut() {
            s.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.sink.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

/// The 16550 model.
pub type Uart = Serial<IrqTrigger, NoEvents, ConsoleOut>;
