//! The first-boot service, as virt-v2v's firstboot: a batch file run once as LocalSystem at
//! the next boot, which runs numbered scripts (each moved to `scripts-done` before it runs,
//! so a reboot half-way never reruns one), logs every step to `log.txt` beside it, and
//! removes its service at the end. Ferry's scripts: `pnputil` for the drivers in
//! `%SystemRoot%\Drivers\VirtIO`, the QEMU guest agent MSI when the virtio-win tree has
//! one, offline disks brought online, VMware Tools / Xen PV tools uninstalled through their
//! `UninstallString` (MSI products with `msiexec /x`), static IPv4 addresses set by MAC
//! (`--mac MAC:ip:ADDR,GW,LEN,DNS...`, as virt-v2v, through WMI so that PowerShell 2.0 on
//! Windows 7 / 2008 R2 runs it too).
//!
//! The service host is virt-v2v's `rhsrvany.exe` or `pvvxsvc.exe` when found (in
//! `$VIRT_TOOLS_DATA_DIR`, else `/usr/share/virt-tools`, as virt-v2v looks), with the batch
//! file as its `Parameters\CommandLine`; without one, `cmd.exe` starts the batch file
//! detached (`start "" /b`), so it runs to its end after the service manager gives up on
//! the non-service process. Each script's exit code and the end are also written to COM1,
//! where a validation run reads "Ferry first boot finished".

use ferry_inspectors::os::WindowsUninstall;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The service's name.
pub const SERVICE: &str = "FerryFirstboot";
/// The first-boot directory on the system volume.
pub const DIR: &str = "/Program Files/Ferry/Firstboot";
/// The same, as the guest names it at boot.
const DIR_WIN: &str = "%SystemDrive%\\Program Files\\Ferry\\Firstboot";
/// The service host files looked for, in virt-v2v's order.
const HOSTS: [&str; 2] = ["rhsrvany.exe", "pvvxsvc.exe"];
/// A service host larger than this is refused (rhsrvany is ~50 KiB).
pub const MAX_HOST_FILE: u64 = 16 << 20;

/// What runs the batch file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceHost {
    /// `rhsrvany.exe` / `pvvxsvc.exe` copied from the host.
    Srvany { name: String, source: PathBuf },
    /// `cmd.exe /c start "" /b firstboot.bat`.
    Cmd,
}

/// One script run at first boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Script {
    /// `0001-pnputil.bat`, ...: run in this order.
    pub name: String,
    /// What it does, for the printed plan.
    pub purpose: String,
    /// The batch text (CRLF line ends).
    pub body: String,
}

/// The first-boot service and its scripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FirstBoot {
    pub service: String,
    /// On the system volume.
    pub dir: String,
    pub host: ServiceHost,
    pub scripts: Vec<Script>,
    /// Other files of the first-boot directory (`network.ps1`, `qemu-ga.ps1`).
    pub files: Vec<Script>,
    /// virt-v2v's `pnp_wait.exe`, copied beside the scripts, when found.
    pub pnp_wait: Option<PathBuf>,
}

/// A static IPv4 configuration for the NIC with a MAC (`--mac MAC:ip:...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaticIp {
    /// `aa:bb:cc:dd:ee:ff`, lower case.
    pub mac: String,
    pub address: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub prefix: u8,
    pub nameservers: Vec<Ipv4Addr>,
}

impl StaticIp {
    /// virt-v2v's `ADDR[,GW[,LEN[,NS,...]]]` for `mac` (LEN defaults to 24); one line
    /// naming the bad field.
    pub fn parse(mac: &str, spec: &str) -> Result<StaticIp, String> {
        let mut parts = spec.split(',');
        let ip = |field: &str, v: &str| v.parse::<Ipv4Addr>().map_err(|_| format!("{field} {:?} is not an IPv4 address", v.escape_debug().to_string()));
        let address = ip("address", parts.next().unwrap_or(""))?;
        let gateway = match parts.next() {
            Some("") | None => None,
            Some(g) => Some(ip("gateway", g)?),
        };
        let prefix = match parts.next() {
            Some("") | None => 24,
            Some(l) => l.parse::<u8>().ok().filter(|l| (1..=32).contains(l)).ok_or_else(|| format!("prefix length {:?} is not 1 to 32", l.escape_debug().to_string()))?,
        };
        let nameservers = parts.map(|n| ip("nameserver", n)).collect::<Result<Vec<_>, _>>()?;
        if nameservers.len() > 8 {
            return Err("more than 8 nameservers".into());
        }
        Ok(StaticIp { mac: mac.to_ascii_lowercase(), address, gateway, prefix, nameservers })
    }

    fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0))
    }
}

/// `qemu-ga.ps1`: a one-time task, as SYSTEM, two minutes on, that installs the MSI.
fn qemu_ga_ps1(msi: &str) -> String {
    bat(&[
        "schtasks.exe /Delete /TN FerryQemuGa /F 2>$null".into(),
        "$d = (Get-Date).AddSeconds(120)".into(),
        "$f = [System.Globalization.DateTimeFormatInfo]::CurrentInfo.ShortDatePattern -replace 'y+', 'yyyy' -replace 'M+', 'MM' -replace 'd+', 'dd'".into(),
        format!(
            "schtasks.exe /Create /SC ONCE /ST $d.ToString('HH:mm') /SD $d.ToString($f) /RU SYSTEM /TN FerryQemuGa /TR '\"%SystemRoot%\\System32\\msiexec.exe\" /i \"{DIR_WIN}\\{msi}\" /qn /norestart /l*v \"{DIR_WIN}\\qemu-ga-install.log\"'"
        ),
    ])
}

/// `network.ps1`: each NIC found by MAC through WMI (waiting for its driver), then given
/// its static address, gateway and nameservers.
fn network_ps1(ips: &[StaticIp]) -> String {
    let mut lines = vec!["$ErrorActionPreference = 'Continue'".to_string()];
    for s in ips {
        let mac = s.mac.to_ascii_uppercase();
        lines.push(format!("$a = $null; for ($i = 0; $i -lt 60 -and -not $a; $i++) {{ $a = Get-WmiObject Win32_NetworkAdapterConfiguration | Where-Object {{ $_.MACAddress -eq '{mac}' }}; if (-not $a) {{ Start-Sleep 2 }} }}"));
        lines.push(format!("if (-not $a) {{ Write-Output 'no network adapter with MAC {mac}' }} else {{"));
        lines.push(format!("  Write-Output ('{mac}: ' + $a.EnableStatic(@('{}'), @('{}')).ReturnValue)", s.address, s.mask()));
        if let Some(g) = s.gateway {
            lines.push(format!("  Write-Output ('{mac} gateway: ' + $a.SetGateways(@('{g}'), @([uint16]1)).ReturnValue)"));
        }
        if !s.nameservers.is_empty() {
            let ns: Vec<String> = s.nameservers.iter().map(|n| format!("'{n}'")).collect();
            lines.push(format!("  Write-Output ('{mac} DNS: ' + $a.SetDNSServerSearchOrder(@({})).ReturnValue)", ns.join(", ")));
        }
        lines.push("}".into());
    }
    bat(&lines)
}

fn tools_dir(data_dir: Option<&Path>) -> PathBuf {
    data_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/usr/share/virt-tools"))
}

/// virt-v2v's `pnp_wait.exe` (waits until Plug and Play has installed the new devices) in
/// the same directory as the service host, when there.
pub fn find_pnp_wait(data_dir: Option<&Path>) -> Option<PathBuf> {
    let p = tools_dir(data_dir).join("pnp_wait.exe");
    p.metadata().map(|m| m.is_file()).unwrap_or(false).then_some(p)
}

/// The service host virt-v2v would use: `$VIRT_TOOLS_DATA_DIR` (else
/// `/usr/share/virt-tools`) holding `rhsrvany.exe` or `pvvxsvc.exe`.
pub fn find_host(data_dir: Option<&Path>) -> ServiceHost {
    let dir = tools_dir(data_dir);
    for name in HOSTS {
        let p = dir.join(name);
        if p.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return ServiceHost::Srvany { name: name.into(), source: p };
        }
    }
    ServiceHost::Cmd
}

