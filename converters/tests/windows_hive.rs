//! Registry hive writes. Oracle: hivex. Hives are built by `hivexregedit --merge` from .reg
//! fixtures shaped like Server 2022 and 2008 R2 SYSTEM/SOFTWARE; the same edits are applied
//! by hivexregedit to one copy and by Ferry to another, and `hivexregedit --export` of both
//! must be identical (so the expected keys and values are there and nothing else changed);
//! `hivexget` reads single values back.

mod windows_support;

use ferry_converters::windows::hive::{Hive, HiveError, Value};
use windows_support::*;

const SYS: &str = "HKEY_LOCAL_MACHINE\\SYSTEM";
const SOFT: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE";

/// The registry side of a virtio block driver install on Windows 8 and later, plus
/// overwrites and deletes of every kind.
const EDITS_2022: &str = r#"Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\viostor]
"Type"=dword:00000001
"Start"=dword:00000000
"ErrorControl"=dword:00000001
"Group"="SCSI miniport"
"ImagePath"=hex(2):73,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,5c,00,64,00,72,00,69,00,76,00,65,00,72,00,73,00,5c,00,76,00,69,00,6f,00,73,00,74,00,6f,00,72,00,2e,00,73,00,79,00,73,00,00,00
"DependOnService"=hex(7):50,00,6e,00,50,00,00,00,57,00,4d,00,49,00,00,00,00,00
"InstallTime"=hex(b):00,11,22,33,44,55,66,77
"Blob"=hex:01,02,03,04,05,06,07,08,09,0a,0b,0c,0d,0e,0f,10,11
"Tiny"=hex:aa,bb

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\viostor\Parameters]
"BusType"=dword:00000001

[HKEY_LOCAL_MACHINE\SYSTEM\DriverDatabase\DeviceIds\PCI\VEN_1AF4&DEV_1001]
"viostor.inf"=hex:01,ff,00,00

[HKEY_LOCAL_MACHINE\SYSTEM\DriverDatabase\DeviceIds\PCI\VEN_1AF4&DEV_1042]
"viostor.inf"=hex:01,ff,00,00

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\pvscsi]
"Start"=dword:00000004
"Group"="SCSI miniport (disabled)"
"Tag"=-

[-HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\VMTools]

[-HKEY_LOCAL_MACHINE\SYSTEM\DriverDatabase\DeviceIds\PCI\VEN_15AD&DEV_07B0]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Tcpip\Parameters]
"NV Hostname"=-
"Hostname"="win2022-kvm"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Class\{4d36e97b-e325-11ce-bfc1-08002be10318}]
@="Storage controllers (virtio)"
"#;

const EDITS_2008R2: &str = r#"Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Control\CriticalDeviceDatabase\pci#ven_1af4&dev_1001&subsys_00021af4&rev_00]
"ClassGUID"="{4D36E97B-E325-11CE-BFC1-08002BE10318}"
"Service"="viostor"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Control\CriticalDeviceDatabase\pci#ven_1af4&dev_1001]
"ClassGUID"="{4D36E97B-E325-11CE-BFC1-08002BE10318}"
"Service"="viostor"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Services\viostor]
"Type"=dword:00000001
"Start"=dword:00000000
"ErrorControl"=dword:00000001
"Group"="SCSI miniport"
"ImagePath"=hex(2):73,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,5c,00,64,00,72,00,69,00,76,00,65,00,72,00,73,00,5c,00,76,00,69,00,6f,00,73,00,74,00,6f,00,72,00,2e,00,73,00,79,00,73,00,00,00

[-HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Services\xenbus]

[-HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Services\xenvbd]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Services\xennet]
"Start"=dword:00000004
"#;

const EDITS_SOFTWARE: &str = r#"Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion]
"DevicePath"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,00,25,00,5c,00,69,00,6e,00,66,00,3b,00,25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,00,25,00,5c,00,44,00,72,00,69,00,76,00,65,00,72,00,73,00,5c,00,56,00,69,00,72,00,74,00,49,00,4f,00,00,00

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\Microsoft Edge]
"Publisher"=-
"DisplayName"=-

