//! `ferry convert` of Windows guests: whole-disk NTFS volumes made by mkntfs and filled
//! through an ntfs-3g FUSE mount with SYSTEM/SOFTWARE hives built by hivexregedit from the
//! .reg fixtures of converters/tests/windows_support (shaped like Server 2022 and 2008 R2),
//! and a virtio-win tree laid out as the ISO with placeholder payloads.
//!
//! Oracles (not Ferry): `ntfsfix --no-action` on the output; `ntfscat` reads every new file
//! back byte-identical; the output hives, exported by `hivexregedit --export`, equal the
//! source hives with the expected edits merged by `hivexregedit --merge` (so exactly those
//! keys and values, nothing else), and `hivexget` shows the key values; the source image is
//! byte-identical. A hibernated, dirty or Fast Startup volume is refused in one line (ntfs-3g / ntfsls
//! / hivexget agree it is).

#[path = "../converters/tests/windows_support/mod.rs"]
mod windows_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SYS: &str = "HKEY_LOCAL_MACHINE\\SYSTEM";
const SOFT: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE";
const BCDP: &str = "HKEY_LOCAL_MACHINE\\BCD00000000";

fn have(tool: &str) -> bool {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map(|o| o.status.success());
    if !matches!(ok, Ok(true)) {
        eprintln!("skipped: {tool} is not installed (tests/run.sh installs it)");
        return false;
    }
    true
}

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The empty hive of testdata/inspect/minimal-hive.pl with regf minor `minor`, `reg` merged.
fn build_hive(dir: &Path, name: &str, minor: u32, reg: &str, prefix: &str) -> PathBuf {
    let out = dir.join(name);
    run("perl", &[p(&root().join("testdata/inspect/minimal-hive.pl")), p(&out)]);
    let mut b = std::fs::read(&out).unwrap();
    b[24..28].copy_from_slice(&minor.to_le_bytes());
    let mut x = 0u32;
    for i in 0..127 {
        x ^= u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
    }
    b[508..512].copy_from_slice(&x.to_le_bytes());
    std::fs::write(&out, &b).unwrap();
    let reg = root().join("converters/tests/windows_support").join(reg);
    run("hivexregedit", &["--merge", "--prefix", prefix, p(&out), p(&reg)]);
    out
}

/// A whole-disk NTFS volume with the hives and a hiberfil.sys if given; None when FUSE
/// mounts are not allowed here.
fn volume(dir: &Path, name: &str, system: &Path, software: &Path, hiber: Option<&[u8]>) -> Option<PathBuf> {
    let mut files = vec![
        ("Windows/System32/config/SYSTEM", std::fs::read(system).unwrap()),
        ("Windows/System32/config/SOFTWARE", std::fs::read(software).unwrap()),
        ("Windows/System32/drivers/pvscsi.sys", vec![7u8; 70_000]),
    ];
    if let Some(h) = hiber {
        files.push(("hiberfil.sys", windows_support::hiberfil(h, 64 << 10)));
    }
    windows_support::ntfs_volume(dir, name, 48, &files)
}

/// Placeholder payload: distinct bytes per file, `len` long.
fn payload(name: &str, len: usize) -> Vec<u8> {
    let seed = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..len).map(|i| (seed.wrapping_add(i as u32).wrapping_mul(2654435761) >> 13) as u8).collect()
}

/// A virtio-win tree as the ISO lays it out: DRIVER/OS/ARCH/files. Returns it and every
/// file under it with its bytes.
fn virtio_win(dir: &Path) -> PathBuf {
    let vw = dir.join("virtio-win");
    let files: &[(&str, &[&str], usize)] = &[
        ("viostor", &["viostor.sys", "viostor.inf", "viostor.cat"], 0),
        ("NetKVM", &["netkvm.sys", "netkvm.inf", "netkvm.cat", "netkvmco.exe"], 1),
        ("Balloon", &["balloon.sys", "balloon.inf", "blnsvr.exe"], 2),
    ];
    // Older ISOs (up to 0.1.1xx) also carry XP (32-bit only) and Server 2003 builds.
    let oses: &[(&str, &[&str])] =
        &[("2k22", &["amd64", "x86"]), ("2k19", &["amd64", "x86"]), ("2k8R2", &["amd64", "x86"]), ("w10", &["amd64", "x86"]), ("w7", &["amd64", "x86"]), ("2k3", &["amd64", "x86"]), ("xp", &["x86"])];
    for (drv, names, k) in files {
        for (os, arches) in oses {
            for arch in *arches {
                let d = vw.join(drv).join(os).join(arch);
                std::fs::create_dir_all(&d).unwrap();
                for (i, n) in names.iter().enumerate() {
                    // Resident (small) and non-resident (tens of KiB) payloads.
                    let len = if i == 0 { 40_000 + 1000 * k } else { 300 + 10 * i };
                    let mut data = payload(&format!("{drv}/{os}/{arch}/{n}"), len);
                    // viostor.inf binds the modern ID except in the Windows 7-era builds.
                    if *n == "viostor.inf" {
                        let modern = if matches!(*os, "2k8R2" | "w7" | "2k3" | "xp") { "" } else { ", PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01" };
                        data = format!("[Manufacturer]\r\n%RHEL% = RHEL, NTamd64\r\n[RHEL.NTamd64]\r\n%Disk% = viostor_inst, PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00{modern}\r\n").into_bytes();
                    }
                    std::fs::write(d.join(n), data).unwrap();
                }
            }
        }
    }
    // The QEMU guest agent MSIs, as the ISO's guest-agent/ holds them.
    std::fs::create_dir_all(vw.join("guest-agent")).unwrap();
    for msi in ["qemu-ga-x86_64.msi", "qemu-ga-i386.msi"] {
        std::fs::write(vw.join("guest-agent").join(msi), payload(msi, 9000)).unwrap();
    }
    vw
}

fn ferry(args: &[&str]) -> Output {
    ferry_tools(args, Path::new("/nonexistent"))
}

/// `ferry` with `VIRT_TOOLS_DATA_DIR` (where rhsrvany.exe is looked for) set to `tools`.
fn ferry_tools(args: &[&str], tools: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).env_remove("VIRTIO_WIN").env("VIRT_TOOLS_DATA_DIR", tools).output().unwrap()
}

fn sha(path: &Path) -> String {
    String::from_utf8(run("sha256sum", &[p(path)])).unwrap()
}

fn ntfscat(img: &Path, path: &str) -> Vec<u8> {
    run("ntfscat", &[p(img), path])
}

fn utf16_hex(s: &str) -> String {
    let mut b: Vec<u8> = s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
    let v: Vec<String> = b.drain(..).map(|x| format!("{x:02x}")).collect();
    v.join(",")
}

/// Exports of `hive` after hivexregedit merges `reg`, and of `got`: must be equal.
fn assert_hive(dir: &Path, hive: &Path, got: &Path, reg: &str, prefix: &str) {
    let want = dir.join(format!("{}.want", hive.file_name().unwrap().to_string_lossy()));
    std::fs::copy(hive, &want).unwrap();
    let r = dir.join("edits.reg");
    std::fs::write(&r, format!("Windows Registry Editor Version 5.00\n\n{reg}")).unwrap();
    run("hivexregedit", &["--merge", "--prefix", prefix, p(&want), p(&r)]);
    let export = |h: &Path| String::from_utf8(run("hivexregedit", &["--export", p(h), "\\"])).unwrap();
    let (g, w) = (export(got), export(&want));
    if g != w {
        let diff: Vec<String> = g.lines().zip(w.lines()).filter(|(a, b)| a != b).take(6).map(|(a, b)| format!("got  {a}\nwant {b}")).collect();
        panic!("{}: export differs from hivexregedit's edit ({} vs {} lines)\n{}", got.display(), g.lines().count(), w.lines().count(), diff.join("\n"));
    }
}