/// Batch text with CRLF line ends.
fn bat(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

/// A string taken from the guest made safe inside a batch line: refused (None) when it
/// holds control characters or the command separators `& | < > ^`; `%` doubled.
fn batch_safe(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_control() || "&|<>^".contains(c)) {
        return None;
    }
    Some(s.replace('%', "%%"))
}

/// The MSI product code of `MsiExec.exe /I{GUID}` or `/X{GUID}`, checked character by
/// character.
fn msi_product(uninstall: &str) -> Option<String> {
    let lower = uninstall.to_ascii_lowercase();
    if !lower.trim_start().starts_with("msiexec") {
        return None;
    }
    let open = uninstall.find('{')?;
    let guid = uninstall.get(open..open + 38)?;
    let ok = guid.ends_with('}')
        && guid[1..37].char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    ok.then(|| guid.to_ascii_uppercase())
}

/// The uninstall command of one hypervisor tools entry, or why it is skipped.
pub fn uninstall_command(u: &WindowsUninstall) -> Result<String, String> {
    let Some(s) = u.uninstall_string.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(format!("{:?} has no UninstallString", u.display_name.escape_debug().to_string()));
    };
    if let Some(guid) = msi_product(s) {
        return Ok(format!("msiexec.exe /x {guid} /qn /norestart"));
    }
    match batch_safe(s) {
        // NSIS uninstallers (Citrix XenTools) take /S for a silent run.
        Some(cmd) => Ok(format!("{cmd} /S")),
        None => Err(format!("{:?}: UninstallString {:?} is not a plain command", u.display_name.escape_debug().to_string(), s.escape_debug().to_string())),
    }
}

impl FirstBoot {
    /// The scripts for a guest: drivers installed, the guest agent MSI at `agent` (a file in
    /// the first-boot directory) when given, disks onlined, `tools` uninstalled. Entries that
    /// cannot be run safely are returned as warnings.
    pub fn new(host: ServiceHost, pnp_wait: Option<PathBuf>, agent: Option<&str>, tools: &[WindowsUninstall], ips: &[StaticIp]) -> (FirstBoot, Vec<String>) {
        let mut scripts = Vec::new();
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        let mut add = |purpose: &str, lines: Vec<String>| {
            let n = scripts.len() + 1;
            let slug: String = purpose.split_whitespace().next().unwrap_or("step").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            scripts.push(Script { name: format!("{n:04}-{}.bat", slug.to_ascii_lowercase()), purpose: purpose.into(), body: bat(&lines) });
        };
        add(
            "pnputil: install the virtio drivers",
            vec![
                "@echo off".into(),
                "echo installing the virtio-win drivers".into(),
                "for %%i in (\"%SystemRoot%\\Drivers\\VirtIO\\*.inf\") do %SystemRoot%\\System32\\pnputil.exe -i -a \"%%i\"".into(),
            ],
        );
        if pnp_wait.is_some() {
            add(
                "pnpwait: wait for Plug and Play to finish",
                vec!["@echo off".into(), "echo waiting for Plug and Play".into(), format!("\"{DIR_WIN}\\pnp_wait.exe\"")],
            );
        }
        if let Some(msi) = agent {
            // Installed by a task two minutes later, not from the first-boot service itself
            // (virt-v2v found msiexec unreliable there).
            files.push(Script { name: "qemu-ga.ps1".into(), purpose: "schedule the guest agent MSI".into(), body: qemu_ga_ps1(msi) });
            add(
                "qemu-ga: install the QEMU guest agent (a scheduled task)",
                vec![
                    "@echo off".into(),
                    format!("echo scheduling the installation of {msi}"),
                    format!("%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -ExecutionPolicy Bypass -File \"{DIR_WIN}\\qemu-ga.ps1\""),
                ],
            );
        }
        if !ips.is_empty() {
            files.push(Script { name: "network.ps1".into(), purpose: "static addresses by MAC".into(), body: network_ps1(ips) });
            let macs: Vec<&str> = ips.iter().map(|s| s.mac.as_str()).collect();
            add(
                &format!("network: static IPv4 addresses for {}", macs.join(", ")),
                vec![
                    "@echo off".into(),
                    "echo setting static addresses".into(),
                    format!("%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -ExecutionPolicy Bypass -File \"{DIR_WIN}\\network.ps1\""),
                ],
            );
        }
        add(
            "disks: bring offline disks online",
            vec![
                "@echo off".into(),
                "echo bringing offline disks online".into(),
                "if exist %SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe %SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -Command \"Get-Disk | Where-Object IsOffline | Set-Disk -IsOffline $false\"".into(),
            ],
        );
        for u in tools {
            match uninstall_command(u) {
                Ok(cmd) => {
                    let name = batch_safe(&u.display_name).unwrap_or_else(|| u.tools.clone());
                    add(
                        &format!("uninstall {name} ({})", u.tools),
                        vec![
                            "@echo off".into(),
                            format!("echo uninstalling {name}"),
                            cmd,
                            // ERROR_SUCCESS_REBOOT_REQUIRED is success too (as virt-v2v).
                            "if errorlevel 3010 exit /b 0".into(),
                        ],
                    );
                }
                Err(why) => warnings.push(format!("first boot: {why}: not uninstalled")),
            }
        }
        (FirstBoot { service: SERVICE.into(), dir: DIR.into(), host, scripts, files, pnp_wait }, warnings)
    }