[-HKEY_LOCAL_MACHINE\SOFTWARE\VMware, Inc.]
"#;

fn check_same(dir: &std::path::Path, hive: &std::path::Path, edits: &str, prefix: &str) -> String {
    let before = export(hive);
    let (ferry, hivex) = edit_both(dir, hive, edits, prefix);
    let got = export(&ferry);
    assert_same(&got, &export(&hivex));
    assert_ne!(got, before);
    // hivexsh walks the whole tree too (lsval on every key through its own navigation).
    run("hivexsh", &["-f", "/dev/null", ferry.to_str().unwrap()]);
    got
}

#[test]
fn server_2022_system_edits_match_hivex() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for minor in [3, 5] {
        let reg = support().join("system-2022.reg");
        let hive = build_hive(t.path(), &format!("SYSTEM-1.{minor}"), minor, Some(&reg), SYS);
        check_same(t.path(), &hive, EDITS_2022, SYS);
        let f = t.path().join("ferry.hive");
        let f = f.to_str().unwrap();
        let get = |k: &str, v: &str| run("hivexget", &[f, k, v]).trim_end().to_string();
        assert_eq!(get("ControlSet001\\Services\\viostor", "Start"), "0");
        assert_eq!(get("ControlSet001\\Services\\viostor", "Group"), "SCSI miniport");
        assert_eq!(get("ControlSet001\\Services\\viostor", "ImagePath"), "system32\\drivers\\viostor.sys");
        assert_eq!(get("ControlSet001\\Services\\pvscsi", "Start"), "4");
        assert_eq!(get("ControlSet001\\Services\\Tcpip\\Parameters", "Hostname"), "win2022-kvm");
    }
}

#[test]
fn server_2008r2_system_edits_match_hivex() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SYSTEM", 3, Some(&support().join("system-2008r2.reg")), SYS);
    check_same(t.path(), &hive, EDITS_2008R2, SYS);
}

#[test]
fn software_edits_match_hivex() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for name in ["software-2022.reg", "software-2008r2.reg"] {
        let hive = build_hive(t.path(), name, 5, Some(&support().join(name)), SOFT);
        let mut edits = EDITS_SOFTWARE.to_string();
        if name.contains("2008") {
            edits = edits.replace("Microsoft Edge", "Citrix XenTools").replace("VMware, Inc.", "Citrix");
        }
        check_same(t.path(), &hive, &edits, SOFT);
    }
}

/// Ferry reads what hivex wrote, value for value, before any edit.
#[test]
fn reads_what_hivex_wrote() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let reg = support().join("system-2022.reg");
    let hive = build_hive(t.path(), "SYSTEM", 3, Some(&reg), SYS);
    let h = Hive::open("SYSTEM", std::fs::read(&hive).unwrap()).unwrap();
    let text = std::fs::read_to_string(&reg).unwrap();
    let mut n = 0;
    for op in parse_reg(&text, SYS) {
        if let Op::Set(k, name, v) = op {
            let key = h.lookup(&k).unwrap().unwrap_or_else(|| panic!("{k}"));
            assert_eq!(h.value(key, &name).unwrap().as_ref(), Some(&v), "{k} {name}");
            n += 1;
        }
    }
    assert!(n > 50, "{n}");
}

