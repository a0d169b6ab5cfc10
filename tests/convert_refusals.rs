//! What `ferry convert` refuses, and how it says so: the inspection fixture's RHEL 9 guest
//! (`testdata/inspect/build-fixtures.sh`: GPT + ESP, /boot, root on XFS in an LVM LV, the VG
//! across two disks) has its XFS root opened for writing now (issue 14), but its ext4 /boot
//! has no `efi` directory for the ESP its fstab mounts there: one line naming the mountpoint,
//! and nothing is written to the output directory; the sources are unchanged. (XFS roots,
//! rmapbt ones included: `tests/convert_linux_xfs.rs`.)

mod inspect_support;

use inspect_support::fixtures;
use std::process::Command;

#[test]
fn missing_esp_mountpoint_is_refused_in_one_line() {
    let Some(dir) = fixtures() else { return };
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (dir.join("rhel-a.img"), dir.join("rhel-b.img"));
    let cfg = t.path().join("rhel.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"rhel\"\ntype = \"hvm\"\nmemory = 1024\nvcpus = 1\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}', 'format=raw, vdev=xvdb, access=rw, target={}' ]\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let mtimes = || [&a, &b].map(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let before = mtimes();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr.trim_end(),
        "ferry: /boot/efi: not a directory"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "output written");
    assert_eq!(mtimes(), before, "a source changed");
}
