//! Which virtio-pci interface a kernel's driver speaks: modern (virtio 1.0), legacy (0.9.5)
//! only, or none; judged from the guest's own files. Pure functions over file contents, so the
//! inspector and the conversion (`converters::linux::detect`) decide alike.
//!
//! Evidence, strongest first: `virtio_pci.force_legacy=1` on the kernel command line or in
//! modprobe configuration (the driver then uses the legacy interface of a transitional device;
//! Linux 4.x+ still falls back to the modern one on a modern-only device, older kernels have no
//! modern interface at all — transitional devices serve both); the driver's own `.modinfo`
//! (the `force_legacy` parameter exists only in drivers with modern support, Linux 4.0 and
//! backports — though a modern driver built without CONFIG_VIRTIO_PCI_LEGACY lacks it too, so
//! its absence alone decides nothing); the kernel configuration (`CONFIG_VIRTIO_PCI_LEGACY`,
//! `CONFIG_VIRTIO_PCI_LIB` exist only where modern support does); the helper modules
//! `virtio_pci_modern_dev`; and last the version, where distribution backports make the
//! upstream number lie (a RHEL 7 3.10 kernel may or may not carry virtio 1.0). Damaged or
//! missing metadata gives [`VirtioInterface::Unknown`]: the conservative, transitional choice.

use serde::{Deserialize, Serialize};

/// The virtio-pci interface a kernel drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtioInterface {
    /// virtio 1.0: modern-only devices work.
    Modern,
    /// Legacy (virtio 0.9.5) only, or forced to it: needs transitional devices.
    Legacy,
    /// Not decidable from the guest's files: transitional devices, the conservative choice.
    #[default]
    Unknown,
    /// No virtio-pci driver at all.
    None,
}

impl VirtioInterface {
    /// Whether the kernel needs transitional devices (a legacy I/O BAR).
    pub fn needs_transitional(&self) -> bool {
        matches!(self, VirtioInterface::Legacy | VirtioInterface::Unknown)
    }
}

/// A kernel's virtio-pci interface and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioSupport {
    pub interface: VirtioInterface,
    /// Where `virtio_pci.force_legacy` is set, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_legacy: Option<String>,
    /// One line: the evidence the decision rests on.
    pub reason: String,
}

/// The virtio_pci driver's module file, as found in the guest.
pub enum ModuleFile<'a> {
    /// Not a loadable module (built in, or absent).
    NotModule,
    /// A compressed module (`.ko.xz`, `.ko.zst`, `.ko.gz`): its `.modinfo` is not read.
    Compressed(&'a str),
    /// An uncompressed module: its path and bytes (`None` when the file is missing; empty
    /// when it could not be read).
    Plain(&'a str, Option<&'a [u8]>),
}

/// What is known about one kernel.
pub struct KernelEvidence<'a> {
    /// `uname -r`.
    pub version: &'a str,
    /// `/boot/config-VER` (empty when missing).
    pub config: &'a str,
    /// Whether virtio_pci is built in or a module.
    pub has_virtio_pci: bool,
    /// `modules.builtin.modinfo` (Linux 5.2+), when present.
    pub builtin_modinfo: Option<&'a [u8]>,
    /// Whether virtio_pci is built into the image.
    pub builtin: bool,
    pub module: ModuleFile<'a>,
    /// Names of the kernel's loadable modules.
    pub modules: &'a [String],
    /// Where force_legacy is set (see [`force_legacy_cmdline`], [`force_legacy_modprobe`]).
    pub force_legacy: Option<String>,
}

/// Whether a kernel command line sets `virtio_pci.force_legacy` true.
pub fn force_legacy_cmdline(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| {
        let w = w.trim_matches(|c| c == '"' || c == '\'');
        let w = w.replace('-', "_");
        w.strip_prefix("virtio_pci.force_legacy=").is_some_and(truthy) || w == "virtio_pci.force_legacy"
    })
}

/// Whether modprobe configuration text sets `options virtio_pci force_legacy=1`.
pub fn force_legacy_modprobe(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or_default();
        let mut w = l.split_whitespace();
        w.next() == Some("options")
            && w.next().map(|m| m.replace('-', "_")).as_deref() == Some("virtio_pci")
            && w.any(|o| o.strip_prefix("force_legacy=").is_some_and(truthy))
    })
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "y" | "Y" | "on" | "true")
}

