//! btrfs inspection against btrfs-progs and the kernel. Images are made by `mkfs.btrfs
//! --rootdir` (each checksum type, each compression), then changed on a loop mount by
//! `btrfs subvolume create/snapshot/set-default`, `fallocate` and writes under
//! `-o compress=`. Oracles: every file, directory and symlink read back through a read-only
//! loop mount (the kernel's btrfs), `btrfs subvolume list`/`get-default`,
//! `btrfs inspect-internal dump-super` and `btrfs-map-logical`. Needs root and loop devices
//! (skips with one line otherwise; one test needs neither). About 12 s on this machine.

mod convert_linux_support;
mod inspect_support;
use ferry_formats::disk::RawImage;
use ferry_inspectors::fs::{BtrfsFs, FileKind, FileSystem};
use ferry_inspectors::Device;
use inspect_support::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Whether loop mounts work here (root, `losetup`, btrfs in the kernel, btrfs-progs).
fn can_loop_mount() -> bool {
    let ok = |c: &str, a: &[&str]| Command::new(c).args(a).output().is_ok_and(|o| o.status.success());
    let root = ok("id", &["-u"]) && run("id", &["-u"]).trim() == "0";
    if !(root && ok("losetup", &["-f"]) && ok("mkfs.btrfs", &["--version"])) {
        eprintln!("skipping: btrfs tests need root, loop devices and btrfs-progs");
        return false;
    }
    true
}

