//! `MemFs` keeps the `GuestFs` contract as `HostDirFs` does: every fixture converts to the same
//! plan and the same golden tree in memory as on disk.

mod linux_support;

use ferry_converters::guestfs::{FileKind, GuestFs, GuestFsError, HostDirFs, MemFs};
use ferry_converters::linux::{self, TargetLayout};
use linux_support::*;

const FIXTURES: &[&str] = &[
    "debian12-vmware",
    "debian12-xen",
    "debian12-nvme-networkd",
    "rhel9-vmware",
    "rhel8-xen",
    "centos7-vmware",
    "centos6-xen-vmware",
    "ubuntu2204-netplan",
    "sles15-vmware",
    "sles12-xen",
];

#[test]
fn same_plan_and_result_as_host_directories() {
    for name in FIXTURES {
        let base = testdata().join(name);
        let layout: TargetLayout =
            serde_json::from_str(&std::fs::read_to_string(base.join("layout.json")).unwrap())
                .unwrap();
        let host = HostDirFs::new(base.join("root"));
        let host_plan =
            linux::plan(&linux::detect::detect(&host).unwrap(), &layout, &host).unwrap();
        let mut mem = memfs_from(&base.join("root"));
        let facts = linux::detect::detect(&mem).unwrap();
        let plan = linux::plan(&facts, &layout, &mem).unwrap();
        assert_eq!(plan, host_plan, "{name}");
        linux::apply(&plan, &mut mem).unwrap();
        let want = listing(&testdata().join("expected").join(name).join("root"));
        assert_eq!(guest_listing(&mem), want, "{name}: converted in memory");
        let again = linux::apply(&plan, &mut mem).unwrap();
        assert!(again.applied.is_empty(), "{name}");
    }
}

#[test]
fn contract_edge_cases() {
    let mut fs = MemFs::new();
    fs.mkdir_p("/a/b", 0o755).unwrap();
    fs.write_file("/a/b/f", b"x", 0o600).unwrap();
    fs.symlink("/a/b", "/l").unwrap();
    fs.symlink("../../..", "/a/b/up").unwrap();
    assert_eq!(fs.read_file("/l/f").unwrap(), b"x");
    assert_eq!(
        fs.read_file("/a/b/up/a/b/f").unwrap(),
        b"x",
        ".. stops at the root"
    );
    assert_eq!(fs.read_dir("/l").unwrap(), ["f", "up"]);
    assert!(matches!(
        fs.mkdir("/a", 0o755),
        Err(GuestFsError::AlreadyExists { .. })
    ));
    assert!(matches!(
        fs.write_file("/nope/f", b"", 0o644),
        Err(GuestFsError::NotFound { .. })
    ));
    assert!(matches!(
        fs.unlink("/a"),
        Err(GuestFsError::Unsupported { .. })
    ));
    fs.rename("/a", "/c").unwrap();
    assert_eq!(fs.read_file("/c/b/f").unwrap(), b"x");
    assert!(!fs.exists("/l").unwrap(), "the absolute link now dangles");
    assert_eq!(fs.lstat("/l").unwrap().unwrap().kind, FileKind::Symlink);
    assert!(fs.rename("/c", "/c/b/g").is_err());
    fs.symlink("loop2", "/loop1").unwrap();
    fs.symlink("loop1", "/loop2").unwrap();
    assert!(matches!(
        fs.read_file("/loop1"),
        Err(GuestFsError::SymlinkLoop { .. })
    ));
    fs.set_owner("/c/b/f", 7, 8).unwrap();
    fs.write_file("/c/b/f", b"yy", 0o644).unwrap();
    let st = fs.lstat("/c/b/f").unwrap().unwrap();
    assert_eq!((st.mode, st.uid, st.gid, st.size), (0o600, 7, 8, 2));
}
