//! A small detector that fills [`GuestFacts`] from the guest's own files: os-release (or
//! `redhat-release`, `SuSE-release`, `debian_version` on older guests), `/boot`,
//! `/lib/modules/VER/modules.{dep,builtin}`, `/boot/config-VER`, GRUB files. The inspector
//! does this in full; this is enough for the conversion and its tests.

use super::facts::*;
use super::initramfs::VIRTIO_MODULES;
use super::selinux;
use super::LinuxError;
use crate::guestfs::GuestFs;

/// Files read by the detector are at most this long (`modules.dep` is about 1 MiB).
const MAX_READ: u64 = 64 << 20;

fn read_text(fs: &dyn GuestFs, path: &str) -> Result<Option<String>, LinuxError> {
    match fs.stat(path)? {
        Some(st) if st.kind == crate::guestfs::FileKind::File && st.size <= MAX_READ => {}
        Some(st) if st.kind == crate::guestfs::FileKind::File => {
            return Err(LinuxError::Invalid {
                path: path.into(),
                field: "size".into(),
                value: st.size.to_string(),
                reason: format!("larger than {MAX_READ} bytes"),
            })
        }
        _ => return Ok(None),
    }
    Ok(Some(
        String::from_utf8_lossy(&fs.read_file(path)?).into_owned(),
    ))
}

fn first_existing(fs: &dyn GuestFs, paths: &[String]) -> Result<Option<String>, LinuxError> {
    for p in paths {
        if fs.exists(p)? {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

/// `KEY=value` pairs of a shell-style file like os-release, quotes removed.
fn shell_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches('"').trim_matches('\'').to_owned(),
            )
        })
        .collect()
}

fn family_of(id: &str, like: &str) -> DistroFamily {
    let words: Vec<&str> = std::iter::once(id).chain(like.split_whitespace()).collect();
    let any = |set: &[&str]| words.iter().any(|w| set.contains(w));
    if any(&["debian", "ubuntu"]) {
        DistroFamily::Debian
    } else if any(&[
        "rhel",
        "fedora",
        "centos",
        "rocky",
        "almalinux",
        "ol",
        "redhat",
    ]) {
        DistroFamily::Rhel
    } else if any(&["suse", "sles", "opensuse", "opensuse-leap"]) {
        DistroFamily::Suse
    } else {
        DistroFamily::Other
    }
}

fn distro(fs: &dyn GuestFs) -> Result<(DistroFamily, String, String), LinuxError> {
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(t) = read_text(fs, p)? {
            let vars = shell_vars(&t);
            let get = |k: &str| {
                vars.iter()
                    .rev()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let id = get("ID");
            return Ok((family_of(&id, &get("ID_LIKE")), id, get("VERSION_ID")));
        }
    }
    if let Some(t) = read_text(fs, "/etc/redhat-release")? {
        // "CentOS release 6.10 (Final)", "Red Hat Enterprise Linux Server release 5.11 (Tikanga)"
        let id = if t.starts_with("CentOS") {
            "centos"
        } else {
            "rhel"
        };
        let version = t
            .split_whitespace()
            .skip_while(|w| *w != "release")
            .nth(1)
            .unwrap_or("")
            .to_owned();
        return Ok((DistroFamily::Rhel, id.into(), version));
    }
    if let Some(t) = read_text(fs, "/etc/SuSE-release")? {
        // "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"
        let id = if t.starts_with("openSUSE") { "opensuse" } else { "sles" };
        let field = |k: &str| {
            t.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(key, _)| key.trim() == k)
                .map(|(_, v)| v.trim().to_owned())
        };
        let version = match (field("VERSION"), field("PATCHLEVEL")) {
            (Some(v), Some(p)) if !v.contains('.') => format!("{v}.{p}"),
            (Some(v), _) => v,
            (None, _) => String::new(),
        };
        return Ok((DistroFamily::Suse, id.into(), version));
    }
    if let Some(t) = read_text(fs, "/etc/debian_version")? {
        return Ok((DistroFamily::Debian, "debian".into(), t.trim().to_owned()));
    }
    Ok((DistroFamily::Other, String::new(), String::new()))
}