/// A loop mount, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(img: &Path, dir: &Path, opts: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let o = if opts.is_empty() { "loop".to_string() } else { format!("loop,{opts}") };
        run("mount", &["-t", "btrfs", "-o", &o, &img.display().to_string(), &dir.display().to_string()]);
        Mount(dir.to_path_buf())
    }
    fn path(&self, p: &str) -> String {
        self.0.join(p).display().to_string()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn open(img: &Path) -> BtrfsFs {
    BtrfsFs::open(&Device::new("/dev/sda", Arc::new(RawImage::open(img).unwrap()))).unwrap()
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn text(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0.. {
        if s.len() >= n {
            break;
        }
        s.push_str(&format!("line {i} of some compressible text\n"));
    }
    s.into_bytes()[..n].to_vec()
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The source tree `mkfs.btrfs --rootdir` copies: inline, regular, compressible and
/// random data, holes, symlinks, a directory of many entries, odd names.
fn source_tree(dir: &Path) {
    write(&dir.join("etc/hostname"), b"btrfs-guest\n");
    write(&dir.join("etc/small"), &text(100));
    write(&dir.join("etc/inline-text"), &text(1900));
    write(&dir.join("usr/share/random"), &random(300_000, 7));
    write(&dir.join("usr/share/text"), &text(700_000));
    write(&dir.join("empty"), b"");
    write(&dir.join("dir with spaces/ünïcode ✓"), b"name\n");
    let f = std::fs::File::create(dir.join("sparse")).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(&random(5000, 3), 3 << 20).unwrap();
    f.set_len(5 << 20).unwrap();
    for i in 0..400 {
        write(&dir.join(format!("many/entry-{i:04}")), format!("{i}\n").as_bytes());
    }
    let mut deep = dir.join("deep");
    for i in 0..12 {
        deep = deep.join(format!("level{i}"));
    }
    write(&deep.join("leaf"), b"deep\n");
    std::os::unix::fs::symlink("../etc/hostname", dir.join("usr/link-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("x".repeat(300), dir.join("link-long")).unwrap();
    // Owners, modes, a hard link and a FIFO, for the lstat comparison.
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(dir.join("etc/small"), Some(1000), Some(100)).unwrap();
    std::fs::set_permissions(dir.join("etc/small"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    std::fs::set_permissions(dir.join("many"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::hard_link(dir.join("etc/hostname"), dir.join("hostname-link")).unwrap();
    run("mkfifo", &[&dir.join("fifo").display().to_string()]);
}

fn kind(t: std::fs::FileType) -> FileKind {
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else {
        assert!(t.is_fifo() || t.is_socket() || t.is_char_device() || t.is_block_device());
        FileKind::Other
    }
}

/// Compares Ferry's view of `inner` with the kernel's of `real`, recursively; returns the
/// number of entries compared.
fn compare(fs: &BtrfsFs, inner: &str, real: &Path) -> usize {
    let mut want: BTreeMap<String, FileKind> = BTreeMap::new();
    for e in std::fs::read_dir(real).unwrap() {
        let e = e.unwrap();
        want.insert(e.file_name().into_string().unwrap(), kind(e.file_type().unwrap()));
    }
    let got: BTreeMap<String, FileKind> = fs.read_dir(inner).unwrap().into_iter().collect();
    assert_eq!(got, want, "directory {inner}");
    let mut n = 0;
    for (name, k) in want {
        let (p, r) = (format!("{}/{name}", inner.trim_end_matches('/')), real.join(&name));
        let meta = fs.metadata(&p).unwrap().unwrap();
        assert_eq!(meta.kind, k, "{p}");
        // Inode number, mode, owner and link count against the kernel's lstat.
        let st = fs.stat(&p).unwrap().unwrap();
        let m = std::fs::symlink_metadata(&r).unwrap();
        assert_eq!((st.ino, st.mode, st.uid, st.gid, st.nlink), (m.ino(), m.mode(), m.uid(), m.gid(), m.nlink() as u32), "{p}");
        n += 1;
        match k {
            FileKind::Dir => n += compare(fs, &p, &r),
            FileKind::File => {
                let data = std::fs::read(&r).unwrap();
                assert_eq!(meta.size, data.len() as u64, "{p}");
                assert!(fs.read_file(&p, 64 << 20).unwrap() == data, "{p}: contents differ from the kernel's");
                assert_eq!(fs.read_head(&p, 10).unwrap(), data[..data.len().min(10)], "{p}");
            }
            FileKind::Symlink => {
                assert_eq!(fs.read_link(&p).unwrap(), std::fs::read_link(&r).unwrap().display().to_string(), "{p}")
            }
            FileKind::Other => {}
        }
    }
    n
}

/// `btrfs subvolume list -p -u -q`: id → (parent, parent_uuid, uuid, path).
fn subvolume_list(mnt: &str) -> BTreeMap<u64, (u64, String, String, String)> {
    let mut out = BTreeMap::new();
    for line in run("btrfs", &["subvolume", "list", "-p", "-u", "-q", mnt]).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let at = |k: &str| f[f.iter().position(|x| *x == k).unwrap() + 1].to_string();
        let path = line.split(" path ").nth(1).unwrap().to_string();
        out.insert(at("ID").parse().unwrap(), (at("parent").parse().unwrap(), at("parent_uuid"), at("uuid"), path));
    }
    out
}

fn dump_super(img: &Path, field: &str) -> String {
    let s = run("btrfs", &["inspect-internal", "dump-super", &img.display().to_string()]);
    s.lines().find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string())).unwrap()
}

#[test]
fn btrfs_reads_match_the_kernel_for_every_checksum_and_compression() {
    if !can_loop_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_tree(&src);
    for (csum, comp) in [("crc32c", "zlib"), ("xxhash64", "lzo"), ("sha256", "zstd"), ("blake2b", "no")] {
        let img = tmp.path().join(format!("{csum}.img"));
        std::fs::File::create(&img).unwrap().set_len(300 << 20).unwrap();
        let imgs = img.display().to_string();
        run("mkfs.btrfs", &["-q", "--csum", csum, "--compress", comp, "-r", &src.display().to_string(), &imgs]);
        let mnt = tmp.path().join("mnt");
        {
            let opts = if comp == "no" { String::new() } else { format!("compress-force={comp}") };
            let m = Mount::new(&img, &mnt, &opts);
            run("btrfs", &["subvolume", "create", &m.path("sub")]);
            write(&mnt.join("sub/text"), &text(400_000));
            write(&mnt.join("sub/random"), &random(200_000, 9));
            run("fallocate", &["-l", "1M", &m.path("sub/prealloc")]);
            std::fs::OpenOptions::new().write(true).open(mnt.join("sub/prealloc")).unwrap().write_all_at(b"written", 4096).unwrap();
            run("btrfs", &["subvolume", "create", &m.path("sub/nested")]);
            write(&mnt.join("sub/nested/file"), b"nested\n");
            run("btrfs", &["subvolume", "snapshot", &m.path(""), &m.path("snap-top")]);
            run("btrfs", &["subvolume", "snapshot", "-r", &m.path("sub"), &m.path("sub-ro")]);
            // Changed after the snapshot: copy-on-write keeps the snapshot's old bytes.
            write(&mnt.join("sub/text"), &text(123_457));
            let id = run("btrfs", &["inspect-internal", "rootid", &m.path("sub")]);
            run("btrfs", &["subvolume", "set-default", id.trim(), &m.path("")]);
            run("sync", &[]);
        }
        let m = Mount::new(&img, &mnt, "ro,subvolid=5");
        let fs = open(&img);
        let top = fs.subvolume(5).unwrap();
        let n = compare(&top, "/", &mnt);
        assert!(n > 450, "{csum}: only {n} entries compared");

        // Superblock facts against dump-super.
        assert_eq!(fs.csum_type().name(), csum);
        assert!(dump_super(&img, "csum_type").ends_with(&format!("({csum})")));
        // Subvolumes against `btrfs subvolume list` and `get-default`.
        let want = subvolume_list(&m.path(""));
        let subs = fs.subvolumes().unwrap();
        assert_eq!(subs[0].id, 5);
        let got: BTreeMap<u64, (u64, String, String)> =
            subs.iter().skip(1).map(|s| (s.id, (s.parent_id, s.uuid.clone(), s.path.clone()))).collect();
        let want_simple: BTreeMap<u64, (u64, String, String)> =
            want.iter().map(|(i, (p, _, u, path))| (*i, (*p, u.clone(), path.clone()))).collect();
        assert_eq!(got, want_simple, "{csum}");
        for s in &subs {
            if let Some((_, pu, _, _)) = want.get(&s.id) {
                let of = s.snapshot_of.and_then(|o| subs.iter().find(|x| x.id == o)).map(|x| x.uuid.clone());
                assert_eq!(of.unwrap_or("-".into()), *pu, "snapshot_of of {}", s.path);
            }
        }
        let by_path = |p: &str| subs.iter().find(|s| s.path == p).unwrap();
        assert!(by_path("sub-ro").readonly && !by_path("sub").readonly);
        let def = run("btrfs", &["subvolume", "get-default", &m.path("")]);
        assert_eq!(def.split_whitespace().nth(1).unwrap(), by_path("sub").id.to_string());
        assert_eq!(fs.subvolume_id(), by_path("sub").id, "open() views the default subvolume");
        // The default view against a mount of the default subvolume.
        drop(m);
        let m = Mount::new(&img, &mnt, "ro");
        assert!(compare(&fs, "/", &mnt) >= 5);
        drop(m);
        let r = fs.report().unwrap();
        assert!(r.compression_scan_complete);
        if comp == "no" {
            assert!(r.compression.is_empty(), "{:?}", r.compression);
        } else {
            assert_eq!(r.compression, [comp], "{csum}");
        }
    }
}

#[test]
fn btrfs_damage_is_one_line_naming_the_block() {
    if !can_loop_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("etc/hostname"), b"x\n");
    let img = tmp.path().join("d.img");
    std::fs::File::create(&img).unwrap().set_len(128 << 20).unwrap();
    run("mkfs.btrfs", &["-q", "--csum", "xxhash64", "-r", &src.display().to_string(), &img.display().to_string()]);
    let dev = |p: &Path| Device::new("/dev/sdz", Arc::new(RawImage::open(p).unwrap()));
    let flip = |at: u64| {
        let bad = tmp.path().join(format!("bad-{at}.img"));
        std::fs::copy(&img, &bad).unwrap();
        let f = std::fs::OpenOptions::new().write(true).read(true).open(&bad).unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
        bad
    };
    let e = BtrfsFs::open(&dev(&flip(0x10000 + 0x300))).err().unwrap().to_string();
    assert!(e.starts_with("/dev/sdz: btrfs: /: superblock xxhash64 checksum "), "{e}");
    // The root tree's block, located by btrfs-map-logical.
    let root = dump_super(&img, "root\t");
    let map = run("btrfs-map-logical", &["-l", &root, &img.display().to_string()]);
    let phys: u64 = map.split_whitespace().skip_while(|w| *w != "physical").nth(1).unwrap().parse().unwrap();
    let e = BtrfsFs::open(&dev(&flip(phys + 500))).err().unwrap().to_string();
    assert_eq!(e.lines().count(), 1);
    assert!(e.contains(&format!("tree block {root}: xxhash64 checksum ")), "{e}");

    // Two devices: refused by name, as `ferry inspect` reports it.
    let (a, b) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    for p in [&a, &b] {
        std::fs::File::create(p).unwrap().set_len(128 << 20).unwrap();
    }
    run("mkfs.btrfs", &["-q", "-d", "single", "-m", "single", &a.display().to_string(), &b.display().to_string()]);
    let e = BtrfsFs::open(&dev(&a)).err().unwrap().to_string();
    assert_eq!(e, "/dev/sdz: btrfs: /: superblock num_devices 2: multi-device btrfs is not supported (single device only)");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).args(["inspect", "--json", &a.display().to_string()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/sda: btrfs: /: superblock num_devices 2: multi-device btrfs is not supported"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fs(&r, "/dev/sda")["fstype"], "btrfs");
}

/// A Debian-like disk: root in `@`, `/home` in `@home`, snapper snapshots of `@` and a
/// plain snapshot: one Linux root with its mounts, the snapshots listed, never roots.
#[test]
fn btrfs_debian_subvolumes_are_one_root_with_its_mounts() {
    if !can_loop_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("@/etc/os-release"), b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n");
    write(&src.join("@/etc/debian_version"), b"12.5\n");
    write(&src.join("@/etc/hostname"), b"btrfs-deb\n");
    std::fs::create_dir_all(src.join("@/bin")).unwrap();
    std::fs::create_dir_all(src.join("@/home")).unwrap();
    write(&src.join("@home/user/.profile"), b"# profile\n");
    let img = tmp.path().join("deb.img");
    std::fs::File::create(&img).unwrap().set_len(200 << 20).unwrap();
    let imgs = img.display().to_string();
    run("mkfs.btrfs", &["-q", "-U", "5b1e8c4e-2f4c-4a8e-9d51-3c1b7f0a2e11", "-r", &src.display().to_string(), "-u", "rw:@", "-u", "rw:@home", &imgs]);
    let uuid = "5b1e8c4e-2f4c-4a8e-9d51-3c1b7f0a2e11";
    let mnt = tmp.path().join("mnt");
    {
        let m = Mount::new(&img, &mnt, "");
        write(
            &mnt.join("@/etc/fstab"),
            format!("UUID={uuid} / btrfs subvol=@,compress=zstd 0 0\nUUID={uuid} /home btrfs defaults,subvol=/@home 0 0\n").as_bytes(),
        );
        run("btrfs", &["subvolume", "create", &m.path("@/.snapshots")]);
        for n in 1..=2 {
            std::fs::create_dir_all(mnt.join(format!("@/.snapshots/{n}"))).unwrap();
            run("btrfs", &["subvolume", "snapshot", "-r", &m.path("@"), &m.path(&format!("@/.snapshots/{n}/snapshot"))]);
        }
        run("btrfs", &["subvolume", "snapshot", &m.path("@"), &m.path("@-before-upgrade")]);
    }
    let r = inspect_json(std::slice::from_ref(&img));
    let oses = r["operating_systems"].as_array().unwrap();
    assert_eq!(oses.len(), 1, "{oses:#?}");
    let os = &oses[0];
    assert_eq!(os["root"], "btrfsvol:/dev/sda/@");
    assert_eq!(os["distro"], "debian");
    assert_eq!(os["major_version"], 12);
    assert_eq!(os["hostname"], "btrfs-deb");
    assert_eq!(os["mountpoints"], serde_json::json!([["/", "btrfsvol:/dev/sda/@"], ["/home", "btrfsvol:/dev/sda/@home"]]));
    assert_eq!(
        os["snapshots"],
        serde_json::json!([
            "btrfsvol:/dev/sda/@/.snapshots/1/snapshot",
            "btrfsvol:/dev/sda/@/.snapshots/2/snapshot",
            "btrfsvol:/dev/sda/@-before-upgrade"
        ])
    );
    let b = &fs(&r, "/dev/sda")["btrfs"];
    assert_eq!(b["csum"], "crc32c");
    assert_eq!(b["default_subvolume"], 5);
    let snapper: Vec<u64> = b["subvolumes"].as_array().unwrap().iter().filter_map(|s| s["snapper"].as_u64()).collect();
    assert_eq!(snapper, [1, 2]);
    assert_eq!(fs(&r, "/dev/sda")["uuid"], uuid);

    // `@` as the default subvolume and /home by subvolid=: the root is the device itself.
    let root_id = {
        let m = Mount::new(&img, &mnt, "");
        let home = run("btrfs", &["inspect-internal", "rootid", &m.path("@home")]);
        write(&mnt.join("@/etc/fstab"), format!("UUID={uuid} / btrfs defaults 0 0\nUUID={uuid} /home btrfs subvolid={} 0 0\n", home.trim()).as_bytes());
        let root = run("btrfs", &["inspect-internal", "rootid", &m.path("@")]);
        run("btrfs", &["subvolume", "set-default", root.trim(), &m.path("")]);
        root.trim().to_string()
    };
    let r = inspect_json(std::slice::from_ref(&img));
    let oses = r["operating_systems"].as_array().unwrap();
    assert_eq!(oses.len(), 1, "{oses:#?}");
    assert_eq!(oses[0]["root"], "/dev/sda");
    assert_eq!(oses[0]["mountpoints"], serde_json::json!([["/", "/dev/sda"], ["/home", "btrfsvol:/dev/sda/@home"]]));
    let text = ferry(&["inspect", &imgs]);
    assert!(text.contains(&format!("btrfs csum crc32c, default subvolume {root_id}, compression none")), "{text}");
    assert!(text.contains("snapshot btrfsvol:/dev/sda/@/.snapshots/1/snapshot"), "{text}");
    let xml = ferry(&["inspect", "--xml", &imgs]);
    assert!(xml.contains(&format!("<btrfs csum=\"crc32c\" default_subvolume=\"{root_id}\"")), "{xml}");
    assert!(xml.contains("<root>/dev/sda</root>"), "{xml}");
}

/// The SUSE layout: the root is snapper's `@/.snapshots/1/snapshot`, the default
/// subvolume; `/.snapshots` and `/home` are subvolumes under `@`. One root; snapshot 2 is
/// listed under it.
#[test]
fn btrfs_suse_snapper_root_is_the_default_subvolume() {
    if !can_loop_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("@")).unwrap();
    let img = tmp.path().join("suse.img");
    std::fs::File::create(&img).unwrap().set_len(200 << 20).unwrap();
    let imgs = img.display().to_string();
    let uuid = "0c5d2a4e-7b1f-4e1a-a0d2-5e3f9b8c7d61";
    run("mkfs.btrfs", &["-q", "--csum", "sha256", "-U", uuid, "-r", &src.display().to_string(), "-u", "rw:@", &imgs]);
    let mnt = tmp.path().join("mnt");
    {
        let m = Mount::new(&img, &mnt, "");
        run("btrfs", &["subvolume", "create", &m.path("@/.snapshots")]);
        run("btrfs", &["subvolume", "create", &m.path("@/home")]);
        std::fs::create_dir_all(mnt.join("@/.snapshots/1")).unwrap();
        let root = m.path("@/.snapshots/1/snapshot");
        run("btrfs", &["subvolume", "create", &root]);
        let r = Path::new(&root);
        write(&r.join("etc/os-release"), b"NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\n");
        write(&r.join("etc/hostname"), b"sles15\n");
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join(".snapshots")).unwrap();
        std::fs::create_dir_all(r.join("home")).unwrap();
        write(
            &r.join("etc/fstab"),
            format!("UUID={uuid} / btrfs defaults 0 0\nUUID={uuid} /.snapshots btrfs subvol=/@/.snapshots 0 0\nUUID={uuid} /home btrfs subvol=/@/home 0 0\n").as_bytes(),
        );
        std::fs::create_dir_all(mnt.join("@/.snapshots/2")).unwrap();
        run("btrfs", &["subvolume", "snapshot", "-r", &root, &m.path("@/.snapshots/2/snapshot")]);
        let id = run("btrfs", &["inspect-internal", "rootid", &root]);
        run("btrfs", &["subvolume", "set-default", id.trim(), &m.path("")]);
    }
    let r = inspect_json(std::slice::from_ref(&img));
    let oses = r["operating_systems"].as_array().unwrap();
    assert_eq!(oses.len(), 1, "{oses:#?}");
    let os = &oses[0];
    assert_eq!(os["root"], "/dev/sda");
    assert_eq!(os["distro"], "sles");
    assert_eq!(os["hostname"], "sles15");
    assert_eq!(
        os["mountpoints"],
        serde_json::json!([["/", "/dev/sda"], ["/.snapshots", "btrfsvol:/dev/sda/@/.snapshots"], ["/home", "btrfsvol:/dev/sda/@/home"]])
    );
    assert_eq!(os["snapshots"], serde_json::json!(["btrfsvol:/dev/sda/@/.snapshots/2/snapshot"]));
    assert_eq!(fs(&r, "/dev/sda")["btrfs"]["csum"], "sha256");
}

/// The issue's guest: MBR, `/boot` on ext4 (sda1), root in `@` on btrfs (sda2) mounted by
/// fstab `subvol=@`. Made without loop mounts (mkfs.ext4 -d, mkfs.btrfs --rootdir, sfdisk).
#[test]
fn btrfs_root_partition_with_ext4_boot() {
    let have = |c: &str| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success());
    if !(have("mkfs.btrfs") && have("sfdisk") && Command::new("mkfs.ext4").arg("-V").output().is_ok()) {
        eprintln!("skipping: needs mkfs.btrfs, mkfs.ext4 and sfdisk");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (broot, eroot) = ("9d3c1f7a-4b2e-4c8d-8e1f-2a3b4c5d6e7f", "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b");
    let src = tmp.path().join("root");
    write(&src.join("@/etc/os-release"), b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n");
    write(&src.join("@/etc/hostname"), b"vmware-deb\n");
    write(&src.join("@/etc/fstab"), format!("UUID={broot} / btrfs subvol=@ 0 0\nUUID={eroot} /boot ext4 defaults 0 2\n").as_bytes());
    std::fs::create_dir_all(src.join("@/bin")).unwrap();
    std::fs::create_dir_all(src.join("@/boot")).unwrap();
    let boot = tmp.path().join("boot");
    write(&boot.join("grub/grub.cfg"), b"# grub\n");
    let (bimg, rimg, disk) = (tmp.path().join("b.img"), tmp.path().join("r.img"), tmp.path().join("disk.img"));
    std::fs::File::create(&bimg).unwrap().set_len(64 << 20).unwrap();
    std::fs::File::create(&rimg).unwrap().set_len(200 << 20).unwrap();
    run("mkfs.ext4", &["-q", "-U", eroot, "-d", &boot.display().to_string(), &bimg.display().to_string()]);
    run("mkfs.btrfs", &["-q", "-U", broot, "-r", &src.display().to_string(), "-u", "rw:@", &rimg.display().to_string()]);
    std::fs::File::create(&disk).unwrap().set_len((1 + 64 + 200) << 20).unwrap();
    let out = Command::new("sfdisk")
        .args(["-q", &disk.display().to_string()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"label: dos\nstart=2048, size=131072, type=83\nstart=133120, size=409600, type=83\n")?;
            c.wait()
        })
        .unwrap();
    assert!(out.success());
    let d = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    d.write_all_at(&std::fs::read(&bimg).unwrap(), 2048 * 512).unwrap();
    d.write_all_at(&std::fs::read(&rimg).unwrap(), 133120 * 512).unwrap();
    drop(d);
    let r = inspect_json(std::slice::from_ref(&disk));
    let oses = r["operating_systems"].as_array().unwrap();
    assert_eq!(oses.len(), 1, "{oses:#?}");
    assert_eq!(oses[0]["root"], "btrfsvol:/dev/sda2/@");
    assert_eq!(oses[0]["distro"], "debian");
    assert_eq!(oses[0]["hostname"], "vmware-deb");
    assert_eq!(oses[0]["mountpoints"], serde_json::json!([["/", "btrfsvol:/dev/sda2/@"], ["/boot", "/dev/sda1"]]));
    assert_eq!(fs(&r, "/dev/sda2")["uuid"], broot);
    assert_eq!(r["warnings"], serde_json::json!([]));
}

/// The debootstrapped Debian guest's whole tree (kernel, modules, zstd initramfs, ...) put
/// into btrfs by `mkfs.btrfs --rootdir --compress zstd`: every OS fact Ferry reads from it
/// equals what it reads from the guest's own ext4 disk. About 15 s.
#[test]
fn btrfs_debian_guest_tree_inspects_as_its_ext4_original() {
    let Some(g) = convert_linux_support::guest("debian-vmware", &["mkfs.btrfs"]) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("debian-btrfs.img");
    std::fs::File::create(&img).unwrap().set_len(3 << 30).unwrap();
    run("mkfs.btrfs", &["-q", "--compress", "zstd", "-r", &g.join("root").display().to_string(), &img.display().to_string()]);
    let facts = |img: &Path| {
        let r = inspect_json(&[img.to_path_buf()]);
        let mut os = r["operating_systems"][0].clone();
        for k in ["root", "mountpoints", "fstab", "warnings"] {
            os.as_object_mut().unwrap().remove(k);
        }
        os
    };
    let (want, got) = (facts(&g.join("disk.raw")), facts(&img));
    assert!(want["kernels"].as_array().is_some_and(|k| !k.is_empty()), "{want:#}");
    assert_eq!(got, want);
}
