//! Runlists (mapping pairs) of non-resident attributes: decoded with every length and LCN
//! checked against the volume, encoded with the fewest bytes (lengths and deltas signed).

/// One run: `len` clusters at `lcn` (None: sparse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub lcn: Option<u64>,
    pub len: u64,
}

/// Decodes mapping pairs; `Err` names what is wrong.
pub(super) fn decode(b: &[u8], total_clusters: u64) -> Result<Vec<Run>, String> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut lcn: i64 = 0;
    let mut vcns: u64 = 0;
    loop {
        let Some(&h) = b.get(i) else { return Err("mapping pairs without a terminator".into()) };
        if h == 0 {
            return Ok(out);
        }
        let (nl, no) = ((h & 0xf) as usize, (h >> 4) as usize);
        if nl == 0 || nl > 8 || no > 8 {
            return Err(format!("mapping pair header {h:#04x} at byte {i}"));
        }
        let Some(f) = b.get(i + 1..i + 1 + nl + no) else { return Err(format!("mapping pair at byte {i} past the attribute")) };
        let len = signed(&f[..nl]);
        if len <= 0 {
            return Err(format!("run length {len} at byte {i}"));
        }
        let len = len as u64;
        vcns = vcns.checked_add(len).filter(|v| *v <= total_clusters).ok_or(format!("runs longer than the volume at byte {i}"))?;
        let run_lcn = if no == 0 {
            None
        } else {
            lcn = lcn.checked_add(signed(&f[nl..])).ok_or("LCN overflow")?;
            match (lcn as u64).checked_add(len) {
                Some(end) if lcn >= 0 && end <= total_clusters => Some(lcn as u64),
                _ => return Err(format!("run of {len} clusters at LCN {lcn} outside the volume ({total_clusters} clusters)")),
            }
        };
        out.push(Run { lcn: run_lcn, len });
        i += 1 + nl + no;
    }
}

fn signed(b: &[u8]) -> i64 {
    let mut v: i64 = 0;
    for (k, &x) in b.iter().enumerate() {
        v |= (x as i64) << (8 * k);
    }
    let bits = 8 * b.len();
    if bits > 0 && bits < 64 && (v >> (bits - 1)) & 1 == 1 {
        v -= 1i64 << bits;
    }
    v
}

fn sbytes(v: i64) -> Vec<u8> {
    let all = v.to_le_bytes();
    let mut n = 8;
    while n > 1 {
        let top = all[n - 1];
        let below = all[n - 2];
        if (top == 0 && below & 0x80 == 0) || (top == 0xff && below & 0x80 != 0) {
            n -= 1;
        } else {
            break;
        }
    }
    all[..n].to_vec()
}

/// Encodes runs as mapping pairs, terminator included.
pub(super) fn encode(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev: i64 = 0;
    for r in runs {
        let l = sbytes(r.len as i64);
        let o = match r.lcn {
            Some(lcn) => {
                let d = sbytes(lcn as i64 - prev);
                prev = lcn as i64;
                d
            }
            None => Vec::new(),
        };
        out.push((o.len() as u8) << 4 | l.len() as u8);
        out.extend_from_slice(&l);
        out.extend_from_slice(&o);
    }
    out.push(0);
    out
}

/// Total clusters of `runs`.
pub(super) fn clusters(runs: &[Run]) -> u64 {
    runs.iter().map(|r| r.len).sum()
}

/// Appends `add`, merging with the last run when contiguous.
pub(super) fn append(runs: &mut Vec<Run>, add: &[Run]) {
    for r in add {
        match runs.last_mut() {
            Some(Run { lcn: Some(l), len }) if r.lcn == Some(*l + *len) => *len += r.len,
            _ => runs.push(*r),
        }
    }
}

/// Splits `runs` after `keep` clusters: returns the tail (to free).
pub(super) fn truncate(runs: &mut Vec<Run>, keep: u64) -> Vec<Run> {
    let mut tail = Vec::new();
    let mut at = 0u64;
    let mut out = Vec::new();
    for r in runs.drain(..) {
        if at >= keep {
            tail.push(r);
        } else if at + r.len > keep {
            let k = keep - at;
            out.push(Run { lcn: r.lcn, len: k });
            tail.push(Run { lcn: r.lcn.map(|l| l + k), len: r.len - k });
        } else {
            out.push(r);
        }
        at += r.len;
    }
    *runs = out;
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let runs = vec![
            Run { lcn: Some(0x1000), len: 0x80 },
            Run { lcn: Some(0x20), len: 1 },
            Run { lcn: None, len: 7 },
            Run { lcn: Some(0x123456), len: 0x10000 },
        ];
        let b = encode(&runs);
        assert_eq!(decode(&b, 1 << 30).unwrap(), runs);
        assert_eq!(&b[..4], &[0x22, 0x80, 0x00, 0x00]);
        assert!(decode(&b, 0x1000).is_err());
        assert!(decode(&b[..3], 1 << 30).is_err());
    }
}
