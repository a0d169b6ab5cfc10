use super::{BlockDevice, DiskError, RawImage, ReadOnlyFile};
use std::path::Path;

/// The image formats Ferry reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Vmdk,
    Qcow2,
    /// VHD, named "vpc" as qemu-img names it.
    Vpc,
    Vhdx,
    Vdi,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vpc => "vpc",
            ImageFormat::Vhdx => "vhdx",
            ImageFormat::Vdi => "vdi",
        }
    }

    /// qemu-img's names, and "vhd" (Xen's and libvirt's name for vpc).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "raw" => Some(ImageFormat::Raw),
            "vmdk" => Some(ImageFormat::Vmdk),
            "qcow2" => Some(ImageFormat::Qcow2),
            "vpc" | "vhd" => Some(ImageFormat::Vpc),
            "vhdx" => Some(ImageFormat::Vhdx),
            "vdi" => Some(ImageFormat::Vdi),
            _ => None,
        }
    }

    /// Every name [`from_name`](Self::from_name) accepts, for messages.
    pub const NAMES: &'static str = "raw, vmdk, qcow2, vpc (vhd), vhdx, vdi";
}

/// What a file's first (and, for trailers, last) bytes say it is.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Known(ImageFormat),
    /// A format Ferry does not read: it must never be read as raw.
    Refused(&'static str),
}

/// Guesses a file's format from its first bytes, as qemu-img does (qcow2, VMDK, VHD, VHDX,
/// VDI magics; a VMDK text descriptor), and from its last 512 (a fixed VHD's footer). Formats
/// Ferry cannot read (qcow v1, QED, Parallels, Bochs, cloop, DMG, LUKS) are refused by name;
/// anything else is raw.
pub fn probe_format(path: &Path) -> Result<ImageFormat, DiskError> {
    let file = ReadOnlyFile::open(path)?;
    let mut head = vec![0u8; file.len().min(1024) as usize];
    file.read_exact_at(&mut head, 0, "header")?;
    let tail_len = file.len().min(512);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, file.len() - tail_len, "trailer")?;
    match probe_bytes(&head, &tail) {
        Probe::Known(f) => Ok(f),
        Probe::Refused(what) => Err(DiskError::unsupported(
            path,
            format!("image format {what}: Ferry cannot read it (convert it to qcow2 with qemu-img first, or pass -f raw if it really is raw)"),
        )),
    }
}

/// [`probe_format`] for the byte range `[offset, offset + len)` of `file` (a member of an
/// uncompressed archive); `name` names it in errors.
pub fn probe_range(file: &ReadOnlyFile, offset: u64, len: u64, name: &str) -> Result<ImageFormat, DiskError> {
    let mut head = vec![0u8; len.min(1024) as usize];
    file.read_exact_at(&mut head, offset, "member header")?;
    let tail_len = len.min(512);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, offset + len - tail_len, "member trailer")?;
    match probe_bytes(&head, &tail) {
        Probe::Known(f) => Ok(f),
        Probe::Refused(what) => Err(DiskError::unsupported(
            Path::new(name),
            format!("image format {what}: Ferry cannot read it (convert it to qcow2 with qemu-img first)"),
        )),
    }
}

