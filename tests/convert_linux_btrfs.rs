//! Issue 18, btrfs roots through the binary: a tiny Debian-like Xen guest whose root is the
//! subvolume `@` of a btrfs (not the default one: inspection names it `btrfsvol:/dev/xvda1/@`)
//! and whose `/boot` is the subvolume `@boot` of the same filesystem (one writer, two views)
//! converts with `ferry convert`: `btrfs check --readonly` is clean on the converted
//! partition, the fstab and grub.cfg edits are there as `btrfs restore` reads them back, the
//! untouched subvolume `@home` is byte-identical, and the source disk is unchanged.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;
use std::process::Command;

/// `btrfs restore -S -r ROOT` of `part` into `to`.
fn restore(part: &Path, root: u64, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let o = Command::new("btrfs").args(["restore", "-S", "-r", &root.to_string()]).arg(part).arg(to).output().unwrap();
    assert!(o.status.success(), "btrfs restore -r {root}: {}", String::from_utf8_lossy(&o.stderr));
}

/// The subvolumes of the btrfs in `part` by name, from `btrfs inspect-internal dump-tree`'s
/// root backrefs.
fn subvolume_ids(part: &Path) -> std::collections::BTreeMap<String, u64> {
    let o = Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "root"]).arg(part).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut ids = std::collections::BTreeMap::new();
    let mut id = None;
    for l in text.lines() {
        if let Some(k) = l.split("key (").nth(1).filter(|k| k.contains(" ROOT_BACKREF ")) {
            id = k.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        } else if let (Some(i), Some(name)) = (id, l.split(" name ").nth(1)) {
            ids.insert(name.trim().to_string(), i);
            id = None;
        }
    }
    ids
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn btrfs_subvolume_root_with_boot_subvolume_converts_clean() {
    if !tiny_tools() || !have("mkfs.btrfs") || !have("btrfs") {
        eprintln!("skipped: btrfs-progs or the disk tools not installed (tests/run.sh installs them)");
        return;
    }
    let t = tempfile::Builder::new().prefix("ferry-btrfs-").tempdir_in("/var/tmp").unwrap();
    let tree = t.path().join("tree");
    let mut files = tiny_debian("tinybtrfs", "xvda", "console=hvc0");
    for (p, d) in &mut files {
        if p == "etc/fstab" {
            *d = "/dev/xvda1 / btrfs defaults,subvol=@ 0 0\n/dev/xvda1 /boot btrfs defaults,subvol=@boot 0 0\n/dev/xvda1 /home btrfs defaults,subvol=@home 0 0\n".into();
        }
    }
    let files: Vec<(String, String)> = files.into_iter().map(|(p, d)| (p.strip_prefix("boot/").map_or_else(|| format!("@/{p}"), |b| format!("@boot/{b}")), d)).collect();
    write_tree(&tree, &files);
    write_tree(&tree, &[("@home/user/notes", "home\n"), ("@/boot/.keep", "")]);
    let part = t.path().join("p1.img");
    std::fs::File::create(&part).unwrap().set_len(200 << 20).unwrap();
    let o = Command::new("mkfs.btrfs").args(["-q", "-f", "--rootdir"]).arg(&tree).args(["--subvol", "@", "--subvol", "@boot", "--subvol", "@home"]).arg(&part).output().unwrap();
    if !o.status.success() {
        eprintln!("skipped: mkfs.btrfs --rootdir --subvol failed (btrfs-progs 6.13+ needed): {}", String::from_utf8_lossy(&o.stderr).trim());
        return;
    }
    let raw = t.path().join("tinybtrfs.raw");
    partitioned(&raw, 201 << 20, "label: dos\nstart=2048, type=83\n");
    run(Command::new("dd").arg(format!("if={}", part.display())).arg(format!("of={}", raw.display())).args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    let cfg = t.path().join("tinybtrfs.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"tinybtrfs\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\nvif = [ 'mac=00:16:3e:00:00:02, bridge=xenbr0' ]\n",
            raw.display()
        ),
    )
    .unwrap();
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert!(stdout.contains("/boot"), "/boot mounted: {stdout}");
    assert_eq!(sha256(&raw), before, "the source disk changed");

    let conv = first_partition(&out.join("tinybtrfs-sda"), t.path());
    let check = Command::new("btrfs").args(["check", "--readonly"]).arg(&conv).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && !text.contains("ERROR"), "btrfs check --readonly on the converted root:\n{text}");
    let ids = subvolume_ids(&conv);
    let (root, boot, home) = (t.path().join("r-root"), t.path().join("r-boot"), t.path().join("r-home"));
    restore(&conv, ids["@"], &root);
    restore(&conv, ids["@boot"], &boot);
    restore(&conv, ids["@home"], &home);
    let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
    assert!(fstab.lines().filter(|l| l.starts_with("UUID=") && l.contains(" btrfs ")).count() == 3, "{fstab}");
    assert!(fstab.contains("subvol=@boot"), "{fstab}");
    let grub = std::fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
    assert!(grub.contains("root=UUID=") && !grub.contains("root=/dev/xvda1"), "{grub}");
    assert_eq!(contents(&home), vec![("user/notes".to_string(), b"home\n".to_vec())], "@home changed");
}