/// Module name of a `modules.dep`/`modules.builtin` path (`kernel/drivers/block/virtio_blk.ko.xz:` → `virtio_blk`).
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// Kernel config options for the drivers in [`VIRTIO_MODULES`].
const CONFIG_OF: [(&str, &str); 8] = [
    ("virtio_pci_modern_dev", "CONFIG_VIRTIO_PCI_LIB"),
    ("virtio_pci_legacy_dev", "CONFIG_VIRTIO_PCI_LIB_LEGACY"),
    ("virtio_pci", "CONFIG_VIRTIO_PCI"),
    ("virtio_blk", "CONFIG_VIRTIO_BLK"),
    ("virtio_scsi", "CONFIG_SCSI_VIRTIO"),
    ("virtio_net", "CONFIG_VIRTIO_NET"),
    ("virtio_console", "CONFIG_VIRTIO_CONSOLE"),
    ("virtio_rng", "CONFIG_HW_RANDOM_VIRTIO"),
];

fn kernel(fs: &dyn GuestFs, version: &str) -> Result<KernelFacts, LinuxError> {
    let initrd = first_existing(
        fs,
        &[
            format!("/boot/initrd.img-{version}"),
            format!("/boot/initramfs-{version}.img"),
            format!("/boot/initrd-{version}.img"),
            format!("/boot/initrd-{version}"),
        ],
    )?;
    let config = read_text(fs, &format!("/boot/config-{version}"))?.unwrap_or_default();
    let opt = |name: &str| {
        config.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_owned)
        })
    };
    let xen_pv_only = opt("CONFIG_X86_XEN").as_deref() == Some("y")
        || opt("CONFIG_X86_64_XEN").as_deref() == Some("y");
    let dep = read_text(fs, &format!("/lib/modules/{version}/modules.dep"))?;
    let builtin =
        read_text(fs, &format!("/lib/modules/{version}/modules.builtin"))?.unwrap_or_default();
    let built: Vec<String> = builtin.lines().map(module_name).collect();
    let loadable: Vec<String> = dep
        .iter()
        .flat_map(|d| d.lines())
        .filter_map(|l| l.split(':').next())
        .map(module_name)
        .collect();
    let cfg = |m: &str| {
        CONFIG_OF
            .iter()
            .find(|(n, _)| *n == m)
            .and_then(|(_, o)| opt(o))
    };
    let is_builtin = |m: &str| built.iter().any(|h| h == m) || cfg(m).as_deref() == Some("y");
    let is_module = |m: &str| {
        loadable.iter().any(|h| h == m) || (dep.is_none() && cfg(m).as_deref() == Some("m"))
    };
    let virtio: Vec<String> = VIRTIO_MODULES
        .iter()
        .filter(|m| is_builtin(m) || is_module(m))
        .map(|m| (*m).to_owned())
        .collect();
    let builtin: Vec<String> = virtio.iter().filter(|m| is_builtin(m)).cloned().collect();
    let virtio_pci = virtio_support(
        fs,
        version,
        &config,
        dep.as_deref(),
        &builtin,
        &virtio,
        &loadable,
    )?;
    let initrd_drivers = match &initrd {
        Some(p) => Some(initrd_drivers(fs, p)?),
        None => None,
    };
    Ok(KernelFacts {
        version: version.to_owned(),
        vmlinuz: format!("/boot/vmlinuz-{version}"),
        initrd,
        initrd_drivers,
        xen_pv_only,
        virtio,
        builtin,
        virtio_pci,
    })
}

/// The largest initramfs image read to list its drivers, and what that may decompress.
const MAX_INITRD: u64 = 256 << 20;
const INITRD_LIMITS: ferry_inspectors::initramfs::Limits = ferry_inspectors::initramfs::Limits {
    max_segment: 512 << 20,
    max_total: 512 << 20,
};

/// The virtio drivers of the initramfs at `path`; an oversized or damaged image is recorded as
/// unreadable with its one-line reason (the rebuild then reports it too).
fn initrd_drivers(fs: &dyn GuestFs, path: &str) -> Result<InitrdDrivers, LinuxError> {
    let Some(st) = fs.stat(path)? else {
        return Ok(InitrdDrivers::unreadable(
            path,
            format!("{path}: not found"),
        ));
    };
    if st.kind != crate::guestfs::FileKind::File || st.size > MAX_INITRD {
        return Ok(InitrdDrivers::unreadable(
            path,
            format!(
                "{path}: invalid size {}: not a file of at most {MAX_INITRD} bytes",
                st.size
            ),
        ));
    }
    let raw = fs.read_file(path)?;
    Ok(
        ferry_inspectors::initramfs::virtio_drivers(path, raw, INITRD_LIMITS)
            .unwrap_or_else(|e| InitrdDrivers::unreadable(path, e)),
    )
}