fn get(hive: &Path, key: &str, val: &str) -> String {
    String::from_utf8(run("hivexget", &[p(hive), key, val])).unwrap().trim_end().to_string()
}

struct Shape {
    name: &'static str,
    minor: u32,
    system: &'static str,
    software: &'static str,
    cs: &'static str,
    os_dir: &'static str,
    /// Converted from a VMX (else `-i disk`).
    vmx: bool,
    /// The drivers given as an ISO 9660 image of the tree (genisoimage -J), else the directory.
    iso: bool,
    /// virt-v2v's rhsrvany.exe and pnp_wait.exe found in VIRT_TOOLS_DATA_DIR (else the
    /// cmd.exe host and no PnP wait).
    srvany: bool,
    /// The virtio model the injected viostor.inf allows.
    virtio: &'static str,
    /// The first-boot scripts.
    scripts: &'static [&'static str],
    /// The uninstall line of the first tools script.
    uninstall: &'static str,
    /// `--mac MAC:ip:...` given (a network script and network.ps1 expected).
    mac: &'static [&'static str],
    /// The expected SYSTEM edits beyond Services\viostor.
    system_edits: String,
}

fn convert_shape(s: &Shape) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let system = build_hive(dir, "SYSTEM", s.minor, s.system, SYS);
    let software = build_hive(dir, "SOFTWARE", s.minor, s.software, SOFT);
    let Some(img) = volume(dir, "win.img", &system, &software, None) else { return };
    // The VMX shape (Server 2022) has the change journal Windows keeps on its system volume.
    let journal_id: u64 = 0x01db_2c3d_4e5f_6071;
    if s.vmx {
        let mut max = Vec::new();
        for v in [32u64 << 20, 8 << 20, journal_id, 0] {
            max.extend_from_slice(&v.to_le_bytes());
        }
        if !windows_support::add_usn_journal(&img, &max, |i| i as u8, 5000) {
            return;
        }
    }
    let vw = virtio_win(dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let before = sha(&img);
    let tools = dir.join("virt-tools");
    std::fs::create_dir(&tools).unwrap();
    if s.srvany {
        std::fs::write(tools.join("rhsrvany.exe"), payload("rhsrvany", 5000)).unwrap();
        std::fs::write(tools.join("pnp_wait.exe"), payload("pnp_wait", 3000)).unwrap();
    }

    // --dry-run prints the plan and writes nothing.
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win", "--virtio-win", p(&vw), "--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.contains(&format!("virtio-win drivers: {}/amd64 (10 files)", s.os_dir)), "{plan}");
    assert!(plan.contains("Services\\viostor: Type=1 Start=0"), "{plan}");
    assert!(plan.contains("first boot: service FerryFirstboot (cmd.exe) runs C:\\Program Files\\Ferry\\Firstboot\\firstboot.bat:\n"), "{plan}");
    assert!(plan.contains(&format!("  virtio devices: {} (", s.virtio)), "{plan}");
    assert!(plan.contains("SanPolicy=1"), "{plan}");
    assert!(plan.contains("  NTFS: the USN change journal, where enabled, gets a new journal id"), "{plan}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    // The JSON report carries the same plan (VIRTIO_WIN instead of --virtio-win).
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win", "--dry-run", "--json"])
        .args(s.mac)
        .env("VIRTIO_WIN", &vw)
        .env("VIRT_TOOLS_DATA_DIR", &tools)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let wp = &r["guest"]["windows_plan"];
    assert_eq!((wp["os_dir"].as_str(), wp["arch_dir"].as_str(), wp["control_set"].as_str()), (Some(s.os_dir), Some("amd64"), Some(s.cs)));
    assert_eq!(wp["files"].as_array().unwrap().len(), 11);
    assert_eq!(r["guest"]["os_type"], "windows");
    // The virtio model follows the injected viostor.inf; the first boot runs the scripts.
    assert_eq!(r["virtio"]["model"], s.virtio, "{}", r["virtio"]);
    assert_eq!(r["virtio"]["chosen-by"], "inspection");
    let names: Vec<&str> = wp["firstboot"]["scripts"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, s.scripts);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);

    // Without drivers: refused in one line.
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("needs the virtio-win drivers: give --virtio-win PATH"), "{err}");

    // Server 2022 comes through a VMX naming a Windows guestOS, 2008 R2 as a bare disk.
    let vmx = dir.join("win.vmx");
    std::fs::write(
        &vmx,
        "config.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"win\"\nguestOS = \"windows2019srvnext-64\"\n\
         memSize = \"2048\"\nnumvcpus = \"2\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"lsisas1068\"\n\
         scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"win.vmdk\"\n",
    )
    .unwrap();
    let desc = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 98304 FLAT \"win.img\" 0\n\nddb.adapterType = \"lsilogic\"\n";
    std::fs::write(dir.join("win.vmdk"), desc).unwrap();
    let input: [&str; 3] = if s.vmx { ["-i", "vmx", p(&vmx)] } else { ["-i", "disk", p(&img)] };
    let t0 = std::time::Instant::now();
    let mut args = vec!["convert"];
    args.extend(input);
    // The ISO shape reads the drivers from a Joliet image of the same tree, as virtio-win ships.
    let iso = dir.join("virtio-win.iso");
    if s.iso {
        run("genisoimage", &["-quiet", "-J", "-V", "virtio-win", "-o", p(&iso), p(&vw)]);
    }
    let drivers = if s.iso { &iso } else { &vw };
    args.extend(["-os", p(&out), "-on", "win", "--output-format", "raw", "--virtio-win", p(drivers)]);
    args.extend(s.mac);
    let o = ferry_tools(&args, &tools);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}: ferry convert {:?}", s.name, t0.elapsed());
    assert_eq!(sha(&img), before, "the source changed");
    let disk = out.join("win-sda");
    let fix = Command::new("ntfsfix").args(["--no-action", p(&disk)]).output().unwrap();
    assert!(fix.status.success(), "ntfsfix: {}{}", String::from_utf8_lossy(&fix.stdout), String::from_utf8_lossy(&fix.stderr));
    // The change journal holds no records of Ferry's edits: it has a new id, its lowest valid
    // USN at the end of $J, and its records where they were.
    if s.vmx {
        let stdout = String::from_utf8_lossy(&o.stdout);
        let max = windows_support::ntfs_stream(&disk, "/$Extend/$UsnJrnl", "$Max");
        let id = u64::from_le_bytes(max[16..24].try_into().unwrap());
        let line = format!("C: reset the USN change journal ($Extend\\$UsnJrnl): journal id {journal_id:#x} -> {id:#x}, lowest valid USN 5000\n");
        assert!(id != journal_id && stdout.contains(&line), "no {line:?} in:\n{stdout}");
        assert_eq!(u64::from_le_bytes(max[24..32].try_into().unwrap()), 5000);
        assert_eq!(windows_support::ntfs_stream(&disk, "/$Extend/$UsnJrnl", "$J"), (0..5000).map(|i| i as u8).collect::<Vec<u8>>());
    }

    // Every driver file for the OS and arch, byte-identical; viostor.sys also in drivers.
    let mut n = 0;
    for drv in ["viostor", "NetKVM", "Balloon"] {
        let src = vw.join(drv).join(s.os_dir).join("amd64");
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert_eq!(ntfscat(&disk, &format!("/Windows/Drivers/VirtIO/{name}")), std::fs::read(e.path()).unwrap(), "{name}");
            n += 1;
        }
    }
    assert_eq!(n, 10);
    let listed = String::from_utf8(run("ntfsls", &[p(&disk), "-p", "/Windows/Drivers/VirtIO"])).unwrap();
    let names: Vec<&str> = listed.lines().filter(|l| *l != "." && *l != "..").collect();
    assert_eq!(
        names,
        ["balloon.inf", "balloon.sys", "blnsvr.exe", "netkvm.cat", "netkvm.inf", "netkvm.sys", "netkvmco.exe", "viostor.cat", "viostor.inf", "viostor.sys"]
    );
    let sys = std::fs::read(vw.join("viostor").join(s.os_dir).join("amd64/viostor.sys")).unwrap();
    assert_eq!(ntfscat(&disk, "/Windows/System32/drivers/viostor.sys"), sys);
    assert_eq!(ntfscat(&disk, "/Windows/System32/drivers/pvscsi.sys"), vec![7u8; 70_000]);

    // The first-boot directory: the batch file, the scripts, the agent MSI, the host.
    let fb = "/Program Files/Ferry/Firstboot";
    let driver = String::from_utf8(ntfscat(&disk, &format!("{fb}/firstboot.bat"))).unwrap();
    assert!(driver.contains("\r\n%SystemRoot%\\System32\\sc.exe delete FerryFirstboot\r\n"), "{driver}");
    assert!(driver.contains("call :main >> \"%log%\" 2>&1"), "{driver}");
    let listed = String::from_utf8(run("ntfsls", &[p(&disk), "-p", &format!("{fb}/scripts")])).unwrap();
    let names: Vec<&str> = listed.lines().filter(|l| *l != "." && *l != "..").collect();
    assert_eq!(names, s.scripts);
    let first_tools = s.scripts.iter().find(|n| n.contains("uninstall")).unwrap();
    let tools_script = String::from_utf8(ntfscat(&disk, &format!("{fb}/scripts/{first_tools}"))).unwrap();
    assert!(tools_script.contains(&format!("\r\n{}\r\n", s.uninstall)), "{tools_script}");
    assert!(tools_script.ends_with("\r\nif errorlevel 3010 exit /b 0\r\n"), "{tools_script}");
    let ga = String::from_utf8(ntfscat(&disk, &format!("{fb}/qemu-ga.ps1"))).unwrap();
    assert!(ga.contains("/RU SYSTEM /TN FerryQemuGa") && ga.contains("qemu-ga-x86_64.msi\" /qn /norestart"), "{ga}");
    assert_eq!(ntfscat(&disk, &format!("{fb}/qemu-ga-x86_64.msi")), std::fs::read(vw.join("guest-agent/qemu-ga-x86_64.msi")).unwrap());
    if s.srvany {
        assert_eq!(ntfscat(&disk, &format!("{fb}/rhsrvany.exe")), payload("rhsrvany", 5000));
        assert_eq!(ntfscat(&disk, &format!("{fb}/pnp_wait.exe")), payload("pnp_wait", 3000));
    }
    if !s.mac.is_empty() {
        let ps = String::from_utf8(ntfscat(&disk, &format!("{fb}/network.ps1"))).unwrap();
        assert!(ps.contains("$_.MACAddress -eq '00:50:56:AA:BB:CC'") && ps.contains("EnableStatic(@('192.168.1.10'), @('255.255.255.0'))"), "{ps}");
        assert!(ps.contains("SetDNSServerSearchOrder(@('192.168.1.2'))"), "{ps}");
    }

    // The hives: exactly the expected edits.
    let got_sys = dir.join("SYSTEM.out");
    let got_soft = dir.join("SOFTWARE.out");
    std::fs::write(&got_sys, ntfscat(&disk, "/Windows/System32/config/SYSTEM")).unwrap();
    std::fs::write(&got_soft, ntfscat(&disk, "/Windows/System32/config/SOFTWARE")).unwrap();
    let cs = s.cs;
    let fb_win = "%SystemDrive%\\Program Files\\Ferry\\Firstboot";
    let (image, params) = if s.srvany {
        (
            format!("\"{fb_win}\\rhsrvany.exe\""),
            format!(
                "[{SYS}\\{cs}\\Services\\FerryFirstboot\\Parameters]\n\"CommandLine\"=hex(2):{}\n\"PWD\"=hex(2):{}\n\n",
                utf16_hex(&format!("\"{fb_win}\\firstboot.bat\"")),
                utf16_hex(fb_win)
            ),
        )
    } else {
        (format!("%SystemRoot%\\System32\\cmd.exe /c start \"\" /b \"{fb_win}\\firstboot.bat\""), String::new())
    };
    let reg = format!(
        "[{SYS}\\{cs}\\Services\\viostor]\n\"Type\"=dword:00000001\n\"Start\"=dword:00000000\n\"ErrorControl\"=dword:00000001\n\"Group\"=\"SCSI miniport\"\n\"ImagePath\"=hex(2):{}\n\n{}\
         [{SYS}\\{cs}\\Services\\partmgr]\n\n[{SYS}\\{cs}\\Services\\partmgr\\Parameters]\n\"SanPolicy\"=dword:00000001\n\n\
         [{SYS}\\{cs}\\Services\\FerryFirstboot]\n\"Type\"=dword:00000010\n\"Start\"=dword:00000002\n\"ErrorControl\"=dword:00000001\n\"ImagePath\"=hex(2):{}\n\"DisplayName\"=\"Ferry first boot\"\n\"ObjectName\"=\"LocalSystem\"\n\n{params}",
        utf16_hex("system32\\drivers\\viostor.sys"),
        s.system_edits,
        utf16_hex(&image),
    );
    assert_hive(dir, &system, &got_sys, &reg, SYS);
    let reg = format!(
        "[{SOFT}\\Microsoft\\Windows\\CurrentVersion]\n\"DevicePath\"=hex(2):{}\n",
        utf16_hex("%SystemRoot%\\inf;%SystemRoot%\\Drivers\\VirtIO")
    );
    assert_hive(dir, &software, &got_soft, &reg, SOFT);
    let k = format!("{cs}\\Services\\viostor");
    assert_eq!(
        ["Type", "Start", "ErrorControl", "Group", "ImagePath"].map(|v| get(&got_sys, &k, v)),
        ["1", "0", "1", "SCSI miniport", "system32\\drivers\\viostor.sys"]
    );
    assert_eq!(get(&got_soft, "Microsoft\\Windows\\CurrentVersion", "DevicePath"), "%SystemRoot%\\inf;%SystemRoot%\\Drivers\\VirtIO");
    assert_eq!(get(&got_sys, &format!("{cs}\\Services\\FerryFirstboot"), "ImagePath"), image);
}

