//! The machine profiles and the allocator: fixed slots from the profile data, MACs kept,
//! stable serials, SMBIOS UUID = BIOS UUID, byte-identical output for the same input.

use ferry_formats::layout::{allocate, parse_addr, BlockDriver, DeviceKind, LayoutError, OutputPlan, PciAddr, Profile, VirtioModel};
use ferry_formats::model::VmModel;
use std::path::{Path, PathBuf};

fn vmx(name: &str) -> VmModel {
    ferry_formats::vmx::read_vmx(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs/vmx").join(name)).unwrap()
}

fn plan(vm: &VmModel) -> OutputPlan {
    OutputPlan {
        name: vm.name.clone(),
        disk_files: (0..vm.disks.len()).map(|i| PathBuf::from(format!("/out/{}-{i}", vm.name))).collect(),
        disk_format: "qcow2".into(),
        nic_backends: Vec::new(),
        virtio: VirtioModel::Modern,
        block_driver: BlockDriver::VirtioBlk,
    }
}

fn addr(slot: u8) -> PciAddr {
    PciAddr { bus: 0, slot, function: 0 }
}

#[test]
fn profiles_load_and_match_qemu_chipset() {
    assert_eq!(Profile::names(), ["q35-v1", "pc-v1", "q35-v2", "pc-v2"]);
    let q35 = Profile::builtin("q35-v1").unwrap();
    let chip: Vec<(String, PciAddr)> = q35.chipset.iter().map(|c| (c.function.clone(), parse_addr(&c.addr).unwrap())).collect();
    assert_eq!(chip[0], ("mch".into(), addr(0)));
    assert_eq!(chip[1].1, PciAddr { bus: 0, slot: 0x1f, function: 0 });
    assert_eq!(chip[2].1, PciAddr { bus: 0, slot: 0x1f, function: 2 });
    assert_eq!(chip[3].1, PciAddr { bus: 0, slot: 0x1f, function: 3 });
    let pc = Profile::builtin("pc-v1").unwrap();
    let funcs: Vec<&str> = pc.chipset.iter().map(|c| c.addr.as_str()).collect();
    assert_eq!(funcs, ["00:00.0", "00:01.0", "00:01.1", "00:01.3"]);
    assert!(matches!(Profile::builtin("q35-v9"), Err(LayoutError::UnknownProfile { .. })));
}

#[test]
fn esxi_guest_layout() {
    let vm = vmx("esxi8-rhel9.vmx");
    let p = Profile::builtin("q35-v1").unwrap();
    let l = allocate(&vm, &p, &plan(&vm)).unwrap();
    let s = &l.spec;
    assert_eq!(s.smbios_uuid.as_deref(), Some("42256ec1-e066-9364-3dd1-36a0b75263dd"));
    assert_eq!(s.uuid.as_deref(), Some("50250f27-538b-5091-a43b-a50ce95f2382"));
    assert_eq!(s.memory_mib, 8192);
    let by_id = |id: &str| s.devices.iter().find(|d| d.id == id).unwrap();
    assert_eq!(by_id("console0").addr, addr(2));
    assert_eq!(by_id("balloon0").addr, addr(3));
    assert_eq!(by_id("rng0").addr, addr(4));
    assert_eq!(by_id("net0").addr, addr(5));
    assert_eq!(by_id("net1").addr, addr(6));
    assert_eq!(by_id("disk0").addr, addr(13));
    assert_eq!(by_id("disk1").addr, addr(14));
    assert_eq!(l.video, addr(1));
    let DeviceKind::VirtioNet { mac, .. } = &by_id("net1").kind else { panic!() };
    assert_eq!(mac, "00:50:56:a5:3e:01");
    let serials: Vec<String> = s
        .devices
        .iter()
        .filter_map(|d| match &d.kind {
            DeviceKind::VirtioBlk { serial, bootindex, .. } => Some(format!("{serial}/{bootindex:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(serials.len(), 2);
    assert_ne!(serials[0], serials[1]);
    assert!(serials[0].ends_with("/Some(1)") && serials[1].ends_with("/None"));
    for s in &serials {
        let serial = s.split('/').next().unwrap();
        assert!(serial.len() <= 20 && serial.starts_with("FRY"), "{serial}");
    }
    // Same input → byte-identical spec; the spec parses back.
    let again = allocate(&vmx("esxi8-rhel9.vmx"), &p, &plan(&vm)).unwrap();
    assert_eq!(l.spec.to_json(), again.spec.to_json());
    assert_eq!(ferry_formats::layout::MachineSpec::from_json(&l.spec.to_json()).unwrap(), l.spec);
    // Slots never collide with each other or the chipset.
    let mut used: Vec<PciAddr> = s.devices.iter().map(|d| d.addr).chain([l.video]).collect();
    used.extend(p.chipset.iter().map(|c| parse_addr(&c.addr).unwrap()));
    let n = used.len();
    used.sort();
    used.dedup();
    assert_eq!(used.len(), n);
}

#[test]
fn generated_macs_and_limits() {
    let mut vm = vmx("esxi8-rhel9.vmx");
    vm.nics[0].mac = None;
    let p = Profile::builtin("pc-v1").unwrap();
    let a = allocate(&vm, &p, &plan(&vm)).unwrap();
    let b = allocate(&vm, &p, &plan(&vm)).unwrap();
    let mac = |l: &ferry_formats::layout::Layout| match &l.spec.devices.iter().find(|d| d.id == "net0").unwrap().kind {
        DeviceKind::VirtioNet { mac, .. } => mac.clone(),
        _ => unreachable!(),
    };
    assert!(mac(&a).starts_with("52:54:00:"), "{}", mac(&a));
    assert_eq!(mac(&a), mac(&b));
    assert_eq!(a.spec.devices.iter().find(|d| d.id == "disk0").unwrap().addr, addr(14));
    // A different VM gets a different MAC and serials.
    let mut other = vm.clone();
    other.bios_uuid = Some("00000000-0000-4000-8000-000000000001".into());
    assert_ne!(mac(&allocate(&other, &p, &plan(&other)).unwrap()), mac(&a));
    // 19 disks do not fit 18 disk slots.
    let mut big = vm.clone();
    big.disks = (0..19).map(|_| vm.disks[0].clone()).collect();
    let e = allocate(&big, &p, &plan(&big)).unwrap_err().to_string();
    assert_eq!(e, "19 disk devices do not fit machine profile pc-v1 (at most 18)");
}

#[test]
fn transitional_layout_keeps_every_address() {
    let vm = vmx("esxi8-rhel9.vmx");
    for name in Profile::names() {
        let profile = Profile::builtin(name).unwrap();
        let modern = allocate(&vm, &profile, &plan(&vm)).unwrap();
        let t = allocate(&vm, &profile, &OutputPlan { virtio: VirtioModel::Transitional, ..plan(&vm) }).unwrap();
        let addrs = |l: &ferry_formats::layout::Layout| l.spec.devices.iter().map(|d| (d.id.clone(), d.addr)).collect::<Vec<_>>();
        assert_eq!(addrs(&modern), addrs(&t), "{name}");
        assert!(t.spec.devices.iter().all(|d| d.model == VirtioModel::Transitional));
        // v1 specs stay byte-identical: a modern device writes no `model`.
        let mj = modern.spec.to_json();
        assert!(!mj.contains("\"model\""), "{mj}");
        let tj = t.spec.to_json();
        assert_eq!(tj.matches("\"model\": \"transitional\"").count(), t.spec.devices.len(), "{tj}");
        assert_eq!(ferry_formats::layout::MachineSpec::from_json(&tj).unwrap(), t.spec);
        assert_eq!(profile.qemu_device("nic", VirtioModel::Transitional).unwrap(), "virtio-net-pci-transitional");
        assert_eq!(profile.qemu_device("console", VirtioModel::Transitional).unwrap(), "virtio-serial-pci-transitional");
    }
    let ids: Vec<u16> = [
        DeviceKind::VirtioNet { mac: String::new(), backend: ferry_formats::layout::NetBackend::User },
        DeviceKind::VirtioConsole,
        DeviceKind::VirtioRng,
        DeviceKind::VirtioBalloon,
    ]
    .iter()
    .map(|k| k.pci_device_id(VirtioModel::Transitional))
    .collect();
    assert_eq!(ids, [0x1000, 0x1003, 0x1005, 0x1002]);
    // A spec asking for a model that does not exist is refused, naming the value.
    let bad = allocate(&vm, &Profile::builtin("q35-v1").unwrap(), &plan(&vm)).unwrap().spec.to_json().replacen("\"type\": \"virtio-console\"", "\"model\": \"virtio-0.8\", \"type\": \"virtio-console\"", 1);
    let e = ferry_formats::layout::MachineSpec::from_json(&bad).unwrap_err();
    assert!(e.contains("virtio-0.8"), "{e}");
}

#[test]
fn v2_profiles_add_root_ports_and_bridges_once_the_root_bus_is_full() {
    let mut vm = vmx("esxi8-rhel9.vmx");
    let (nic, disk) = (vm.nics[0].clone(), vm.disks[0].clone());
    vm.nics = (0..10).map(|i| ferry_formats::model::Nic { mac: Some(format!("52:54:00:00:00:{i:02x}")), ..nic.clone() }).collect();
    vm.disks = (0..40).map(|_| disk.clone()).collect();
    for (name, kind, bridges) in [("q35-v2", "pcie-root-port", 28), ("pc-v2", "pci-bridge", 1)] {
        let profile = Profile::builtin(name).unwrap();
        let l = allocate(&vm, &profile, &plan(&vm)).unwrap();
        assert_eq!(l, allocate(&vm, &profile, &plan(&vm)).unwrap(), "{name}: not deterministic");
        assert_eq!(l.spec.bridges.len(), bridges, "{name}");
        assert!(l.spec.bridges.iter().all(|b| b.kind == kind && b.addr.bus == 0));
        let mut addrs: Vec<PciAddr> = l.spec.devices.iter().map(|d| d.addr).chain(l.spec.bridges.iter().map(|b| b.addr)).collect();
        let n = addrs.len();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), n, "{name}: an address is used twice");
        // Every device off the root bus sits behind a bridge of the spec.
        for d in l.spec.devices.iter().filter(|d| d.addr.bus != 0) {
            assert!(l.spec.bridges.iter().any(|b| b.bus == d.addr.bus), "{name}: {} on bus {}", d.id, d.addr.bus);
        }
        // The same VM with fewer devices keeps the v1 addresses.
        let small = vmx("esxi8-rhel9.vmx");
        let v1 = allocate(&small, &Profile::builtin(&name.replace("v2", "v1")).unwrap(), &plan(&small)).unwrap();
        let v2 = allocate(&small, &profile, &plan(&small)).unwrap();
        assert!(v2.spec.bridges.is_empty());
        let a = |l: &ferry_formats::layout::Layout| l.spec.devices.iter().map(|d| d.addr).collect::<Vec<_>>();
        assert_eq!(a(&v1), a(&v2), "{name}");
    }
    // q35-v2 root ports: eight functions per slot from 0x1b, ports from 0x10.
    let l = allocate(&vm, &Profile::builtin("q35-v2").unwrap(), &plan(&vm)).unwrap();
    let b9 = &l.spec.bridges[9];
    assert_eq!((b9.id.as_str(), b9.addr, b9.bus, b9.port), ("pci.10", PciAddr { bus: 0, slot: 0x1c, function: 1 }, 10, Some(0x19)));
    // More than fits behind the expansion is refused, naming the class and the limit.
    vm.disks = (0..80).map(|_| disk.clone()).collect();
    let e = allocate(&vm, &Profile::builtin("q35-v2").unwrap(), &plan(&vm)).unwrap_err().to_string();
    assert_eq!(e, "80 disk devices do not fit machine profile q35-v2 (at most 44)");
}

#[test]
fn virtio_scsi_puts_every_disk_on_one_controller_at_the_first_disk_slot() {
    let mut vm = vmx("esxi8-rhel9.vmx");
    let disk = vm.disks[0].clone();
    for name in Profile::names() {
        let profile = Profile::builtin(name).unwrap();
        let blk = allocate(&vm, &profile, &plan(&vm)).unwrap();
        let scsi = allocate(&vm, &profile, &OutputPlan { block_driver: BlockDriver::VirtioScsi, ..plan(&vm) }).unwrap();
        let first_disk = blk.spec.devices.iter().find(|d| d.id == "disk0").unwrap().addr;
        let c: Vec<_> = scsi.spec.devices.iter().filter(|d| matches!(d.kind, DeviceKind::VirtioScsi { .. })).collect();
        assert_eq!(c.len(), 1, "{name}");
        assert_eq!((c[0].id.as_str(), c[0].addr), ("scsi0", first_disk), "{name}");
        assert!(!scsi.spec.devices.iter().any(|d| matches!(d.kind, DeviceKind::VirtioBlk { .. })), "{name}");
        // The other devices keep their slots.
        let others = |l: &ferry_formats::layout::Layout| l.spec.devices.iter().filter(|d| d.kind.class() != "disk").map(|d| (d.id.clone(), d.addr)).collect::<Vec<_>>();
        assert_eq!(others(&blk), others(&scsi), "{name}");
        let DeviceKind::VirtioScsi { disks } = &c[0].kind else { unreachable!() };
        let blk_serials: Vec<String> = blk.spec.devices.iter().filter_map(|d| if let DeviceKind::VirtioBlk { serial, .. } = &d.kind { Some(serial.clone()) } else { None }).collect();
        assert_eq!(disks.iter().map(|d| d.serial.clone()).collect::<Vec<_>>(), blk_serials, "{name}: serials as on virtio-blk");
        assert_eq!(disks.iter().map(|d| (d.id.as_str(), d.target, d.bootindex)).collect::<Vec<_>>(), [("disk0", 0, Some(1)), ("disk1", 1, None)]);
        assert_eq!(c[0].kind.pci_device_id(VirtioModel::Modern), 0x1048);
        assert_eq!(c[0].kind.pci_device_id(VirtioModel::Transitional), 0x1004);
        // The spec round-trips; its disks are listed in target order.
        let json = scsi.spec.to_json();
        assert!(json.contains("\"type\": \"virtio-scsi\""), "{json}");
        let back = ferry_formats::layout::MachineSpec::from_json(&json).unwrap();
        assert_eq!(back, scsi.spec);
        assert_eq!(back.disks().iter().map(|d| d.id).collect::<Vec<_>>(), ["disk0", "disk1"]);
    }
    // 40 disks need one slot on virtio-scsi (44 at most on virtio-blk), 257 are refused.
    vm.disks = (0..40).map(|_| disk.clone()).collect();
    let l = allocate(&vm, &Profile::builtin("q35-v2").unwrap(), &OutputPlan { block_driver: BlockDriver::VirtioScsi, ..plan(&vm) }).unwrap();
    assert!(l.spec.bridges.is_empty());
    vm.disks = (0..257).map(|_| disk.clone()).collect();
    let e = allocate(&vm, &Profile::builtin("q35-v2").unwrap(), &OutputPlan { block_driver: BlockDriver::VirtioScsi, ..plan(&vm) }).unwrap_err().to_string();
    assert_eq!(e, "257 virtio-scsi disk devices do not fit machine profile q35-v2 (at most 256)");
}
