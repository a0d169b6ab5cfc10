//! md RAID1 (superblock 1.2) over partitions of two disks. The kernel here has no md
//! driver, so the build script writes the superblocks from the documented layout;
//! oracles: `mdadm --examine` of each member (run at build time), blkid -p, debugfs-free
//! file check through Ferry's own ext4 reader.

mod inspect_support;
use ferry_formats::disk::RawImage;
use ferry_inspectors::fs::{ExtFs, FileSystem};
use ferry_inspectors::partition::{partition_device, PartitionTable};
use ferry_inspectors::{md, Device};
use inspect_support::*;
use std::sync::Arc;

#[test]
fn raid1_array_is_assembled_and_read() {
    let Some(dir) = fixtures() else { return };
    let m = manifest(&dir);
    let (a, b) = (dir.join("md-a.img"), dir.join("md-b.img"));
    let r = inspect_json(&[a.clone(), b.clone()]);
    let set_uuid = {
        let h = &m["MD_SET_UUID"];
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    };
    for (img, dev) in [(&a, "/dev/sda1"), (&b, "/dev/sdb1")] {
        let bl = blkid(img, 1 << 20);
        let f = fs(&r, dev);
        assert_eq!(f["fstype"], "linux_raid_member");
        assert_eq!(f["uuid"].as_str(), bl.get("UUID").map(String::as_str));
        assert_eq!(f["label"].as_str(), bl.get("LABEL").map(String::as_str));
        assert_eq!(f["uuid"], set_uuid);
    }
    for d in ["a", "b"] {
        let Ok(ex) = std::fs::read_to_string(dir.join(format!("md-{d}.examine"))) else {
            eprintln!("no mdadm at fixture build time: skipping the mdadm --examine oracle");
            continue;
        };
        assert!(ex.contains("Checksum :") && ex.contains("- correct"), "{ex}");
        assert!(ex.contains(&format!("Array UUID : {}", m["MD_SET_UUID"].as_bytes().chunks(8).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":"))), "{ex}");
        assert!(ex.contains("Raid Level : raid1") && ex.contains("Data Offset : 2048 sectors"), "{ex}");
        assert!(ex.contains("Name : deb12:data"), "{ex}");
    }
    let md = fs(&r, "/dev/md/data");
    assert_eq!(md["fstype"], "ext4");
    assert_eq!(md["uuid"], m["MD_FS_UUID"]);
    assert_eq!(md["label"], "mddata");
    let bl = blkid(&a, (1 << 20) + 2048 * 512);
    assert_eq!(md["uuid"].as_str(), bl.get("UUID").map(String::as_str));
    assert_eq!(md["size"].as_u64().unwrap(), (122880 - 2048) * 512);
    assert_eq!(r["operating_systems"], serde_json::json!([]));

    // Degraded: one member is enough for RAID1.
    let disk = Device::new("/dev/sdb", Arc::new(RawImage::open(&b).unwrap()));
    let t = PartitionTable::read(&disk).unwrap().unwrap();
    let p = partition_device(&disk, &t.partitions[0]).unwrap();
    let member = md::read_member(&p).unwrap().unwrap();
    assert_eq!(member.level, 1);
    assert_eq!(member.name, "data");
    let (arrays, warnings) = md::assemble(&[member]);
    assert!(warnings.is_empty());
    let ext = ExtFs::open(&arrays[0]).unwrap();
    assert_eq!(ext.read_file("/mirror.txt", 100).unwrap(), b"mirrored\n");
}