#[test]
fn server_2022_converted() {
    if !["hivexregedit", "hivexget", "mkntfs", "ntfs-3g", "ntfsfix", "ntfscat", "ntfsls"].iter().all(|t| have(t)) {
        return;
    }
    let mut edits = String::new();
    for id in ["1001", "1042"] {
        edits += &format!("[{SYS}\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_{id}]\n\"viostor.inf\"=hex:01,ff,00,00\n\n");
    }
    for svc in ["VMTools", "vmci"] {
        edits += &format!("[{SYS}\\ControlSet001\\Services\\{svc}]\n\"Start\"=dword:00000004\n\n");
    }
    edits += &format!("[{SYS}\\ControlSet001\\Control\\CrashControl]\n\"AutoReboot\"=dword:00000000\n\n");
    convert_shape(&Shape {
        name: "Server 2022",
        minor: 5,
        system: "system-2022.reg",
        software: "software-2022.reg",
        cs: "ControlSet001",
        os_dir: "2k22",
        vmx: true,
        iso: false,
        srvany: true,
        virtio: "modern",
        scripts: &["0001-pnputil.bat", "0002-pnpwait.bat", "0003-qemuga.bat", "0004-network.bat", "0005-disks.bat", "0006-uninstall.bat"],
        mac: &["--mac", "00:50:56:AA:BB:CC:ip:192.168.1.10,192.168.1.1,24,192.168.1.2"],
        uninstall: "msiexec.exe /x {B8F1C4E2-0D8A-4C7B-9E1F-5A2B3C4D5E6F} /qn /norestart",
        system_edits: edits,
    });
}

