//! Hand-written VMDK files built from the struct layouts: a VMware-layout streamOptimized file
//! (grains, GT/GD markers, footer, EOS), COWD and seSparse extents.
#![allow(dead_code)]

use flate2::write::{DeflateEncoder, ZlibEncoder};
use flate2::Compression;
use std::io::Write;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}
fn sector(v: &[u8]) -> u64 {
    v.len() as u64 / 512
}

/// A KDMV header sector.
pub fn kdmv_header(
    flags: u32,
    capacity: u64,
    grain: u64,
    desc: (u64, u64),
    gd: u64,
    overhead: u64,
    compress: u16,
) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    put32(&mut h, 4, 3);
    put32(&mut h, 8, flags);
    put64(&mut h, 12, capacity);
    put64(&mut h, 20, grain);
    put64(&mut h, 28, desc.0);
    put64(&mut h, 36, desc.1);
    put32(&mut h, 44, 512);
    put64(&mut h, 56, gd);
    put64(&mut h, 64, overhead);
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&compress.to_le_bytes());
    h
}

fn marker(val: u64, size: u32, kind: u32) -> Vec<u8> {
    let mut m = vec![0u8; 512];
    put64(&mut m, 0, val);
    put32(&mut m, 8, size);
    put32(&mut m, 12, kind);
    m
}

