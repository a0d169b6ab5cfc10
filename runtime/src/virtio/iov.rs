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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    use vm_memory::Bytes;

    fn two_regions() -> Memory {
        Memory::from_ranges(&[(GuestAddress(0), 0x1000), (GuestAddress(0x1000), 0x1000)]).expect("memory")
    }

    #[test]
    fn a_buffer_across_two_regions_reads_and_writes_whole() {
        let mem = two_regions();
        let f = tempfile::tempfile().expect("file");
        let data: Vec<u8> = (0..0x2000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        f.write_all_at(&data, 0).expect("write");
        let descs = [(GuestAddress(0x800), 0x1000, true), (GuestAddress(0x1f00), 1, true)];
        let mut v = iovecs(&mem, &descs, true, 0, 0x1000).expect("iovecs");
        assert_eq!(v.len(), 2, "split at the region boundary");
        transfer(f.as_raw_fd(), &mut v, 0x100, false).expect("preadv");
        let mut got = vec![0u8; 0x1000];
        mem.read_slice(&mut got, GuestAddress(0x800)).expect("guest read");
        assert_eq!(got, data[0x100..0x1100]);
        let mut v = iovecs(&mem, &descs, true, 0, 0x1000).expect("iovecs");
        transfer(f.as_raw_fd(), &mut v, 0x1000, true).expect("pwritev");
        let mut back = vec![0u8; 0x1000];
        f.read_exact_at(&mut back, 0x1000).expect("read");
        assert_eq!(back, data[0x100..0x1100]);
    }

    #[test]
    fn skips_the_header_and_refuses_buffers_outside_ram() {
        let mem = two_regions();
        let descs = [(GuestAddress(0x10), 16, false), (GuestAddress(0x100), 0x200, false), (GuestAddress(0x400), 1, true)];
        let v = iovecs(&mem, &descs, false, 16, 0x200).expect("iovecs");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].iov_len, 0x200);
        assert!(iovecs(&mem, &descs, false, 16, 0x201).is_none(), "more bytes than the descriptors hold");
        let outside = [(GuestAddress(0x1800), 0x1000, true)];
        assert!(iovecs(&mem, &outside, true, 0, 0x1000).is_none(), "a buffer past the end of RAM");
    }

    #[test]
    fn a_short_file_is_an_error_not_a_hang() {
        let mem = two_regions();
        let f = tempfile::tempfile().expect("file");
        f.write_all_at(&[1u8; 0x100], 0).expect("write");
        let mut v = iovecs(&mem, &[(GuestAddress(0), 0x200, true)], true, 0, 0x200).expect("iovecs");
        // 0x100 bytes arrive (a partial transfer), then EOF.
        let e = transfer(f.as_raw_fd(), &mut v, 0, false).expect_err("EOF");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut got = [0u8; 0x100];
        mem.read_slice(&mut got, GuestAddress(0)).expect("guest read");
        assert_eq!(got, [1u8; 0x100]);
    }
}
