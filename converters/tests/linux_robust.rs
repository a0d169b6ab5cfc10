//! Damaged and hostile guest files: planning and applying never panic, and whatever a plan
//! does, planning again afterwards finds nothing more to do. Inputs are generated from a fixed
//! seed out of tokens the parsers care about, plus invalid UTF-8 and multi-byte characters.

mod fs_support;
mod linux_support;

use ferry_converters::guestfs::HostDirFs;
use ferry_converters::linux::{self, ChangeKind, TargetLayout};
use fs_support::Rng;
use linux_support::*;

const TOKENS: &[&str] = &[
    "menuentry",
    "submenu",
    " {",
    "}",
    "'",
    "\"",
    "/dev/sda1",
    "/dev/sda",
    "/dev/nvme0n1p",
    "/dev/xvdb",
    "/dev/",
    "GRUB_DEFAULT=",
    "saved",
    ">",
    "GRUB_CMDLINE_LINUX=",
    "ethernets:",
    "  ",
    "    ",
    "\n",
    "\n",
    "\n",
    "alias ",
    "eth0",
    "scsi_hostadapter",
    "Section",
    "\"Device\"",
    "EndSection",
    "Driver",
    "\"vmware\"",
    "default=",
    "title",
    "kernel ",
    "linux\t",
    "/vmlinuz-6.1.0-27-amd64",
    "#",
    "=",
    ":",
    "hvc0",
    "xvc0",
    "ens192",
    "NAME=\"",
    "ATTR{address}==\"00:50:56:9a:1b:2c\"",
    "\t",
    "é",
    "€",
    "\u{0}",
    "set default=\"0\"",
    "saved_entry=",
    "kernelopts=",
    "iface ",
    "auto ",
    "options ",
    "co:2345:respawn:",
    "match:",
    "macaddress:",
    "set-name:",
    "0",
    "99999999999999999999",
    "-",
    "p",
    "1",
];


/// SUSE's files and the words their parsers care about (used by the SUSE run only, so the
/// other runs' seeds keep their sequences).
const SUSE_FILES: &[&str] = &[
    "/etc/sysconfig/kernel",
    "/etc/sysconfig/bootloader",
    "/boot/grub2/grub.cfg",
    "/boot/grub2/grubenv",
    "/.snapshots/grub-snapshot.cfg",
    "/.snapshots/5/grub-snapshot.cfg",
    "/etc/sysconfig/network/ifcfg-eth0",
    "/etc/sysconfig/network/ifroute-eth0",
    "/etc/sysconfig/network/routes",
];
const SUSE_TOKENS: &[&str] = &[
    "INITRD_MODULES=",
    "DOMU_INITRD_MODULES=",
    "DEFAULT_APPEND=",
    "xenblk ",
    "vmw_pvscsi",
    "DRIVERS==\"vif\"",
    "ATTR{address}==\"00:16:3e:4f:1a:22\"",
    "ATTR{address}==\"00:16:3e:4f:1a:99\"",
    "NAME=\"eth0\"",
    "NAME=\"enp0s3\"",
    "/dev/xvda2",
    "/dev/xvda1",
    " btrfs ",
    " / ",
    "subvol=@/home",
    "/dev/disk/by-id/scsi-36000c29",
    "/dev/disk/by-path/",
    "net.ifnames=1",
    "console=hvc0",
    "default 192.168.122.1 - ",
    "extra_cmdline=",
];

fn garbage(rng: &mut Rng, extra: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(120) {
        if rng.below(40) == 0 {
            out.push(0xff); // invalid UTF-8
        } else {
            let i = rng.below(TOKENS.len() + extra.len());
            let t = TOKENS.get(i).or_else(|| extra.get(i - TOKENS.len())).copied().unwrap_or_default();
            out.extend_from_slice(t.as_bytes());
        }
    }
    out
}

const FILES: &[&str] = &[
    "/etc/fstab",
    "/etc/crypttab",
    "/etc/default/grub",
    "/boot/grub/grub.cfg",
    "/boot/grub/grub.conf",
    "/boot/grub/device.map",
    "/boot/grub/grubenv",
    "/etc/network/interfaces",
    "/etc/netplan/01.yaml",
    "/etc/modprobe.conf",
    "/etc/X11/xorg.conf",
    "/etc/inittab",
    "/etc/securetty",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/sysconfig/network-scripts/ifcfg-ens192",
    "/etc/systemd/network/1.network",
    "/etc/NetworkManager/system-connections/a.nmconnection",
    "/etc/selinux/config",
    "/etc/initramfs-tools/modules",
];

fn run(fixture: &str, seed: u64, rounds: usize) {
    run_with(fixture, seed, rounds, &[], &[]);
}

fn run_with(fixture: &str, seed: u64, rounds: usize, extra_files: &[&str], extra_tokens: &[&str]) {
    let mut rng = Rng(seed);
    let mut applied = 0;
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&testdata().join(fixture).join("root"), dir.path());
        let layout: TargetLayout = serde_json::from_str(
            &std::fs::read_to_string(testdata().join(fixture).join("layout.json")).unwrap(),
        )
        .unwrap();
        for f in FILES.iter().chain(extra_files) {
            if rng.below(2) == 0 {
                let p = dir.path().join(f.trim_start_matches('/'));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, garbage(&mut rng, extra_tokens)).unwrap();
            }
        }
        let mut fs = HostDirFs::new(dir.path());
        let Ok(facts) = linux::detect::detect(&fs) else {
            continue;
        };
        let Ok(plan) = linux::plan(&facts, &layout, &fs) else {
            continue;
        };
        let _ = format!("{plan}");
        linux::apply(&plan, &mut fs)
            .unwrap_or_else(|e| panic!("{fixture} round {round}: apply: {e}"));
        applied += 1;
        let again = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
        let left: Vec<_> = again
            .changes
            .iter()
            .filter(|c| !matches!(c.kind, ChangeKind::InitramfsRebuild { .. }))
            .collect();
        if !left.is_empty() {
            let keep = dir.keep();
            panic!(
                "{fixture} round {round}: not idempotent (tree kept in {}):\n{left:#?}",
                keep.display()
            );
        }
    }
    assert!(
        applied > rounds / 2,
        "only {applied} of {rounds} rounds got as far as applying a plan"
    );
}

#[test]
fn garbage_debian() {
    run("debian12-vmware", 0x9e37_79b9_7f4a_7c15, 40);
}

#[test]
fn garbage_centos6() {
    run("centos6-xen-vmware", 0xd1b5_4a32_d192_ed03, 40);
}

#[test]
fn garbage_sles12() {
    run_with("sles12-xen", 0x2545_f491_4f6c_dd1d, 40, SUSE_FILES, SUSE_TOKENS);
}