/// Compresses one grain, zlib-wrapped or raw deflate.
pub fn compress(data: &[u8], raw_deflate: bool) -> Vec<u8> {
    if raw_deflate {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
}

/// A streamOptimized file in VMware's layout from raw disk bytes (`disk.len()` a multiple of
/// 512): header with GD_AT_END, embedded descriptor, grains for non-zero grains, a PROGRESS
/// marker, GT markers + tables, GD marker + directory, footer marker + footer, EOS.
pub fn vmware_stream(disk: &[u8], raw_deflate: bool) -> Vec<u8> {
    let grain = 128u64;
    let gbytes = grain as usize * 512;
    let capacity = disk.len() as u64 / 512;
    let grains = disk.len().div_ceil(gbytes);
    let gts = grains.div_ceil(512);
    let flags = 0x30001;
    let mut f = kdmv_header(flags, capacity, grain, (1, 1), u64::MAX, 128, 1);
    let mut desc = format!(
        "# Disk DescriptorFile\nversion=1\nCID=a1b2c3d4\nparentCID=ffffffff\ncreateType=streamOptimized\n\n\
         RDONLY {capacity} SPARSE \"stale-name.vmdk\"\n\nddb.virtualHWVersion = \"4\"\n"
    )
    .into_bytes();
    desc.resize(512, 0);
    f.extend_from_slice(&desc);
    f.resize(128 * 512, 0);
    let mut gtes = vec![0u32; gts * 512];
    for (i, g) in disk.chunks(gbytes).enumerate() {
        if g.iter().all(|&b| b == 0) {
            continue;
        }
        gtes[i] = sector(&f) as u32;
        let c = compress(g, raw_deflate);
        let mut m = marker(i as u64 * grain, c.len() as u32, 0);
        m.truncate(12);
        f.extend_from_slice(&m);
        f.extend_from_slice(&c);
        pad(&mut f);
        if i == 1 {
            // An unknown metadata marker (open-vmdk's PROGRESS, type 4) with one sector.
            f.extend_from_slice(&marker(1, 0, 4));
            f.extend_from_slice(&[0x55; 512]);
        }
    }
    let mut gd = Vec::new();
    for t in 0..gts {
        f.extend_from_slice(&marker(4, 0, 1));
        gd.push(sector(&f) as u32);
        for e in &gtes[t * 512..(t + 1) * 512] {
            f.extend_from_slice(&e.to_le_bytes());
        }
        pad(&mut f);
    }
    f.extend_from_slice(&marker((gts as u64 * 4).div_ceil(512).max(1), 0, 2));
    let gd_sector = sector(&f);
    for e in &gd {
        f.extend_from_slice(&e.to_le_bytes());
    }
    pad(&mut f);
    f.extend_from_slice(&marker(1, 0, 3));
    f.extend_from_slice(&kdmv_header(flags, capacity, grain, (1, 1), gd_sector, 128, 1));
    f.extend_from_slice(&marker(0, 0, 0));
    f
}

/// A COWD extent of `disk` (grain of `grain` sectors), allocating only non-zero grains.
pub fn cowd(disk: &[u8], grain: u32) -> Vec<u8> {
    let gbytes = grain as usize * 512;
    let sectors = disk.len() as u64 / 512;
    let grains = disk.len().div_ceil(gbytes);
    let gd_entries = grains.div_ceil(4096);
    let mut f = vec![0u8; 2048];
    f[..4].copy_from_slice(b"COWD");
    put32(&mut f, 4, 1);
    put32(&mut f, 8, 3);
    put32(&mut f, 12, sectors as u32);
    put32(&mut f, 16, grain);
    put32(&mut f, 20, 4);
    put32(&mut f, 24, gd_entries as u32);
    let gd_at = f.len();
    f.resize(gd_at + gd_entries * 4, 0);
    pad(&mut f);
    let gt_start = sector(&f);
    for t in 0..gd_entries {
        let at = gd_at + t * 4;
        put32(&mut f, at, (gt_start + t as u64 * 32) as u32);
    }
    let gt_bytes_at = f.len();
    f.resize(gt_bytes_at + gd_entries * 4096 * 4, 0);
    for (i, g) in disk.chunks(gbytes).enumerate() {
        if g.iter().all(|&b| b == 0) {
            continue;
        }
        let s = sector(&f) as u32;
        put32(&mut f, gt_bytes_at + i * 4, s);
        f.extend_from_slice(g);
        pad(&mut f);
    }
    f
}

/// A seSparse extent of `disk`: non-zero grains allocated (stored in reverse order to exercise
/// the cluster encoding), all-0xee grains as "zero" entries, all-0xdd grains as "unmapped".
pub fn sesparse(disk: &[u8], replay_journal: bool) -> Vec<u8> {
    let gbytes = 8 * 512;
    let capacity = disk.len() as u64 / 512;
    let grains = disk.len().div_ceil(gbytes);
    let gts = grains.div_ceil(4096);
    let gd_sectors = (gts * 8).div_ceil(512).max(1) as u64;
    let (vol, gd_off) = (1u64, 2u64);
    let tables = gd_off + gd_sectors;
    let grains_off = tables + gts as u64 * 64;
    let mut h = vec![0u8; 512];
    put64(&mut h, 0, 0xcafe_babe);
    put64(&mut h, 8, 0x2_0000_0001);
    put64(&mut h, 16, capacity);
    put64(&mut h, 24, 8);
    put64(&mut h, 32, 64);
    put64(&mut h, 80, vol);
    put64(&mut h, 88, 1);
    put64(&mut h, 128, gd_off);
    put64(&mut h, 136, gd_sectors);
    put64(&mut h, 144, tables);
    put64(&mut h, 152, gts as u64 * 64);
    put64(&mut h, 192, grains_off);
    let mut v = vec![0u8; 512];
    put64(&mut v, 0, 0xcafe_cafe);
    put64(&mut v, 24, u64::from(replay_journal));
    let mut f = h;
    f.extend_from_slice(&v);
    f.resize((grains_off * 512) as usize, 0);
    for t in 0..gts {
        put64(&mut f, (gd_off * 512) as usize + t * 8, 0x1000_0000_0000_0000 | t as u64);
    }
    let chunks: Vec<&[u8]> = disk.chunks(gbytes).collect();
    let data: Vec<usize> =
        (0..chunks.len()).filter(|&i| ![0u8, 0xee, 0xdd].iter().any(|&v| chunks[i].iter().all(|&b| b == v))).collect();
    for (cluster, &i) in data.iter().rev().enumerate() {
        let cluster = cluster as u64;
        let enc = 0x3000_0000_0000_0000 | ((cluster & 0xfff) << 48) | (cluster >> 12);
        put64(&mut f, (tables * 512) as usize + i * 8, enc);
        f.extend_from_slice(chunks[i]);
        f.resize((grains_off * 512) as usize + (cluster as usize + 1) * gbytes, 0);
    }
    for (i, c) in chunks.iter().enumerate() {
        if c.iter().all(|&b| b == 0xee) {
            put64(&mut f, (tables * 512) as usize + i * 8, 0x2000_0000_0000_0000);
        } else if c.iter().all(|&b| b == 0xdd) {
            put64(&mut f, (tables * 512) as usize + i * 8, 0x1000_0000_0000_0000);
        }
    }
    f
}

/// A compressed sparse file WITHOUT grain markers (flag bit 16 only): embedded descriptor at
/// sector 1, GD at sector 2, GTs after it, then bare zlib grains.
pub fn compressed_without_markers(disk: &[u8]) -> Vec<u8> {
    let grain = 128u64;
    let gbytes = grain as usize * 512;
    let capacity = disk.len() as u64 / 512;
    let grains = disk.len().div_ceil(gbytes);
    let gts = grains.div_ceil(512);
    let gd_sectors = (gts * 4).div_ceil(512) as u64;
    let gt0 = 2 + gd_sectors;
    let overhead = gt0 + gts as u64 * 4;
    let mut f = kdmv_header(0x10001, capacity, grain, (1, 1), 2, overhead, 1);
    let mut desc = format!(
        "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW {capacity} SPARSE \"x.vmdk\"\n"
    )
    .into_bytes();
    desc.resize(512, 0);
    f.extend_from_slice(&desc);
    f.resize((overhead * 512) as usize, 0);
    for t in 0..gts {
        put32(&mut f, 1024 + t * 4, (gt0 + t as u64 * 4) as u32);
    }
    for (i, g) in disk.chunks(gbytes).enumerate() {
        if g.iter().all(|&b| b == 0) {
            continue;
        }
        let s = sector(&f) as u32;
        put32(&mut f, (gt0 * 512) as usize + i * 4, s);
        f.extend_from_slice(&compress(g, false));
        pad(&mut f);
    }
    f
}
