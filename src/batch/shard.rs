//! `--shard I/N`: a deterministic share of the manifest, balanced by disk bytes.
//!
//! Every shard computes the same assignment from the same manifest and inputs: entries in
//! descending size (ties by manifest order) each go to the shard holding the fewest bytes
//! so far (ties to the lowest shard), the greedy longest-processing-time rule. No shard
//! ends more than one entry's size above the lightest.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Shard counts above this are refused (the assignment is O(entries × count)).
pub const MAX_SHARDS: usize = 100_000;

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{:?}: expected I/N with 1 <= I <= N <= {MAX_SHARDS}", s.escape_debug().to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (0-based) of each entry, given each entry's bytes.
pub fn assign(bytes: &[u64], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by(|&a, &b| bytes[b].cmp(&bytes[a]).then(a.cmp(&b)));
    let mut load = vec![0u128; count];
    let mut out = vec![0; bytes.len()];
    for i in order {
        let (s, _) = load.iter().enumerate().min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0))).unwrap_or((0, &0));
        load[s] += u128::from(bytes[i]);
        out[i] = s;
    }
    out
}

/// The indexes of the entries in `shard`.
pub fn select(bytes: &[u64], shard: Shard) -> Vec<usize> {
    assign(bytes, shard.count).iter().enumerate().filter(|(_, &s)| s + 1 == shard.index).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of sizes: a few large disks, many small ones.
    fn sizes(n: usize) -> Vec<u64> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 64 + 1) << 30 >> (x % 5)
            })
            .collect()
    }

    #[test]
    fn shards_are_disjoint_covering_and_balanced_for_1_to_16() {
        for entries in [0usize, 1, 7, 40, 203] {
            let bytes = sizes(entries);
            let biggest = bytes.iter().copied().max().unwrap_or(0);
            for n in 1..=16 {
                let mut seen = vec![0u32; entries];
                let mut loads = Vec::new();
                for i in 1..=n {
                    let sel = select(&bytes, Shard { index: i, count: n });
                    assert_eq!(sel, select(&bytes, Shard { index: i, count: n }), "deterministic");
                    loads.push(sel.iter().map(|&j| bytes[j]).sum::<u64>());
                    for j in sel {
                        seen[j] += 1;
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "{entries} entries, {n} shards: {seen:?}");
                let (lo, hi) = (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
                assert!(hi - lo <= biggest, "{entries} entries, {n} shards: loads {loads:?}");
            }
        }
    }

    #[test]
    fn parses_i_of_n() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/1000001"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
