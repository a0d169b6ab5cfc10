//! What `ferry convert` records in the spec for a direct boot of the converted guest's own
//! kernel: the kernel the plan chose, its initrd, and the command line of its entry in the
//! converted boot loader configuration (GRUB 2 menu, BLS entry, GRUB legacy), with
//! `console=ttyS0` added, as paths inside the guest, plus the root filesystem's UUID that
//! `ferry run` finds them on.
use ferry_converters::guestfs::GuestFs;
use ferry_converters::linux::{Bootloader, GuestFacts, KernelFacts};
use ferry_formats::layout::DirectBoot;
use std::path::PathBuf;

/// The kernel command line keywords that load a kernel (GRUB 2, EFI variants, legacy).
const KERNEL_WORDS: [&str; 4] = ["linux", "linux16", "linuxefi", "kernel"];

fn read(fs: &dyn GuestFs, path: &str) -> Option<String> {
    match fs.is_file(path) {
        Ok(true) => fs.read_file(path).ok().map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

fn basename(p: &str) -> &str {
    p.rsplit([')', '/']).next().unwrap_or(p)
}

/// The arguments of the first kernel line for `kernel` in `text`.
fn kernel_line_args(text: &str, kernel: &KernelFacts) -> Option<String> {
    let want = basename(&kernel.vmlinuz);
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let kw = w.next()?;
        if !KERNEL_WORDS.contains(&kw) {
            return None;
        }
        let path = w.next()?;
        (basename(path) == want).then(|| w.collect::<Vec<_>>().join(" "))
    })
}

/// The command line of `kernel`'s BLS entry (`options`, with `$kernelopts` from grubenv).
fn bls_args(fs: &dyn GuestFs, bl: &Bootloader, kernel: &KernelFacts) -> Option<String> {
    let dir = bl.bls_dir.as_deref()?;
    let want = basename(&kernel.vmlinuz);
    for name in fs.read_dir(dir).ok()? {
        if !name.ends_with(".conf") {
            continue;
        }
        let Some(text) = read(fs, &format!("{dir}/{name}")) else { continue };
        let field = |k: &str| text.lines().find_map(|l| l.trim().strip_prefix(k).filter(|r| r.starts_with([' ', '\t'])).map(str::trim));
        if field("linux").map(basename) != Some(want) {
            continue;
        }
        let opts = field("options").unwrap_or("").to_string();
        let env = bl.grubenv.as_deref().and_then(|p| read(fs, p)).unwrap_or_default();
        let kernelopts = env.lines().find_map(|l| l.strip_prefix("kernelopts=")).unwrap_or("");
        return Some(opts.replace("$kernelopts", kernelopts));
    }
    None
}

/// Words GRUB expands at boot (`$vt_handoff`) are dropped, and `quiet`/`splash`, so the
/// kernel's and init's progress reach the serial console `ferry validate` watches;
/// `console=ttyS0` is added where the command line has no serial console, and `root=` where
/// it has none.
fn finish(args: &str, root_uuid: &str) -> String {
    let mut words: Vec<String> = args
        .split_whitespace()
        .filter(|w| !w.starts_with('$') && !matches!(*w, "quiet" | "splash"))
        .map(str::to_string)
        .collect();
    if !words.iter().any(|w| w.starts_with("root=")) {
        words.insert(0, format!("root=UUID={root_uuid}"));
    }
    if !words.iter().any(|w| w.starts_with("console=ttyS")) {
        words.push("console=ttyS0".into());
    }
    words.join(" ")
}

/// The direct boot of the converted guest: `None` when its root filesystem has no UUID.
pub fn direct_boot(fs: &dyn GuestFs, facts: &GuestFacts, kernel: &KernelFacts, root_uuid: Option<&str>) -> Option<DirectBoot> {
    let uuid = root_uuid?;
    let bl = &facts.bootloader;
    let menu = bl.config.as_deref().and_then(|p| read(fs, p)).and_then(|t| kernel_line_args(&t, kernel));
    let args = menu.or_else(|| bls_args(fs, bl, kernel)).unwrap_or_else(|| "ro".into());
    Some(DirectBoot {
        kernel: PathBuf::from(&kernel.vmlinuz),
        initrd: kernel.initrd.as_ref().map(PathBuf::from),
        cmdline: finish(&args, uuid),
        guest_root: Some(format!("UUID={uuid}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> KernelFacts {
        KernelFacts {
            version: "6.1.0-27-amd64".into(),
            vmlinuz: "/boot/vmlinuz-6.1.0-27-amd64".into(),
            initrd: Some("/boot/initrd.img-6.1.0-27-amd64".into()),
            xen_pv_only: false,
            virtio: vec![],
            builtin: vec![],
            virtio_pci: Default::default(),
            initrd_drivers: None,
        }
    }

    #[test]
    fn menu_line_of_the_chosen_kernel() {
        let cfg = "menuentry 'Debian' {\n\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=UUID=a ro\n}\nmenuentry 'new' {\n\tlinux\t(hd0,msdos1)/vmlinuz-6.1.0-27-amd64 root=UUID=b ro quiet $vt_handoff\n}\n";
        let args = kernel_line_args(cfg, &k()).expect("line");
        assert_eq!(finish(&args, "zzz"), "root=UUID=b ro console=ttyS0");
        assert_eq!(finish("ro console=ttyS0,115200", "u"), "root=UUID=u ro console=ttyS0,115200");
        assert!(kernel_line_args("linux /boot/vmlinuz-5 ro", &k()).is_none());
    }
}
