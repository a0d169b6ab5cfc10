//! The machine profiles and the allocator: fixed slots from the profile data, MACs kept,
//! stable serials, SMBIOS UUID = BIOS UUID, byte-identical output for the same input.

use ferry_formats::layout::{allocate, parse_addr, DeviceKind, LayoutError, OutputPlan, PciAddr, Profile};
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
    }
}

fn addr(slot: u8) -> PciAddr {
    PciAddr { bus: 0, slot, function: 0 }
}

#[test]
fn profiles_load_and_match_qemu_chipset() {
    assert_eq!(Profile::names(), ["q35-v1", "pc-v1"]);
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