/// Whether the `.modinfo` strings (NUL-separated `key=value`, keys prefixed `virtio_pci.`
/// in `modules.builtin.modinfo`) declare the `force_legacy` parameter.
fn modinfo_has_force_legacy(modinfo: &[u8], prefix: &str) -> bool {
    modinfo.split(|b| *b == 0).any(|s| {
        let s = s.strip_prefix(prefix.as_bytes()).unwrap_or(if prefix.is_empty() { s } else { b"" });
        s.starts_with(b"parm=force_legacy:") || s.starts_with(b"parmtype=force_legacy:")
    })
}

/// The `.modinfo` section of an ELF module; `None` when the bytes are not a readable ELF
/// object with one.
fn elf_modinfo(bytes: &[u8]) -> Option<&[u8]> {
    let elf = goblin::elf::Elf::parse(bytes).ok()?;
    let sh = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".modinfo"))?;
    let start = usize::try_from(sh.sh_offset).ok()?;
    let len = usize::try_from(sh.sh_size).ok()?;
    bytes.get(start..start.checked_add(len)?)
}

fn config_has(config: &str, opt: &str) -> Option<String> {
    config.lines().find_map(|l| l.strip_prefix(opt)?.strip_prefix('=').map(|v| v.trim().to_string()))
}

/// (major, minor, and the release after the first `-`) of `3.10.0-327.el7.x86_64`.
fn upstream(version: &str) -> Option<(u32, u32)> {
    let mut it = version.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Judges one kernel.
pub fn assess(k: &KernelEvidence) -> VirtioSupport {
    let r = |interface, reason: String| VirtioSupport { interface, force_legacy: k.force_legacy.clone(), reason };
    if !k.has_virtio_pci {
        return r(VirtioInterface::None, format!("kernel {} has no virtio_pci driver (neither built in nor a module)", k.version));
    }
    if let Some(w) = &k.force_legacy {
        return r(VirtioInterface::Legacy, format!("virtio_pci.force_legacy is set ({w}): the driver uses only the legacy interface"));
    }
    // The driver's own metadata.
    let mut note = String::new();
    if k.builtin {
        if let Some(mi) = k.builtin_modinfo {
            if modinfo_has_force_legacy(mi, "virtio_pci.") {
                return r(VirtioInterface::Modern, "built-in virtio_pci declares force_legacy (modules.builtin.modinfo): virtio 1.0 capable".into());
            }
            // No force_legacy: a legacy-only driver, or a modern one built without
            // CONFIG_VIRTIO_PCI_LEGACY; the configuration and version tell which.
            note = "built-in virtio_pci has no force_legacy parameter; ".into();
        }
    } else {
        match &k.module {
            ModuleFile::Plain(path, Some(bytes)) => match elf_modinfo(bytes) {
                Some(mi) if modinfo_has_force_legacy(mi, "") => {
                    return r(VirtioInterface::Modern, format!("{path} declares force_legacy: virtio 1.0 capable"));
                }
                Some(_) => note = format!("{path} has no force_legacy parameter; "),
                None => {
                    return r(
                        VirtioInterface::Unknown,
                        format!("{path}: module metadata unreadable (no ELF .modinfo): transitional devices, the conservative choice"),
                    )
                }
            },
            ModuleFile::Plain(path, None) => note = format!("{path} is missing; "),
            ModuleFile::Compressed(path) => note = format!("{path} is compressed; "),
            ModuleFile::NotModule => {}
        }
    }
    // The kernel configuration.
    if let Some(o) = ["CONFIG_VIRTIO_PCI_LIB", "CONFIG_VIRTIO_PCI_LEGACY"].iter().find(|o| config_has(k.config, o).is_some()) {
        return r(VirtioInterface::Modern, format!("{note}{o} is configured: virtio 1.0 capable"));
    }
    if k.modules.iter().any(|m| m == "virtio_pci_modern_dev") {
        return r(VirtioInterface::Modern, format!("{note}virtio_pci_modern_dev is a module: virtio 1.0 capable"));
    }
    // The version, minding backports.
    match upstream(k.version) {
        Some((maj, _)) if maj >= 5 => r(VirtioInterface::Modern, format!("{note}Linux {maj}.x: virtio 1.0 capable (since 4.0)")),
        Some((4, min)) => r(VirtioInterface::Modern, format!("{note}Linux 4.{min}: virtio 1.0 capable (since 4.0)")),
        Some((3, 10)) if k.version.contains(".el7") => r(
            VirtioInterface::Unknown,
            format!("{note}RHEL 7 kernel {}: virtio 1.0 depends on the minor release's backports; transitional devices, the conservative choice", k.version),
        ),
        Some((maj, min)) if k.config.is_empty() && k.modules.is_empty() => r(
            VirtioInterface::Unknown,
            format!("{note}kernel {maj}.{min} without configuration or module list: transitional devices, the conservative choice"),
        ),
        Some((maj, min)) => r(VirtioInterface::Legacy, format!("{note}Linux {maj}.{min} predates virtio 1.0 (4.0): legacy virtio only")),
        None => r(VirtioInterface::Unknown, format!("{note}version {:?} unreadable: transitional devices, the conservative choice", k.version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(version: &'a str, config: &'a str, module: ModuleFile<'a>) -> KernelEvidence<'a> {
        KernelEvidence {
            version,
            config,
            has_virtio_pci: true,
            builtin_modinfo: None,
            builtin: false,
            module,
            modules: &[],
            force_legacy: None,
        }
    }

    #[test]
    fn versions_and_config() {
        let el6 = assess(&ev("2.6.32-754.el6.x86_64", "CONFIG_VIRTIO_PCI=m\n", ModuleFile::Compressed("/x/virtio_pci.ko.xz")));
        assert_eq!(el6.interface, VirtioInterface::Legacy, "{}", el6.reason);
        assert!(el6.reason.contains("predates virtio 1.0"), "{}", el6.reason);
        let el9 = assess(&ev("5.14.0-427.el9.x86_64", "CONFIG_VIRTIO_PCI=y\n", ModuleFile::NotModule));
        assert_eq!(el9.interface, VirtioInterface::Modern);
        let el7 = assess(&ev("3.10.0-1160.el7.x86_64", "CONFIG_VIRTIO_PCI=m\n", ModuleFile::Compressed("/x/virtio_pci.ko.xz")));
        assert_eq!(el7.interface, VirtioInterface::Unknown);
        let cfg = assess(&ev("3.10.0-1160.el7.x86_64", "CONFIG_VIRTIO_PCI_LEGACY=y\n", ModuleFile::NotModule));
        assert_eq!(cfg.interface, VirtioInterface::Modern);
        let mut none = ev("6.1.0", "", ModuleFile::NotModule);
        none.has_virtio_pci = false;
        assert_eq!(assess(&none).interface, VirtioInterface::None);
        assert_eq!(assess(&ev("garbage", "", ModuleFile::NotModule)).interface, VirtioInterface::Unknown);
    }

    #[test]
    fn force_legacy_wins() {
        assert!(force_legacy_cmdline("ro quiet virtio_pci.force_legacy=1 console=ttyS0"));
        assert!(force_legacy_cmdline("\"virtio-pci.force_legacy=Y\""));
        assert!(!force_legacy_cmdline("virtio_pci.force_legacy=0"));
        assert!(force_legacy_modprobe("# x\noptions virtio_pci force_legacy=1\n"));
        assert!(!force_legacy_modprobe("#options virtio_pci force_legacy=1\noptions virtio_net x=1\n"));
        let mut e = ev("6.1.0-27-amd64", "CONFIG_VIRTIO_PCI_LEGACY=y\n", ModuleFile::NotModule);
        e.force_legacy = Some("kernel command line".into());
        assert_eq!(assess(&e).interface, VirtioInterface::Legacy);
    }

    #[test]
    fn modinfo() {
        let bi = b"virtio_pci.license=GPL\0virtio_pci.parm=force_legacy:Force legacy mode for transitional virtio 1 devices\0";
        let mut e = ev("5.10.0", "", ModuleFile::NotModule);
        e.builtin = true;
        e.builtin_modinfo = Some(bi);
        assert_eq!(assess(&e).interface, VirtioInterface::Modern);
        // No force_legacy: the version decides (5.10: modern without CONFIG_VIRTIO_PCI_LEGACY).
        e.builtin_modinfo = Some(b"virtio_pci.license=GPL\0");
        let m = assess(&e);
        assert_eq!(m.interface, VirtioInterface::Modern);
        assert!(m.reason.starts_with("built-in virtio_pci has no force_legacy parameter; Linux 5.x"), "{}", m.reason);
        e.version = "3.13.0-170-generic";
        e.config = "CONFIG_VIRTIO_PCI=y\n";
        assert_eq!(assess(&e).interface, VirtioInterface::Legacy);
        // A damaged module: not ELF.
        let d = assess(&ev("6.1.0", "", ModuleFile::Plain("/lib/modules/6.1.0/virtio_pci.ko", Some(b"\x7fELF garbage"))));
        assert_eq!(d.interface, VirtioInterface::Unknown);
        assert!(d.reason.contains("conservative"), "{}", d.reason);
    }
}
