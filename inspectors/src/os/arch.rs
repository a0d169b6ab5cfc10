//! Architecture from the ELF header of a guest binary, via `goblin`.

use goblin::elf::{header, Elf};

/// virt-inspector's arch name for an ELF header (`x86_64`, `i386`, `aarch64`...).
pub fn elf_arch(head: &[u8]) -> Option<&'static str> {
    let h = Elf::parse_header(head.get(..64)?).ok()?;
    let class64 = h.e_ident.get(header::EI_CLASS).copied() == Some(header::ELFCLASS64);
    Some(match (h.e_machine, class64) {
        (header::EM_X86_64, _) => "x86_64",
        (header::EM_386, _) => "i386",
        (header::EM_AARCH64, _) => "aarch64",
        (header::EM_ARM, _) => "arm",
        (header::EM_PPC64, _) => "ppc64",
        (header::EM_PPC, _) => "ppc",
        (header::EM_S390, true) => "s390x",
        (header::EM_S390, false) => "s390",
        (header::EM_RISCV, true) => "riscv64",
        (header::EM_RISCV, false) => "riscv32",
        (header::EM_IA_64, _) => "ia64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_shell_is_recognised() {
        let b = std::fs::read("/bin/sh").unwrap();
        let want = if cfg!(target_arch = "x86_64") { "x86_64" } else { std::env::consts::ARCH };
        assert_eq!(super::elf_arch(&b), Some(want));
        assert_eq!(super::elf_arch(b"\x7fELF"), None);
    }
}
