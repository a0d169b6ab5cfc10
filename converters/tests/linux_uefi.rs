//! UEFI Linux guests get the removable-media fallback loader (`\EFI\BOOT\BOOTX64.EFI`) when
//! their ESP lacks one, made from the distribution's own loaders: shim + GRUB (+ MokManager),
//! GRUB alone, or legacy GRUB with its menu; an existing fallback, a BIOS guest, or several
//! unnamed loader directories are left alone. On a guest tree (HostDirFs); the real FAT ESP
//! and the OVMF boot are in the workspace's `tests/convert_linux_uefi.rs`.

use ferry_converters::guestfs::{GuestFs, HostDirFs};
use ferry_converters::linux::{self, ChangeKind, Firmware, TargetLayout};

const KERNEL: &str = "6.1.0-27-amd64";

fn guest(distro: &str, esp: &[(&str, &[u8])]) -> (tempfile::TempDir, HostDirFs) {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("/etc/os-release".into(), format!("ID={distro}\nVERSION_ID=12\n").into_bytes()),
        ("/etc/fstab".into(), b"/dev/sda2 / ext4 defaults 0 1\nUUID=1A2B-3C4D /boot/efi vfat umask=0077 0 1\n".to_vec()),
        (format!("/boot/vmlinuz-{KERNEL}"), Vec::new()),
        (format!("/lib/modules/{KERNEL}/modules.builtin"), b"kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\n".to_vec()),
    ];
    files.extend(esp.iter().map(|(p, d)| (format!("/boot/efi/EFI/{p}"), d.to_vec())));
    for (p, d) in &files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, d, 0o644).unwrap();
    }
    (dir, fs)
}

fn layout() -> TargetLayout {
    serde_json::from_str(r#"{"disks":[{"source":"sda"}],"nics":[]}"#).unwrap()
}

/// The plan's copies as (from, to), and the plan.
fn copies(fs: &HostDirFs) -> (Vec<(String, String)>, linux::Plan) {
    let facts = linux::detect::detect(fs).unwrap();
    let plan = linux::plan(&facts, &layout(), fs).unwrap();
    let c = plan
        .changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::Copy { from } => Some((from.clone(), c.path.clone())),
            _ => None,
        })
        .collect();
    (c, plan)
}

const SHIM: &[u8] = b"MZ shim, signed";
const GRUB: &[u8] = b"MZ grub, signed, prefix /EFI/debian";
const MOK: &[u8] = b"MZ MokManager";

#[test]
fn debian_shim_and_grub_become_the_fallback_and_apply_once() {
    let stub = b"search.fs_uuid 3b1f root hd0,gpt2 \nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n";
    let (_d, mut fs) = guest(
        "debian",
        &[("debian/shimx64.efi", SHIM), ("debian/grubx64.efi", GRUB), ("debian/mmx64.efi", MOK), ("debian/fbx64.efi", b"MZ fb"), ("debian/BOOTX64.CSV", b"\xff\xfes\0"), ("debian/grub.cfg", stub)],
    );
    let (c, plan) = copies(&fs);
    let e = "/boot/efi/EFI";
    assert_eq!(
        c,
        [
            (format!("{e}/debian/shimx64.efi"), format!("{e}/BOOT/BOOTX64.EFI")),
            (format!("{e}/debian/grubx64.efi"), format!("{e}/BOOT/grubx64.efi")),
            (format!("{e}/debian/mmx64.efi"), format!("{e}/BOOT/mmx64.efi")),
        ]
    );
    let text = plan.to_string();
    assert!(text.contains("copy    /boot/efi/EFI/debian/shimx64.efi -> /boot/efi/EFI/BOOT/BOOTX64.EFI: UEFI: the new machine's NVRAM has no boot entry for \\EFI\\debian\\"), "{text}");
    assert!(text.contains("note: UEFI: \\EFI\\BOOT\\BOOTX64.EFI made from \\EFI\\debian\\'s loader"), "{text}");
    let json = serde_json::to_value(&plan).unwrap();
    let first = json["changes"].as_array().unwrap().iter().find(|c| c["kind"] == "copy").unwrap();
    assert_eq!(first["from"], "/boot/efi/EFI/debian/shimx64.efi");

    let r = linux::apply(&plan, &mut fs).unwrap();
    assert!(r.deferred.is_empty());
    assert_eq!(fs.read_file("/boot/efi/EFI/BOOT/BOOTX64.EFI").unwrap(), SHIM);
    assert_eq!(fs.read_file("/boot/efi/EFI/BOOT/grubx64.efi").unwrap(), GRUB);
    assert_eq!(fs.read_file("/boot/efi/EFI/BOOT/mmx64.efi").unwrap(), MOK);
    // The menu stays where the signed GRUB reads it: no second copy to go stale.
    assert!(fs.lstat("/boot/efi/EFI/BOOT/grub.cfg").unwrap().is_none());
    assert_eq!(fs.read_file("/boot/efi/EFI/debian/grub.cfg").unwrap(), stub);
    // Applying again changes nothing; planning again finds the fallback and copies nothing.
    let again = linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(again.already_done.len(), plan.changes.len(), "{again:?}");
    assert!(copies(&fs).0.is_empty());
}

