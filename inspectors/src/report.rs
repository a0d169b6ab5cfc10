//! The inspection report: serde (JSON), virt-inspector-style XML, and a human summary.

use crate::lvm::VgReport;
use crate::os::OsInfo;
use crate::partition::PartitionTable;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;
use std::fmt::Write as _;

/// One input disk.
#[derive(Clone, Debug, Serialize)]
pub struct DiskReport {
    pub name: String,
    pub size: u64,
    pub format: String,
    pub partition_table: Option<PartitionTable>,
}

/// One filesystem or volume signature found.
#[derive(Clone, Debug, Serialize)]
pub struct FsReport {
    pub device: String,
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub version: Option<String>,
    /// Feature names where the filesystem has them (XFS: `crc`, `finobt`, `reflink`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    pub size: u64,
    /// btrfs: checksum, default subvolume, subvolumes and snapshots, compression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btrfs: Option<crate::fs::BtrfsReport>,
}

/// Everything `ferry inspect` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inspection {
    pub disks: Vec<DiskReport>,
    /// `bios` or `uefi`: an ESP without a BIOS boot partition means UEFI.
    pub firmware: String,
    pub filesystems: Vec<FsReport>,
    pub volume_groups: Vec<VgReport>,
    pub operating_systems: Vec<OsInfo>,
    pub warnings: Vec<String>,
}

type W = Writer<Vec<u8>>;

fn elem(w: &mut W, name: &str, text: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(name)))?;
    w.write_event(Event::Text(BytesText::new(text)))?;
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn opt(w: &mut W, name: &str, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        Ok(())
    } else {
        elem(w, name, text)
    }
}

