//! The host end of virtio-console port 1: a unix socket the VMM listens on. One client at a
//! time; its bytes go to the guest, the guest's bytes go to it, and connects / hang-ups become
//! PORT_OPEN events (like QEMU's `-chardev socket,server=on` behind a `virtserialport`).
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// Host bytes held back while the guest posts no receive buffers.
const INBOX_MAX: usize = 1 << 20;

/// What the socket thread hands to the device.
#[derive(Default)]
pub(crate) struct Inbox {
    /// Bytes from the host for the guest.
    pub data: VecDeque<u8>,
    /// Connection changes not yet reported to the guest (true = connected).
    pub opens: Vec<bool>,
}

/// A listening channel socket.
pub struct Channel {
    path: PathBuf,
    pub(crate) inbox: Arc<Mutex<Inbox>>,
    conn: Arc<Mutex<Option<UnixStream>>>,
    pub(crate) wake: EventFd,
    stop: Arc<AtomicBool>,
}

/// Errors setting up the channel socket.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket could not be bound or the helper thread started.
    #[error("console channel socket {0}: {1}")]
    Io(String, std::io::Error),
}

impl Channel {
    /// Listens on `path` (replacing a stale socket file) and serves clients in a thread.
    pub fn listen(path: &Path) -> Result<Self, ChannelError> {
        let err = |e| ChannelError::Io(path.display().to_string(), e);
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let wake = EventFd::new(libc::EFD_NONBLOCK).map_err(err)?;
        let ch = Channel {
            path: path.to_path_buf(),
            inbox: Arc::default(),
            conn: Arc::default(),
            wake,
            stop: Arc::default(),
        };
        let (inbox, conn, stop) = (ch.inbox.clone(), ch.conn.clone(), ch.stop.clone());
        let wake = ch.wake.try_clone().map_err(err)?;
        std::thread::Builder::new()
            .name("console-channel".into())
            .spawn(move || serve(&listener, &inbox, &conn, &wake, &stop))
            .map_err(err)?;
        Ok(ch)
    }

    /// Descriptor that becomes readable when the inbox has news.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Whether a host client is connected now.
    pub fn connected(&self) -> bool {
        self.conn.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    /// Sends guest bytes to the client; dropped when none is connected (or it stops reading).
    pub fn send(&self, data: &[u8]) {
        if let Ok(mut c) = self.conn.lock() {
            if let Some(s) = c.as_mut() {
                if s.write_all(data).is_err() {
                    super::log("console", "channel client is not reading: bytes dropped");
                }
            }
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn post(inbox: &Mutex<Inbox>, wake: &EventFd, f: impl FnOnce(&mut Inbox)) {
    if let Ok(mut i) = inbox.lock() {
        f(&mut i);
    }
    let _ = wake.write(1);
}

fn serve(listener: &UnixListener, inbox: &Mutex<Inbox>, conn: &Mutex<Option<UnixStream>>, wake: &EventFd, stop: &AtomicBool) {
    if let Err(e) = crate::sandbox::enter(crate::sandbox::ThreadClass::Monitor) {
        return crate::virtio::log("console-channel", &format!("not serving: {e}"));
    }
    let tick = Duration::from_millis(50);
    while !stop.load(Ordering::SeqCst) {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(tick);
                continue;
            }
        };
        if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(tick)).is_err() || s.set_write_timeout(Some(Duration::from_secs(1))).is_err() {
            continue;
        }
        let Ok(w) = s.try_clone() else { continue };
        if let Ok(mut c) = conn.lock() {
            *c = Some(w);
        }
        post(inbox, wake, |i| i.opens.push(true));
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            if inbox.lock().map(|i| i.data.len() >= INBOX_MAX).unwrap_or(false) {
                std::thread::sleep(tick); // the guest is not reading: hold the client back
                continue;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => post(inbox, wake, |i| i.data.extend(&buf[..n])),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => {}
                Err(_) => break,
            }
        }
        if let Ok(mut c) = conn.lock() {
            *c = None;
        }
        post(inbox, wake, |i| i.opens.push(false));
    }
}