/// The kernel's virtio-pci interface, judged by the inspector's rules from the same files.
fn virtio_support(
    fs: &dyn GuestFs,
    version: &str,
    config: &str,
    dep: Option<&str>,
    builtin: &[String],
    virtio: &[String],
    loadable: &[String],
) -> Result<VirtioSupport, LinuxError> {
    use ferry_inspectors::os::linux::virtio::{self as v, KernelEvidence, ModuleFile};
    let dir = format!("/lib/modules/{version}");
    if dep.is_none() && builtin.is_empty() && fs.stat(&dir)?.is_none() {
        // No module metadata at all: which drivers the kernel has cannot be told.
        return Ok(VirtioSupport {
            interface: v::VirtioInterface::Unknown,
            force_legacy: force_legacy(fs, version)?,
            reason: format!("{dir} is missing: the kernel's drivers cannot be judged: transitional devices, the conservative choice"),
        });
    }
    let is_builtin = builtin.iter().any(|m| m == "virtio_pci");
    let path = dep
        .iter()
        .flat_map(|d| d.lines())
        .filter_map(|l| l.split(':').next())
        .find(|p| module_name(p) == "virtio_pci")
        .map(|p| format!("{dir}/{}", p.trim()));
    let bytes = match &path {
        Some(p) if !is_builtin && p.ends_with(".ko") => match fs.stat(p)? {
            // A module that cannot be read is judged conservatively, not an error.
            Some(st) if st.size <= MAX_READ => Some(fs.read_file(p).unwrap_or_default()),
            Some(_) => Some(Vec::new()),
            None => None,
        },
        _ => None,
    };
    let module = match &path {
        _ if is_builtin => ModuleFile::NotModule,
        Some(p) if p.ends_with(".ko") => ModuleFile::Plain(p, bytes.as_deref()),
        Some(p) => ModuleFile::Compressed(p),
        None => ModuleFile::NotModule,
    };
    let builtin_modinfo = match fs.stat(&format!("{dir}/modules.builtin.modinfo"))? {
        Some(st) if st.size <= MAX_READ => {
            fs.read_file(&format!("{dir}/modules.builtin.modinfo")).ok()
        }
        _ => None,
    };
    let force_legacy = force_legacy(fs, version)?;
    Ok(v::assess(&KernelEvidence {
        version,
        config,
        has_virtio_pci: virtio.iter().any(|m| m == "virtio_pci"),
        builtin_modinfo: builtin_modinfo.as_deref(),
        builtin: is_builtin,
        module,
        modules: loadable,
        force_legacy,
    }))
}

