//! virtio-scsi driven by the scsi micro-guest on QEMU (TCG, `virtio-scsi-pci` + `scsi-hd`)
//! and on Ferry's runtime: every line it prints (config, INQUIRY and VPD pages, READ
//! CAPACITY, MODE SENSE, reads of known sectors, a write read back, sense of a bad opcode and
//! of a read past the end, UNMAP, REQUEST SENSE, REPORT LUNS, LUN 1, a target without a disk,
//! task management on the control queue and the unit attention a LUN reset leaves) is
//! identical on both, the reads' CRC32s are those of the host file's sectors, and the disk
//! files hold the same bytes after the run.
mod runtime_support;
use ferry_formats::layout::MachineSpec;
use ferry_runtime::ExitReason;
use runtime_support::*;
use std::os::unix::fs::FileExt;

fn spec_for(elf: &std::path::Path, disk: &std::path::Path) -> MachineSpec {
    let mut v = spec_json(elf, disk, "q35-v1", [4, 3, 5, 6]);
    if let Some(devs) = v["devices"].as_array_mut() {
        devs.truncate(1);
        devs[0] = serde_json::json!({
            "id": "scsi0", "addr": {"bus": 0, "slot": 4, "function": 0}, "type": "virtio-scsi",
            "disks": [{"id": "disk0", "target": 0, "file": disk, "format": "raw", "serial": "FERRY-SCSI-0"}],
        });
    }
    MachineSpec::from_json(&v.to_string()).expect("spec")
}

fn region(disk: &std::path::Path) -> Vec<u8> {
    let f = std::fs::File::open(disk).expect("disk");
    let mut b = vec![0u8; 64 << 10];
    f.read_exact_at(&mut b, 0).expect("read");
    let mut far = vec![0u8; 4096];
    f.read_exact_at(&mut far, 0x80_0000 * 512).expect("read");
    b.extend_from_slice(&far);
    b
}

#[test]
fn micro_guest_sees_the_same_scsi_target_on_qemu_and_the_runtime() {
    let elf = guest("scsi");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    test_disk(&disk);
    let sector = |n: u64| {
        let mut s = vec![0u8; 512];
        std::fs::File::open(&disk).expect("disk").read_exact_at(&mut s, n * 512).expect("read");
        format!("{:08x}", crc32(&s))
    };
    let (c0, cfar) = (sector(0), sector(0x80_0007));
    let written = crc32(&b"ferry-scsi-write".repeat(64));
    let check = |t: &str| {
        assert!(t.contains(&format!("read-10 lba 0: response 0 status 00 resid 0 sense_len 0 crc {c0}\n")), "{t}");
        assert!(t.contains(&format!("read-16 lba 800007: response 0 status 00 resid 0 sense_len 0 crc {cfar}\n")), "{t}");
        assert!(t.contains(&format!("read-back lba 4 blocks 2: response 0 status 00 resid 0 sense_len 0 crc {written:08x}\n")), "{t}");
        assert!(t.contains("bad-opcode: response 0 status 02 resid 0 sense_len 18 key 5 asc 20 ascq 00\n"), "{t}");
        let same = crc32(&b"same-block-ferry".repeat(96));
        let unmapped = crc32(&[b"same-block-ferry".repeat(32), vec![0u8; 512], b"same-block-ferry".repeat(32)].concat());
        for line in [
            "verify-10 lba 4 blocks 2: response 0 status 00 resid 0 sense_len 0\n".to_string(),
            "verify-10 bytchk: response 0 status 02 resid 0 sense_len 18 key 5 asc 24 ascq 00\n".into(),
            "write-same-10 lba 8 blocks 3: response 0 status 00 resid 0 sense_len 0\n".into(),
            format!("read-back lba 8 blocks 3: response 0 status 00 resid 0 sense_len 0 crc {same:08x}\n"),
            format!("read-back after unmap lba 8 blocks 3: response 0 status 00 resid 0 sense_len 0 crc {unmapped:08x}\n"),
            "write-same-10 no blocks: response 0 status 02 resid 0 sense_len 18 key 5 asc 24 ascq 00\n".into(),
            "write-same-16 past the end: response 0 status 02 resid 0 sense_len 18 key 5 asc 21 ascq 00\n".into(),
            "mode-select-6 caching wce 0: response 0 status 00 resid 0 sense_len 0\n".into(),
            "mode-sense-6-caching after: response 0 status 00 resid 0 sense_len 0 17 00 00 00 08 12 00".into(),
            "mode-select-6 unchangeable field: response 0 status 02 resid 0 sense_len 18 key 5 asc 26 ascq 00\n".into(),
            "mode-select-6 save pages: response 0 status 02 resid 0 sense_len 18 key 5 asc 24 ascq 00\n".into(),
            "mode-select-10 block descriptor: response 0 status 00 resid 0 sense_len 0\n".into(),
            "seek-10 past the end: response 0 status 02 resid 0 sense_len 18 key 5 asc 21 ascq 00\n".into(),
        ] {
            assert!(t.contains(&line), "no {line:?} in {t}");
        }
        assert!(t.contains("read-past-end: response 0 status 02 resid 0 sense_len 18 key 5 asc 21 ascq 00"), "{t}");
        assert!(t.contains("target-5 test-unit-ready: response 3 "), "{t}");
        assert!(t.contains(" 'QEMU    ' 'QEMU HARDDISK   ' '2.5+' "), "{t}");
        assert!(t.contains("'FERRY-SCSI-0"), "{t}");
        assert!(t.contains("abort-task target 0 lun 1: tmf response 12\nclear-aca target 0: tmf response 11\nlogical-unit-reset target 5: tmf response 3\n"), "{t}");
        assert!(t.contains("after reset test-unit-ready: response 0 status 02 resid 0 sense_len 18 key 6 asc 29 ascq 00\n"), "{t}");
    };
    let mut expected = None;
    if qemu_available() {
        let qdisk = dir.path().join("qemu.raw");
        test_disk(&qdisk);
        let q = qemu(&qemu_args(&spec_for(&elf, &qdisk)), &elf, "tcg");
        eprintln!("QEMU:\n{}", q.serial);
        check(&q.serial);
        expected = Some((q.serial.clone(), region(&qdisk)));
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec_for(&elf, &disk));
    let ours = text(&out.console);
    eprintln!("runtime:\n{ours}");
    assert_eq!(out.reason, ExitReason::DebugExit(0x20), "{ours}");
    check(&ours);
    if let Some((serial, bytes)) = expected {
        assert_eq!(ours, serial, "the runtime's answers differ from QEMU's scsi-hd");
        assert!(region(&disk) == bytes, "the disks differ after the write");
    }
}
