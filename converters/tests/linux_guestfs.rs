//! `HostDirFs`: the guest view of a host directory is confined to it, follows symlinks the way
//! the guest would, and keeps modes.

use ferry_converters::guestfs::{FileKind, GuestFs, GuestFsError, HostDirFs};

#[test]
fn confined_to_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"host").unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/secret"), b"guest").unwrap();
    // An absolute link to the host's directory must resolve inside the guest.
    std::os::unix::fs::symlink(outside.path(), dir.path().join("etc/abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../etc", dir.path().join("etc/up")).unwrap();
    let fs = HostDirFs::new(dir.path());
    assert!(fs.read_file("/etc/abs/secret").is_err());
    assert_eq!(fs.read_file("/etc/up/secret").unwrap(), b"guest");
    assert_eq!(fs.read_file("/../../etc/secret").unwrap(), b"guest");
    assert_eq!(fs.canonicalize("/etc/up/x").unwrap(), "/etc/x");
    assert!(matches!(
        fs.read_file("etc/secret"),
        Err(GuestFsError::InvalidPath { .. })
    ));
}

#[test]
fn loops_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
    std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
    let fs = HostDirFs::new(dir.path());
    assert!(matches!(
        fs.read_file("/a"),
        Err(GuestFsError::SymlinkLoop { .. })
    ));
    assert_eq!(fs.lstat("/a").unwrap().unwrap().kind, FileKind::Symlink);
}

#[test]
fn write_keeps_mode_and_creates_with_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    fs.mkdir_p("/etc/x/y", 0o755).unwrap();
    fs.write_file("/etc/x/y/f", b"1", 0o600).unwrap();
    assert_eq!(fs.lstat("/etc/x/y/f").unwrap().unwrap().mode, 0o600);
    fs.set_mode("/etc/x/y/f", 0o640).unwrap();
    fs.write_file("/etc/x/y/f", b"22", 0o644).unwrap();
    let st = fs.lstat("/etc/x/y/f").unwrap().unwrap();
    assert_eq!((st.mode, st.size), (0o640, 2));
    fs.symlink("/dev/null", "/etc/x/m").unwrap();
    assert_eq!(fs.read_link("/etc/x/m").unwrap(), "/dev/null");
    assert!(
        !fs.exists("/etc/x/m").unwrap(),
        "/dev/null is resolved inside the guest"
    );
    fs.rename("/etc/x/y/f", "/etc/x/g").unwrap();
    assert_eq!(fs.read_dir("/etc/x").unwrap(), vec!["g", "m", "y"]);
    fs.unlink("/etc/x/m").unwrap();
    assert!(fs.lstat("/etc/x/m").unwrap().is_none());
}

#[test]
fn writes_through_symlinks_keep_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    fs.mkdir_p("/etc/default", 0o755).unwrap();
    fs.mkdir_p("/etc/sysconfig", 0o755).unwrap();
    fs.write_file("/etc/default/grub", b"A=1\n", 0o644).unwrap();
    fs.symlink("../default/grub", "/etc/sysconfig/grub")
        .unwrap();
    assert_eq!(
        fs.canonicalize("/etc/sysconfig/grub").unwrap(),
        "/etc/default/grub"
    );
    fs.write_file("/etc/sysconfig/grub", b"A=2\n", 0o600)
        .unwrap();
    assert_eq!(fs.read_file("/etc/default/grub").unwrap(), b"A=2\n");
    assert_eq!(
        fs.lstat("/etc/sysconfig/grub").unwrap().unwrap().kind,
        FileKind::Symlink
    );
    assert_eq!(
        fs.stat("/etc/sysconfig/grub").unwrap().unwrap().mode,
        0o644,
        "the existing file keeps its mode"
    );
    // Owner changes need root; as root they must show.
    if created_as_root(&fs) {
        fs.set_owner("/etc/default/grub", 1000, 1000).unwrap();
        let st = fs.lstat("/etc/default/grub").unwrap().unwrap();
        assert_eq!((st.uid, st.gid), (1000, 1000));
        fs.write_file("/etc/default/grub", b"A=3\n", 0o644).unwrap();
        let st = fs.lstat("/etc/default/grub").unwrap().unwrap();
        assert_eq!(
            (st.uid, st.gid),
            (1000, 1000),
            "replacing contents keeps the owner"
        );
    }
    assert!(matches!(
        fs.mkdir("/etc/default", 0o755),
        Err(GuestFsError::AlreadyExists { .. })
    ));
    assert!(matches!(
        fs.read_file("/nope/x"),
        Err(GuestFsError::NotFound { .. })
    ));
}

/// Whether the tests run as root, judged by the owner of a directory they created.
fn created_as_root(fs: &HostDirFs) -> bool {
    fs.lstat("/etc").unwrap().unwrap().uid == 0
}