/// Where `virtio_pci.force_legacy` is set for kernel `version` (boot menus, BLS entries, the
/// default command line, modprobe configuration), as the inspector looks.
fn force_legacy(fs: &dyn GuestFs, version: &str) -> Result<Option<String>, LinuxError> {
    use ferry_inspectors::os::linux::virtio as v;
    let image = format!("vmlinuz-{version}");
    let mut menus: Vec<String> = [
        "/boot/grub/grub.cfg",
        "/boot/grub2/grub.cfg",
        "/boot/grub/grub.conf",
        "/boot/grub/menu.lst",
        "/boot/extlinux/extlinux.conf",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if fs.is_dir("/boot/efi/EFI")? {
        for d in fs.read_dir("/boot/efi/EFI")? {
            menus.push(format!("/boot/efi/EFI/{d}/grub.cfg"));
        }
    }
    let mut bls = Vec::new();
    if fs.is_dir("/boot/loader/entries")? {
        for f in fs.read_dir("/boot/loader/entries")? {
            if f.contains(version) {
                bls.push(format!("/boot/loader/entries/{f}"));
            }
        }
    }
    for m in menus.iter().chain(&bls) {
        let Some(t) = read_text(fs, m)? else { continue };
        let entry = bls.contains(m);
        if t.lines()
            .any(|l| (entry || l.contains(&image)) && v::force_legacy_cmdline(l))
        {
            return Ok(Some(format!("kernel command line in {m}")));
        }
    }
    for (f, key) in [
        ("/etc/default/grub", "GRUB_CMDLINE_LINUX"),
        ("/boot/grub2/grubenv", "kernelopts"),
        ("/boot/grub/grubenv", "kernelopts"),
    ] {
        let Some(t) = read_text(fs, f)? else { continue };
        if t.lines().any(|l| {
            l.trim_start().starts_with(key)
                && v::force_legacy_cmdline(l.split_once('=').map_or("", |x| x.1))
        }) {
            return Ok(Some(format!("kernel command line in {f}")));
        }
    }
    let mut conf = vec!["/etc/modprobe.conf".to_owned()];
    for d in ["/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d"] {
        if fs.is_dir(d)? {
            for f in fs.read_dir(d)?.into_iter().take(1000) {
                if f.ends_with(".conf") {
                    conf.push(format!("{d}/{f}"));
                }
            }
        }
    }
    for f in conf {
        if read_text(fs, &f)?.is_some_and(|t| v::force_legacy_modprobe(&t)) {
            return Ok(Some(format!("modprobe options in {f}")));
        }
    }
    Ok(None)
}

fn bootloader(fs: &dyn GuestFs) -> Result<Bootloader, LinuxError> {
    let s = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    let mut grub2_paths = s(&["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"]);
    let mut env_paths = s(&["/boot/grub2/grubenv", "/boot/grub/grubenv"]);
    // UEFI guests may keep the real menu on the ESP (RHEL 8); a stub that only loads
    // /boot/grub2/grub.cfg with `configfile` is not the menu.
    if fs.is_dir("/boot/efi/EFI")? {
        for vendor in fs.read_dir("/boot/efi/EFI")? {
            let cfg = format!("/boot/efi/EFI/{vendor}/grub.cfg");
            if read_text(fs, &cfg)?.is_some_and(|t| !t.contains("configfile")) {
                grub2_paths.push(cfg);
                env_paths.push(format!("/boot/efi/EFI/{vendor}/grubenv"));
            }
        }
    }
    let grub2 = first_existing(fs, &grub2_paths)?;
    let legacy = first_existing(fs, &s(&["/boot/grub/grub.conf", "/boot/grub/menu.lst"]))?;
    let (kind, config) = match (grub2, legacy) {
        (Some(c), _) => (BootloaderKind::Grub2, Some(c)),
        (None, Some(c)) => (BootloaderKind::GrubLegacy, Some(c)),
        (None, None) => (BootloaderKind::None, None),
    };
    Ok(Bootloader {
        kind,
        config,
        grubenv: first_existing(fs, &env_paths)?,
        bls_dir: fs
            .is_dir("/boot/loader/entries")?
            .then(|| "/boot/loader/entries".to_owned()),
        device_map: first_existing(fs, &s(&["/boot/grub/device.map", "/boot/grub2/device.map"]))?,
    })
}

/// Fills [`GuestFacts`] from the guest's files.
pub fn detect(fs: &dyn GuestFs) -> Result<GuestFacts, LinuxError> {
    let (family, distro, version) = distro(fs)?;
    let mut kernels = Vec::new();
    if fs.is_dir("/boot")? {
        for name in fs.read_dir("/boot")? {
            let Some(v) = name.strip_prefix("vmlinuz-") else {
                continue;
            };
            if v.contains("-rescue-") || v.ends_with(".hmac") {
                continue;
            }
            kernels.push(kernel(fs, v)?);
        }
    }
    let initramfs =
        if family == DistroFamily::Debian && fs.exists("/etc/initramfs-tools/initramfs.conf")? {
            InitramfsGenerator::InitramfsTools
        } else if fs.exists("/etc/dracut.conf")? || fs.is_dir("/etc/dracut.conf.d")? {
            InitramfsGenerator::Dracut
        } else if fs.exists("/sbin/mkinitrd")? {
            InitramfsGenerator::Mkinitrd
        } else {
            InitramfsGenerator::Unknown
        };
    let uefi = fs.is_dir("/boot/efi/EFI")? && !fs.read_dir("/boot/efi/EFI")?.is_empty();
    let selinux = read_text(fs, "/etc/selinux/config")?.is_some_and(|t| {
        matches!(
            selinux::mode(&t).as_deref(),
            Some("enforcing") | Some("permissive")
        )
    });
    Ok(GuestFacts {
        family,
        distro,
        version,
        kernels,
        bootloader: bootloader(fs)?,
        initramfs,
        firmware: if uefi { Firmware::Uefi } else { Firmware::Bios },
        selinux,
    })
}
