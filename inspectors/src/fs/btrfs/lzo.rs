//! LZO1X decompression (the format `lzo1x_1_compress` writes, as btrfs stores it per
//! sector), with every read and write bounds-checked and the output length reported: the
//! crates at hand either panic on corrupt input or need the exact length in advance, and
//! btrfs-progs writes a short last segment. Follows the format as the kernel's
//! `Documentation/staging/lzo.rst` describes it.

/// Decompresses one LZO1X stream into at most `max` bytes.
pub fn decompress(src: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut d = Decoder { src, ip: 0, out: Vec::with_capacity(max), max };
    d.run()?;
    Ok(d.out)
}

struct Decoder<'a> {
    src: &'a [u8],
    ip: usize,
    out: Vec<u8>,
    max: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<usize, String> {
        let b = *self.src.get(self.ip).ok_or_else(|| format!("input ends at byte {}", self.ip))?;
        self.ip += 1;
        Ok(usize::from(b))
    }

    fn le16(&mut self) -> Result<usize, String> {
        Ok(self.byte()? | (self.byte()? << 8))
    }

    /// A length continued by zero bytes (each adds 255) and a final non-zero byte.
    fn long_len(&mut self, base: usize) -> Result<usize, String> {
        let mut n = 0usize;
        while self.src.get(self.ip) == Some(&0) {
            self.ip += 1;
            n += 255;
        }
        Ok(base + n + self.byte()?)
    }

    fn literals(&mut self, n: usize) -> Result<(), String> {
        let s = self.src.get(self.ip..self.ip + n).ok_or_else(|| format!("literal run of {n} past the input at byte {}", self.ip))?;
        if self.out.len() + n > self.max {
            return Err(format!("output exceeds {} bytes", self.max));
        }
        self.out.extend_from_slice(s);
        self.ip += n;
        Ok(())
    }

    /// Copies `len` bytes from `dist` bytes back (overlapping copies repeat).
    fn copy(&mut self, dist: usize, len: usize) -> Result<(), String> {
        if dist == 0 || dist > self.out.len() {
            return Err(format!("match distance {dist} before the output start at byte {}", self.ip));
        }
        if self.out.len() + len > self.max {
            return Err(format!("output exceeds {} bytes", self.max));
        }
        let from = self.out.len() - dist;
        for i in 0..len {
            let b = self.out[from + i];
            self.out.push(b);
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), String> {
        // state: literals copied after the last instruction (0..3), or 4 after a long run.
        let mut state;
        let first = *self.src.first().ok_or("empty input")?;
        if first > 17 {
            self.ip = 1;
            let t = usize::from(first) - 17;
            self.literals(t)?;
            state = if t < 4 { t } else { 4 };
        } else {
            state = 0;
        }
        loop {
            let t = self.byte()?;
            let (dist, len, next);
            if t < 16 {
                if state == 0 {
                    let n = if t == 0 { self.long_len(15)? } else { t };
                    self.literals(n + 3)?;
                    state = 4;
                    continue;
                }
                next = t & 3;
                let h = self.byte()?;
                if state != 4 {
                    (dist, len) = (1 + (t >> 2) + (h << 2), 2);
                } else {
                    (dist, len) = (2049 + (t >> 2) + (h << 2), 3);
                }
            } else if t >= 64 {
                next = t & 3;
                let h = self.byte()?;
                (dist, len) = (1 + ((t >> 2) & 7) + (h << 3), (t >> 5) + 1);
            } else if t >= 32 {
                let l = if t & 31 == 0 { self.long_len(31)? } else { t & 31 };
                let v = self.le16()?;
                next = v & 3;
                (dist, len) = (1 + (v >> 2), l + 2);
            } else {
                let l = if t & 7 == 0 { self.long_len(7)? } else { t & 7 };
                let v = self.le16()?;
                next = v & 3;
                let d = ((t & 8) << 11) + (v >> 2);
                if d == 0 {
                    // End of stream (0x11 0x00 0x00): nothing may follow.
                    if l + 2 != 3 || self.ip != self.src.len() {
                        return Err(format!("end marker at byte {} of {}", self.ip, self.src.len()));
                    }
                    return Ok(());
                }
                (dist, len) = (d + 0x4000, l + 2);
            }
            self.copy(dist, len)?;
            self.literals(next)?;
            state = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literal_run_then_end() {
        // 3 + 17 = 20: three literals, then the end marker.
        assert_eq!(decompress(&[20, b'a', b'b', b'c', 0x11, 0, 0], 16).unwrap(), b"abc");
    }

    #[test]
    fn corrupt_input_is_an_error() {
        assert!(decompress(&[], 16).is_err());
        assert!(decompress(&[20, b'a'], 16).is_err());
        assert!(decompress(&[18, b'a', 0x40, 0xff], 16).is_err(), "distance before the start");
        assert!(decompress(&[20, b'a', b'b', b'c', 0x11, 0, 0, 7], 16).is_err(), "trailing bytes");
    }
}
