//! `ferry_converters::lv::WritableLv` on a striped LV across two disks: the inspection
//! fixture's RHEL guest (`testdata/inspect/build-fixtures.sh`) has VG `rhel` on partition 3 of
//! disk A and on the whole of disk B, and LV `data` (ext4) striped over both in 64 KiB chunks.
//! A file is written into that ext4 through the LV view over copy-on-write overlays of the
//! two disks; the LV is then put together independently, from the extents lvm2 reported when
//! it made the VG (`rhel-lvs.txt`: `lvs -o seg_pe_ranges`) and the striping rule, out of the
//! overlays' bytes, and checked with `e2fsck -fn` and `debugfs` (the new file, and the old one still there).
//! The source images are unchanged.

mod inspect_support;

use ferry_converters::fs::ext4::Ext4;
use ferry_converters::fs::Volume;
use ferry_converters::lv::{PvPlace, WritableLv};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage, WritableDevice};
use ferry_inspectors::partition::partition_device;
use ferry_inspectors::{lvm, Device};
use inspect_support::{fixtures, manifest};
use std::process::Command;
use std::sync::Arc;

const EXTENT: u64 = 4 << 20;

#[test]
fn striped_lv_across_a_partition_and_a_whole_disk_is_written_in_place() {
    let Some(dir) = fixtures() else { return };
    let (pa, pb) = (dir.join("rhel-a.img"), dir.join("rhel-b.img"));
    let mtimes = || [&pa, &pb].map(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let before = mtimes();
    let a = Arc::new(CowOverlay::new(RawImage::open(&pa).unwrap()).unwrap());
    let b = Arc::new(CowOverlay::new(RawImage::open(&pb).unwrap()).unwrap());
    let (da, db) = (Device::new("/dev/sda", a.clone()), Device::new("/dev/sdb", b.clone()));
    let rep = ferry_inspectors::inspect(&[da.clone(), db.clone()]).unwrap();
    let p3 = rep.disks[0].partition_table.as_ref().unwrap().partitions.iter().find(|p| p.number == 3).unwrap().clone();
    let a3 = partition_device(&da, &p3).unwrap();
    let pvs: Vec<_> = [&a3, &db].iter().map(|d| lvm::scan_pv(d).unwrap().expect("a PV")).collect();
    let (_, lvs) = lvm::logical_volumes(&pvs);
    let data = lvs.iter().find(|l| l.name.to_str() == Some("/dev/rhel/data")).expect("the data LV");
    let (wa, wb): (Arc<dyn WritableDevice>, Arc<dyn WritableDevice>) = (a.clone(), b.clone());
    let view = WritableLv::new(data, |pv| match pv {
        "/dev/sda3" => Some(PvPlace { dev: wa.clone(), base: p3.start, len: p3.size }),
        "/dev/sdb" => Some(PvPlace { dev: wb.clone(), base: 0, len: wb.size() }),
        _ => None,
    })
    .unwrap();
    assert_eq!(view.size(), 32 << 20);

    // 300 KiB: several 64 KiB chunks, so both PVs get parts of the file.
    let text: Vec<u8> = (0..300 * 1024u32).map(|i| b"ferry striped LV\n"[(i % 17) as usize]).collect();
    {
        let mut fs = Ext4::open(Volume::new(&view, 0, view.size(), "rhel/data").unwrap(), "rhel/data").unwrap();
        fs.write_file("/ferry-striped.txt", &text, 0o644, 0, 0).unwrap();
    }
    view.flush().unwrap();

    // The LV as lvm2 laid it out: chunk k of 64 KiB is on stripe k % 2, row k / 2.
    let lvs_txt = std::fs::read_to_string(dir.join("rhel-lvs.txt")).unwrap();
    let line = lvs_txt.lines().find(|l| l.split_whitespace().next() == Some("data")).unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((f[3], f[4], f[5]), ("striped", "2", "65536"), "{line}");
    let first = |r: &str| -> u64 { r.split(':').nth(1).unwrap().split('-').next().unwrap().parse().unwrap() };
    let pe_start: u64 = manifest(&dir)["PE_START_SECTORS"].parse::<u64>().unwrap() * 512;
    let stripes: [(&dyn BlockDevice, u64); 2] =
        [(&*a, p3.start + pe_start + first(f[6]) * EXTENT), (&*b, pe_start + first(f[7]) * EXTENT)];
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("data.img");
    let mut lv = vec![0u8; 32 << 20];
    for (k, chunk) in lv.chunks_mut(65536).enumerate() {
        let (dev, base) = stripes[k % 2];
        dev.read_at(chunk, base + (k as u64 / 2) * 65536).unwrap();
    }
    std::fs::write(&img, &lv).unwrap();
    let fsck = Command::new("e2fsck").arg("-fn").arg(&img).output().unwrap();
    assert!(fsck.status.success(), "e2fsck -fn:\n{}", String::from_utf8_lossy(&fsck.stdout));
    let cat = |p: &str| Command::new("debugfs").arg("-R").arg(format!("cat {p}")).arg(&img).output().unwrap().stdout;
    assert_eq!(cat("/ferry-striped.txt"), text);
    assert!(!cat("/hello.txt").is_empty(), "the LV's existing file is gone");
    assert_eq!(mtimes(), before, "a source image changed");
}
