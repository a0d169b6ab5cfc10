//! virtio-blk driven by micro-guests: reads (incl. past 4 GiB and via indirect descriptors),
//! write + flush, GET_ID, topology; and a hostile driver that must only get NEEDS_RESET.
//! Oracles: CRC32 of the host file's sectors, the file contents after the run, and QEMU (TCG)
//! running the same guest on the same kind of disk.
mod runtime_support;
use ferry_formats::layout::MachineSpec;
use ferry_runtime::ExitReason;
use runtime_support::*;
use std::os::unix::fs::FileExt;

fn spec_for(elf: &std::path::Path, disk: &std::path::Path) -> MachineSpec {
    let mut v = spec_json(elf, disk, "q35-v1", [4, 3, 5, 6]);
    if let Some(devs) = v["devices"].as_array_mut() {
        devs.truncate(1);
    }
    MachineSpec::from_json(&v.to_string()).expect("spec")
}

fn expected_blk_output(disk: &std::path::Path) -> String {
    let f = std::fs::File::open(disk).expect("disk");
    let mut s = vec![0u8; 512];
    let mut crc_at = |sector: u64| {
        f.read_exact_at(&mut s, sector * 512).expect("read");
        format!("{:08x}", crc32(&s))
    };
    let (c0, c1, cfar) = (crc_at(0), crc_at(1), crc_at(0x80_0007));
    format!(
        "capacity 0001000000 blk_size 512 physical_block_exp 3\n\
         read sector 0000000000 status 0 crc {c0}\n\
         read sector 0000800007 status 0 crc {cfar}\n\
         indirect-read sector 0000000001 status 0 crc {c1}\n\
         write sector 3 status 0 flush status 0\n\
         serial status 0 FERRY-DISK-0\n"
    )
}

fn check_written(disk: &std::path::Path) {
    let f = std::fs::File::open(disk).expect("disk");
    let mut s = vec![0u8; 512];
    f.read_exact_at(&mut s, 3 * 512).expect("read");
    assert!(s.chunks(16).all(|c| c == b"ferry-write-test"), "sector 3 was not written");
}

#[test]
fn micro_guest_reads_writes_and_identifies_the_disk() {
    let elf = guest("blk");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    test_disk(&disk);
    let want = expected_blk_output(&disk);
    let spec = spec_for(&elf, &disk);
    if qemu_available() {
        let qdisk = dir.path().join("qemu.raw");
        test_disk(&qdisk);
        let q = qemu(&qemu_args(&spec_for(&elf, &qdisk)), &elf, "tcg");
        assert!(q.serial.starts_with(&want), "QEMU printed:\n{}", q.serial);
        check_written(&qdisk);
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x20));
    let text = text(&out.console);
    assert!(text.starts_with(&want), "runtime printed:\n{text}");
    // A read past the end of the disk fails with VIRTIO_BLK_S_IOERR, not a crash.
    assert!(text.contains("beyond-end sector 00ffffffff status 1"), "{text}");
    check_written(&disk);
}

#[test]
fn hostile_descriptors_only_set_needs_reset() {
    let elf = guest("badblk");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    test_disk(&disk);
    let spec = spec_for(&elf, &disk);
    let mut c0 = vec![0u8; 512];
    std::fs::File::open(&disk).expect("disk").read_exact_at(&mut c0, 0).expect("read");
    let tail = format!(
        "loop: submit needs-reset status 4f\n\
         huge-length: submit needs-reset status 4f\n\
         avail-overrun: submit needs-reset status 4f\n\
         after-reset: submit 0 status 0 crc {:08x}\n",
        crc32(&c0)
    );
    if qemu_available() {
        // QEMU agrees on every case except a buffer outside RAM, which it bounces silently.
        let q = qemu(&qemu_args(&spec), &elf, "tcg");
        assert!(q.serial.ends_with(&tail), "QEMU printed:\n{}", q.serial);
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x30));
    let text = text(&out.console);
    assert_eq!(text, format!("outside-ram: submit needs-reset status 4f\n{tail}"));
}

/// The same guest on a qcow2 disk served read-write in place (`Qcow2Rw`): the reads match the
/// raw image it was made from, and afterwards `qemu-img check` is clean and qemu-img reads
/// the guest's write back.
#[test]
fn micro_guest_reads_and_writes_a_qcow2_in_place() {
    if !kvm_available() || !qemu_available() {
        eprintln!("skipped: needs /dev/kvm and qemu-img");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, qcow) = blk_guest_on(dir.path(), "qcow2", &[]);
    let check = std::process::Command::new("qemu-img").arg("check").arg(&qcow).output().expect("qemu-img");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let back = dir.path().join("back.raw");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&qcow)
        .arg(&back)
        .status()
        .expect("qemu-img");
    assert!(st.success());
    check_written(&back);
}

/// A VMDK is served through `ferry-formats`' copy-on-write overlay (the one `ferry convert`
/// uses): the guest's reads match the raw image's CRCs, its write + flush succeed, and the
/// VMDK itself is untouched afterwards (`qemu-img compare` with the raw it came from).
#[test]
fn micro_guest_writes_a_vmdk_through_the_overlay_without_touching_it() {
    if !kvm_available() || !qemu_available() {
        eprintln!("skipped: needs /dev/kvm and qemu-img");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (raw, vmdk) = blk_guest_on(dir.path(), "vmdk", &["-o", "subformat=monolithicSparse"]);
    let cmp = std::process::Command::new("qemu-img").args(["compare", "-f", "raw", "-F", "vmdk"]).arg(&raw).arg(&vmdk).output().expect("qemu-img");
    assert!(cmp.status.success(), "the VMDK changed: {}", String::from_utf8_lossy(&cmp.stdout));
}

/// FNV-1a over little-endian 32-bit words, as the blkmulti micro-guest computes it.
fn fnv(b: &[u8]) -> u32 {
    b.chunks(4).fold(0x811c_9dc5u32, |h, w| (h ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])).wrapping_mul(0x0100_0193))
}

