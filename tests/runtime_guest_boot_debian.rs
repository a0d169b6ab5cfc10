//! The converted Debian 12 test guests (`testdata/guests/`, cached in `$FERRY_CACHE`) carry
//! their own direct boot in the spec, and Ferry reads it from the converted qcow2:
//! * `ferry convert -o ferry` records `/boot/vmlinuz-<the guest's kernel-version>`, its
//!   initrd, a command line with `root=` and `console=ttyS0` and no `quiet`, and the root's UUID;
//! * `ferry validate --engine qemu --boot direct` (QEMU TCG) gets the kernel and the rebuilt
//!   initramfs from the qcow2 (VMware: MBR + ext4 root; LVM: ext4 /boot partition + root LV;
//!   Xen PV: whole-disk partitions from xl; dracut) and reaches the kernel's banner;
//! * with hardware KVM both engines reach the login prompt (skipped with one line elsewhere:
//!   on kvm_pvm the XZ-compressed distribution kernel cannot decompress in minutes).
mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;

fn hardware_kvm() -> bool {
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    let vmx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" vmx") || c.contains(" svm"));
    pvm.then(|| eprintln!("SKIP login boots: kvm_pvm emulates guest kernel mode (hardware KVM needed)"));
    !pvm && vmx && std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

fn check(name: &str, mode: &str, config: &str) {
    let Some(dir) = cached_guest(name) else {
        eprintln!("SKIP: guest {name} not cached (testdata/guests/{name}.sh builds it)");
        return;
    };
    let version = std::fs::read_to_string(dir.join("kernel-version")).expect("kernel-version");
    let version = version.trim();
    let t = tempfile::Builder::new().prefix("ferry-guest-boot-").tempdir_in("/var/tmp").expect("tempdir");
    let out = new_dir(t.path(), "out");
    let o = ferry(&["convert", "-i", mode, dir.join(config).to_str().expect("utf-8"), "-o", "ferry", "-os", out.to_str().expect("utf-8"), "-on", "g"]);
    assert!(o.status.success(), "convert {name}: {}", String::from_utf8_lossy(&o.stderr));
    let spec = out.join("g.ferry.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).expect("spec")).expect("json");
    let boot = &v["boot"];
    assert_eq!(boot["kernel"], format!("/boot/vmlinuz-{version}"), "{name}: {v}");
    assert_eq!(boot["initrd"], format!("/boot/initrd.img-{version}"), "{name}: {v}");
    let cmdline = boot["cmdline"].as_str().expect("cmdline");
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    assert!(words.iter().any(|w| w.starts_with("root=")) && words.contains(&"console=ttyS0") && !words.contains(&"quiet"), "{name}: {cmdline}");
    assert!(!cmdline.contains("hvc0") && !cmdline.contains("/dev/sd") && !cmdline.contains("/dev/xvd"), "{name}: {cmdline}");
    assert!(boot["guest_root"].as_str().is_some_and(|r| r.starts_with("UUID=")), "{name}: {v}");
    let s = spec.to_str().expect("utf-8");
    if have("qemu-system-x86_64") {
        let o = ferry(&["validate", "--engine", "qemu", "--boot", "direct", "--expect", "kernel", "--timeout", "180", s]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    }
    if hardware_kvm() {
        for engine in ["ferry", "qemu"] {
            let o = ferry(&["validate", "--engine", engine, "--boot", "direct", "--timeout", "300", s]);
            assert!(o.status.success(), "{name} on {engine}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

#[test]
fn vmware_guest_records_and_reads_its_direct_boot() {
    check("debian-vmware", "vmx", "debian-vmware.vmx");
}

#[test]
fn lvm_guest_records_and_reads_its_direct_boot() {
    check("debian-lvm", "vmx", "debian-lvm.vmx");
}

#[test]
fn xen_pv_guest_records_and_reads_its_direct_boot() {
    check("debian-xenpv", "xen", "debian-xenpv.cfg");
}

#[test]
fn dracut_guest_records_and_reads_its_direct_boot() {
    check("debian-dracut", "vmx", "debian-dracut.vmx");
}