/// Thousands of random creates, sets and deletes (with >512 subkeys under one key, so lists
/// split under an "ri", and values past 16344 bytes, so big data "db" records on regf 1.5):
/// applied by hivex and by Ferry, the exports agree and hivexsh reads every key.
#[test]
fn random_edits_match_hivex() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut reg = String::from("Windows Registry Editor Version 5.00\n\n");
    reg += "[HKEY_LOCAL_MACHINE\\SYSTEM\\Stress]\n\n";
    let mut live: Vec<String> = Vec::new();
    for i in 0..3000 {
        match rnd(10) {
            0..=5 => {
                // A new key under Stress or under a live key.
                let parent = if live.is_empty() || rnd(3) == 0 { "Stress".to_string() } else { live[rnd(live.len() as u64) as usize].clone() };
                let name = format!("{}Key{i:04}", ["a", "B", "c", "D"][rnd(4) as usize]);
                let path = format!("{parent}\\{name}");
                reg += &format!("[{SYS}\\{path}]\n");
                if rnd(2) == 0 {
                    reg += &format!("\"V{i}\"=dword:{:08x}\n", rnd(1 << 32));
                }
                reg += "\n";
                live.push(path);
            }
            6 | 7 if !live.is_empty() => {
                let k = &live[rnd(live.len() as u64) as usize];
                let len = if rnd(20) == 0 { 16344 + rnd(40000) as usize } else { rnd(300) as usize };
                let bytes: Vec<String> = (0..len).map(|j| format!("{:02x}", (i + j) as u8)).collect();
                reg += &format!("[{SYS}\\{k}]\n\"Data{}\"=hex:{}\n\n", rnd(3), bytes.join(","));
            }
            8 if !live.is_empty() => {
                let k = live[rnd(live.len() as u64) as usize].clone();
                reg += &format!("[-{SYS}\\{k}]\n\n");
                live.retain(|p| p != &k && !p.starts_with(&format!("{k}\\")));
            }
            _ if !live.is_empty() => {
                let k = &live[rnd(live.len() as u64) as usize];
                reg += &format!("[{SYS}\\{k}]\n\"Data{}\"=-\n\n", rnd(3));
            }
            _ => {}
        }
    }
    // One wide key: 1500 subkeys force an ri of lh leaves.
    reg += &format!("[{SYS}\\Wide]\n\n");
    for i in 0..1500 {
        reg += &format!("[{SYS}\\Wide\\k{:05}]\n\n", (i * 7919) % 100_000);
    }
    let (ferry, hivex) = edit_both(t.path(), &hive, &reg, SYS);
    let got = export(&ferry);
    assert_same(&got, &export(&hivex));
    assert!(got.matches("[\\Wide\\k").count() == 1500);
    run("hivexsh", &["-f", "/dev/null", ferry.to_str().unwrap()]);
    // Ferry reads its own output back too, and the wide key's list is an ri.
    let h = Hive::open("ferry", std::fs::read(&ferry).unwrap()).unwrap();
    let wide = h.lookup("Wide").unwrap().unwrap();
    assert_eq!(h.subkeys(wide).unwrap().len(), 1500);
}

/// Creating keys takes a reference on the parent's security record; deleting them gives it
/// back and frees every cell they used.
#[test]
fn security_refs_and_cells_balance() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SOFTWARE", 5, Some(&support().join("software-2022.reg")), SOFT);
    let mut h = Hive::open("SOFTWARE", std::fs::read(&hive).unwrap()).unwrap();
    let (sk, refs) = h.security_refs(h.root()).unwrap();
    let cells = h.used_cells();
    for i in 0..100 {
        let k = h.create_key(&format!("Ferry\\Sub{i}\\Deeper")).unwrap();
        h.set_value(k, "Big", &Value::Binary(vec![7; 20000])).unwrap();
        h.set_value(k, "S", &Value::Sz("x".repeat(i))).unwrap();
    }
    assert_eq!(h.security_refs(h.root()).unwrap(), (sk, refs + 201));
    assert!(h.delete_key("ferry").unwrap());
    assert_eq!(h.security_refs(h.root()).unwrap(), (sk, refs));
    assert_eq!(h.used_cells(), cells);
    let out = t.path().join("out");
    std::fs::write(&out, h.to_bytes()).unwrap();
    assert_eq!(export(&out), export(&hive));
}

