//! Helpers of the `ferry convert` end-to-end tests (disk copy and Linux conversion): running
//! the binary, qemu-img as the oracle, file hashes, and small OVF/VMX writers; guest disks
//! made here and read back ([`disk`]); the cached Debian guests and their QEMU boots
//! ([`guest`]); XFS and btrfs roots read back with their own tools ([`xfs`], [`btrfs`]).
#![allow(dead_code)]

mod btrfs;
mod disk;
mod guest;
mod xfs;

#[allow(unused_imports)]
pub use btrfs::*;
#[allow(unused_imports)]
pub use disk::*;
#[allow(unused_imports)]
pub use guest::*;
#[allow(unused_imports)]
pub use xfs::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ferry ARGS`.
pub fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run ferry")
}

/// Runs ferry and asserts success; returns stdout.
pub fn ferry_ok(args: &[&str]) -> String {
    let o = ferry(args);
    assert!(
        o.status.success(),
        "ferry {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `ferry convert -i MODE INPUT -o local -os OUT EXTRA...`.
pub fn convert_local(mode: &str, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["convert", "-i", mode, input, "-o", "local", "-os", out];
    args.extend_from_slice(extra);
    ferry(&args)
}

/// [`convert_local`], asserting success; returns stdout.
pub fn convert_local_ok(mode: &str, input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = convert_local(mode, input, out, extra);
    assert!(
        o.status.success(),
        "ferry convert -i {mode} {} {extra:?} failed:\n{}\n{}",
        input.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Creates the directory `parent/name` and returns its path.
pub fn new_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a program is installed.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `qemu-img compare` of two images (formats given): panics unless they are identical.
pub fn assert_same_content(a: &Path, a_fmt: &str, b: &Path, b_fmt: &str) {
    run(Command::new("qemu-img")
        .arg("compare")
        .args(["-f", a_fmt, "-F", b_fmt])
        .arg(a)
        .arg(b));
}

/// `qemu-img check` of a qcow2 image: panics unless it reports no errors and no leaks.
pub fn assert_qcow2_clean(img: &Path) {
    let out = run(Command::new("qemu-img").args(["check", "-f", "qcow2"]).arg(img));
    assert!(out.contains("No errors were found on the image."), "{out}");
    assert!(!out.contains("leaked"), "{out}");
}

/// sha256 of a file, by `sha256sum`.
pub fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The files of a directory, sorted by name.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A raw disk of `size` bytes with pseudo-random data in a few scattered ranges (the rest a
/// hole), so copies have data, zeros and unallocated ranges to get right.
pub fn patterned_raw(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 300_000];
    for (i, off) in [0u64, 1 << 20, 5 << 20, size / 2 + 12345, size - 300_000]
        .into_iter()
        .enumerate()
    {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if i == 2 {
            chunk[100_000..200_000].fill(0); // zeros inside data
        }
        use std::os::unix::fs::FileExt;
        f.write_all_at(&chunk, off).unwrap();
    }
}

/// `qemu-img convert -O vmdk -o subformat=SUB`.
pub fn make_vmdk(raw: &Path, vmdk: &Path, subformat: &str) {
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "vmdk", "-o"])
        .arg(format!("subformat={subformat}"))
        .arg(raw)
        .arg(vmdk));
}

/// A minimal ESXi-style VMX with the given pvscsi disks (file names relative to the VMX) and
/// one vmxnet3 NIC.
pub fn write_vmx(path: &Path, name: &str, disks: &[&str]) {
    vmx_with_os(path, name, disks, "debian12-64");
}

/// Like [`write_vmx`], for disks of test patterns: guestOS "other-64" names no OS, so the
/// conversion copies them with a warning (a VMX naming one is refused when none is found).
pub fn write_data_vmx(path: &Path, name: &str, disks: &[&str]) {
    vmx_with_os(path, name, disks, "other-64");
}

fn vmx_with_os(path: &Path, name: &str, disks: &[&str], os: &str) {
    let mut s = format!(
        ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"{name}\"\n\
         guestOS = \"{os}\"\nmemSize = \"512\"\nnumvcpus = \"1\"\nuuid.bios = \"42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 00\"\n\
         scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n\
         ethernet0.present = \"TRUE\"\nethernet0.virtualDev = \"vmxnet3\"\nethernet0.networkName = \"VM Network\"\n\
         ethernet0.addressType = \"generated\"\nethernet0.generatedAddress = \"00:0c:29:b3:c4:00\"\n"
    );
    for (i, d) in disks.iter().enumerate() {
        s += &format!(
            "scsi0:{i}.present = \"TRUE\"\nscsi0:{i}.fileName = \"{d}\"\nscsi0:{i}.deviceType = \"scsi-hardDisk\"\n"
        );
    }
    std::fs::write(path, s).unwrap();
}

/// An OVF describing one disk stored as `href` (`capacity` bytes), the way ovftool writes it.
pub fn ovf(name: &str, href: &str, file_size: u64, capacity: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:href="{href}" ovf:id="file1" ovf:size="{file_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="1" vmw:osType="otherGuest"><Info>OS</Info></OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>1 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>512MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>7</rasd:AddressOnParent><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

/// Packs `files` (in `dir`) into `ova` with `tar` (`extra` = e.g. `-z` for gzip).
pub fn tar(ova: &Path, dir: &Path, files: &[&str], extra: &[&str]) {
    run(Command::new("tar")
        .arg("--format=ustar")
        .args(extra)
        .arg("-cf")
        .arg(ova)
        .arg("-C")
        .arg(dir)
        .args(files));
}

/// The cache directory of a built Debian test guest (`testdata/guests/NAME.sh`), if it is
/// built; building needs root and the network (the linuxguest harness does it).
pub fn cached_guest(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("FERRY_CACHE").map_or_else(|| PathBuf::from("/var/tmp/ferry-cache"), PathBuf::from);
    let prefix = format!("guest-{name}-");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(|e| e.ok())
        // guest-NAME-HASH only: guest-NAME-more-HASH is another guest.
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix).is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|e| e.path())
        .filter(|d| d.join("done").is_file())
        .filter_map(|d| Some((std::fs::metadata(&d).ok()?.modified().ok()?, d)))
        .collect();
    found.sort();
    found.pop().map(|(_, d)| d)
}
