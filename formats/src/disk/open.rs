use super::{BlockDevice, DiskError, RawImage, ReadOnlyFile};
use std::path::Path;

/// The image formats Ferry reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Vmdk,
    Qcow2,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Qcow2 => "qcow2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "raw" => Some(ImageFormat::Raw),
            "vmdk" => Some(ImageFormat::Vmdk),
            "qcow2" => Some(ImageFormat::Qcow2),
            _ => None,
        }
    }
}

/// Guesses a file's format from its first bytes, as qemu-img does: qcow2 and VMDK have
/// magics (sparse `KDMV`, COWD, seSparse, or a text descriptor); anything else is raw.
pub fn probe_format(path: &Path) -> Result<ImageFormat, DiskError> {
    let file = ReadOnlyFile::open(path)?;
    let mut head = vec![0u8; file.len().min(1024) as usize];
    file.read_exact_at(&mut head, 0, "header")?;
    Ok(probe_bytes(&head))
}

fn probe_bytes(head: &[u8]) -> ImageFormat {
    let magic = head.get(..4).unwrap_or_default();
    match magic {
        b"QFI\xfb" => return ImageFormat::Qcow2,
        b"KDMV" | b"COWD" | [0xbe, 0xba, 0xfe, 0xca] => return ImageFormat::Vmdk,
        _ => {}
    }
    // A text descriptor: printable ASCII with a createType or an extent line.
    if head.iter().all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b == 0)
    {
        let text = String::from_utf8_lossy(head);
        if text.contains("# Disk DescriptorFile") || text.contains("createType") {
            return ImageFormat::Vmdk;
        }
    }
    ImageFormat::Raw
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_magics() {
        assert_eq!(probe_bytes(b"QFI\xfb\0\0\0\x03"), ImageFormat::Qcow2);
        assert_eq!(probe_bytes(b"KDMV\x01\0\0\0"), ImageFormat::Vmdk);
        assert_eq!(probe_bytes(b"# Disk DescriptorFile\nversion=1\n"), ImageFormat::Vmdk);
        assert_eq!(probe_bytes(b"\xeb\x63\x90\x10"), ImageFormat::Raw);
        assert_eq!(probe_bytes(b""), ImageFormat::Raw);
    }
}
