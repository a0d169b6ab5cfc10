use super::*;
use crate::disk::RawImage;
use std::io::Write;

/// Deterministic xorshift generator: the tests need no external randomness.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A raw source of `size` bytes: random data with a hole in the middle third.
fn source(size: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bytes: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    let hole = (size / 3 / OVERLAY_BLOCK * OVERLAY_BLOCK, 2 * size / 3 / OVERLAY_BLOCK * OVERLAY_BLOCK);
    bytes[hole.0 as usize..hole.1 as usize].fill(0);
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&bytes[..hole.0 as usize]).unwrap();
    f.as_file().set_len(hole.1).unwrap();
    f.as_file().write_all_at(&bytes[hole.1 as usize..], hole.1).unwrap();
    f.flush().unwrap();
    (f, bytes)
}

fn check_map(ov: &CowOverlay<RawImage>, model: &[u8], written: &[bool], off: u64, len: u64) {
    let map = ov.map(off, len).unwrap();
    let mut pos = off;
    for e in &map {
        assert_eq!(e.offset, pos, "map is contiguous");
        assert!(e.length > 0);
        pos += e.length;
        if e.kind != ExtentKind::Data {
            let a = e.offset as usize;
            let b = (e.offset + e.length) as usize;
            assert!(model[a..b].iter().all(|&x| x == 0), "non-data extent {e:?} reads as zeros");
        }
        // Every byte the overlay holds as written data must be reported as Data.
        for blk in e.offset / OVERLAY_BLOCK..(e.offset + e.length).div_ceil(OVERLAY_BLOCK) {
            if written[blk as usize] {
                assert_eq!(e.kind, ExtentKind::Data, "written block {blk} in {e:?}");
            }
        }
    }
    assert_eq!(pos, off + len, "map covers the range");
}

#[test]
fn random_writes_match_model_and_source_is_unchanged() {
    let size = 1_000_000u64; // not a multiple of the block size
    let (file, mut model) = source(size);
    let before = std::fs::read(file.path()).unwrap();
    let ov = CowOverlay::new(RawImage::open(file.path()).unwrap()).unwrap();
    let mut written = vec![false; size.div_ceil(OVERLAY_BLOCK) as usize];
    let mut rng = Rng(12345);
    for round in 0..400 {
        let off = rng.below(size);
        let len = match rng.below(4) {
            0 => rng.below(16) + 1,
            1 => rng.below(5000) + 1,
            2 => OVERLAY_BLOCK * (rng.below(8) + 1),
            _ => rng.below(70_000) + 1,
        }
        .min(size - off);
        if round % 7 == 3 {
            ov.discard(off, len).unwrap();
            model[off as usize..(off + len) as usize].fill(0);
            for b in off / OVERLAY_BLOCK..(off + len).div_ceil(OVERLAY_BLOCK) {
                let (bs, be) = (b * OVERLAY_BLOCK, ((b + 1) * OVERLAY_BLOCK).min(size));
                // Whole blocks become zero slots; partly covered ones are rewritten as data.
                written[b as usize] = !(off <= bs && be <= off + len);
            }
        } else {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            ov.write_at(&data, off).unwrap();
            model[off as usize..(off + len) as usize].copy_from_slice(&data);
            for b in off / OVERLAY_BLOCK..(off + len).div_ceil(OVERLAY_BLOCK) {
                written[b as usize] = true;
            }
        }
        // Read back random ranges.
        for _ in 0..3 {
            let o = rng.below(size);
            let l = (rng.below(40_000) + 1).min(size - o);
            let mut buf = vec![0u8; l as usize];
            ov.read_at(&mut buf, o).unwrap();
            assert_eq!(buf, &model[o as usize..(o + l) as usize], "round {round} read {o}+{l}");
        }
    }
    let mut all = vec![0u8; size as usize];
    ov.read_at(&mut all, 0).unwrap();
    assert_eq!(all, model);
    check_map(&ov, &model, &written, 0, size);
    check_map(&ov, &model, &written, 4097, 300_001);
    assert!(ov.overlay_bytes() > 0);
    drop(ov);
    assert_eq!(std::fs::read(file.path()).unwrap(), before, "source bytes unchanged");
}

#[test]
fn map_reports_overlay_blocks_over_source_holes() {
    let size = 64 * OVERLAY_BLOCK;
    let (file, _) = source(size);
    let ov = CowOverlay::new(RawImage::open(file.path()).unwrap()).unwrap();
    let src_map = ov.map(0, size).unwrap();
    assert!(src_map.iter().any(|e| e.kind == ExtentKind::Zero), "fixture has a hole: {src_map:?}");
    // One byte written in the hole makes its whole block data.
    ov.write_at(&[7], 30 * OVERLAY_BLOCK + 5).unwrap();
    ov.discard(2 * OVERLAY_BLOCK, 2 * OVERLAY_BLOCK).unwrap();
    let map = ov.map(0, size).unwrap();
    let find = |off: u64| map.iter().find(|e| e.offset <= off && off < e.offset + e.length).unwrap().kind;
    assert_eq!(find(30 * OVERLAY_BLOCK), ExtentKind::Data);
    assert_eq!(find(31 * OVERLAY_BLOCK), ExtentKind::Zero);
    assert_eq!(find(2 * OVERLAY_BLOCK), ExtentKind::Zero);
    assert_eq!(find(0), ExtentKind::Data);
    let mut b = [1u8; 8];
    ov.read_at(&mut b, 2 * OVERLAY_BLOCK + 100).unwrap();
    assert_eq!(b, [0; 8]);
    assert!(ov.write_at(&[0; 2], size - 1).is_err(), "writes past the end are refused");
    assert!(ov.map(size, 1).is_err());
}
