//! `-i`: reading the source into the neutral model.

use super::{ConvertArgs, InputMode};
use anyhow::{bail, Context};
use ferry_formats::disk::{probe_format, ImageFormat};
use ferry_formats::model::{Bus, Datastores, Disk, DiskSource, VmModel};
use std::path::{Path, PathBuf};

fn datastores(args: &ConvertArgs) -> anyhow::Result<Datastores> {
    let mut ds = Datastores { dir: args.datastore_dir.clone(), ..Default::default() };
    for d in &args.disk_file {
        let Some((reference, file)) = d.rsplit_once('=') else { bail!("--disk-file {d:?}: expected REFERENCE=FILE") };
        if ds.files.insert(reference.to_string(), PathBuf::from(file)).is_some() {
            bail!("--disk-file {d:?}: {reference:?} is already mapped");
        }
    }
    for d in &args.datastore {
        let Some((name, dir)) = d.split_once('=') else { bail!("--datastore {d:?}: expected NAME=DIR") };
        if ds.map.insert(name.to_string(), PathBuf::from(dir)).is_some() {
            bail!("--datastore {d:?}: datastore {name:?} is already mapped");
        }
    }
    Ok(ds)
}

fn one_source(args: &ConvertArgs) -> anyhow::Result<&PathBuf> {
    match args.source.as_slice() {
        [one] => Ok(one),
        _ => bail!("-i {:?} takes exactly one source, got {}", args.input, args.source.len()),
    }
}

/// Bare disk images: a guest with default hardware, the disks on virtio in order.
fn from_disks(args: &ConvertArgs) -> anyhow::Result<VmModel> {
    let mut vm = VmModel { hypervisor: "disk".into(), memory_bytes: 2 << 30, vcpus: 1, ..Default::default() };
    let first = args.source.first().context("no disk given")?;
    vm.name = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "guest".into());
    for (i, p) in args.source.iter().enumerate() {
        let format = match &args.input_format {
            Some(f) => ImageFormat::from_name(f).with_context(|| format!("--input-format {f:?}: unknown format"))?,
            None => probe_format(p)?,
        };
        vm.disks.push(Disk {
            source: DiskSource::File { path: p.clone() },
            format: Some(format.name().to_string()),
            bus: Bus::Virtio,
            controller_model: None,
            controller: 0,
            unit: i as u32,
            target_dev: None,
            readonly: false,
            capacity: None,
        });
    }
    Ok(vm)
}

/// Reads a VM description (every mode but `disk`, which has none).
pub fn read_description(mode: InputMode, path: &Path) -> anyhow::Result<VmModel> {
    read_description_vm(mode, path, None)
}

/// Reads a VM description; `vm` picks one VM of a multi-VM OVF.
pub fn read_description_vm(mode: InputMode, path: &Path, vm: Option<&str>) -> anyhow::Result<VmModel> {
    if vm.is_some() && mode != InputMode::Ova {
        bail!("--vm chooses a VM of a multi-VM OVF; it needs -i ova");
    }
    Ok(match mode {
        InputMode::Vmx => ferry_formats::vmx::read_vmx(path)?,
        InputMode::Ova => ferry_formats::ovf::read_ova_vm(path, vm)?.vm,
        InputMode::Libvirtxml => ferry_formats::libvirt::read_libvirt_xml(path)?,
        InputMode::Xen => ferry_formats::xen::read_xen(path)?,
        InputMode::Disk => bail!("-i disk has no description file"),
    })
}

/// Reads the source named on the command line.
pub fn read(args: &ConvertArgs) -> anyhow::Result<VmModel> {
    let mut vm = match args.input {
        InputMode::Disk => from_disks(args)?,
        mode => read_description_vm(mode, one_source(args)?, args.vm.as_deref())?,
    };
    vm.resolve_datastores(&datastores(args)?);
    Ok(vm)
}
