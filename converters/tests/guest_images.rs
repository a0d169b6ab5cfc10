//! The test guests are what they claim to be, checked on their disk images with the real
//! tools: `sfdisk` (MBR layout), `e2fsck -fn` (clean ext4), `debugfs` (the VMware/Xen/dracut
//! configuration inside), `qemu-img check/compare` (VMDK and OVA disks equal the raw disk),
//! `sha256sum` (the OVA manifest), our initramfs reader (no virtio in any initrd), and
//! grub-pc-bin's `boot.img`/`diskboot.img` (GRUB i386-pc in the boot track, as grub-install
//! leaves it).

mod guest_support;

use std::process::Command;

use ferry_converters::initramfs::{Initramfs, Limits};
use guest_support::*;

fn cat(g: &Guest, path: &str) -> String {
    let spec = format!("{}?offset={PART_OFFSET}", g.disk().display());
    String::from_utf8_lossy(&run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(spec)))
    .into_owned()
}

fn check_disk(g: &Guest) {
    let table =
        String::from_utf8_lossy(&run(Command::new("sfdisk").arg("-d").arg(g.disk()))).into_owned();
    assert!(
        table.contains("label: dos")
            && table.contains("start=        2048")
            && table.contains("type=83"),
        "{table}"
    );
    let spec = format!("{}?offset={PART_OFFSET}", g.disk().display());
    run(Command::new("e2fsck").arg("-fn").arg(&spec));
    let work = tempfile::tempdir().unwrap();
    let (_, initrd) = extract_boot(g, work.path());
    let image =
        Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    let virtio: Vec<String> = image
        .files()
        .keys()
        .filter(|p| p.contains("virtio"))
        .cloned()
        .collect();
    assert!(
        virtio.is_empty(),
        "virtio in the unconverted initrd: {virtio:?}"
    );
    assert!(cat(g, "/etc/shadow").contains("root:$"), "no root password");
    check_grub(g);
}

/// GRUB i386-pc as grub-install (grub-bios-setup) leaves it: boot.img's code in the MBR with
/// the drive check off, core.img from sector 1 (its first sector is diskboot.img up to the
/// blocklist grub-mkimage fills in), modules under /boot/grub/i386-pc.
fn check_grub(g: &Guest) {
    let dir = std::path::Path::new("/usr/lib/grub/i386-pc");
    let (Ok(boot), Ok(diskboot)) = (std::fs::read(dir.join("boot.img")), std::fs::read(dir.join("diskboot.img"))) else {
        eprintln!("SKIP: grub-pc-bin not installed: the boot track's GRUB not compared");
        return;
    };
    let mut head = [0u8; 1024];
    std::io::Read::read_exact(&mut std::fs::File::open(g.disk()).unwrap(), &mut head).unwrap();
    let mut mbr = boot[..440].to_vec();
    mbr[0x66..0x68].copy_from_slice(&[0x90, 0x90]);
    assert!(head[..440] == mbr[..], "the MBR's code is not GRUB's boot.img");
    assert!(head[512..512 + 0x1f4] == diskboot[..0x1f4], "sector 1 is not core.img's diskboot");
    assert!(cat(g, "/boot/grub/i386-pc/moddep.lst").contains("ext2:"), "no GRUB modules in /boot/grub/i386-pc");
}

fn check_vmdk_equals_raw(g: &Guest, vmdk: &std::path::Path) {
    run(Command::new("qemu-img").arg("check").arg(vmdk));
    run(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "vmdk"])
        .arg(g.disk())
        .arg(vmdk));
}