fn open_err(b: Vec<u8>) -> String {
    match Hive::open("C:/Windows/System32/config/SYSTEM", b) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

/// Pending transaction logs, a bad checksum and damaged bins are refused in one line
/// naming the file; Ferry's own output has equal sequence numbers and a valid checksum.
#[test]
fn refusals_and_header() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SYSTEM", 3, Some(&support().join("system-2008r2.reg")), SYS);
    let good = std::fs::read(&hive).unwrap();

    let mut b = good.clone();
    let next = u32::from_le_bytes(b[8..12].try_into().unwrap()) + 1;
    b[4..8].copy_from_slice(&next.to_le_bytes());
    fix_checksum(&mut b);
    let e = open_err(b);
    assert!(e.starts_with("C:/Windows/System32/config/SYSTEM: hive has pending transaction logs"), "{e}");
    assert!(!e.contains('\n'));

    let mut b = good.clone();
    b[508] ^= 1;
    assert!(open_err(b).contains("invalid base block checksum"));

    let mut b = good.clone();
    b[4096..4100].copy_from_slice(b"hb\x01n");
    let e = open_err(b);
    assert!(e.contains("invalid hbin signature at offset 0x0 hb\\x01n"), "{e}");

    let mut h = Hive::open("SYSTEM", good.clone()).unwrap();
    let seq = u32::from_le_bytes(good[4..8].try_into().unwrap());
    let out = h.to_bytes();
    assert_eq!(&out[4..8], &(seq + 1).to_le_bytes());
    assert_eq!(&out[8..12], &(seq + 1).to_le_bytes());
    let mut fixed = out.clone();
    fix_checksum(&mut fixed);
    assert_eq!(fixed, out);
    assert!(matches!(h.delete_key("\\"), Err(HiveError::Path { .. })));
}

/// Every truncation and many single-byte corruptions of a real hive either open and read
/// everything without panicking, or fail with a one-line error.
#[test]
fn damaged_hives_never_panic() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let good = std::fs::read(&hive).unwrap();
    let walk = walk_and_edit;
    for len in (0..good.len()).step_by(509) {
        if let Ok(mut h) = Hive::open("t", good[..len].to_vec()) {
            walk(&mut h);
        }
    }
    for i in (4096..good.len()).step_by(7) {
        let mut b = good.clone();
        b[i] = b[i].wrapping_add(0x41);
        match Hive::open("t", b) {
            Ok(mut h) => walk(&mut h),
            Err(e) => assert!(!e.to_string().contains('\n')),
        }
    }
}

/// A hive file with slack after its bins (as Windows leaves some) keeps its size when the
/// hive grows into the slack, and hivex reads the result as it reads its own edit.
#[test]
fn slack_after_bins_is_kept() {
    if !have("hivexregedit") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let hive = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let big: Vec<String> = (0..10_000).map(|i| format!("{:02x}", (i * 7) as u8)).collect();
    let edits = format!("{EDITS_2022}\n[{SYS}\\ControlSet001\\Services\\viostor]\n\"Big\"=hex:{}\n", big.join(","));
    let (_, hivex) = edit_both(t.path(), &hive, &edits, SYS);
    let mut bytes = std::fs::read(&hive).unwrap();
    let bins = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
    bytes.resize(bytes.len() + (64 << 10), 0);
    let len = bytes.len();
    let mut h = Hive::open("SYSTEM", bytes).unwrap();
    apply(&mut h, &parse_reg(&edits, SYS));
    let out = h.to_bytes();
    assert_eq!(out.len(), len);
    assert!(u32::from_le_bytes(out[40..44].try_into().unwrap()) > bins, "the hive grew into its slack");
    let f = t.path().join("slack.hive");
    std::fs::write(&f, &out).unwrap();
    assert_same(&export(&f), &export(&hivex));
}

