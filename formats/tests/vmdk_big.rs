//! A 4 TiB monolithicSparse (made by qemu-img, written with qemu-io): the whole-disk map and
//! reads stay fast and within bounded memory (own test binary, so VmHWM is ours alone).
mod vmdk_support;

use ferry_formats::disk::ExtentKind;
use vmdk_support::*;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn four_tib_sparse_map_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.vmdk");
    let t = 1u64 << 40;
    qemu_img(&["create", "-q", "-f", "vmdk", s(&p), "4T"]);
    run(
        "qemu-io",
        &[
            "-f",
            "vmdk",
            "-c",
            "write -P 0x5 3T 1M",
            "-c",
            "write -P 0x6 4095G 64k",
            "-c",
            "write -P 0x7 1000 4096",
            s(&p),
        ],
    );
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(dev.size(), 4 * t);
    let start = std::time::Instant::now();
    let map = dev.map(0, dev.size()).unwrap();
    let elapsed = start.elapsed();
    let data: Vec<(u64, u64)> =
        map.iter().filter(|e| e.kind == ExtentKind::Data).map(|e| (e.offset, e.length)).collect();
    assert_eq!(data, vec![(0, 65536), (3 * t, MIB), (4095 << 30, 65536)]);
    // qemu-img map (limited to windows: a whole-disk qemu map takes ~30 s) agrees.
    for (off, len) in [(0u64, 4 * MIB), (3 * t - MIB, 4 * MIB), ((4095 << 30) - MIB, 2 * MIB)] {
        let json = qemu_img(&[
            "map",
            "--output=json",
            "-f",
            "vmdk",
            &format!("--start-offset={off}"),
            &format!("--max-length={len}"),
            s(&p),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let want: Vec<(u64, u64)> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"] == true)
            .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
            .collect();
        let ours: Vec<(u64, u64)> = dev
            .map(off, len)
            .unwrap()
            .iter()
            .filter(|e| e.kind == ExtentKind::Data)
            .map(|e| (e.offset, e.length))
            .collect();
        assert_eq!(ours, want, "window {off}+{len}");
    }
    let mut buf = vec![0u8; 2 * MIB as usize];
    dev.read_at(&mut buf, 3 * t - MIB / 2).unwrap();
    assert!(buf[..MIB as usize / 2].iter().all(|&b| b == 0));
    assert!(buf[MIB as usize / 2..MIB as usize * 3 / 2].iter().all(|&b| b == 5));
    assert!(buf[MIB as usize * 3 / 2..].iter().all(|&b| b == 0));
    dev.read_at(&mut buf[..4096], 1000).unwrap();
    assert!(buf[..4096].iter().all(|&b| b == 7));
    // Read a 1 GiB stretch in 2 MiB chunks (tables for 32 GTs) and sample the whole disk.
    for i in 0..512u64 {
        dev.read_at(&mut buf, 3 * t - 512 * MIB + i * 2 * MIB).unwrap();
    }
    for i in 0..2048u64 {
        dev.read_at(&mut buf[..65536], i * (2 << 30)).unwrap();
    }
    let hwm = vm_hwm_kib();
    println!("4 TiB map in {elapsed:?}, peak RSS {hwm} KiB");
    assert!(hwm < 128 * 1024, "peak RSS {hwm} KiB");
}