    /// `firstboot.bat`: runs each script of `scripts\` once, logs to `log.txt`, then deletes
    /// the service.
    pub fn driver(&self) -> String {
        bat(&[
            "@echo off".into(),
            "setlocal EnableDelayedExpansion".into(),
            format!("set firstboot={DIR_WIN}"),
            "set log=%firstboot%\\log.txt".into(),
            "set scripts=%firstboot%\\scripts".into(),
            "set scripts_done=%firstboot%\\scripts-done".into(),
            "call :main >> \"%log%\" 2>&1".into(),
            "exit /b".into(),
            String::new(),
            ":main".into(),
            "echo starting Ferry first boot: %date% %time%".into(),
            "if not exist \"%scripts_done%\" mkdir \"%scripts_done%\"".into(),
            "for %%f in (\"%scripts%\\*.bat\") do (".into(),
            "  echo running %%~nxf".into(),
            "  move \"%%f\" \"%scripts_done%\" > nul".into(),
            "  pushd \"%scripts_done%\"".into(),
            "  call \"%%~nxf\"".into(),
            "  echo %%~nxf exited with !errorlevel!".into(),
            "  echo Ferry first boot: %%~nxf exited with !errorlevel! > COM1".into(),
            "  popd".into(),
            ")".into(),
            format!("echo removing the {} service", self.service),
            format!("%SystemRoot%\\System32\\sc.exe delete {}", self.service),
            "echo Ferry first boot finished: %date% %time%".into(),
            // The same milestone on the first serial port, for `ferry validate` and tests.
            "echo Ferry first boot finished > COM1".into(),
        ])
    }

    /// The service's `ImagePath` (REG_EXPAND_SZ).
    pub fn image_path(&self) -> String {
        match &self.host {
            ServiceHost::Srvany { name, .. } => format!("\"{DIR_WIN}\\{name}\""),
            ServiceHost::Cmd => format!("%SystemRoot%\\System32\\cmd.exe /c start \"\" /b \"{DIR_WIN}\\firstboot.bat\""),
        }
    }

