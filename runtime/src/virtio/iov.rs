//! Guest buffers as host iovecs, for `preadv`/`pwritev` straight into and out of guest RAM.
//! Descriptor addresses are resolved through vm-memory (`get_slices`), so every iovec lies in
//! a mapped guest-RAM region; partial transfers and EINTR are retried.
use crate::memory::Memory;
use std::io;
use std::os::unix::io::RawFd;
use vm_memory::{GuestAddress, GuestMemoryBackend};

/// One descriptor of a chain: guest address, length, device-writable.
pub type Desc = (GuestAddress, u32, bool);

/// Host iovecs for `len` bytes of the chain's descriptors of one direction (`writable`),
/// after skipping `skip` bytes of them. None when the descriptors hold fewer bytes or leave
/// guest RAM.
pub fn iovecs(mem: &Memory, descs: &[Desc], writable: bool, mut skip: u64, mut len: u64) -> Option<Vec<libc::iovec>> {
    let mut out = Vec::new();
    for &(addr, dlen, w) in descs {
        if w != writable || len == 0 {
            continue;
        }
        let dlen = u64::from(dlen);
        if skip >= dlen {
            skip -= dlen;
            continue;
        }
        let take = (dlen - skip).min(len);
        let start = addr.0.checked_add(skip)?;
        for s in mem.get_slices(GuestAddress(start), usize::try_from(take).ok()?) {
            let s = s.ok()?;
            // The pointer stays valid after the guard goes: guest RAM is a plain mmap (no
            // Xen grant mapping) that lives as long as `mem`, which outlives the I/O.
            out.push(libc::iovec { iov_base: s.ptr_guard_mut().as_ptr().cast(), iov_len: s.len() });
        }
        skip = 0;
        len -= take;
    }
    (len == 0).then_some(out)
}

/// Reads (`write == false`) or writes every byte the iovecs describe at file offset `off`.
pub fn transfer(fd: RawFd, iov: &mut [libc::iovec], mut off: u64, write: bool) -> io::Result<()> {
    let mut i = 0;
    while i < iov.len() {
        let cnt = (iov.len() - i).min(1024) as libc::c_int; // IOV_MAX
        let pos = libc::off_t::try_from(off).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let n = if write {
            // SAFETY: `iov[i..]` holds `cnt` valid iovecs, each inside mapped guest RAM
            // (see `iovecs`); pwritev only reads that memory.
            unsafe { libc::pwritev(fd, iov[i..].as_ptr(), cnt, pos) }
        } else {
            // SAFETY: as above; preadv writes only into the iovecs' guest-RAM ranges, which
            // the driver handed to the device as writable buffers.
            unsafe { libc::preadv(fd, iov[i..].as_ptr(), cnt, pos) }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let mut n = n as usize;
        off += n as u64;
        while n > 0 && i < iov.len() {
            if n >= iov[i].iov_len {
                n -= iov[i].iov_len;
                i += 1;
            } else {
                iov[i].iov_base = iov[i].iov_base.cast::<u8>().wrapping_add(n).cast();
                iov[i].iov_len -= n;
                n = 0;
            }
        }
        while i < iov.len() && iov[i].iov_len == 0 {
            i += 1;
        }
    }
    Ok(())
}