/// Opt-in: real hives given by the user (`FERRY_REAL_HIVES=path[:path...]`, e.g. NTUSER.DAT
/// or SYSTEM copied off a Windows guest). Ferry deletes the root's first subtree, adds keys
/// with every value type (big data included) and overwrites one; `hivexregedit --export`
/// of Ferry's output equals hivex's own edit of the same file, and Ferry reads as many keys
/// as hivex exports.
#[test]
fn real_hives_match_hivex() {
    let Ok(list) = std::env::var("FERRY_REAL_HIVES") else {
        eprintln!("skipped: FERRY_REAL_HIVES is not set (colon-separated hive files)");
        return;
    };
    if !have("hivexregedit") {
        return;
    }
    for (i, src) in list.split(':').filter(|p| !p.is_empty()).enumerate() {
        let t = tempfile::tempdir().unwrap();
        let hive = t.path().join(format!("hive{i}"));
        std::fs::copy(src, &hive).unwrap();
        let h = Hive::open(src, std::fs::read(&hive).unwrap()).unwrap();
        let mut keys = 0;
        let mut stack = vec![h.root()];
        while let Some(k) = stack.pop() {
            keys += 1;
            h.values(k).unwrap();
            stack.extend(h.subkeys(k).unwrap().into_iter().map(|(_, k)| k));
        }
        let before = export(&hive);
        assert_eq!(keys, before.lines().filter(|l| l.starts_with('[')).count(), "{src}");
        let first = h.subkeys(h.root()).unwrap()[0].0.clone();
        let p = "HKEY_LOCAL_MACHINE\\X";
        let big: Vec<String> = (0..40_000).map(|i| format!("{:02x}", (i * 13) as u8)).collect();
        let edits = format!(
            "Windows Registry Editor Version 5.00\n\n[-{p}\\{first}]\n\n[{p}\\Ferry]\n\"Sz\"=\"text\"\n\
             \"Exp\"=hex(2):25,00,41,00,25,00,00,00\n\"Multi\"=hex(7):61,00,00,00,62,00,00,00,00,00\n\
             \"D\"=dword:00000007\n\"Q\"=hex(b):01,02,03,04,05,06,07,08\n\"Big\"=hex:{}\n\n\
             [{p}\\Ferry\\Sub]\n@=\"default\"\n\n[{p}\\Ferry]\n\"D\"=dword:00000008\n",
            big.join(",")
        );
        let (ferry, hivex) = edit_both(t.path(), &hive, &edits, p);
        let got = export(&ferry);
        assert_same(&got, &export(&hivex));
        assert_eq!(std::fs::metadata(&ferry).unwrap().len(), std::fs::metadata(&hive).unwrap().len(), "{src}: size kept");
        eprintln!("{src}: {keys} keys read, edits match hivex");
        // Corruptions of the real hive never panic: 400 single-byte changes spread over it.
        let good = std::fs::read(&hive).unwrap();
        for i in (4096..good.len()).step_by(good.len() / 400) {
            let mut b = good.clone();
            b[i] = b[i].wrapping_add(0x41);
            if let Ok(mut h) = Hive::open("t", b) {
                walk_and_edit(&mut h);
            }
        }
    }
}

/// Reads every key and value (bounded), then creates, sets and deletes; errors are fine.
fn walk_and_edit(h: &mut Hive) {
    let mut stack = vec![h.root()];
    let mut n = 0;
    while let Some(k) = stack.pop() {
        n += 1;
        if n > 10_000 {
            break;
        }
        let _ = h.values(k);
        if let Ok(subs) = h.subkeys(k) {
            stack.extend(subs.into_iter().map(|(_, k)| k));
        }
    }
    let _ = h.create_key("ControlSet001\\Services\\viostor").and_then(|k| h.set_value(k, "Start", &Value::Dword(0)));
    let _ = h.delete_key("ControlSet001\\Services\\VMTools");
    let _ = h.delete_key("AppEvents");
    let _ = h.to_bytes();
}
