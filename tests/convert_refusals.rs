//! What `ferry convert` refuses, and how it says so: the inspection fixture's RHEL 9 guest
//! (`testdata/inspect/build-fixtures.sh`: GPT + ESP, /boot, root on XFS in an LVM LV, the VG
//! across two disks) has an XFS root, which Ferry cannot write: one line naming the root LV
//! and its type, and nothing is written to the output directory; the sources are unchanged.

mod inspect_support;

use inspect_support::fixtures;
use std::process::Command;

#[test]
fn xfs_root_on_lvm_is_refused_in_one_line() {
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
        "ferry: the root filesystem /dev/rhel/root is xfs: Ferry converts only on ext2/3/4 filesystems \
         (the XFS writer does not yet maintain rmapbt or write extended attributes, and no XFS guest \
         has been converted end to end; there is no btrfs writer)"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "output written");
    assert_eq!(mtimes(), before, "a source changed");
}