impl Inspection {
    /// virt-inspector's XML (`<operatingsystems><operatingsystem>...`).
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let _ = self.write_xml(&mut w);
        String::from_utf8_lossy(&w.into_inner()).into_owned() + "\n"
    }

    fn write_xml(&self, w: &mut W) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        w.write_event(Event::Start(BytesStart::new("operatingsystems")))?;
        for os in &self.operating_systems {
            w.write_event(Event::Start(BytesStart::new("operatingsystem")))?;
            elem(w, "root", &os.root)?;
            elem(w, "name", &os.os_type)?;
            elem(w, "arch", &os.arch)?;
            elem(w, "distro", &os.distro)?;
            opt(w, "product_name", &os.product_name)?;
            opt(w, "product_variant", &os.product_variant)?;
            elem(w, "major_version", &os.major_version.to_string())?;
            elem(w, "minor_version", &os.minor_version.to_string())?;
            if let Some(s) = &os.windows_systemroot {
                elem(w, "windows_systemroot", s)?;
            }
            if let Some(s) = &os.windows_current_control_set {
                elem(w, "windows_current_control_set", s)?;
            }
            opt(w, "package_format", &os.package_format)?;
            opt(w, "package_management", &os.package_management)?;
            opt(w, "hostname", &os.hostname)?;
            opt(w, "osinfo", &os.osinfo)?;
            w.write_event(Event::Start(BytesStart::new("mountpoints")))?;
            for (mp, dev) in &os.mountpoints {
                let mut s = BytesStart::new("mountpoint");
                s.push_attribute(("dev", dev.as_str()));
                w.write_event(Event::Start(s))?;
                w.write_event(Event::Text(BytesText::new(mp)))?;
                w.write_event(Event::End(BytesEnd::new("mountpoint")))?;
            }
            w.write_event(Event::End(BytesEnd::new("mountpoints")))?;
            w.write_event(Event::Start(BytesStart::new("filesystems")))?;
            for f in &self.filesystems {
                let mut s = BytesStart::new("filesystem");
                s.push_attribute(("dev", f.device.as_str()));
                w.write_event(Event::Start(s))?;
                elem(w, "type", &f.fstype)?;
                if let Some(l) = &f.label {
                    elem(w, "label", l)?;
                }
                if let Some(u) = &f.uuid {
                    elem(w, "uuid", u)?;
                }
                if let Some(b) = &f.btrfs {
                    let mut s = BytesStart::new("btrfs");
                    let (def, comp) = (b.default_subvolume.to_string(), b.compression.join(" "));
                    s.push_attribute(("csum", b.csum.as_str()));
                    s.push_attribute(("default_subvolume", def.as_str()));
                    s.push_attribute(("compression", comp.as_str()));
                    w.write_event(Event::Start(s))?;
                    for sv in &b.subvolumes {
                        let mut e = BytesStart::new("subvolume");
                        let (id, of) = (sv.id.to_string(), sv.snapshot_of.map(|i| i.to_string()).unwrap_or_default());
                        e.push_attribute(("id", id.as_str()));
                        e.push_attribute(("path", sv.path.as_str()));
                        if !of.is_empty() {
                            e.push_attribute(("snapshot_of", of.as_str()));
                        }
                        w.write_event(Event::Empty(e))?;
                    }
                    w.write_event(Event::End(BytesEnd::new("btrfs")))?;
                }
                w.write_event(Event::End(BytesEnd::new("filesystem")))?;
            }
            w.write_event(Event::End(BytesEnd::new("filesystems")))?;
            if !os.kernels.is_empty() {
                w.write_event(Event::Start(BytesStart::new("kernels")))?;
                for k in &os.kernels {
                    let mut s = BytesStart::new("kernel");
                    s.push_attribute(("version", k.version.as_str()));
                    w.write_event(Event::Start(s))?;
                    let iface = serde_json::to_value(k.virtio.interface).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                    let mut v = BytesStart::new("virtio");
                    v.push_attribute(("interface", iface.as_str()));
                    w.write_event(Event::Start(v))?;
                    w.write_event(Event::Text(BytesText::new(&k.virtio.reason)))?;
                    w.write_event(Event::End(BytesEnd::new("virtio")))?;
                    if let Some(d) = &k.initrd_virtio {
                        let mut i = BytesStart::new("initrd");
                        i.push_attribute(("path", d.path.as_str()));
                        let (mods, built, missing) = (d.modules.join(" "), d.builtin.join(" "), d.missing.join(" "));
                        match &d.error {
                            Some(e) => i.push_attribute(("error", e.as_str())),
                            None => {
                                i.push_attribute(("virtio-modules", mods.as_str()));
                                i.push_attribute(("virtio-builtin", built.as_str()));
                                i.push_attribute(("missing", missing.as_str()));
                            }
                        }
                        w.write_event(Event::Empty(i))?;
                    }
                    w.write_event(Event::End(BytesEnd::new("kernel")))?;
                }
                w.write_event(Event::End(BytesEnd::new("kernels")))?;
            }
            elem(w, "format", "installed")?;
            w.write_event(Event::End(BytesEnd::new("operatingsystem")))?;
        }
        w.write_event(Event::End(BytesEnd::new("operatingsystems")))?;
        Ok(())
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for d in &self.disks {
            let _ = writeln!(s, "{}: {} bytes, {}", d.name, d.size, d.format);
            match &d.partition_table {
                None => s.push_str("  no partition table\n"),
                Some(t) => {
                    let _ = writeln!(s, "  {:?} partition table {}", t.kind, t.disk_id);
                    for p in &t.partitions {
                        let _ = writeln!(
                            s,
                            "  {:>3} start {:>12} size {:>12} {:?} {}{}",
                            p.number,
                            p.start,
                            p.size,
                            p.kind,
                            p.type_id,
                            if p.bootable { " boot" } else { "" }
                        );
                    }
                }
            }
        }
        let _ = writeln!(s, "firmware: {}", self.firmware);
        for vg in &self.volume_groups {
            let _ = writeln!(s, "volume group {} on {}", vg.name, vg.pvs.join(", "));
            for lv in &vg.lvs {
                let _ = writeln!(s, "  {} {} {} bytes{}", lv.name, lv.segtype, lv.size, lv.refused.as_deref().map(|r| format!(" (refused: {r})")).unwrap_or_default());
            }
        }
        s.push_str("filesystems:\n");
        for f in &self.filesystems {
            let _ = writeln!(
                s,
                "  {} {} uuid={} label={}{}",
                f.device,
                f.fstype,
                f.uuid.as_deref().unwrap_or("-"),
                f.label.as_deref().unwrap_or("-"),
                match (&f.version, f.features.is_empty()) {
                    (Some(v), false) => format!(" {v} ({})", f.features.join(",")),
                    _ => String::new(),
                }
            );
            if let Some(b) = &f.btrfs {
                let comp = if b.compression.is_empty() { "none".to_string() } else { b.compression.join(",") };
                let partial = if b.compression_scan_complete { "" } else { " (scan incomplete)" };
                let _ = writeln!(s, "    btrfs csum {}, default subvolume {}, compression {comp}{partial}", b.csum, b.default_subvolume);
                for sv in &b.subvolumes {
                    let _ = writeln!(
                        s,
                        "    subvolume {} /{}{}{}{}",
                        sv.id,
                        sv.path,
                        if sv.readonly { " ro" } else { "" },
                        sv.snapshot_of.map(|i| format!(" snapshot of {i}")).unwrap_or_default(),
                        sv.snapper.map(|n| format!(" snapper #{n}")).unwrap_or_default()
                    );
                }
            }
        }
        if self.operating_systems.is_empty() {
            s.push_str("No operating system found on these disks.\n");
        }
        for os in &self.operating_systems {
            let _ = writeln!(s, "operating system on {}:", os.root);
            let _ = writeln!(s, "  {} {} {}.{} ({}) {}", os.os_type, os.distro, os.major_version, os.minor_version, os.arch, os.product_name);
            let _ = writeln!(s, "  hostname {}, packages {}/{}", os.hostname, os.package_format, os.package_management);
            for (mp, dev) in &os.mountpoints {
                let _ = writeln!(s, "  mount {mp} <- {dev}");
            }
            for snap in &os.snapshots {
                let _ = writeln!(s, "  snapshot {snap}");
            }
            for k in &os.kernels {
                let _ = writeln!(
                    s,
                    "  kernel {} initrd {} virtio blk={:?} net={:?} pci={:?} scsi={:?} console={:?} rng={:?} balloon={:?}{}",
                    k.version,
                    k.initrd.as_deref().unwrap_or("-"),
                    k.virtio_blk,
                    k.virtio_net,
                    k.virtio_pci,
                    k.virtio_scsi,
                    k.virtio_console,
                    k.virtio_rng,
                    k.virtio_balloon,
                    if k.xen_pv_only { " xen-pv-only" } else { "" }
                );
                let _ = writeln!(s, "    virtio-pci interface {:?}: {}", k.virtio.interface, k.virtio.reason);
                if let Some(d) = &k.initrd_virtio {
                    match &d.error {
                        Some(e) => {
                            let _ = writeln!(s, "    initrd unreadable: {e}");
                        }
                        None => {
                            let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
                            let _ = writeln!(s, "    initrd ({}) virtio modules: {}; built in: {}", d.segments.join("+"), list(&d.modules), list(&d.builtin));
                            if !d.missing.is_empty() {
                                let _ = writeln!(s, "    initrd lacks {}: the kernel cannot find a virtio-blk root disk from it", d.missing.join(" "));
                            }
                        }
                    }
                }
            }
            if let Some(b) = &os.bootloader {
                let _ = writeln!(s, "  bootloader {b} ({}) firmware {}", os.bootloader_config.as_deref().unwrap_or("-"), os.firmware);
            }
            if let Some(i) = &os.initramfs_generator {
                let _ = writeln!(s, "  initramfs {i}");
            }
            for n in &os.network {
                let _ = writeln!(s, "  network {} {} [{}]", n.kind, n.file, n.interfaces.join(", "));
            }
            if !os.hypervisor_tools.is_empty() {
                let _ = writeln!(s, "  hypervisor tools: {}", os.hypervisor_tools.join(", "));
            }
            if let Some(se) = &os.selinux {
                let _ = writeln!(s, "  selinux {se}");
            }
            for w in &os.warnings {
                let _ = writeln!(s, "  warning: {w}");
            }
        }
        s
    }
}