#[test]
fn server_2008r2_converted() {
    if !["hivexregedit", "hivexget", "mkntfs", "ntfs-3g", "ntfsfix", "ntfscat", "ntfsls"].iter().all(|t| have(t)) {
        return;
    }
    let mut edits = String::new();
    for k in [
        "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00",
        "pci#ven_1af4&dev_1001",
        "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01",
        "pci#ven_1af4&dev_1042",
    ] {
        edits += &format!(
            "[{SYS}\\ControlSet002\\Control\\CriticalDeviceDatabase\\{k}]\n\"ClassGUID\"=\"{{4D36E97B-E325-11CE-BFC1-08002BE10318}}\"\n\"Service\"=\"viostor\"\n\n"
        );
    }
    for svc in ["rhelscsi", "xenbus", "xennet", "xenvbd"] {
        edits += &format!("[{SYS}\\ControlSet002\\Services\\{svc}]\n\"Start\"=dword:00000004\n\n");
    }
    // prl_strg leaves the disk class's LowerFilters.
    let filters: Vec<String> = "EhStorClass\0\0".encode_utf16().flat_map(u16::to_le_bytes).map(|b| format!("{b:02x}")).collect();
    edits += &format!("[{SYS}\\ControlSet002\\Control\\Class\\{{4D36E967-E325-11CE-BFC1-08002BE10318}}]\n\"LowerFilters\"=hex(7):{}\n\n", filters.join(","));
    convert_shape(&Shape {
        name: "Server 2008 R2",
        minor: 3,
        system: "system-2008r2.reg",
        software: "software-2008r2.reg",
        cs: "ControlSet002",
        os_dir: "2k8R2",
        vmx: false,
        iso: true,
        srvany: false,
        virtio: "transitional",
        scripts: &["0001-pnputil.bat", "0002-qemuga.bat", "0003-disks.bat", "0004-uninstall.bat", "0005-uninstall.bat"],
        mac: &[],
        uninstall: "\"C:\\Program Files\\Citrix\\XenTools\\uninstaller.exe\" /S",
        system_edits: edits,
    });
}

/// NT 5.x, as cheap as the issue allows: Windows XP SP3 (32-bit) and Server 2003 R2 SP2
/// (x64), from the XP-shaped hives (regf 1.3, ControlSet001 current, CriticalDeviceDatabase,
/// lowercase `WINDOWS\system32\config`; 2003's differ in version and architecture) on a
/// whole-disk NTFS volume, and an older virtio-win tree with `xp/x86` and `2k3/{amd64,x86}`.
/// The plan warns that NT 5 lacks pnputil and PowerShell; the drivers of the OS and arch land
/// in `WINDOWS\Drivers\VirtIO` and `system32\drivers`, viostor is boot-start and bound through
/// the CriticalDeviceDatabase (checked against hivexregedit's own edit), VMware Tools'
/// services are disabled, and the guest agent MSI matches the arch.
struct Nt5 {
    name: &'static str,
    product: &'static str,
    version: &'static str,
    build: &'static str,
    arch: &'static str,
    os_dir: &'static str,
    arch_dir: &'static str,
    msi: &'static str,
}

#[test]
fn windows_xp_converted() {
    nt5_converted(&Nt5 { name: "xp", product: "Microsoft Windows XP", version: "5.1", build: "2600", arch: "x86", os_dir: "xp", arch_dir: "x86", msi: "qemu-ga-i386.msi" });
}

#[test]
fn windows_server_2003_r2_converted() {
    nt5_converted(&Nt5 {
        name: "w2k3",
        product: "Microsoft Windows Server 2003 R2",
        version: "5.2",
        build: "3790",
        arch: "AMD64",
        os_dir: "2k3",
        arch_dir: "amd64",
        msi: "qemu-ga-x86_64.msi",
    });
}

