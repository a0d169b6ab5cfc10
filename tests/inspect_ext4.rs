//! The ext2/3/4 wrapper against filesystems made by mkfs.ext* -d, including features the
//! `ext4` crate refuses on its own (metadata_csum_seed, with the UUID changed afterwards as
//! tune2fs does on cloned guests). Oracle: debugfs on the same image.

mod inspect_support;
use ferry_formats::disk::RawImage;
use ferry_inspectors::fs::{probe, ExtFs, FileKind, FileSystem};
use ferry_inspectors::Device;
use inspect_support::run;
use std::process::Command;
use std::sync::Arc;

fn make(kind: &str, opts: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("etc/sub")).unwrap();
    std::fs::write(src.join("etc/hostname"), "guest\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("etc/sub/big.bin"), &big).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("etc/sub/f{i:03}")), format!("{i}\n")).unwrap();
    }
    std::os::unix::fs::symlink("../etc/hostname", src.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(100), src.join("etc/longlink")).unwrap();
    let img = t.path().join("fs.img");
    let st = Command::new(format!("mkfs.{kind}"))
        .args(["-q", "-F"])
        .args(opts)
        .arg("-d")
        .arg(&src)
        .arg(&img)
        .arg("8M")
        .status()
        .unwrap();
    assert!(st.success());
    (t, img)
}

fn check(img: &std::path::Path) {
    let dev = Device::new("/dev/sdz1", Arc::new(RawImage::open(img).unwrap()));
    let info = probe(&dev).unwrap().unwrap();
    let uuid = run("blkid", &["-p", "-s", "UUID", "-o", "value", &img.display().to_string()]);
    assert_eq!(info.uuid.as_deref(), Some(uuid.trim()));
    let fs = ExtFs::open(&dev).unwrap();
    let imgs = img.display().to_string();
    let debugfs = |cmd: &str| run("debugfs", &["-R", cmd, &imgs]);
    assert_eq!(fs.read_file("/etc/hostname", 100).unwrap(), debugfs("cat /etc/hostname").as_bytes());
    let big = fs.read_file("/etc/sub/big.bin", 1 << 20).unwrap();
    assert_eq!(big.len(), 300_000);
    assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(fs.read_head("/etc/sub/big.bin", 10).unwrap(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let mut names: Vec<String> = fs.read_dir("/etc/sub").unwrap().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let mut want: Vec<String> = debugfs("ls -p /etc/sub")
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(str::to_string))
        .filter(|n| n != "." && n != ".." && !n.is_empty())
        .collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(names.len(), 201);
    assert_eq!(fs.read_link("/etc/link").unwrap(), "../etc/hostname");
    assert_eq!(fs.read_link("/etc/longlink").unwrap(), "x".repeat(100));
    assert_eq!(fs.metadata("/etc/link").unwrap().unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.metadata("/etc/nope").unwrap(), None);
    let err = fs.read_file("/etc/sub/big.bin", 1000).unwrap_err().to_string();
    assert!(err.contains("/etc/sub/big.bin") && err.contains("300000"), "{err}");
}

#[test]
fn ext2_ext3_ext4_read_like_debugfs() {
    for (kind, opts) in [("ext2", &[][..]), ("ext3", &[][..]), ("ext4", &[][..]), ("ext4", &["-b", "1024"][..])] {
        let (_t, img) = make(kind, opts);
        check(&img);
    }
}

#[test]
fn metadata_csum_seed_with_changed_uuid() {
    let (_t, img) = make("ext4", &["-O", "metadata_csum_seed"]);
    let st = Command::new("tune2fs").args(["-U", "random"]).arg(&img).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    check(&img);
}