/// Several requests in flight at once (five reads posted with one notify; two writes and a
/// flush together), then a timed 64 MiB sequential read with five 64 KiB requests in flight.
/// Oracles: checksums (FNV-1a over 32-bit words) of the host file's regions, the file after
/// the run, and QEMU's run of the same guest.
#[test]
fn micro_guest_keeps_several_requests_in_flight() {
    let elf = guest("blkmulti");
    let dir = tempfile::tempdir().expect("tempdir");
    let make_disk = |p: &std::path::Path| {
        sparse_disk(p, 8 << 30);
        let f = std::fs::OpenOptions::new().write(true).open(p).expect("open");
        for (i, s) in [0u64, 128, 4096, 0x80_0000, 0x10_0000].iter().enumerate() {
            f.write_all_at(&pattern(10 + i as u64, 0x10000), s * 512).expect("write");
        }
    };
    let disk = dir.path().join("disk.raw");
    make_disk(&disk);
    let f = std::fs::File::open(&disk).expect("disk");
    let crc_at = |sector: u64| {
        let mut b = vec![0u8; 0x10000];
        f.read_exact_at(&mut b, sector * 512).expect("read");
        format!("{:08x}", fnv(&b))
    };
    let mut want = String::new();
    for s in [0u64, 128, 4096, 0x80_0000, 0x10_0000] {
        want += &format!("read sector {s:08x} status 0 fnv {}\n", crc_at(s));
    }
    let written = |i: u32| -> Vec<u8> { (0..0x10000u32).step_by(4).flat_map(|b| (0x5eed_0000u32 + b + i).to_le_bytes()).collect() };
    want += &format!("write status 00 flush status 0\nread back fnv {:08x} {:08x}\nbench read 64 MiB\n", fnv(&written(0)), fnv(&written(1)));
    let check_written = |p: &std::path::Path| {
        let f = std::fs::File::open(p).expect("disk");
        for i in 0..2u32 {
            let mut b = vec![0u8; 0x10000];
            f.read_exact_at(&mut b, (8192 + 128 * u64::from(i)) * 512).expect("read");
            assert!(b == written(i), "region {i} was not written");
        }
    };
    let mut v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    if let Some(devs) = v["devices"].as_array_mut() {
        devs.truncate(1);
        devs[0]["id"] = "disk-multi".into();
    }
    let spec = MachineSpec::from_json(&v.to_string()).expect("spec");
    if qemu_available() {
        let qdisk = dir.path().join("qemu.raw");
        make_disk(&qdisk);
        let q = qemu(&qemu_args(&spec_for(&elf, &qdisk)), &elf, "tcg");
        assert_eq!(q.serial, want, "QEMU printed:\n{}", q.serial);
        check_written(&qdisk);
    }
    if !kvm_available() {
        return;
    }
    // The requests are served on the disk's I/O thread ("blk-" + its id), not in the vCPU's
    // exit, and the thread is joined when the VM stops.
    let has_io_thread = || {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "blk-disk-multi"))
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let watcher = std::thread::spawn(move || {
        let mut seen = false;
        while !d2.load(std::sync::atomic::Ordering::SeqCst) && !seen {
            seen = has_io_thread();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        seen
    });
    let out = run_spec(&spec);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(watcher.join().expect("watcher"), "no blk-disk-multi I/O thread while the guest ran");
    assert!(!has_io_thread(), "the I/O thread outlived the VM");
    assert_eq!(out.reason, ExitReason::DebugExit(0x80));
    assert_eq!(text(&out.console), want);
    check_written(&disk);
    let at = |code: u8| out.markers.iter().find(|m| m.0 == code).map(|m| m.1).expect("marker");
    let us = at(0x11) - at(0x10);
    eprintln!("sequential read: 64 MiB in {:.1} ms = {:.0} MB/s (run {:?})", us as f64 / 1000.0, 64.0 * 1.048576 / (us as f64 / 1e6), out.elapsed);
}

/// Makes the test disk in `dir`, converts it with `qemu-img convert -O FORMAT OPTS`, runs the
/// blk micro-guest on the converted image alone and checks it printed the raw disk's CRCs.
/// Returns (raw, converted image).
fn blk_guest_on(dir: &std::path::Path, format: &str, opts: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let elf = guest("blk");
    let raw = dir.join("disk.raw");
    test_disk(&raw);
    let want = expected_blk_output(&raw);
    let image = dir.join(format!("disk.{format}"));
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", format])
        .args(opts)
        .arg(&raw)
        .arg(&image)
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let mut v = spec_json(&elf, &image, "q35-v1", [4, 3, 5, 6]);
    if let Some(devs) = v["devices"].as_array_mut() {
        devs.truncate(1);
        devs[0]["format"] = format.into();
    }
    let spec = MachineSpec::from_json(&v.to_string()).expect("spec");
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x20));
    let text = text(&out.console);
    assert!(text.starts_with(&want), "runtime printed:\n{text}");
    (raw, image)
}