fn nt5_converted(k: &Nt5) {
    if !["hivexregedit", "hivexget", "mkntfs", "ntfs-3g", "ntfsfix", "ntfscat", "ntfsls"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let shaped = |reg: &str, from: &[(&str, String)]| {
        let mut text = std::fs::read_to_string(root().join("converters/tests/windows_support").join(reg)).unwrap();
        for (a, b) in from {
            assert!(text.contains(a), "{reg}: {a}");
            text = text.replace(a, b);
        }
        let path = dir.join(format!("{}-{reg}", k.name));
        std::fs::write(&path, text).unwrap();
        path
    };
    let sys_reg = shaped("system-xp.reg", &[("\"PROCESSOR_ARCHITECTURE\"=\"x86\"", format!("\"PROCESSOR_ARCHITECTURE\"=\"{}\"", k.arch))]);
    let soft_reg = shaped(
        "software-xp.reg",
        &[
            ("\"ProductName\"=\"Microsoft Windows XP\"", format!("\"ProductName\"=\"{}\"", k.product)),
            ("\"CurrentVersion\"=\"5.1\"", format!("\"CurrentVersion\"=\"{}\"", k.version)),
            ("\"CurrentBuildNumber\"=\"2600\"", format!("\"CurrentBuildNumber\"=\"{}\"", k.build)),
        ],
    );
    let system = build_hive(dir, "system", 3, p(&sys_reg), SYS);
    let software = build_hive(dir, "software", 3, p(&soft_reg), SOFT);
    let files = vec![
        ("WINDOWS/system32/config/system", std::fs::read(&system).unwrap()),
        ("WINDOWS/system32/config/software", std::fs::read(&software).unwrap()),
        ("WINDOWS/system32/drivers/symmpi.sys", vec![5u8; 30_000]),
    ];
    let Some(img) = windows_support::ntfs_volume(dir, &format!("{}.img", k.name), 48, &files) else { return };
    let vw = virtio_win(dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let before = sha(&img);

    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", k.name, "--virtio-win", p(&vw), "--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = String::from_utf8_lossy(&o.stdout);
    let warnings = String::from_utf8_lossy(&o.stderr);
    assert!(warnings.contains(&format!("Windows {} has neither pnputil nor PowerShell", k.version)), "{warnings}");
    for want in [
        format!("virtio-win drivers: {}/{} (10 files)", k.os_dir, k.arch_dir),
        "Services\\viostor: Type=1 Start=0".into(),
        "  virtio devices: transitional (".into(),
        "HKLM\\SYSTEM\\ControlSet001\\Services\\VMTools: Start=4 (disabled)".into(),
    ] {
        assert!(plan.contains(&want), "no {want:?} in:\n{plan}");
    }
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", k.name, "--output-format", "raw", "--virtio-win", p(&vw), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["guest"]["distro"].as_str(), r["guest"]["version"].as_str()), (Some(k.product), Some(k.version)), "{}", r["guest"]);
    assert_eq!(r["guest"]["windows_plan"]["systemroot"], "/WINDOWS");
    let wp = &r["guest"]["windows_plan"];
    assert_eq!((wp["os_dir"].as_str(), wp["arch_dir"].as_str(), wp["control_set"].as_str()), (Some(k.os_dir), Some(k.arch_dir), Some("ControlSet001")));
    assert_eq!(r["virtio"]["model"], "transitional");
    assert_eq!(sha(&img), before, "the source changed");
    let disk = out.join(format!("{}-sda", k.name));
    let fix = Command::new("ntfsfix").args(["--no-action", p(&disk)]).output().unwrap();
    assert!(fix.status.success(), "ntfsfix: {}{}", String::from_utf8_lossy(&fix.stdout), String::from_utf8_lossy(&fix.stderr));

    // The drivers of the OS and arch, byte-identical, in the guest's own WINDOWS and system32\drivers.
    let mut n = 0;
    for drv in ["viostor", "NetKVM", "Balloon"] {
        for e in std::fs::read_dir(vw.join(drv).join(k.os_dir).join(k.arch_dir)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert_eq!(ntfscat(&disk, &format!("/WINDOWS/Drivers/VirtIO/{name}")), std::fs::read(e.path()).unwrap(), "{name}");
            n += 1;
        }
    }
    assert_eq!(n, 10);
    assert_eq!(ntfscat(&disk, "/WINDOWS/system32/drivers/viostor.sys"), std::fs::read(vw.join("viostor").join(k.os_dir).join(k.arch_dir).join("viostor.sys")).unwrap());
    assert_eq!(ntfscat(&disk, "/WINDOWS/system32/drivers/symmpi.sys"), vec![5u8; 30_000]);
    let fb = "/Program Files/Ferry/Firstboot";
    assert_eq!(ntfscat(&disk, &format!("{fb}/{}", k.msi)), std::fs::read(vw.join("guest-agent").join(k.msi)).unwrap());
    let listed = String::from_utf8(run("ntfsls", &[p(&disk), "-p", &format!("{fb}/scripts")])).unwrap();
    let scripts: Vec<&str> = listed.lines().filter(|l| *l != "." && *l != "..").collect();
    assert_eq!(scripts, ["0001-pnputil.bat", "0002-qemuga.bat", "0003-disks.bat", "0004-uninstall.bat"]);
    let tools = String::from_utf8(ntfscat(&disk, &format!("{fb}/scripts/0004-uninstall.bat"))).unwrap();
    assert!(tools.contains("\r\nmsiexec.exe /x {FE2F6A2C-196E-4210-9C04-2B1BC21F07EF} /qn /norestart\r\n"), "{tools}");

    // The hives: exactly these edits, as hivexregedit makes them.
    let got_sys = dir.join("system.out");
    let got_soft = dir.join("software.out");
    std::fs::write(&got_sys, ntfscat(&disk, "/WINDOWS/system32/config/system")).unwrap();
    std::fs::write(&got_soft, ntfscat(&disk, "/WINDOWS/system32/config/software")).unwrap();
    let cs = "ControlSet001";
    let mut reg = format!(
        "[{SYS}\\{cs}\\Services\\viostor]\n\"Type\"=dword:00000001\n\"Start\"=dword:00000000\n\"ErrorControl\"=dword:00000001\n\"Group\"=\"SCSI miniport\"\n\"ImagePath\"=hex(2):{}\n\n",
        utf16_hex("system32\\drivers\\viostor.sys")
    );
    for k in ["pci#ven_1af4&dev_1001&subsys_00021af4&rev_00", "pci#ven_1af4&dev_1001", "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01", "pci#ven_1af4&dev_1042"] {
        reg += &format!("[{SYS}\\{cs}\\Control\\CriticalDeviceDatabase\\{k}]\n\"ClassGUID\"=\"{{4D36E97B-E325-11CE-BFC1-08002BE10318}}\"\n\"Service\"=\"viostor\"\n\n");
    }
    for svc in ["VMTools", "vmhgfs", "vmmemctl", "vmmouse"] {
        reg += &format!("[{SYS}\\{cs}\\Services\\{svc}]\n\"Start\"=dword:00000004\n\n");
    }
    reg += &format!("[{SYS}\\{cs}\\Control\\CrashControl]\n\"AutoReboot\"=dword:00000000\n\n");
    reg += &format!("[{SYS}\\{cs}\\Services\\partmgr]\n\n[{SYS}\\{cs}\\Services\\partmgr\\Parameters]\n\"SanPolicy\"=dword:00000001\n\n");
    let image = "%SystemRoot%\\System32\\cmd.exe /c start \"\" /b \"%SystemDrive%\\Program Files\\Ferry\\Firstboot\\firstboot.bat\"";
    reg += &format!(
        "[{SYS}\\{cs}\\Services\\FerryFirstboot]\n\"Type\"=dword:00000010\n\"Start\"=dword:00000002\n\"ErrorControl\"=dword:00000001\n\"ImagePath\"=hex(2):{}\n\"DisplayName\"=\"Ferry first boot\"\n\"ObjectName\"=\"LocalSystem\"\n\n",
        utf16_hex(image)
    );
    assert_hive(dir, &system, &got_sys, &reg, SYS);
    let reg = format!("[{SOFT}\\Microsoft\\Windows\\CurrentVersion]\n\"DevicePath\"=hex(2):{}\n", utf16_hex("%SystemRoot%\\inf;%SystemRoot%\\Drivers\\VirtIO"));
    assert_hive(dir, &software, &got_soft, &reg, SOFT);
    assert_eq!(get(&got_sys, "ControlSet001\\Control\\CriticalDeviceDatabase\\pci#ven_1af4&dev_1001", "Service"), "viostor");
}

#[test]
fn hibernated_dirty_fast_startup_refused() {
    if !["hivexregedit", "hivexget", "mkntfs", "ntfs-3g", "ntfsfix", "ntfsls"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let system = build_hive(dir, "SYSTEM", 5, "system-2022.reg", SYS);
    let software = build_hive(dir, "SOFTWARE", 5, "software-2022.reg", SOFT);
    let Some(img) = volume(dir, "hiber.img", &system, &software, Some(b"hibr")) else { return };
    let mnt = dir.join("probe.mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let o = Command::new("ntfs-3g").args([p(&img), p(&mnt)]).output().unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Windows is hibernated"), "{o:?}");
    let vw = virtio_win(dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let before = sha(&img);
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win", "--virtio-win", p(&vw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(
        err.trim_end(),
        "ferry: /dev/sda: Windows is hibernated (hiberfil.sys holds an image): refusing to convert (boot Windows, shut it down fully with `shutdown /s /t 0`, and try again)"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    assert_eq!(sha(&img), before);

    // Marked dirty by ntfsfix (ntfsls agrees: "scheduled for check").
    let clean = volume(dir, "dirty.img", &system, &software, None).unwrap();
    let _ = Command::new("ntfsfix").arg(&clean).output().unwrap();
    let o = Command::new("ntfsls").arg(&clean).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Volume is scheduled for check"), "{o:?}");
    let o = ferry(&["convert", "-i", "disk", p(&clean), "-os", p(&out), "-on", "win", "--virtio-win", p(&vw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.lines().count() == 1, "{err}");
    assert!(err.contains("/dev/sda: the NTFS volume is marked dirty"), "{err}");

    // Fast Startup on (HiberbootEnabled = 1, read back by hivexget).
    let reg = dir.join("power.reg");
    std::fs::write(&reg, format!("Windows Registry Editor Version 5.00\n\n[{SYS}\\ControlSet001\\Control\\Session Manager\\Power]\n\"HiberbootEnabled\"=dword:00000001\n")).unwrap();
    run("hivexregedit", &["--merge", "--prefix", SYS, p(&system), p(&reg)]);
    assert_eq!(get(&system, "ControlSet001\\Control\\Session Manager\\Power", "HiberbootEnabled"), "1");
    let fast = volume(dir, "fast.img", &system, &software, None).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&fast), "-os", p(&out), "-on", "win", "--virtio-win", p(&vw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.lines().count() == 1, "{err}");
    assert!(err.contains("/dev/sda: Windows has Fast Startup on (HiberbootEnabled = 1)"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// A GPT disk of a UEFI Windows guest: the ESP (16 MiB at 1 MiB) with Windows Boot Manager,
/// a stale fallback loader and the BCD store `bcd`, then the NTFS system volume (48 MiB).
/// Returns the disk and the boot manager's bytes; None when FUSE mounts are not allowed.
fn uefi_disk(dir: &Path, bcd: &Path) -> Option<(PathBuf, Vec<u8>)> {
    let system = build_hive(dir, "SYSTEM", 5, "system-2022.reg", SYS);
    let software = build_hive(dir, "SOFTWARE", 5, "software-2022.reg", SOFT);
    let ntfs = volume(dir, "win.img", &system, &software, None)?;
    let esp = dir.join("esp.img");
    std::fs::File::create(&esp).unwrap().set_len(16 << 20).unwrap();
    run("mkfs.vfat", &["-F", "16", "-n", "SYSTEM", p(&esp)]);
    let bootmgr = payload("bootmgfw.efi", 150_000);
    std::fs::write(dir.join("bootmgfw.efi"), &bootmgr).unwrap();
    run("mmd", &["-i", p(&esp), "::/EFI", "::/EFI/Microsoft", "::/EFI/Microsoft/Boot"]);
    run("mcopy", &["-i", p(&esp), p(&dir.join("bootmgfw.efi")), "::/EFI/Microsoft/Boot/bootmgfw.efi"]);
    // A stale fallback loader (an older boot manager): replaced, as virt-v2v does.
    std::fs::write(dir.join("stale.efi"), payload("stale-bootx64.efi", 90_000)).unwrap();
    run("mmd", &["-i", p(&esp), "::/EFI/BOOT"]);
    run("mcopy", &["-i", p(&esp), p(&dir.join("stale.efi")), "::/EFI/BOOT/BOOTX64.EFI"]);
    run("mcopy", &["-i", p(&esp), p(&bcd), "::/EFI/Microsoft/Boot/BCD"]);
    // GPT: ESP at 1 MiB (16 MiB), the NTFS volume after it (48 MiB).
    let disk = dir.join("uefi.img");
    std::fs::File::create(&disk).unwrap().set_len(66 << 20).unwrap();
    run("sgdisk", &["-n1:2048:+16M", "-t1:ef00", "-n2:34816:+48M", "-t2:0700", p(&disk)]);
    let place = |img: &Path, off: u64| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.write_all_at(&std::fs::read(img).unwrap(), off).unwrap();
    };
    place(&esp, 1 << 20);
    place(&ntfs, 34816 * 512);
    Some((disk, bootmgr))
}

/// A UEFI Server 2022 disk: GPT with a FAT ESP holding Windows Boot Manager (mkfs.vfat,
/// mtools) holding a stale fallback loader and a BCD store, and the NTFS system volume; the
/// conversion makes \EFI\BOOT\BOOTX64.EFI a copy of the boot manager and drops the default
/// loader's graphicsmodedisabled from the BCD.
#[test]
fn uefi_guest_gets_the_fallback_loader() {
    if !["hivexregedit", "mkntfs", "ntfs-3g", "ntfscat", "sgdisk", "mkfs.vfat", "mcopy", "mtype", "fsck.vfat"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // The BCD store, a hive made by hivexregedit: its default loader has graphicsmodedisabled.
    let bcd = build_hive(dir, "BCD", 5, "bcd.reg", BCDP);
    let Some((disk, bootmgr)) = uefi_disk(dir, &bcd) else { return };
    let before = sha(&disk);
    let vw = virtio_win(dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&disk), "-os", p(&out), "-on", "win", "--virtio-win", p(&vw), "--dry-run"]);
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && plan.contains("  UEFI: \\EFI\\BOOT\\BOOTX64.EFI ensured on the ESP") && plan.contains("  UEFI: graphicsmodedisabled removed"), "{plan}{}", String::from_utf8_lossy(&o.stderr));
    let o = ferry(&["convert", "-i", "disk", p(&disk), "-os", p(&out), "-on", "win", "--output-format", "raw", "--virtio-win", p(&vw)]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("/dev/sda1: copied \\EFI\\Microsoft\\Boot\\bootmgfw.efi to \\EFI\\BOOT\\BOOTX64.EFI"), "{stdout}");
    assert_eq!(sha(&disk), before, "the source changed");
    let conv = out.join("win-sda");
    let at = format!("{}@@1M", conv.display());
    assert_eq!(run("mtype", &["-i", &at, "::/EFI/BOOT/BOOTX64.EFI"]), bootmgr);
    assert_eq!(run("mtype", &["-i", &at, "::/EFI/Microsoft/Boot/bootmgfw.efi"]), bootmgr);
    // The BCD: exactly the default loader's 16000046 gone (the recovery loader keeps its own).
    assert!(stdout.contains("/dev/sda1: removed graphicsmodedisabled (16000046) from the default loader {3f6c2a5e-8d1b-11ee-b962-0242ac120002}"), "{stdout}");
    let bcd_out = dir.join("BCD.out");
    std::fs::write(&bcd_out, run("mtype", &["-i", &at, "::/EFI/Microsoft/Boot/BCD"])).unwrap();
    assert_hive(dir, &bcd, &bcd_out, &format!("[{BCDP}\\Objects\\{{3f6c2a5e-8d1b-11ee-b962-0242ac120002}}\\Elements\\16000046]\n").replacen('[', "[-", 1), BCDP);
    // Both filesystems stay clean for their own checkers.
    let part = |name: &str, off: u64, len: u64| {
        use std::os::unix::fs::FileExt;
        let mut b = vec![0u8; len as usize];
        std::fs::File::open(&conv).unwrap().read_exact_at(&mut b, off).unwrap();
        let f = dir.join(name);
        std::fs::write(&f, b).unwrap();
        f
    };
    let esp_out = part("esp.out", 1 << 20, 16 << 20);
    let fsck = Command::new("fsck.vfat").args(["-n", p(&esp_out)]).output().unwrap();
    assert!(fsck.status.success(), "fsck.vfat: {}", String::from_utf8_lossy(&fsck.stdout));
    let ntfs_out = part("ntfs.out", 34816 * 512, 48 << 20);
    let fix = Command::new("ntfsfix").args(["--no-action", p(&ntfs_out)]).output().unwrap();
    assert!(fix.status.success(), "ntfsfix: {}", String::from_utf8_lossy(&fix.stdout));
    assert_eq!(ntfscat(&ntfs_out, "/Windows/System32/drivers/viostor.sys"), std::fs::read(vw.join("viostor/2k22/amd64/viostor.sys")).unwrap());
}

/// A BCD store Ferry cannot parse (its first hive bin's magic overwritten with control bytes)
/// is left byte-for-byte as it was, with one warning that names the ESP and escapes the
/// bytes; the rest of the UEFI conversion (the fallback loader) still happens.
#[test]
fn corrupt_bcd_is_left_as_it_was_with_a_warning() {
    if !["hivexregedit", "mkntfs", "ntfs-3g", "sgdisk", "mkfs.vfat", "mcopy", "mtype", "fsck.vfat"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let bcd = build_hive(dir, "BCD", 5, "bcd.reg", BCDP);
    let mut bytes = std::fs::read(&bcd).unwrap();
    assert_eq!(&bytes[4096..4100], b"hbin");
    bytes[4096..4100].copy_from_slice(b"h\x1b\x07\n");
    std::fs::write(&bcd, &bytes).unwrap();
    let Some((disk, bootmgr)) = uefi_disk(dir, &bcd) else { return };
    let before = sha(&disk);
    let vw = virtio_win(dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&disk), "-os", p(&out), "-on", "win", "--output-format", "raw", "--virtio-win", p(&vw)]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}{stderr}");
    assert_eq!(sha(&disk), before, "the source changed");
    let all = format!("{stdout}{stderr}");
    let warning = all.lines().find(|l| l.contains("the BCD store is left as it was")).unwrap_or_else(|| panic!("no BCD warning: {all}"));
    assert!(warning.contains("/dev/sda1: \\EFI\\Microsoft\\Boot\\BCD") && warning.contains(r"h\x1b\x07\n"), "{warning}");
    assert!(!warning.contains('\x1b') && !warning.contains('\x07'), "raw control bytes in {warning:?}");
    let at = format!("{}@@1M", out.join("win-sda").display());
    assert_eq!(run("mtype", &["-i", &at, "::/EFI/Microsoft/Boot/BCD"]), bytes, "the BCD store changed");
    assert_eq!(run("mtype", &["-i", &at, "::/EFI/BOOT/BOOTX64.EFI"]), bootmgr);
    let esp_out = dir.join("esp.out");
    let mut b = vec![0u8; 16 << 20];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(out.join("win-sda")).unwrap(), &mut b, 1 << 20).unwrap();
    std::fs::write(&esp_out, b).unwrap();
    let fsck = Command::new("fsck.vfat").args(["-n", p(&esp_out)]).output().unwrap();
    assert!(fsck.status.success(), "fsck.vfat: {}", String::from_utf8_lossy(&fsck.stdout));
}

/// A bad static address is refused in one line naming the option and the field.
#[test]
fn bad_static_address_is_one_line() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("d.img");
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(t.path()), "--dry-run", "--mac", "00:50:56:aa:bb:cc:ip:10.0.0.300"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.lines().count() == 1, "{err}");
    assert!(err.contains("--mac \"00:50:56:aa:bb:cc:ip:10.0.0.300\": address \"10.0.0.300\" is not an IPv4 address"), "{err}");
}

