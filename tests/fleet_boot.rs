//! Real boots of fleet results, under QEMU (TCG here), with the cached Debian 12 VMware test
//! guest (`testdata/guests/`, in `$FERRY_CACHE`; skipped when it is not built):
//! - `ferry batch run` of a manifest converting the guest under two names, then `ferry batch
//!   validate` (direct boot of the kernel and initrd each spec records, read from its disk;
//!   milestones kernel, virtio, root, init): the JSON and JUnit reports show deb's validate
//!   testcase passing; "broken", whose disk was replaced by the unconverted guest, fails
//!   validate with the milestone it missed (virtio: its initramfs has no virtio_blk) named in
//!   both reports.
//! - The warm-migration result: base copy, one `ferry img sync` round of a delta written with
//!   qemu-io (it fills /etc/motd's block), `ferry convert --in-place`, then `ferry batch
//!   validate` boots it; the delta is in the booted image (qemu-io's pattern check).

mod convert_linux_support;

use convert_linux_support::{cached_guest, have};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn ferry(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).current_dir(dir).output().unwrap()
}

fn ready() -> Option<std::path::PathBuf> {
    let Some(guest) = cached_guest("debian-vmware") else {
        eprintln!("debian-vmware test guest not built in $FERRY_CACHE: skipped");
        return None;
    };
    for tool in ["qemu-system-x86_64", "qemu-io"] {
        if !have(tool) {
            eprintln!("{tool} not installed: skipped");
            return None;
        }
    }
    Some(guest)
}

