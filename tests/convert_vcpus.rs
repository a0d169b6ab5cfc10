//! vCPUs at boot and the maximum (xl `vcpus`/`maxvcpus`): the libvirt XML carries
//! `<vcpu current='N'>MAX</vcpu>`, the QEMU script `-smp N,maxcpus=MAX`, the spec both; libvirt's
//! schema and QEMU itself (QMP `query-hotpluggable-cpus`) accept them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
fn maxvcpus_is_kept_as_current_and_maximum() {
    let t = tempfile::tempdir().unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/configs/inputs/legacy-hvm.xm");
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "local", "--no-copy", "-os", t.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let xml = std::fs::read_to_string(t.path().join("legacy.xml")).unwrap();
    assert!(xml.contains("<vcpu placement='static' current='2'>4</vcpu>"), "{xml}");
    let sh = std::fs::read_to_string(t.path().join("legacy.sh")).unwrap();
    assert!(sh.contains("-smp 2,maxcpus=4"), "{sh}");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(t.path().join("legacy.ferry.json")).unwrap()).unwrap();
    assert_eq!((spec["vcpus"].as_u64(), spec["max_vcpus"].as_u64()), (Some(2), Some(4)));

    if have("virt-xml-validate") {
        let v = Command::new("virt-xml-validate").arg(t.path().join("legacy.xml")).arg("domain").output().unwrap();
        assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
    }
    if !have("qemu-system-x86_64") {
        eprintln!("SKIP: qemu-system-x86_64 is not installed");
        return;
    }
    // QEMU with the script's -smp: 4 possible CPUs, 2 of them present.
    let mut q = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-accel", "tcg", "-smp", "2,maxcpus=4", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    q.stdin
        .take()
        .unwrap()
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-hotpluggable-cpus\"}\n{\"execute\":\"quit\"}\n")
        .unwrap();
    let out = q.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let cpus = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find_map(|v| v["return"].as_array().cloned()).expect("query-hotpluggable-cpus answer");
    assert_eq!(cpus.len(), 4, "{text}");
    assert_eq!(cpus.iter().filter(|c| c.get("qom-path").is_some()).count(), 2, "{text}");
}
