//! The Windows branch of the conversion step: the system volume opened through the one
//! dispatch by type ([`ferry_converters::fs::open`], NTFS), the plan made from inspection
//! and the virtio-win tree (`--virtio-win`, else `VIRTIO_WIN`, as virt-v2v), printed, and
//! applied on the overlay.

use super::linux::{GuestReport, Options};
use super::volumes::Volumes;
use anyhow::{bail, Context};
use ferry_converters::fs::{self, Filesystem, Volume};
use ferry_converters::windows::{esp, firstboot, plan};
use ferry_formats::model::VmModel;
use ferry_inspectors::os::OsInfo;
use ferry_inspectors::Inspection;
use std::path::PathBuf;

/// The virtio-win tree: `--virtio-win`, else the `VIRTIO_WIN` environment variable.
pub fn virtio_win(opt: Option<&PathBuf>) -> Option<PathBuf> {
    opt.cloned().or_else(|| std::env::var_os("VIRTIO_WIN").filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Converts the Windows root `os` on the overlays behind `vols`.
pub fn convert(
    os: &OsInfo,
    rep: &Inspection,
    vols: &Volumes,
    names: &[String],
    vm: &VmModel,
    opts: &Options,
    report: &mut GuestReport,
) -> anyhow::Result<()> {
    report.os_type = "windows".into();
    report.distro = os.product_name.clone();
    report.version = format!("{}.{}", os.major_version, os.minor_version);
    report.root = os.root.clone();
    plan::check_safe(os)?;
    let Some(vw) = virtio_win(opts.virtio_win.as_ref()) else {
        bail!(
            "{}: converting Windows needs the virtio-win drivers: give --virtio-win PATH (or VIRTIO_WIN=PATH), the virtio-win ISO or a directory laid out as it; --copy-only copies the disks unchanged",
            os.root
        );
    };
    let vw = plan::VirtioWin::open(&vw)?;
    let tools = std::env::var_os("VIRT_TOOLS_DATA_DIR").map(PathBuf::from);
    let host = firstboot::find_host(tools.as_deref());
    let p = plan::plan(os, &vw, host, firstboot::find_pnp_wait(tools.as_deref()), &opts.static_ips, opts.block_driver)?;
    if opts.print {
        println!(
            "Converting {} (build {}, {}) on {} to KVM:",
            os.product_name,
            os.windows_build.as_deref().unwrap_or("?"),
            os.arch,
            os.root
        );
        print!("{p}");
        println!("  NTFS: the USN change journal, where enabled, gets a new journal id (its readers rescan the volume: the journal holds no records of these edits)");
        if let (Some(path), true) = (esp::fallback_path(&os.arch), rep.filesystems.iter().any(|f| f.fstype == "vfat")) {
            println!("  UEFI: \\{} ensured on the ESP (a copy of Windows Boot Manager) where missing or different", path.replace('/', "\\"));
            println!("  UEFI: graphicsmodedisabled removed from the default loader in \\EFI\\Microsoft\\Boot\\BCD where set");
        }
    }
    report.warnings.extend(p.warnings.iter().cloned());
    if opts.dry_run {
        report.windows_plan = Some(p);
        return Ok(());
    }
    let describe = |i: usize| vm.disks.get(i).map(|d| d.source.describe()).unwrap_or_default();
    let e = vols
        .open(rep, names, describe, &os.root)?
        .with_context(|| format!("{} is not a partition, whole disk or logical volume of the guest", os.root))?;
    let vol = Volume::new(e.dev, e.start, e.len, &e.name)?;
    let fstype = rep.filesystems.iter().find(|f| f.device == os.root).map_or("", |f| f.fstype.as_str());
    let Filesystem::Ntfs(mut ntfs) = fs::open(vol, fstype, &e.name)? else {
        bail!("{}: the Windows system volume is {fstype}, not NTFS: Ferry converts Windows only on NTFS", os.root);
    };
    report.mounted = vec!["C:".into()];
    report.applied = plan::apply(&p, &vw, &mut ntfs, &e.name)?;
    // The change journal has no records of these edits: it gets a new id, so that its
    // readers rescan the volume.
    if let ferry_converters::fs::ntfs::UsnReset::Reset { old_id, new_id, lowest_valid } = ntfs.reset_usn_journal()? {
        report.applied += 1;
        if opts.print {
            let lowest = lowest_valid.map_or(String::new(), |l| format!(", lowest valid USN {l}"));
            println!("C: reset the USN change journal ($Extend\\$UsnJrnl): journal id {old_id:#x} -> {new_id:#x}{lowest}");
        }
    }
    // UEFI guests: the fallback loader on every ESP that holds Windows Boot Manager.
    for f in rep.filesystems.iter().filter(|f| f.fstype == "vfat") {
        let Some(e) = vols.open(rep, names, describe, &f.device)? else { continue };
        let vol = Volume::new(e.dev, e.start, e.len, &e.name)?;
        let Filesystem::Fat(fat) = fs::open(vol, "vfat", &e.name)? else { continue };
        let mut changes = 0;
        if let Some(path) = esp::ensure_fallback(&fat, &os.arch)? {
            changes += 1;
            if opts.print {
                println!("{}: copied \\EFI\\Microsoft\\Boot\\bootmgfw.efi to \\{}", f.device, path.replace('/', "\\"));
            }
        }
        match esp::fix_bcd(&fat, &f.device) {
            Ok(esp::BcdEdit::Unchanged) => {}
            Ok(esp::BcdEdit::Removed(object)) => {
                changes += 1;
                if opts.print {
                    println!("{}: removed graphicsmodedisabled (16000046) from the default loader {object} in \\EFI\\Microsoft\\Boot\\BCD", f.device);
                }
            }
            Err(esp::BcdError::Fs(e)) => return Err(e.into()),
            Err(e) => report.warnings.push(format!("{e}: the BCD store is left as it was")),
        }
        if changes > 0 {
            report.applied += changes;
            report.mounted.push(format!("{} (ESP)", f.device));
        }
        fat.unmount()?;
    }
    if opts.print {
        println!("applied {} changes", report.applied);
    }
    report.windows_plan = Some(p);
    Ok(())
}