/// Hostile --virtio-win paths: a FIFO (never opened blocking), a truncated ISO, a symlink
/// loop: each refused in one line naming the path, nothing written, the source unchanged.
#[test]
fn hostile_virtio_win_paths_are_one_line() {
    if !["hivexregedit", "mkntfs", "ntfs-3g", "mkfifo", "timeout", "genisoimage"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let system = build_hive(dir, "SYSTEM", 5, "system-2022.reg", SYS);
    let software = build_hive(dir, "SOFTWARE", 5, "software-2022.reg", SOFT);
    let Some(img) = volume(dir, "win.img", &system, &software, None) else { return };
    let before = sha(&img);
    let fifo = dir.join("vw.fifo");
    run("mkfifo", &[p(&fifo)]);
    let iso = dir.join("cut.iso");
    run("genisoimage", &["-quiet", "-J", "-o", p(&iso), p(&virtio_win(dir))]);
    let f = std::fs::OpenOptions::new().write(true).open(&iso).unwrap();
    f.set_len(18 * 2048).unwrap();
    let looped = dir.join("loop.iso");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    for (vw, why) in [(&fifo, "is a FIFO"), (&iso, "past the end of the image"), (&looped, "Too many levels of symbolic links")] {
        let o = Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_ferry"), "convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win", "--virtio-win", p(vw)])
            .env_remove("VIRTIO_WIN")
            .env("VIRT_TOOLS_DATA_DIR", "/nonexistent")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", vw.display());
        assert!(err.lines().count() == 1 && err.contains(p(vw)) && err.contains(why), "{err}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
    assert_eq!(sha(&img), before);
}

/// `--block-driver virtio-scsi`: `vioscsi` is the boot driver (copied to System32\drivers,
/// Services\vioscsi boot-start, 1AF4:1004 and 1AF4:1048 bound to it through DriverDatabase
/// (2022) or CriticalDeviceDatabase (2008 R2), as virt-v2v does), `viostor` is not made
/// boot-start, the virtio model follows vioscsi.inf and the descriptions put the disk on a
/// virtio-scsi controller. Oracles: hivexregedit's export equals the source hive with exactly
/// these edits merged, hivexget, ntfscat, ntfsfix.
fn convert_on_virtio_scsi(minor: u32, system_reg: &str, software_reg: &str, cs: &str, os_dir: &str, modern: bool, edits: &str) {
    if !["hivexregedit", "hivexget", "mkntfs", "ntfs-3g", "ntfsfix", "ntfscat", "ntfsls"].iter().all(|t| have(t)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let system = build_hive(dir, "SYSTEM", minor, system_reg, SYS);
    let software = build_hive(dir, "SOFTWARE", minor, software_reg, SOFT);
    let Some(img) = volume(dir, "win.img", &system, &software, None) else { return };
    let vw = virtio_win(dir);
    // vioscsi as the ISO has it; its INF binds the modern ID except in the 2008 R2 build.
    let d = vw.join("vioscsi").join(os_dir).join("amd64");
    std::fs::create_dir_all(&d).unwrap();
    let sys = payload(&format!("vioscsi/{os_dir}/amd64/vioscsi.sys"), 45_000);
    std::fs::write(d.join("vioscsi.sys"), &sys).unwrap();
    let modern_id = if modern { ", PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01" } else { "" };
    std::fs::write(d.join("vioscsi.inf"), format!("[RHEL.NTamd64]\r\n%Scsi% = scsi_inst, PCI\\VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00{modern_id}\r\n")).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out), "-on", "win", "--output-format", "raw", "--virtio-win", p(&vw), "--block-driver", "virtio-scsi", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["block-driver"], "virtio-scsi");
    assert_eq!(r["guest"]["windows_plan"]["block_driver"], "vioscsi");
    assert_eq!(r["virtio"]["model"], if modern { "modern" } else { "transitional" }, "{}", r["virtio"]);
    if modern {
        assert!(r["virtio"]["reason"].as_str().unwrap().contains("vioscsi.inf binds PCI\\VEN_1AF4&DEV_1048"), "{}", r["virtio"]);
    }
    let disk = out.join("win-sda");
    let fix = Command::new("ntfsfix").args(["--no-action", p(&disk)]).output().unwrap();
    assert!(fix.status.success(), "ntfsfix: {}", String::from_utf8_lossy(&fix.stdout));
    assert_eq!(ntfscat(&disk, "/Windows/System32/drivers/vioscsi.sys"), sys);
    assert_eq!(ntfscat(&disk, "/Windows/Drivers/VirtIO/vioscsi.sys"), sys);
    let drivers = String::from_utf8(run("ntfsls", &[p(&disk), "-p", "/Windows/System32/drivers"])).unwrap();
    assert!(!drivers.lines().any(|l| l == "viostor.sys"), "{drivers}");
    // SYSTEM: exactly the expected edits (hivexregedit's own merge of them is the oracle).
    let got_sys = dir.join("SYSTEM.out");
    std::fs::write(&got_sys, ntfscat(&disk, "/Windows/System32/config/SYSTEM")).unwrap();
    let fb_win = "%SystemDrive%\\Program Files\\Ferry\\Firstboot";
    let image = format!("%SystemRoot%\\System32\\cmd.exe /c start \"\" /b \"{fb_win}\\firstboot.bat\"");
    let reg = format!(
        "[{SYS}\\{cs}\\Services\\vioscsi]\n\"Type\"=dword:00000001\n\"Start\"=dword:00000000\n\"ErrorControl\"=dword:00000001\n\"Group\"=\"SCSI miniport\"\n\"ImagePath\"=hex(2):{}\n\n{edits}\
         [{SYS}\\{cs}\\Services\\partmgr]\n\n[{SYS}\\{cs}\\Services\\partmgr\\Parameters]\n\"SanPolicy\"=dword:00000001\n\n\
         [{SYS}\\{cs}\\Services\\FerryFirstboot]\n\"Type\"=dword:00000010\n\"Start\"=dword:00000002\n\"ErrorControl\"=dword:00000001\n\"ImagePath\"=hex(2):{}\n\"DisplayName\"=\"Ferry first boot\"\n\"ObjectName\"=\"LocalSystem\"\n\n",
        utf16_hex("system32\\drivers\\vioscsi.sys"),
        utf16_hex(&image),
    );
    assert_hive(dir, &system, &got_sys, &reg, SYS);
    assert_eq!(
        ["Type", "Start", "ErrorControl", "Group", "ImagePath"].map(|v| get(&got_sys, &format!("{cs}\\Services\\vioscsi"), v)),
        ["1", "0", "1", "SCSI miniport", "system32\\drivers\\vioscsi.sys"]
    );
    if minor >= 5 {
        assert_eq!(run("hivexget", &[p(&got_sys), "DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_1048", "vioscsi.inf"]), [1, 0xff, 0, 0]);
    } else {
        assert_eq!(get(&got_sys, &format!("{cs}\\Control\\CriticalDeviceDatabase\\pci#ven_1af4&dev_1004&subsys_00081af4&rev_00"), "Service"), "vioscsi");
    }
    // The descriptions: one virtio-scsi controller holding the disk.
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("win.ferry.json")).unwrap()).unwrap();
    let scsi: Vec<&serde_json::Value> = spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-scsi").collect();
    assert_eq!(scsi.len(), 1, "{spec}");
    assert!(!spec["devices"].as_array().unwrap().iter().any(|d| d["type"] == "virtio-blk"), "{spec}");
    // Without vioscsi in the tree: refused in one line naming it.
    std::fs::remove_dir_all(vw.join("vioscsi")).unwrap();
    let out2 = dir.join("out2");
    std::fs::create_dir(&out2).unwrap();
    let o = ferry(&["convert", "-i", "disk", p(&img), "-os", p(&out2), "-on", "win", "--virtio-win", p(&vw), "--block-driver", "virtio-scsi", "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&format!("no vioscsi/{os_dir}/amd64/vioscsi.sys: the guest would not boot on virtio-scsi")), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn server_2022_on_virtio_scsi() {
    let mut edits = String::new();
    for id in ["1004", "1048"] {
        edits += &format!("[{SYS}\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_{id}]\n\"vioscsi.inf\"=hex:01,ff,00,00\n\n");
    }
    for svc in ["VMTools", "vmci"] {
        edits += &format!("[{SYS}\\ControlSet001\\Services\\{svc}]\n\"Start\"=dword:00000004\n\n");
    }
    edits += &format!("[{SYS}\\ControlSet001\\Control\\CrashControl]\n\"AutoReboot\"=dword:00000000\n\n");
    convert_on_virtio_scsi(5, "system-2022.reg", "software-2022.reg", "ControlSet001", "2k22", true, &edits);
}

#[test]
fn server_2008r2_on_virtio_scsi() {
    let mut edits = String::new();
    for k in ["pci#ven_1af4&dev_1004&subsys_00081af4&rev_00", "pci#ven_1af4&dev_1004", "pci#ven_1af4&dev_1048&subsys_11001af4&rev_01", "pci#ven_1af4&dev_1048"] {
        edits += &format!(
            "[{SYS}\\ControlSet002\\Control\\CriticalDeviceDatabase\\{k}]\n\"ClassGUID\"=\"{{4D36E97B-E325-11CE-BFC1-08002BE10318}}\"\n\"Service\"=\"vioscsi\"\n\n"
        );
    }
    for svc in ["rhelscsi", "xenbus", "xennet", "xenvbd"] {
        edits += &format!("[{SYS}\\ControlSet002\\Services\\{svc}]\n\"Start\"=dword:00000004\n\n");
    }
    let filters: Vec<String> = "EhStorClass\0\0".encode_utf16().flat_map(u16::to_le_bytes).map(|b| format!("{b:02x}")).collect();
    edits += &format!("[{SYS}\\ControlSet002\\Control\\Class\\{{4D36E967-E325-11CE-BFC1-08002BE10318}}]\n\"LowerFilters\"=hex(7):{}\n\n", filters.join(","));
    convert_on_virtio_scsi(3, "system-2008r2.reg", "software-2008r2.reg", "ControlSet002", "2k8R2", false, &edits);
}