fn report(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn validate_step(vm: &serde_json::Value) -> &serde_json::Value {
    vm["steps"].as_array().unwrap().iter().find(|s| s["step"] == "validate").unwrap_or_else(|| panic!("no validate step: {vm}"))
}

const BOOT_OK: &str = "validate = { engine = \"qemu\", boot = \"direct\", expect = \"kernel,virtio,root,init\", timeout = 400 }";

#[test]
fn batch_validate_boots_a_converted_debian_guest_and_names_the_missed_milestone() {
    let Some(guest) = ready() else { return };
    let t = tempfile::Builder::new().prefix("ferry-fleet-boot-").tempdir_in("/var/tmp").unwrap();
    let d = t.path();
    let vmx = guest.join("debian-vmware.vmx");
    let head = format!("[defaults]\ninput-mode = \"vmx\"\nos = \"out\"\nsource = {:?}\n", vmx.to_str().unwrap());
    std::fs::write(d.join("run.toml"), format!("{head}[[vm]]\nname = \"deb\"\n[[vm]]\nname = \"broken\"\n")).unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    let o = ferry(d, &["batch", "run", "-j", "2", "run.toml"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // "broken": its disk replaced by the unconverted guest (its initramfs has no virtio_blk).
    std::fs::remove_file(d.join("out/broken-sda")).unwrap();
    let o = ferry(d, &["img", "convert", "-O", "qcow2", &guest.join("debian-vmware.vmdk").to_string_lossy(), "out/broken-sda"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(
        d.join("ci.toml"),
        format!(
            "{head}[[vm]]\nname = \"deb\"\n{BOOT_OK}\n[[vm]]\nname = \"broken\"\n\
             validate = {{ engine = \"qemu\", boot = \"direct\", expect = \"kernel,virtio,root,init\", timeout = 75 }}\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let o = ferry(d, &["batch", "validate", "-j", "2", "--report", "ci.json", "--junit", "ci.xml", "ci.toml"]);
    eprintln!("ferry batch validate (2 TCG boots): {:.1?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the broken guest passed: {stderr}");
    let rep = report(&d.join("ci.json"));
    assert_eq!(rep["command"], "validate");
    let vms = rep["vms"].as_array().unwrap();
    assert_eq!(vms[0]["name"], "deb");
    assert_eq!(vms[0]["status"], "ok", "{}", vms[0]);
    assert_eq!(validate_step(&vms[0])["status"], "ok");
    assert_eq!(vms[1]["status"], "failed");
    let why = validate_step(&vms[1])["message"].as_str().unwrap_or("").to_string();
    assert!(why.contains("milestone \"virtio\""), "{why}");
    let xml = std::fs::read_to_string(d.join("ci.xml")).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    let ok_case = xml.find("classname=\"ferry.batch.deb\" name=\"validate\"").expect("deb's validate testcase");
    let bad_case = xml.find("classname=\"ferry.batch.broken\" name=\"validate\"").expect("broken's validate testcase");
    let between = if ok_case < bad_case { &xml[ok_case..bad_case] } else { &xml[ok_case..] };
    assert!(!between.contains("<failure"), "{xml}");
    assert!(xml[bad_case..].contains("milestone &quot;virtio&quot;") || xml[bad_case..].contains("milestone \"virtio\""), "{xml}");
}

#[test]
fn warm_migrated_debian_guest_boots() {
    let Some(guest) = ready() else { return };
    let t = tempfile::Builder::new().prefix("ferry-warm-boot-").tempdir_in("/var/tmp").unwrap();
    let d = t.path();
    let vmdk = guest.join("debian-vmware.vmdk");
    let raw = guest.join("disk.raw");
    // The delta: /etc/motd's block (debugfs finds it; the partition starts at 1 MiB) filled
    // with 0x5a, as the running guest would have rewritten it after the snapshot.
    let o = Command::new("debugfs").arg("-R").arg("blocks /etc/motd").arg(format!("{}?offset=1048576", raw.display())).output().unwrap();
    let block: u64 = String::from_utf8_lossy(&o.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).expect("motd block");
    let offset = (1u64 << 20) + block * 4096;
    let sh = |cmd: &str| {
        let o = Command::new("sh").arg("-c").arg(cmd).current_dir(d).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    sh(&format!("qemu-img create -q -f vmdk -b {} -F vmdk delta.vmdk", vmdk.display()));
    sh(&format!("qemu-io -f vmdk -c 'write -P 0x5a {offset} 4k' delta.vmdk"));
    std::fs::create_dir(d.join("out")).unwrap();
    let ok = |args: &[&str]| {
        let o = ferry(d, args);
        assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    // Base copy while the source runs, a sync round, then the cutover.
    ok(&["convert", "-i", "vmx", &guest.join("debian-vmware.vmx").to_string_lossy(), "--copy-only", "-o", "local", "-os", "out", "-on", "deb"]);
    ok(&["img", "sync", "out/deb-sda", "delta.vmdk"]);
    // The cutover converts the VM from its own config, its disk now the synced image (so
    // its SCSI disk's old name, sda, is known and rewritten; `-i disk` knows no bus).
    let vmx = std::fs::read_to_string(guest.join("debian-vmware.vmx")).unwrap();
    assert!(vmx.contains("\"debian-vmware.vmdk\""));
    std::fs::write(d.join("out/deb.vmx"), vmx.replace("\"debian-vmware.vmdk\"", "\"deb-sda\"")).unwrap();
    ok(&["convert", "-i", "vmx", "out/deb.vmx", "--in-place", "-o", "local", "-os", "out", "-on", "deb", "--overwrite"]);
    sh("qemu-img check -q out/deb-sda");
    let read = sh(&format!("qemu-io -c 'read -P 0x5a {offset} 4k' out/deb-sda"));
    assert!(read.contains("read 4096/4096") && !read.contains("failed"), "the delta is not in the image: {read}");
    std::fs::write(d.join("ci.toml"), format!("[[vm]]\nname = \"deb\"\nos = \"out\"\nsource = \"out/deb.vmx\"\ninput-mode = \"vmx\"\n{BOOT_OK}\n")).unwrap();
    let started = Instant::now();
    let o = ferry(d, &["batch", "validate", "--report", "v.json", "--junit", "v.xml", "ci.toml"]);
    eprintln!("ferry batch validate (1 TCG boot): {:.1?}", started.elapsed());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(validate_step(&report(&d.join("v.json"))["vms"][0])["status"], "ok");
    assert!(std::fs::read_to_string(d.join("v.xml")).unwrap().contains("tests=\"1\" failures=\"0\""));
}
