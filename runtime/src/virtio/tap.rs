//! A Linux tap device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 12-byte virtio-net headers).
use std::fs::File;
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// An open tap queue.
pub struct Tap {
    file: File,
    /// Interface name.
    pub name: String,
}

impl Tap {
    /// Attaches to (or creates, given CAP_NET_ADMIN) the tap interface `name`.
    pub fn open(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid tap name {name:?}")));
        }
        // SAFETY: plain open(2) of a device node with a NUL-terminated literal path.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a 40-byte struct ifreq, which `ifr` is.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let size: libc::c_int = 12;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETVNETHDRSZ, &size) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap { file, name: name.to_string() })
    }
    /// The descriptor to poll for incoming frames.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    /// Reads one frame (with its vnet header); Ok(None) when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) }
    }
    /// Sends one frame (with its vnet header).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for reads of frame.len() bytes.
        let n = unsafe { libc::write(self.fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }
}
