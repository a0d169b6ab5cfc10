//! Writers for the converted guest's descriptions, all from one [`Layout`]: libvirt domain
//! XML, a QEMU launch script and Ferry's runtime spec JSON.

mod libvirt;
mod qemu;

pub use libvirt::{drive_name, libvirt_xml};
pub use qemu::qemu_script;

use ferry_formats::layout::{Layout, PciAddr};

/// The OVMF build a UEFI guest starts with, as Debian's `ovmf` installs it: (code, variable
/// store template). The secure-boot build (SMM, Microsoft keys enrolled) only where the source
/// had secure boot; Ferry's runtime refuses that build, the QEMU script and libvirt run it.
pub fn ovmf_files(secure_boot: bool) -> (&'static str, &'static str) {
    if secure_boot {
        ("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
    } else {
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd")
    }
}

/// The guest's UEFI variable store, beside its descriptions: the file the QEMU script,
/// libvirt's `<nvram>` and `ferry run` all use.
pub fn nvram_file(name: &str) -> String {
    format!("{name}.vars.fd")
}

/// Ferry's runtime spec as JSON (with a final newline).
pub fn ferry_spec(layout: &Layout) -> String {
    let mut s = layout.spec.to_json();
    s.push('\n');
    s
}

/// libvirt's spelling of a PCI address.
fn libvirt_pci(a: PciAddr) -> String {
    format!(
        "<address type='pci' domain='0x0000' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>",
        a.bus, a.slot, a.function
    )
}

/// Escapes text for XML content and single- or double-quoted attributes.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}