#[test]
fn vmware_guest_disk_vmx_and_ova() {
    let Some(g) = guest("debian-vmware") else {
        return;
    };
    check_disk(&g);
    assert!(cat(&g, "/etc/fstab").contains("/dev/sda1      /               ext4"));
    assert!(cat(&g, "/etc/network/interfaces").contains("allow-hotplug ens192"));
    assert!(cat(&g, "/boot/grub/grub.cfg").contains("root=/dev/sda1 ro"));
    assert!(cat(&g, "/etc/default/grub").contains("GRUB_CMDLINE_LINUX=\"\""));
    assert!(cat(&g, "/etc/initramfs-tools/initramfs.conf").contains("\nMODULES=list"));
    assert!(cat(&g, "/etc/initramfs-tools/modules")
        .lines()
        .any(|l| l == "vmw_pvscsi"));
    assert!(cat(&g, "/lib/systemd/system/open-vm-tools.service").contains("vmtoolsd"));
    assert_eq!(cat(&g, "/etc/hostname").trim(), "debian-vmware");

    let vmdk = g.dir.join("debian-vmware.vmdk");
    let info = String::from_utf8_lossy(&run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&vmdk)))
    .into_owned();
    assert!(
        info.contains("\"create-type\": \"monolithicSparse\""),
        "{info}"
    );
    check_vmdk_equals_raw(&g, &vmdk);
    let vmx = std::fs::read_to_string(g.dir.join("debian-vmware.vmx")).unwrap();
    for line in [
        "scsi0.virtualDev = \"pvscsi\"",
        "scsi0:0.fileName = \"debian-vmware.vmdk\"",
        "ethernet0.virtualDev = \"vmxnet3\"",
        "ethernet0.generatedAddress = \"00:0c:29:b3:c4:d5\"",
        "uuid.bios = ",
    ] {
        assert!(vmx.contains(line), "{line}");
    }

    let work = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(g.dir.join("debian-vmware.ova"))
        .arg("-C")
        .arg(work.path()));
    let listing = String::from_utf8_lossy(&run(Command::new("tar")
        .arg("-tf")
        .arg(g.dir.join("debian-vmware.ova"))))
    .into_owned();
    assert_eq!(
        listing.lines().collect::<Vec<_>>(),
        [
            "debian-vmware.ovf",
            "debian-vmware.mf",
            "debian-vmware-disk1.vmdk"
        ]
    );
    let mf = std::fs::read_to_string(work.path().join("debian-vmware.mf")).unwrap();
    for line in mf.lines() {
        let (name, sum) = line
            .strip_prefix("SHA256(")
            .and_then(|l| l.split_once(")= "))
            .expect("manifest line");
        let out =
            String::from_utf8_lossy(&run(Command::new("sha256sum").arg(work.path().join(name))))
                .into_owned();
        assert_eq!(out.split_whitespace().next(), Some(sum), "{name}");
    }
    let disk1 = work.path().join("debian-vmware-disk1.vmdk");
    let info = String::from_utf8_lossy(&run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&disk1)))
    .into_owned();
    assert!(info.contains("streamOptimized"), "{info}");
    check_vmdk_equals_raw(&g, &disk1);
    let ovf = std::fs::read_to_string(work.path().join("debian-vmware.ovf")).unwrap();
    assert!(ovf.contains("ovf:href=\"debian-vmware-disk1.vmdk\"") && ovf.contains("VmxNet3"));
}

#[test]
fn xenpv_guest_is_configured_for_xen() {
    let Some(g) = guest("debian-xenpv") else {
        return;
    };
    check_disk(&g);
    assert!(cat(&g, "/etc/fstab").contains("/dev/xvda1"));
    let grub = cat(&g, "/boot/grub/grub.cfg");
    assert!(grub.contains("root=/dev/xvda1 ro console=hvc0"), "{grub}");
    assert!(cat(&g, "/etc/default/grub").contains("GRUB_CMDLINE_LINUX=\"console=hvc0\""));
    let wants = String::from_utf8_lossy(&run(Command::new("debugfs")
        .arg("-R")
        .arg("ls -l /etc/systemd/system/getty.target.wants")
        .arg(format!("{}?offset={PART_OFFSET}", g.disk().display()))))
    .into_owned();
    assert!(wants.contains("serial-getty@hvc0.service"), "{wants}");
    let modules = cat(&g, "/etc/initramfs-tools/modules");
    assert!(modules.lines().any(|l| l == "xen-blkfront"));
    let work = tempfile::tempdir().unwrap();
    let (_, initrd) = extract_boot(&g, work.path());
    let image =
        Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    assert!(image.files().keys().any(|p| p.ends_with("xen-blkfront.ko")));
    let cfg = std::fs::read_to_string(g.dir.join("debian-xenpv.cfg")).unwrap();
    assert!(cfg.contains("type = \"pv\"") && cfg.contains("vdev=xvda"));
}

#[test]
fn dracut_guest_uses_dracut() {
    let Some(g) = guest("debian-dracut") else {
        return;
    };
    check_disk(&g);
    assert!(cat(&g, "/etc/dracut.conf.d/10-vmware.conf").contains("hostonly=\"yes\""));
    assert!(
        cat(&g, "/etc/initramfs-tools/initramfs.conf").is_empty(),
        "initramfs-tools still installed"
    );
    let work = tempfile::tempdir().unwrap();
    let (_, initrd) = extract_boot(&g, work.path());
    let image =
        Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    assert_eq!(
        ferry_converters::initramfs::inject::flavor(&image),
        ferry_converters::initramfs::Flavor::Dracut
    );
    assert!(image.files().keys().any(|p| p.ends_with("vmw_pvscsi.ko")));
    check_vmdk_equals_raw(&g, &g.dir.join("debian-dracut.vmdk"));
}