#[test]
fn an_existing_fallback_and_a_bios_guest_are_left_alone() {
    let (_d, fs) = guest("debian", &[("debian/shimx64.efi", SHIM), ("debian/grubx64.efi", GRUB), ("boot/bootx64.efi", b"MZ removable install")]);
    let (c, plan) = copies(&fs);
    assert!(c.is_empty(), "{plan}");
    assert!(!plan.to_string().contains("UEFI"), "{plan}");

    // A BIOS guest: no ESP, no step.
    let (_d, fs) = guest("debian", &[]);
    assert_eq!(linux::detect::detect(&fs).unwrap().firmware, Firmware::Bios);
    assert!(copies(&fs).0.is_empty());
}

#[test]
fn grub_alone_and_legacy_grub_with_its_menu() {
    let (_d, mut fs) = guest("ubuntu", &[("ubuntu/grubx64.efi", GRUB), ("ubuntu/grub.cfg", b"configfile (hd0,gpt2)/boot/grub/grub.cfg\n")]);
    let (c, plan) = copies(&fs);
    assert_eq!(c, [("/boot/efi/EFI/ubuntu/grubx64.efi".to_owned(), "/boot/efi/EFI/BOOT/BOOTX64.EFI".to_owned())]);
    linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(fs.read_file("/boot/efi/EFI/BOOT/BOOTX64.EFI").unwrap(), GRUB);

    // CentOS 6: legacy GRUB reads the menu named after its own binary.
    let conf = b"default=0\ntitle CentOS\n\troot (hd0,1)\n\tkernel /vmlinuz ro root=/dev/sda2\n";
    let (_d, mut fs) = guest("centos", &[("redhat/grub.efi", b"MZ legacy grub"), ("redhat/grub.conf", conf)]);
    let (c, plan) = copies(&fs);
    assert_eq!(c.iter().map(|(_, to)| to.as_str()).collect::<Vec<_>>(), ["/boot/efi/EFI/BOOT/BOOTX64.EFI", "/boot/efi/EFI/BOOT/BOOTX64.conf"]);
    linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(fs.read_file("/boot/efi/EFI/BOOT/BOOTX64.conf").unwrap(), conf);
}

#[test]
fn the_distributions_directory_is_chosen_and_an_unnamed_choice_is_not_guessed() {
    // RHEL's loaders live in \EFI\redhat; another vendor's beside them is not taken.
    let (_d, fs) = guest("rhel", &[("redhat/shimx64.efi", SHIM), ("redhat/grubx64.efi", GRUB), ("ubuntu/grubx64.efi", b"MZ other")]);
    let (c, _) = copies(&fs);
    assert_eq!(c[0].0, "/boot/efi/EFI/redhat/shimx64.efi");
    assert_eq!(c.len(), 2);

    // Two loader directories, neither the distribution's: a warning, nothing copied.
    let (_d, fs) = guest("debian", &[("ubuntu/grubx64.efi", GRUB), ("fedora/grubx64.efi", GRUB)]);
    let (c, plan) = copies(&fs);
    assert!(c.is_empty());
    assert!(plan.warnings.iter().any(|w| w == "UEFI: no \\EFI\\BOOT\\BOOTX64.EFI, and several loader directories (fedora, ubuntu) none named for debian: left alone, the guest may stop in the firmware"), "{:?}", plan.warnings);

    // No loader at all (a vendor directory with only a menu).
    let (_d, fs) = guest("debian", &[("debian/grub.cfg", b"configfile x\n")]);
    let (c, plan) = copies(&fs);
    assert!(c.is_empty());
    assert!(plan.warnings.iter().any(|w| w.starts_with("UEFI: no \\EFI\\BOOT\\BOOTX64.EFI and no shim or GRUB loader")), "{:?}", plan.warnings);
}

#[test]
fn an_oversized_loader_is_not_copied_and_a_vanished_one_is_stale() {
    let (d, fs) = guest("debian", &[("debian/grubx64.efi", GRUB)]);
    std::fs::OpenOptions::new().write(true).open(d.path().join("boot/efi/EFI/debian/grubx64.efi")).unwrap().set_len(65 << 20).unwrap();
    let (c, _) = copies(&fs);
    assert!(c.is_empty());

    let (_d, mut fs) = guest("debian", &[("debian/grubx64.efi", GRUB)]);
    let (_, plan) = copies(&fs);
    fs.unlink("/boot/efi/EFI/debian/grubx64.efi").unwrap();
    let err = linux::apply(&plan, &mut fs).unwrap_err();
    assert_eq!(err.to_string(), "/boot/efi/EFI/debian/grubx64.efi: changed since the plan was made; plan again");
    assert!(fs.lstat("/boot/efi/EFI/BOOT").unwrap().is_none());
}
