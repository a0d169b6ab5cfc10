//! `--print-source`: the model in a stable human format modelled on virt-v2v's.

use super::{DiskSource, Firmware, NetKind, RemovableKind, VmModel};
use std::fmt::Write;

impl DiskSource {
    /// One-line description of where the bytes are.
    pub fn describe(&self) -> String {
        match self {
            DiskSource::File { path } => format!("file {}", path.display()),
            DiskSource::Block { path } => format!("block device {}", path.display()),
            DiskSource::InPlace { archive, member, offset, length } => {
                format!("{} in {} at offset {offset}, {length} bytes", member, archive.display())
            }
            DiskSource::Streamed { archive, member, length, .. } => {
                format!("{} streamed from {}, {length} bytes", member, archive.display())
            }
            DiskSource::Chunked { chunks } => {
                let parts: Vec<String> = chunks.iter().map(|c| c.describe()).collect();
                format!("{} chunks [{}]", chunks.len(), parts.join("; "))
            }
            DiskSource::Gzip { inner } => format!("gzip of {}", inner.describe()),
            DiskSource::Unresolved { reference } => format!("unresolved {reference}"),
            DiskSource::SparseInPlace { archive, member, size, segments } => {
                format!("{} in {} (GNU sparse, {} segments), {size} bytes", member, archive.display(), segments.len())
            }
            DiskSource::Blank { size } => format!("blank disk of {size} bytes"),
        }
    }
}

impl VmModel {
    /// The parsed source, one aligned field per line, then disks, removables and NICs.
    pub fn print_source(&self) -> String {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let topology = self
            .topology
            .map(|t| format!("sockets: {} cores/socket: {} threads/core: {}", t.sockets, t.cores, t.threads))
            .unwrap_or_default();
        let firmware = match self.firmware {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        };
        let fields: [(&str, String); 13] = [
            ("source name", self.name.clone()),
            ("hypervisor type", self.hypervisor.clone()),
            ("VM UUID", opt(&self.uuid)),
            ("BIOS UUID", opt(&self.bios_uuid)),
            ("VM genid", opt(&self.genid)),
            ("memory", format!("{} (bytes)", self.memory_bytes)),
            ("nr vCPUs", match self.max_vcpus {
                Some(m) => format!("{} (maximum {m})", self.vcpus),
                None => self.vcpus.to_string(),
            }),
            ("CPU topology", topology),
            ("firmware", firmware.to_string()),
            ("UEFI secureboot", self.secure_boot.to_string()),
            ("display", opt(&self.display)),
            ("sound", opt(&self.sound)),
            ("guest OS", opt(&self.os_hint)),
        ];
        let mut out = String::new();
        for (k, v) in fields {
            let _ = writeln!(out, "{k:>16}: {v}");
        }
        if let Some(pv) = &self.pv {
            let kernel = pv.kernel.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            let _ = writeln!(out, "{:>16}: {} kernel {kernel} bootloader {}", "Xen boot", pv.kind, opt(&pv.bootloader));
        }
        out.push_str("disks:\n");
        for (i, d) in self.disks.iter().enumerate() {
            let model = d.controller_model.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
            let fmt = d.format.as_deref().unwrap_or("auto");
            let ro = if d.readonly { " readonly" } else { "" };
            let _ = writeln!(
                out,
                "\t{i} [{}{model}] {}:{} {} ({fmt}){ro}",
                d.bus.name(),
                d.controller,
                d.unit,
                d.source.describe()
            );
        }
        out.push_str("removable media:\n");
        for r in &self.removables {
            let kind = match r.kind {
                RemovableKind::Cdrom => "CD-ROM",
                RemovableKind::Floppy => "Floppy",
            };
            let _ = writeln!(out, "\t{kind} [{}] in slot {}:{}", r.bus.name(), r.controller, r.unit);
        }
        out.push_str("NICs:\n");
        for n in &self.nics {
            let kind = match n.kind {
                NetKind::Network => "Network",
                NetKind::Bridge => "Bridge",
            };
            let mac = n.mac.as_deref().map(|m| format!(" mac: {m}")).unwrap_or_default();
            let model = n.model.as_deref().map(|m| format!(" [{m}]")).unwrap_or_default();
            let _ = writeln!(out, "\t{kind} \"{}\"{mac}{model}", n.network);
        }
        if !self.warnings.is_empty() {
            out.push_str("warnings:\n");
            for w in &self.warnings {
                let _ = writeln!(out, "\t{w}");
            }
        }
        out
    }
}
