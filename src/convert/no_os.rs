//! When inspection finds no operating system: a guest whose source names one, or whose disks
//! hold Linux or Windows partitions or filesystems, is refused (its disks copied unchanged
//! would not boot on virtio, and the user would learn it only at the first boot), naming what
//! was found and what Ferry could not read. `--copy-only` is the way to copy such disks as
//! they are. Disks with nothing of the kind (blank, or another OS's data) keep the warning.
use ferry_formats::model::VmModel;
use ferry_inspectors::partition::{partition_name, PartKind};
use ferry_inspectors::Inspection;

/// The one-line refusal, or `None` when nothing suggests a guest OS should have been found.
pub fn refusal(vm: &VmModel, rep: &Inspection) -> Option<String> {
    let hint = vm.os_hint.as_deref().filter(|h| names_an_os(h));
    let mut found = Vec::new();
    let mut unread = Vec::new();
    for f in &rep.filesystems {
        if !is_os_fs(&f.fstype) {
            continue;
        }
        found.push(format!("{} ({})", f.device, f.fstype));
        if !ferry_inspectors::fs::readable(&f.fstype) {
            unread.push(format!("{}: {} is not read by Ferry yet", f.device, f.fstype));
        }
    }
    for d in &rep.disks {
        for p in d.partition_table.iter().flat_map(|t| &t.partitions) {
            let os_part = matches!(p.kind, PartKind::Linux | PartKind::LinuxLvm | PartKind::LinuxRaid | PartKind::MsBasicData);
            let name = partition_name(&d.name, p.number);
            let probed = rep.filesystems.iter().any(|f| f.device == name);
            if os_part && !probed {
                found.push(format!("{name} (partition type {})", p.type_id));
                unread.push(format!("{name}: no filesystem recognised"));
            }
        }
    }
    if hint.is_none() && found.is_empty() {
        return None;
    }
    let mut why = Vec::new();
    if let Some(h) = hint {
        why.push(format!("the source names guest OS {h:?}"));
    }
    if !found.is_empty() {
        why.push(format!("the disks hold {}", found.join(", ")));
    }
    let unread = if unread.is_empty() { String::new() } else { format!(" (could not read: {})", unread.join("; ")) };
    Some(format!(
        "no operating system found on the disks, though {}{unread}: nothing converted; use --copy-only to copy the disks unchanged",
        why.join(" and ")
    ))
}

/// Whether a source's OS identifier names an OS (VMX `other`/`other-64`, OVF `other`, an
/// empty value: no).
fn names_an_os(hint: &str) -> bool {
    let h = hint.trim().to_ascii_lowercase();
    !matches!(h.as_str(), "" | "other" | "other-64" | "other64" | "otherguest" | "otherguest64" | "unknown")
}

/// Filesystems Linux or Windows guests live on (swap, FAT and volume-manager members do not
/// show a guest by themselves).
fn is_os_fs(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "ntfs" | "crypto_LUKS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_inspectors::report::FsReport;

    fn fs(device: &str, fstype: &str) -> FsReport {
        FsReport { device: device.into(), fstype: fstype.into(), uuid: None, label: None, version: None, features: Vec::new(), size: 1 << 30, btrfs: None }
    }

    #[test]
    fn refuses_with_what_it_found_and_could_not_read() {
        let mut vm = VmModel::default();
        let mut rep = Inspection::default();
        assert_eq!(refusal(&vm, &rep), None, "blank disks keep the warning");
        rep.filesystems.push(fs("/dev/sda1", "vfat"));
        assert_eq!(refusal(&vm, &rep), None, "a FAT data disk alone shows no guest");
        vm.os_hint = Some("other-64".into());
        assert_eq!(refusal(&vm, &rep), None);
        vm.os_hint = Some("debian12-64".into());
        rep.filesystems.push(fs("/dev/sda2", "crypto_LUKS"));
        assert_eq!(
            refusal(&vm, &rep).as_deref(),
            Some(
                "no operating system found on the disks, though the source names guest OS \"debian12-64\" and the disks hold \
                 /dev/sda2 (crypto_LUKS) (could not read: /dev/sda2: crypto_LUKS is not read by Ferry yet): nothing converted; use \
                 --copy-only to copy the disks unchanged"
            )
        );
        vm.os_hint = None;
        rep.filesystems[1] = fs("/dev/sda2", "ext4");
        let r = refusal(&vm, &rep).expect("an ext4 filesystem without an OS");
        assert!(r.contains("the disks hold /dev/sda2 (ext4): nothing converted"), "{r}");
    }
}
