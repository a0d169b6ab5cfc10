//! The Linux conversion plan applied through `GuestFs` on an XFS root: the RHEL-family
//! fixture trees (testdata/linux: rhel9-vmware, rhel8-xen, centos7-vmware) put into an XFS
//! image by `mkfs.xfs -p`, detected, planned and applied on the XFS writer; the plan must be
//! the golden one, the converted tree must read back equal to the golden converted tree, and
//! `xfs_repair -n` must be clean.

mod fs_support;
mod linux_support;

use ferry_converters::fs::{self, Volume};
use ferry_converters::guestfs::{Ext4GuestFs, FileKind, GuestFs};
use ferry_converters::linux::{self, TargetLayout};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use fs_support::{have, run};
use linux_support::{copy_tree, golden, testdata};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A protofile for the host tree at `root` (modes kept, owned by root).
fn protofile(root: &Path) -> String {
    fn walk(dir: &Path, out: &mut String) {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let name = p.file_name().unwrap().to_str().unwrap();
            let mode = md.permissions().mode() & 0o7777;
            if md.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.push_str(&format!("{name} l--777 0 0 {}\n", t.display()));
            } else if md.is_dir() {
                out.push_str(&format!("{name} d--{mode:03o} 0 0\n"));
                walk(&p, out);
                out.push_str("$\n");
            } else {
                out.push_str(&format!("{name} ---{mode:03o} 0 0 {}\n", p.display()));
            }
        }
    }
    let mut out = "/dev/null\n0 0\nd--755 0 0\n".to_string();
    walk(root, &mut out);
    out.push_str("$\n");
    out
}

/// Every file, symlink and directory of the golden tree `want` reads the same through `g`.
fn compare(g: &dyn GuestFs, want: &Path, guest: &str) {
    let mut names: Vec<_> = std::fs::read_dir(want).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let gp = format!("{}/{}", guest.trim_end_matches('/'), p.file_name().unwrap().to_str().unwrap());
        let md = std::fs::symlink_metadata(&p).unwrap();
        let st = g.lstat(&gp).unwrap().unwrap_or_else(|| panic!("{gp} missing on XFS"));
        if md.file_type().is_symlink() {
            assert_eq!(st.kind, FileKind::Symlink, "{gp}");
            assert_eq!(g.read_link(&gp).unwrap(), std::fs::read_link(&p).unwrap().to_str().unwrap(), "{gp}");
        } else if md.is_dir() {
            assert_eq!(st.kind, FileKind::Dir, "{gp}");
            compare(g, &p, &gp);
        } else {
            assert_eq!(g.read_file(&gp).unwrap(), std::fs::read(&p).unwrap(), "{gp}");
        }
    }
}

#[test]
fn rhel9_plan_applied_on_an_xfs_root() {
    plan_on_xfs("rhel9-vmware");
}

#[test]
fn rhel8_plan_applied_on_an_xfs_root() {
    plan_on_xfs("rhel8-xen");
}

#[test]
fn centos7_plan_applied_on_an_xfs_root() {
    plan_on_xfs("centos7-vmware");
}

fn plan_on_xfs(name: &str) {
    if !have("mkfs.xfs") || !have("xfs_repair") {
        eprintln!("skipping: xfsprogs not installed");
        return;
    }
    let base = testdata().join(name);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&base.join("root"), &root);
    if let Ok(modes) = std::fs::read_to_string(base.join("modes.txt")) {
        for l in modes.lines() {
            let (mode, path) = l.split_once(' ').unwrap();
            let mode = u32::from_str_radix(mode, 8).unwrap();
            std::fs::set_permissions(root.join(path.trim_start_matches('/')), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let proto = dir.path().join("proto");
    std::fs::write(&proto, protofile(&root)).unwrap();
    let img = dir.path().join("xfs.img");
    std::fs::File::create(&img).unwrap().set_len(320 << 20).unwrap();
    let o = run("mkfs.xfs", &["-q", "-f", "-p", proto.to_str().unwrap(), img.to_str().unwrap()]);
    assert!(o.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&o.stderr));

    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    {
        let vol = Volume::new(&ov, 0, ov.size(), "xfs.img").unwrap();
        let mut g = Ext4GuestFs::with_root(fs::open(vol, "xfs", "xfs.img").unwrap());
        let layout: TargetLayout = serde_json::from_str(&std::fs::read_to_string(base.join("layout.json")).unwrap()).unwrap();
        let facts = linux::detect::detect(&g).unwrap();
        let plan = linux::plan(&facts, &layout, &g).unwrap();
        golden(&format!("{plan}"), &testdata().join("expected").join(name).join("plan.txt"));
        let report = linux::apply(&plan, &mut g).unwrap();
        let rebuilds = plan.changes.iter().filter(|c| matches!(c.kind, linux::ChangeKind::InitramfsRebuild { .. })).count();
        assert_eq!(report.applied.len() + rebuilds, plan.changes.len(), "every change applied: {report:?}");
        compare(&g, &testdata().join("expected").join(name).join("root"), "/");
    }
    // The image as converted: xfs_repair -n clean.
    let work = dir.path().join("work.img");
    let mut f = std::fs::File::create(&work).unwrap();
    f.set_len(ov.size()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < ov.size() {
        ov.read_at(&mut buf, at).unwrap();
        if buf.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&buf).unwrap();
        }
        at += buf.len() as u64;
    }
    drop(f);
    let o = run("xfs_repair", &["-n", "-f", work.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "xfs_repair -n:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
