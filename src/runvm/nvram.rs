//! OVMF's per-VM variable store and the OVMF builds Ferry's runtime cannot run.
//!
//! The store is `NAME.vars.fd` beside the spec: the file the emitted QEMU script
//! (`NAME.sh`, written to the same directory) passes as pflash unit 1, so both engines boot
//! the guest with the same variables. Like libvirt's `<nvram template=...>` and the script's
//! `cp`, it is copied from the OVMF build's template on first start: written under a
//! temporary name (`O_EXCL|O_NOFOLLOW`), then linked into place only if nothing is there.
use anyhow::{bail, Context};
use ferry_formats::layout::MachineSpec;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where QEMU's and libvirt's firmware descriptors are installed (QEMU's interop spec).
const DESCRIPTOR_DIRS: &[&str] = &["/etc/qemu/firmware", "/usr/share/qemu/firmware"];
/// The non-SMM OVMF build a refusal points to.
const NON_SMM: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// Largest descriptor read.
const DESCRIPTOR_MAX: u64 = 1 << 16;

/// The store of the spec at `spec_path`: `NAME.vars.fd` in the spec's directory.
pub fn path(spec_path: &Path, spec: &MachineSpec) -> anyhow::Result<PathBuf> {
    let name = &spec.name;
    if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
        bail!("{}: invalid name {:?}: cannot name its UEFI variable store after it", spec_path.display(), name.escape_debug().to_string());
    }
    let dir = spec_path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok(dir.join(format!("{name}.vars.fd")))
}

/// Opens the store read-write, first copying `template` to it if it does not exist. Refuses
/// a symlink or anything but a regular file there.
pub fn open(store: &Path, template: &Path) -> anyhow::Result<File> {
    match std::fs::symlink_metadata(store) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(store, template)?,
        Err(e) => return Err(e).with_context(|| format!("{}: UEFI variable store", store.display())),
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(store)
        .with_context(|| format!("{}: cannot open the UEFI variable store read-write (not a regular file, or a symlink?)", store.display()))?;
    let meta = f.metadata().with_context(|| store.display().to_string())?;
    if !meta.is_file() {
        bail!("{}: invalid UEFI variable store: not a regular file", store.display());
    }
    Ok(f)
}

fn create(store: &Path, template: &Path) -> anyhow::Result<()> {
    let mut data = Vec::new();
    File::open(template)
        .and_then(|f| f.take(ferry_runtime::firmware::pflash::FLASH_LIMIT + 1).read_to_end(&mut data))
        .with_context(|| format!("{}: cannot read the OVMF variable store template", template.display()))?;
    if data.len() as u64 > ferry_runtime::firmware::pflash::FLASH_LIMIT {
        bail!("{}: invalid OVMF variable store template: over QEMU's 8 MiB flash limit", template.display());
    }
    let file_name = store.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = store.with_file_name(format!(".{file_name}.part-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        // Appears under its final name only when complete, and never over another file.
        match std::fs::hard_link(&tmp, store) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("{}: cannot create the UEFI variable store from {}", store.display(), template.display()))
}

/// The firmware descriptor saying `code` needs SMM (feature `requires-smm`), if one does.
pub fn smm_descriptor(code: &Path) -> Option<PathBuf> {
    let want = std::fs::canonicalize(code).ok()?;
    for dir in DESCRIPTOR_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        paths.sort();
        for p in paths {
            let mut text = String::new();
            if File::open(&p).and_then(|f| f.take(DESCRIPTOR_MAX).read_to_string(&mut text)).is_err() {
                continue;
            }
            let Ok(d) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let Some(exe) = d.pointer("/mapping/executable/filename").and_then(|v| v.as_str()) else { continue };
            if std::fs::canonicalize(exe).ok().as_deref() != Some(want.as_path()) {
                continue;
            }
            let smm = d.get("features").and_then(|f| f.as_array()).is_some_and(|f| f.iter().any(|x| x.as_str() == Some("requires-smm")));
            if smm {
                return Some(p);
            }
        }
    }
    None
}

/// Refuses an OVMF build that needs SMM, in one line naming it and the non-SMM build.
pub fn refuse_smm(code: &Path) -> anyhow::Result<()> {
    if let Some(d) = smm_descriptor(code) {
        bail!(
            "OVMF build {} requires SMM (feature requires-smm in {}), which Ferry's runtime does not emulate: use the non-SMM build ({NON_SMM}, --firmware) or --engine qemu",
            code.display(),
            d.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_created_once_and_never_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let tpl = t.path().join("VARS.fd");
        std::fs::write(&tpl, vec![0xabu8; 8192]).unwrap();
        let store = t.path().join("vm.vars.fd");
        let f = open(&store, &tpl).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 8192);
        std::os::unix::fs::FileExt::write_all_at(&f, b"x", 0).unwrap();
        drop(f);
        open(&store, &tpl).unwrap(); // kept, not copied again
        assert_eq!(std::fs::read(&store).unwrap()[0], b'x');
        let link = t.path().join("l.vars.fd");
        std::os::unix::fs::symlink(&tpl, &link).unwrap();
        assert!(open(&link, &tpl).is_err());
        assert!(std::fs::read_dir(t.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".part-")));
    }

    #[test]
    fn debian_secure_boot_builds_need_smm() {
        let ms = Path::new("/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
        if !ms.exists() || !Path::new("/usr/share/qemu/firmware").is_dir() {
            eprintln!("skipped: Debian's ovmf and its QEMU firmware descriptors are not installed");
            return;
        }
        assert!(smm_descriptor(ms).is_some());
        assert!(smm_descriptor(Path::new("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")).is_some());
        assert!(smm_descriptor(Path::new(NON_SMM)).is_none());
        let e = refuse_smm(ms).unwrap_err().to_string();
        assert!(e.contains("requires SMM") && e.contains(NON_SMM), "{e}");
    }
}