fn probe_bytes(head: &[u8], tail: &[u8]) -> Probe {
    use ImageFormat::*;
    let magic = head.get(..4).unwrap_or_default();
    let be32 = |at: usize| head.get(at..at + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    match magic {
        b"QFI\xfb" if be32(4) == 1 => return Probe::Refused("qcow (version 1)"),
        b"QFI\xfb" => return Probe::Known(Qcow2),
        b"KDMV" | b"COWD" | [0xbe, 0xba, 0xfe, 0xca] => return Probe::Known(Vmdk),
        b"QED\0" => return Probe::Refused("qed (QEMU enhanced disk)"),
        b"LUKS" if head.get(4..6) == Some(&[0xba, 0xbe]) => return Probe::Refused("luks (LUKS encrypted volume)"),
        _ => {}
    }
    if crate::vhd::is_footer(head) {
        return Probe::Known(Vpc);
    }
    if head.starts_with(crate::vhdx::SIGNATURE) {
        return Probe::Known(Vhdx);
    }
    if crate::vdi::probe(head) {
        return Probe::Known(Vdi);
    }
    if head.starts_with(b"WithoutFreeSpace") || head.starts_with(b"WithouFreSpacExt") {
        return Probe::Refused("parallels (Parallels disk)");
    }
    if head.starts_with(b"Bochs Virtual HD Image") {
        return Probe::Refused("bochs (Bochs disk)");
    }
    if head.starts_with(b"#!/bin/sh") && String::from_utf8_lossy(head).contains("cloop") {
        return Probe::Refused("cloop (compressed loop image)");
    }
    // A text descriptor: printable ASCII with a createType or an extent line.
    if head.iter().all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b == 0)
    {
        let text = String::from_utf8_lossy(head);
        if text.contains("# Disk DescriptorFile") || text.contains("createType") {
            return Probe::Known(Vmdk);
        }
    }
    // Trailers: a fixed VHD's footer (disk type 2), a DMG's koly block.
    if tail.len() == 512 && crate::vhd::is_footer(tail) && tail.get(60..64) == Some(&[0, 0, 0, 2]) {
        return Probe::Known(Vpc);
    }
    if tail.len() == 512 && tail.starts_with(b"koly") {
        return Probe::Refused("dmg (Apple disk image)");
    }
    Probe::Known(Raw)
}

/// Opens a disk image read-only, probing its format unless one is given.
pub fn open_image(path: &Path, format: Option<ImageFormat>) -> Result<Box<dyn BlockDevice>, DiskError> {
    let format = match format {
        Some(f) => f,
        None => probe_format(path)?,
    };
    Ok(match format {
        ImageFormat::Raw => Box::new(RawImage::open(path)?),
        ImageFormat::Vmdk => crate::vmdk::open(path)?,
        ImageFormat::Qcow2 => crate::qcow2::open(path)?,
        ImageFormat::Vpc => crate::vhd::open(path)?,
        ImageFormat::Vhdx => crate::vhdx::open(path)?,
        ImageFormat::Vdi => crate::vdi::open(path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(head: &[u8]) -> Probe {
        probe_bytes(head, &[])
    }

    #[test]
    fn probes_magics() {
        use ImageFormat::*;
        assert_eq!(probe(b"QFI\xfb\0\0\0\x03"), Probe::Known(Qcow2));
        assert_eq!(probe(b"KDMV\x01\0\0\0"), Probe::Known(Vmdk));
        assert_eq!(probe(b"# Disk DescriptorFile\nversion=1\n"), Probe::Known(Vmdk));
        assert_eq!(probe(b"\xeb\x63\x90\x10"), Probe::Known(Raw));
        assert_eq!(probe(b""), Probe::Known(Raw));
        assert_eq!(probe(b"conectix\0\0\0\x02"), Probe::Known(Vpc));
        assert_eq!(probe(b"vhdxfile"), Probe::Known(Vhdx));
        let mut vdi = vec![0u8; 0x48];
        vdi[0x40..0x44].copy_from_slice(&0xbeda107fu32.to_le_bytes());
        assert_eq!(probe(&vdi), Probe::Known(Vdi));
    }

    #[test]
    fn refuses_unreadable_formats_by_name() {
        for (head, name) in [
            (&b"QFI\xfb\0\0\0\x01"[..], "qcow"),
            (b"QED\0", "qed"),
            (b"LUKS\xba\xbe\0\x02", "luks"),
            (b"WithoutFreeSpace", "parallels"),
            (b"Bochs Virtual HD Image\0", "bochs"),
            (b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0", "cloop"),
        ] {
            match probe(head) {
                Probe::Refused(what) => assert!(what.starts_with(name), "{what}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut koly = vec![0u8; 512];
        koly[..4].copy_from_slice(b"koly");
        assert_eq!(probe_bytes(&[0u8; 1024], &koly), Probe::Refused("dmg (Apple disk image)"));
    }
}