    /// `Parameters\CommandLine` and `Parameters\PWD` for an srvany host.
    pub fn srvany_parameters(&self) -> Option<(String, String)> {
        matches!(self.host, ServiceHost::Srvany { .. }).then(|| (format!("\"{DIR_WIN}\\firstboot.bat\""), DIR_WIN.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(name: &str, s: Option<&str>) -> WindowsUninstall {
        WindowsUninstall { key: "k".into(), tools: "vmware-tools".into(), display_name: name.into(), display_version: None, uninstall_string: s.map(Into::into) }
    }

    #[test]
    fn msi_products_become_quiet_removals() {
        let u = tools("VMware Tools", Some("MsiExec.exe /I{b8f1c4e2-0d8a-4c7b-9e1f-5a2b3c4d5e6f}"));
        assert_eq!(uninstall_command(&u).unwrap(), "msiexec.exe /x {B8F1C4E2-0D8A-4C7B-9E1F-5A2B3C4D5E6F} /qn /norestart");
        let u = tools("Citrix", Some("\"C:\\Program Files\\Citrix\\XenTools\\uninstaller.exe\""));
        assert_eq!(uninstall_command(&u).unwrap(), "\"C:\\Program Files\\Citrix\\XenTools\\uninstaller.exe\" /S");
        assert!(uninstall_command(&tools("x", Some("a.exe & del C:\\"))).unwrap_err().contains("not a plain command"));
        assert!(uninstall_command(&tools("x", None)).unwrap_err().contains("no UninstallString"));
        assert!(uninstall_command(&tools("x", Some("MsiExec.exe /I{zzz}"))).unwrap().ends_with("/S"));
        assert_eq!(uninstall_command(&tools("x", Some("u.exe 100%"))).unwrap(), "u.exe 100%% /S");
    }

    #[test]
    fn scripts_are_numbered_and_crlf() {
        let (fb, warn) = FirstBoot::new(ServiceHost::Cmd, None, Some("qemu-ga-x86_64.msi"), &[tools("VMware Tools", Some("MsiExec.exe /X{B8F1C4E2-0D8A-4C7B-9E1F-5A2B3C4D5E6F}")), tools("bad", Some("x\ny"))], &[]);
        let names: Vec<&str> = fb.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["0001-pnputil.bat", "0002-qemuga.bat", "0003-disks.bat", "0004-uninstall.bat"]);
        assert_eq!(warn.len(), 1);
        assert!(fb.scripts.iter().all(|s| s.body.ends_with("\r\n") && !s.body.replace("\r\n", "").contains('\n')));
        assert!(fb.driver().contains("sc.exe delete FerryFirstboot\r\n"));
        assert!(fb.image_path().starts_with("%SystemRoot%\\System32\\cmd.exe /c start \"\" /b "));
        assert_eq!(fb.srvany_parameters(), None);
    }

    #[test]
    fn static_addresses_parse_and_become_wmi_calls() {
        let s = StaticIp::parse("00:50:56:AA:BB:CC", "192.168.1.10,192.168.1.1,20,192.168.1.2,192.168.1.3").unwrap();
        assert_eq!((s.prefix, s.mask().to_string(), s.nameservers.len()), (20, "255.255.240.0".into(), 2));
        let ps = network_ps1(std::slice::from_ref(&s));
        assert!(ps.contains("$_.MACAddress -eq '00:50:56:AA:BB:CC'"), "{ps}");
        assert!(ps.contains("EnableStatic(@('192.168.1.10'), @('255.255.240.0'))"), "{ps}");
        assert!(ps.contains("SetGateways(@('192.168.1.1'), @([uint16]1))"), "{ps}");
        assert!(ps.contains("SetDNSServerSearchOrder(@('192.168.1.2', '192.168.1.3'))"), "{ps}");
        assert_eq!(StaticIp::parse("m", "10.0.0.1").unwrap().prefix, 24);
        assert_eq!(StaticIp::parse("m", "10.0.0.1,,32").unwrap().gateway, None);
        assert!(StaticIp::parse("m", "300.1.1.1").unwrap_err().contains("address \"300.1.1.1\" is not an IPv4 address"));
        assert!(StaticIp::parse("m", "10.0.0.1,10.0.0.254,33").unwrap_err().contains("prefix length \"33\""));
        assert!(StaticIp::parse("m", "fe80::1").is_err());
        let (fb, _) = FirstBoot::new(ServiceHost::Cmd, None, None, &[], &[s]);
        assert_eq!(fb.scripts[1].name, "0002-network.bat");
        assert_eq!(fb.files[0].name, "network.ps1");
    }
}
