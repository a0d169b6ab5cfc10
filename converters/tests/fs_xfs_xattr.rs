//! Issue 14: new XFS inodes inherit their parent directory's SELinux label
//! (`security.selinux`, a shortform attribute fork at the end of the inode). The labels are
//! put on the image's directories by `xfs_db attr_set` (a 28-byte value); then files,
//! directories, inline and remote symlinks are created through the writer, some grown, a
//! labelled directory taken from shortform to block form by 60 new names, one unlinked.
//! Judged by `xfs_repair -n` (exit 0) and `xfs_db print a`/`core.forkoff` on each new inode.
//! Then `Xfs::set_xattr` (labels from a guest's policy) sets and replaces labels, judged the
//! same way.

mod fs_support;

use ferry_converters::fs::{self, Filesystem, Volume};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use fs_support::{extract_from, have, run};
use std::path::Path;

const FS_LEN: u64 = 320 << 20;
const LABEL_LEN: usize = 28;

fn xfs_db(img: &Path, cmds: &[&str], expert: bool) -> String {
    let mut a = vec![if expert { "-x" } else { "-r" }, "-f"];
    for c in cmds {
        a.extend_from_slice(&["-c", c]);
    }
    a.push(img.to_str().unwrap());
    let o = run("xfs_db", &a);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn assert_repair_clean(img: &Path) {
    let o = run("xfs_repair", &["-n", "-f", img.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "xfs_repair -n:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `xfs_db print a` of `path`'s inode (its attribute fork) and its forkoff.
fn attrs(img: &Path, path: &str) -> (String, u64) {
    let out = xfs_db(img, &[&format!("path {path}"), "print core.forkoff", "print a"], false);
    let forkoff = out
        .lines()
        .find_map(|l| l.strip_prefix("core.forkoff = "))
        .unwrap_or_else(|| panic!("xfs_db: no forkoff for {path}: {out}"))
        .trim()
        .parse()
        .unwrap();
    (out, forkoff)
}

fn assert_labelled(img: &Path, path: &str) {
    let (out, forkoff) = attrs(img, path);
    let value = format!("a.sfattr.list[0].value = \"{}\"", "v".repeat(LABEL_LEN));
    assert!(
        forkoff > 0
            && out.contains("a.sfattr.hdr.count = 1")
            && out.contains("a.sfattr.list[0].secure = 1")
            && out.contains("a.sfattr.list[0].name = \"selinux\"")
            && out.contains(&value),
        "{path} has not its parent's label:\n{out}"
    );
}

fn labels_inherited(mkfs_args: &[&str]) {
    if !have("mkfs.xfs") || !have("xfs_repair") || !have("xfs_db") {
        eprintln!("skipping: xfsprogs not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("hostname");
    std::fs::write(&src, "guest\n").unwrap();
    let proto = t.path().join("proto");
    std::fs::write(
        &proto,
        format!(
            "/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\nhostname ---644 0 0 {}\n$\nnolabel d--755 0 0\n$\n$\n",
            src.display()
        ),
    )
    .unwrap();
    let img = t.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(FS_LEN).unwrap();
    let mut a = vec!["-q", "-f", "-p", proto.to_str().unwrap()];
    a.extend_from_slice(mkfs_args);
    a.push(img.to_str().unwrap());
    let o = run("mkfs.xfs", &a);
    assert!(o.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&o.stderr));
    for dir in ["/", "/etc"] {
        xfs_db(&img, &[&format!("path {dir}"), &format!("attr_set -s -v {LABEL_LEN} selinux")], true);
    }
    assert_labelled(&img, "/etc");
    assert_repair_clean(&img);

    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    {
        let Filesystem::Xfs(mut x) = fs::open(Volume::new(&ov, 0, ov.size(), "fs.img").unwrap(), "xfs", "fs.img").unwrap()
        else {
            panic!("not XFS")
        };
        x.create_file("/etc/new.conf", b"new\n", 0o644, 0, 0).unwrap();
        x.mkdir("/etc/new.d", 0o755, 0, 0).unwrap();
        x.create_file("/etc/new.d/inner.conf", b"inner\n", 0o600, 0, 0).unwrap();
        x.symlink("/etc/short-link", b"new.conf", 0, 0).unwrap();
        x.symlink("/etc/long-link", "/x".repeat(350).as_bytes(), 0, 0).unwrap();
        x.create_file("/.autorelabel", b"", 0o644, 0, 0).unwrap();
        x.create_file("/nolabel/plain", b"plain\n", 0o644, 0, 0).unwrap();
        // Grown past what the data fork holds inline, next to a neighbour that interleaves.
        for round in 1..=30usize {
            let data: Vec<u8> = (0..round * 4096).map(|k| (k % 251) as u8).collect();
            x.write_file("/etc/new.conf", &data).unwrap();
            x.create_file(&format!("/etc/new.d/n{round:02}"), &data[..round], 0o644, 0, 0).unwrap();
        }
        for k in 0..60 {
            x.create_file(&format!("/etc/many-{k:03}-with-a-longer-name.conf"), b"x\n", 0o644, 0, 0).unwrap();
        }
        x.unlink("/etc/new.d/n01").unwrap();
        assert_eq!(x.get_xattr("/etc/new.d/inner.conf", "security.selinux").unwrap(), Some(vec![b'v'; LABEL_LEN]));
        assert_eq!(x.get_xattr("/nolabel/plain", "security.selinux").unwrap(), None);
    }
    let out = t.path().join("out.img");
    extract_from(&ov, 0, FS_LEN, &out);
    assert_repair_clean(&out);
    for p in [
        "/etc/new.conf",
        "/etc/new.d",
        "/etc/new.d/inner.conf",
        "/etc/new.d/n30",
        "/etc/short-link",
        "/etc/long-link",
        "/.autorelabel",
        "/etc/many-059-with-a-longer-name.conf",
    ] {
        assert_labelled(&out, p);
    }
    assert_eq!(attrs(&out, "/nolabel/plain").1, 0, "an unlabelled directory's file got a label");
    let fmt = xfs_db(&out, &["path /etc/new.conf", "print core.format core.nextents core.size"], false);
    assert!(fmt.contains("core.size = 122880"), "{fmt}");
    let dir = xfs_db(&out, &["path /etc", "print core.format"], false);
    assert!(dir.contains("core.format = 2 (extents)"), "/etc is still shortform: {dir}");
    assert_labelled(&out, "/etc");
}

#[test]
fn labels_inherited_v5_debian12_defaults() {
    labels_inherited(&[]);
}

#[test]
fn labels_inherited_v5_1k_blocks_nrext64() {
    labels_inherited(&["-b", "size=1024", "-i", "nrext64=1"]);
}

#[test]
fn labels_inherited_v4() {
    labels_inherited(&["-m", "crc=0"]);
}

/// `security.selinux` of `path` as xfs_db prints its value, for the one entry so named.
fn selinux_value(img: &Path, path: &str) -> Option<String> {
    let (out, _) = attrs(img, path);
    let k = out.lines().find_map(|l| {
        let (k, v) = l.strip_prefix("a.sfattr.list[")?.split_once("].name = ")?;
        (v == "\"selinux\"").then(|| k.to_string())
    })?;
    assert!(out.contains(&format!("a.sfattr.list[{k}].secure = 1")), "{out}");
    out.lines().find_map(|l| l.strip_prefix(&format!("a.sfattr.list[{k}].value = \"")).map(|v| v.trim_end_matches('"').to_string()))
}

/// `Xfs::set_xattr` (labels from the guest's policy): a label set on inodes with no attribute
/// fork, replacing an inherited one (longer: the fork offset moves), next to another
/// attribute, on a shortform directory, inline and remote symlinks, then replaced by a
/// shorter one in place. Judged by `xfs_repair -n` and `xfs_db print a`.
fn set_labels(mkfs_args: &[&str]) {
    if !have("mkfs.xfs") || !have("xfs_repair") || !have("xfs_db") {
        eprintln!("skipping: xfsprogs not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("hostname");
    std::fs::write(&src, "guest\n").unwrap();
    let proto = t.path().join("proto");
    std::fs::write(&proto, format!("/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\nhostname ---644 0 0 {}\n$\nnolabel d--755 0 0\n$\n$\n", src.display())).unwrap();
    let img = t.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(FS_LEN).unwrap();
    let mut a = vec!["-q", "-f", "-p", proto.to_str().unwrap()];
    a.extend_from_slice(mkfs_args);
    a.push(img.to_str().unwrap());
    let o = run("mkfs.xfs", &a);
    assert!(o.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&o.stderr));
    for dir in ["/", "/etc"] {
        xfs_db(&img, &[&format!("path {dir}"), &format!("attr_set -s -v {LABEL_LEN} selinux")], true);
    }
    xfs_db(&img, &["path /etc/hostname", "attr_set -v 5 other"], true);
    let long = b"system_u:object_r:NetworkManager_etc_rw_t:s0\0";
    let short = b"system_u:object_r:etc_t:s0\0";
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let set = [
        "/etc/new.conf", "/etc/new.d", "/etc/short-link", "/etc/long-link", "/nolabel/plain", "/nolabel", "/etc/hostname",
    ];
    let mut grown_set = false;
    {
        let Filesystem::Xfs(mut x) = fs::open(Volume::new(&ov, 0, ov.size(), "fs.img").unwrap(), "xfs", "fs.img").unwrap() else { panic!("not XFS") };
        x.create_file("/etc/new.conf", b"new\n", 0o644, 0, 0).unwrap();
        x.mkdir("/etc/new.d", 0o755, 0, 0).unwrap();
        for k in 0..5 {
            x.create_file(&format!("/etc/new.d/f{k}"), b"x\n", 0o644, 0, 0).unwrap();
        }
        x.symlink("/etc/short-link", b"new.conf", 0, 0).unwrap();
        x.symlink("/etc/long-link", "/x".repeat(350).as_bytes(), 0, 0).unwrap();
        x.create_file("/nolabel/plain", b"plain\n", 0o644, 0, 0).unwrap();
        x.create_file("/etc/grown", b"", 0o644, 0, 0).unwrap();
        for round in 1..=6usize {
            let data: Vec<u8> = (0..round * 8192).map(|k| (k % 251) as u8).collect();
            x.write_file("/etc/grown", &data).unwrap();
            x.create_file(&format!("/etc/spacer{round}"), &data[..4096], 0o644, 0, 0).unwrap();
        }
        for p in set {
            x.set_xattr(p, "security.selinux", long).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(x.get_xattr(p, "security.selinux").unwrap().as_deref(), Some(&long[..]), "{p}");
        }
        // Interleaved extents: the longer label fits where the extent list leaves room (v5's
        // 512-byte inodes); where not (v4's 256), it is refused and the inode left as it was.
        match x.set_xattr("/etc/grown", "security.selinux", long) {
            Ok(()) => grown_set = true,
            Err(e) => {
                assert!(e.to_string().contains("no room"), "{e}");
                assert_eq!(x.get_xattr("/etc/grown", "security.selinux").unwrap(), Some(vec![b'v'; LABEL_LEN]));
            }
        }
        x.set_xattr("/etc/new.conf", "security.selinux", short).unwrap();
        assert_eq!(x.get_xattr("/etc/hostname", "user.other").unwrap(), Some(b"vvvvv".to_vec()));
        assert!(x.set_xattr("/etc/new.conf", "system.posix_acl_access", b"x").is_err());
    }
    let out = t.path().join("out.img");
    extract_from(&ov, 0, FS_LEN, &out);
    assert_repair_clean(&out);
    let shown = |v: &[u8]| format!("{}\\000", std::str::from_utf8(&v[..v.len() - 1]).unwrap());
    for p in set {
        let want = if p == "/etc/new.conf" { shown(short) } else { shown(long) };
        assert_eq!(selinux_value(&out, p), Some(want), "{p}");
    }
    if grown_set {
        assert_eq!(selinux_value(&out, "/etc/grown"), Some(shown(long)));
    } else {
        assert_labelled(&out, "/etc/grown");
    }
    assert_eq!(grown_set, mkfs_args.is_empty(), "the v5 inode has room, the v4 one not");
    let (other, _) = attrs(&out, "/etc/hostname");
    assert!(other.contains("a.sfattr.hdr.count = 2") && other.contains("value = \"vvvvv\""), "{other}");
    let grown = xfs_read_size(&out, "/etc/grown");
    assert_eq!(grown, 6 * 8192);
    assert_labelled(&out, "/etc");
}

fn xfs_read_size(img: &Path, path: &str) -> u64 {
    let out = xfs_db(img, &[&format!("path {path}"), "print core.size"], false);
    out.lines().find_map(|l| l.strip_prefix("core.size = ")).unwrap().trim().parse().unwrap()
}

#[test]
fn fctx_set_labels_v5() {
    set_labels(&[]);
}

#[test]
fn fctx_set_labels_v4() {
    set_labels(&["-m", "crc=0"]);
}
