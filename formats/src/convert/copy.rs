//! Copying file ranges inside the kernel (`copy_file_range`), falling back to read + write.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off`.
pub fn copy_range(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> std::io::Result<()> {
    let (mut so, mut dof) = (src_off, dst_off);
    let end = src_off + len;
    while so < end {
        let (Ok(mut a), Ok(mut b)) = (libc::loff_t::try_from(so), libc::loff_t::try_from(dof)) else {
            return Err(std::io::Error::from_raw_os_error(libc::EFBIG));
        };
        let want = usize::try_from(end - so).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open files we own for the duration of the call; the
        // offsets are passed by pointer to locals, and the kernel only reads/writes the files.
        let n = unsafe { libc::copy_file_range(src.as_raw_fd(), &mut a, dst.as_raw_fd(), &mut b, want, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::EBADF) => {
                    copy_by_reading(src, so, dst, dof, end - so)
                }
                _ => Err(e),
            };
        }
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "source file is shorter than its map"));
        }
        so += n as u64;
        dof += n as u64;
    }
    Ok(())
}

fn copy_by_reading(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], src_off + done)?;
        dst.write_all_at(&buf[..n], dst_off + done)?;
        done += n as u64;
    }
    Ok(())
}
