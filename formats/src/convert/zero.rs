//! Zero detection: whole buffers, and clusters of a raw file read by their heads.
use super::pipeline::Out;
use std::fs::File;

/// True when every byte is zero.
pub fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            acc |= u64::from_ne_bytes(a);
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&x| x == 0)
}

/// Classifies the clusters of `[off, off + len)` of a raw file: a cluster whose first 4 KiB
/// hold a non-zero byte is data; otherwise the whole cluster is read and checked.
pub fn classify_file(f: &File, off: u64, len: u64, cs: u64) -> std::io::Result<Vec<Out>> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4096];
    let mut whole = Vec::new();
    let mut kinds = Vec::with_capacity(len.div_ceil(cs) as usize);
    let mut at = 0u64;
    while at < len {
        let n = cs.min(len - at);
        let h = n.min(head.len() as u64) as usize;
        f.read_exact_at(&mut head[..h], off + at)?;
        let zero = is_zero(&head[..h]) && {
            whole.resize(n as usize, 0);
            f.read_exact_at(&mut whole, off + at)?;
            is_zero(&whole)
        };
        kinds.push(if zero { Out::Zero } else { Out::Plain });
        at += n;
    }
    Ok(kinds)
}

