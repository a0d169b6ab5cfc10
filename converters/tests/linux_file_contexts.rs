//! SELinux file labels from a guest's own policy (`linux::file_contexts`) against the oracle,
//! libselinux's `matchpathcon -f`, on Debian's reference policy (5,000+ entries, path aliases):
//! the files a Linux conversion writes, a path under every entry of the policy, and every file
//! type; with a `file_contexts.local` read after the base file.

mod selinux_support;

use ferry_converters::guestfs::HostDirFs;
use ferry_converters::linux::file_contexts::{FileContexts, FileType};
use selinux_support::*;

/// What a Linux plan creates or replaces, on the distributions it converts.
const PLAN_PATHS: &[&str] = &[
    "/boot/initramfs-5.14.0-427.13.1.el9_4.x86_64.img",
    "/boot/initramfs-5.14.0-427.13.1.el9_4.x86_64.img.pre-ferry",
    "/boot/initrd.img-6.1.0-27-amd64",
    "/boot/initrd.img-6.1.0-27-amd64.pre-ferry",
    "/boot/initrd-5.14.21-150500.53-default",
    "/etc/dracut.conf.d/ferry-virtio.conf",
    "/etc/dracut.conf.d/90-ferry.conf",
    "/etc/modprobe.d/ferry-virtio.conf",
    "/etc/modprobe.d/blacklist-xen.conf",
    "/etc/modprobe.conf",
    "/etc/NetworkManager/system-connections/eth0.nmconnection",
    "/etc/NetworkManager/system-connections",
    "/etc/sysconfig/network-scripts/ifcfg-eth0",
    "/etc/sysconfig/network-scripts/ifcfg-ens3",
    "/etc/sysconfig/network/ifcfg-eth0",
    "/etc/sysconfig/kernel",
    "/etc/network/interfaces",
    "/etc/netplan/50-cloud-init.yaml",
    "/etc/systemd/network/10-ferry-eth0.link",
    "/etc/systemd/system/vmtoolsd.service",
    "/etc/systemd/system/multi-user.target.wants/vmtoolsd.service",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/udev/rules.d/70-ferry-net.rules",
    "/etc/fstab",
    "/etc/default/grub",
    "/etc/inittab",
    "/etc/X11/xorg.conf",
    "/etc/initramfs-tools/modules",
    "/etc/initramfs-tools/conf.d/ferry",
    "/boot/grub2/grub.cfg",
    "/boot/grub2/grubenv",
    "/boot/grub/grub.cfg",
    "/boot/grub/menu.lst",
    "/boot/efi/EFI/redhat/grub.cfg",
    "/boot/loader/entries/3c1e0f2a9b8d4c7e6f5a4b3c2d1e0f9a-5.14.0-427.13.1.el9_4.x86_64.conf",
    "/boot/loader/entries",
    "/.autorelabel",
    "/etc/selinux/config",
];

const TYPES: &[(&str, FileType)] = &[
    ("file", FileType::File),
    ("dir", FileType::Dir),
    ("lnk_file", FileType::Symlink),
    ("chr_file", FileType::Char),
    ("blk_file", FileType::Block),
    ("sock_file", FileType::Socket),
    ("pipe", FileType::Fifo),
];

/// A path under each entry of the policy: its literal text (unescaped), and for regex
/// entries their literal prefix with `x` added.
fn sample_paths(fc: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(fc).lines() {
        let Some(re) = line.split_whitespace().next().filter(|r| r.starts_with('/')) else { continue };
        let mut lit = String::new();
        let mut chars = re.chars();
        let mut plain = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) if e.is_ascii_punctuation() => lit.push(e),
                    _ => {
                        plain = false;
                        break;
                    }
                },
                '.' | '^' | '$' | '?' | '*' | '+' | '|' | '[' | '(' | '{' => {
                    plain = false;
                    break;
                }
                c => lit.push(c),
            }
        }
        if !plain {
            lit.push('x');
        }
        if !lit.contains(char::is_whitespace) && !v.contains(&lit) {
            v.push(lit);
        }
    }
    v
}

#[test]
fn fctx_labels_equal_matchpathcon_on_debian_reference_policy() {
    let t = tempfile::tempdir().unwrap();
    let files = t.path().join("root/etc/selinux/default/contexts/files");
    std::fs::create_dir_all(&files).unwrap();
    let Some(fc_path) = reference_policy(&files) else { return };
    let text = std::fs::read(&fc_path).unwrap();
    // Local customisations (semanage fcontext writes them here): read after the base file.
    let local = "/etc/fstab\t--\tsystem_u:object_r:local_fstab_t:s0\n/srv/www(/.*)?\tsystem_u:object_r:httpd_sys_content_t:s0\n/etc/ferry-local(/.*)?\t<<none>>\n";
    std::fs::write(files.join("file_contexts.local"), local).unwrap();
    let guest = HostDirFs::new(t.path().join("root"));
    let t0 = std::time::Instant::now();
    let fc = FileContexts::load(&guest, "default").unwrap().expect("file_contexts read");
    let load = t0.elapsed();
    // The plan's own case: the labels of the files one conversion writes.
    let t0 = std::time::Instant::now();
    for p in PLAN_PATHS {
        fc.lookup(p, FileType::File).unwrap();
    }
    let plan_lookups = t0.elapsed();
    assert!(fc.len() > 4000, "{} entries", fc.len());
    let mut paths: Vec<String> = PLAN_PATHS.iter().map(|p| p.to_string()).collect();
    paths.extend(sample_paths(&text));
    // Aliased trees (file_contexts.subs_dist) and doubled slashes.
    paths.extend(["/lib64/ld-linux-x86-64.so.2", "/var/run/sshd.pid", "/sbin/ferry-x", "/etc/init.d/x", "/usr/lib64/libfoo.so.1", "//etc//fstab", "/etc/", "/", "/nonexistent-top", "/srv/www/index.html", "/etc/ferry-local/x"].map(String::from));
    assert!(paths.len() > 1000, "{} paths", paths.len());
    let mut compared = 0;
    let mut ferry_time = std::time::Duration::ZERO;
    let mut labelled = 0;
    for &(name, ty) in TYPES {
        let want = matchpathcon(&fc_path, name, &paths);
        for (p, w) in paths.iter().zip(&want) {
            let t0 = std::time::Instant::now();
            let got = fc.lookup(p, ty).unwrap_or_else(|e| panic!("{p}: {e}")).unwrap_or("<<none>>");
            ferry_time += t0.elapsed();
            assert_eq!(got, w, "{p} ({name})");
            compared += 1;
            labelled += usize::from(got != "<<none>>");
        }
    }
    assert_eq!(fc.lookup("/etc/fstab", FileType::File).unwrap(), Some("system_u:object_r:local_fstab_t:s0"), "file_contexts.local not read last");
    eprintln!(
        "{compared} lookups ({labelled} labelled) equal matchpathcon's on {} entries; Ferry: load {load:?}, the {} plan paths {plan_lookups:?}, all lookups {ferry_time:?}",
        fc.len(),
        PLAN_PATHS.len()
    );
}
