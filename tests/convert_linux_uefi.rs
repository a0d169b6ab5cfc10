//! `ferry convert` of a UEFI guest (`testdata/guests/debian-uefi.sh`: a VMware UEFI install of
//! Debian 12, GPT, the ESP holding the signed shim and GRUB under `\EFI\debian\` as
//! `grub-install` leaves them, and no `\EFI\BOOT\` fallback: the boot entry lived in VMware's
//! NVRAM). The conversion makes `\EFI\BOOT\BOOTX64.EFI` from the guest's own shim, with its
//! GRUB and MokManager beside it. Oracles: `fsck.fat -n` and `mtype` on the converted ESP (the
//! copies byte-identical to the originals, every other file unchanged), `e2fsck -fn` on the
//! root, sha256 of the sources, and a QEMU TCG boot of the emitted script as written: OVMF
//! with the per-VM variable store (empty of boot entries) → the fallback shim → GRUB → the
//! converted grub.cfg's entry, whose `linux` line the kernel logs, → a login prompt; and the
//! control: the same script on the unconverted disk stops in OVMF's shell (Boot0001 not found).

mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NAME: &str = "debian-uefi";
const ESP_START: u64 = 1 << 20;
const ESP_LEN: u64 = 64 << 20;
const ROOT_START: u64 = ESP_START + ESP_LEN;

fn mtype(esp: &Path, path: &str) -> Vec<u8> {
    let o = Command::new("mtype").env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(esp).arg(format!("::{path}")).output().unwrap();
    assert!(o.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn uefi_guest_gets_a_fallback_loader_and_boots_through_ovmf() {
    let Some(g) = guest(NAME, &["mtype", "fsck.fat"]) else { return };
    if !Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").is_file() && !Path::new("/usr/share/OVMF/OVMF_CODE.fd").is_file() {
        eprintln!("skipped: OVMF not installed (tests/run.sh installs ovmf)");
        return;
    }
    let vmx = g.join(format!("{NAME}.vmx"));
    let vmdk = g.join(format!("{NAME}.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let t = tempfile::Builder::new().prefix("ferry-uefi-").tempdir_in("/var/tmp").unwrap();
    let out = new_dir(t.path(), "out");
    let started = Instant::now();
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    eprintln!("ferry convert: {:.1?}\n{stdout}", started.elapsed());
    assert_eq!(before, [sha256(&vmx), sha256(&vmdk)], "a source file changed");
    let e = "/boot/efi/EFI";
    for (from, to) in [("shimx64.efi", "BOOTX64.EFI"), ("grubx64.efi", "grubx64.efi"), ("mmx64.efi", "mmx64.efi")] {
        let line = format!("copy    {e}/debian/{from} -> {e}/BOOT/{to}: UEFI: the new machine's NVRAM has no boot entry for \\EFI\\debian\\");
        assert!(stdout.contains(&line), "no {line:?} in:\n{stdout}");
    }

    // The ESP: clean FAT, the copies equal the originals, the originals and the menu stub
    // unchanged (the signed GRUB reads \EFI\debian\grub.cfg by its built-in prefix).
    let raw = t.path().join("converted.raw");
    to_raw(&out.join(format!("{NAME}-sda")), &raw);
    let (esp, root) = (t.path().join("esp.part"), t.path().join("root.part"));
    cut(&raw, ESP_START, Some(ESP_LEN), &esp);
    cut(&raw, ROOT_START, None, &root);
    std::fs::remove_file(&raw).unwrap();
    let fsck = Command::new("fsck.fat").arg("-n").arg(&esp).output().unwrap();
    assert!(fsck.status.success(), "fsck.fat -n on the converted ESP:\n{}", String::from_utf8_lossy(&fsck.stdout));
    let src = g.join("root/boot/efi/EFI/debian");
    for (from, to) in [("shimx64.efi", "BOOTX64.EFI"), ("grubx64.efi", "grubx64.efi"), ("mmx64.efi", "mmx64.efi")] {
        let original = std::fs::read(src.join(from)).unwrap();
        assert_eq!(mtype(&esp, &format!("/EFI/BOOT/{to}")), original, "\\EFI\\BOOT\\{to} is not {from}");
        assert_eq!(mtype(&esp, &format!("/EFI/debian/{from}")), original, "\\EFI\\debian\\{from} changed");
    }
    for f in ["fbx64.efi", "BOOTX64.CSV", "grub.cfg"] {
        assert_eq!(mtype(&esp, &format!("/EFI/debian/{f}")), std::fs::read(src.join(f)).unwrap(), "\\EFI\\debian\\{f} changed");
    }
    e2fsck_clean(&root, "the converted root");
    let cfg = debugfs_cat(&root, "/boot/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    assert!(args.contains(" root=") || args.starts_with("root="), "{args}");
    assert!(!args.contains("/dev/sda"), "{args}");
    let fstab = debugfs_cat(&root, "/etc/fstab");
    assert!(fstab.contains("UUID=1A2B-3C4D  /boot/efi"), "{fstab}");
    let iface = configured_nic(&debugfs_cat(&root, "/etc/network/interfaces"), &out.join(format!("{NAME}.ferry.json")));
    drop((esp, root));

    // The control: the same emitted script on the unconverted disk (a qcow2 overlay of it, so
    // the source is never opened for writing), with its own fresh variable store. Without
    // the fallback, OVMF finds nothing to boot and starts its shell.
    let control = new_dir(t.path(), "control");
    let overlay = control.join("unconverted.qcow2");
    run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"]).arg(g.join("disk.raw")).arg(&overlay));
    let script = std::fs::read_to_string(out.join(format!("{NAME}.sh"))).unwrap();
    let disk = format!("-drive file='{}',format=qcow2,", out.join(format!("{NAME}-sda")).display());
    assert!(script.contains(&disk), "no {disk:?} in the script:\n{script}");
    std::fs::write(control.join(format!("{NAME}.sh")), script.replace(&disk, &format!("-drive file='{}',format=qcow2,", overlay.display()))).unwrap();
    let log = boot_firmware(&control.join(format!("{NAME}.sh")), &t.path().join("control.log"), Duration::from_secs(300));
    assert!(log.contains("BdsDxe: failed to load Boot0001") && log.contains("UEFI Interactive Shell"), "the unconverted disk did not stop in the firmware:\n{}", tail(&log, 20));
    assert!(!log.contains("Linux version"), "{}", tail(&log, 20));
    assert_eq!(before, [sha256(&vmx), sha256(&vmdk)], "a source file changed");

    // OVMF starts from a fresh copy of its variable template: no boot entry names
    // \EFI\debian\shimx64.efi, so only the fallback can start the guest.
    let vars = out.join(format!("{NAME}.vars.fd"));
    assert!(!vars.exists(), "the variable store exists before the first start");
    let log = boot_firmware(&out.join(format!("{NAME}.sh")), &t.path().join("serial.log"), Duration::from_secs(600));
    let line = format!("Command line: BOOT_IMAGE={kpath} {args}");
    assert!(log.contains(&line), "no {line:?} (shim and GRUB did not boot the converted entry):\n{}", tail(&log, 40));
    assert!(log.contains("efi: EFI v"), "the kernel was not started by UEFI firmware:\n{}", tail(&log, 40));
    assert!(log.contains(&format!("{NAME} login:")), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("EXT4-fs (vda2): mounted filesystem"), "root not mounted from vda2:\n{}", tail(&log, 60));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
    assert!(vars.is_file(), "no per-VM variable store beside the script");
}
