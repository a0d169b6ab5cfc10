//! The Windows conversion plan, as virt-v2v's pre-conversion: the virtio-win drivers for the
//! guest's version and architecture copied to `%SystemRoot%\Drivers\VirtIO`, the block
//! driver (`viostor`, or `vioscsi` for `--block-driver virtio-scsi`) to `System32\drivers` and
//! made boot-start, bound to the virtio block PCI IDs (modern 1AF4:1042, transitional
//! 1AF4:1001; virtio-scsi 1AF4:1048 and 1AF4:1004) through `CriticalDeviceDatabase`
//! (Windows 7 / 2008 R2 and older) or `DriverDatabase` (Windows 8 and later), `DevicePath`
//! extended with the VirtIO directory, VMware Tools / Xen PV services disabled, the SAN
//! policy set to bring every disk online, and a first-boot service ([`super::firstboot`])
//! that installs the other drivers and the guest agent and uninstalls the hypervisor tools.
//! The virtio devices are modern when the block driver's INF binds the modern ID
//! (`DEV_1042` / `DEV_1048`), else transitional, as virt-v2v decides from the injected drivers.
//!
//! [`plan`] reads only the inspection facts and the virtio-win tree; [`apply`] writes the
//! plan on the NTFS system volume through the NTFS and hive writers.

use super::firstboot::{self, FirstBoot, ServiceHost};
use super::hive::{Hive, HiveError, Value};
use crate::linux::VirtioNeed;
use ferry_inspectors::os::linux::virtio::VirtioInterface;
use super::hive_file::{edit_hive_file, HiveFileError};
use crate::fs::ntfs::Ntfs;
use ferry_formats::iso9660::Iso;
use ferry_formats::layout::BlockDriver;
use ferry_inspectors::os::OsInfo;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The block driver made boot-start for virtio-blk disks.
pub const BLOCK_DRIVER: &str = "viostor";
/// The block driver made boot-start for disks on a virtio-scsi controller.
pub const SCSI_DRIVER: &str = "vioscsi";
/// Disk drives' device class.
const DISK_CLASS: &str = "{4d36e967-e325-11ce-bfc1-08002be10318}";
/// Storage controllers' device class.
const SCSI_CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";
/// Virtio block: transitional and modern PCI device IDs (vendor 1AF4).
const BLOCK_IDS: [&str; 2] = ["1001", "1042"];
/// Virtio SCSI: transitional and modern PCI device IDs (vendor 1AF4).
const SCSI_IDS: [&str; 2] = ["1004", "1048"];

/// The boot-critical driver for the disks' device, with its transitional and modern PCI IDs
/// and the virtio device type (the transitional function's subsystem ID).
fn boot_driver(block: BlockDriver) -> (&'static str, [&'static str; 2], u8) {
    match block {
        BlockDriver::VirtioBlk => (BLOCK_DRIVER, BLOCK_IDS, 2),
        BlockDriver::VirtioScsi => (SCSI_DRIVER, SCSI_IDS, 8),
    }
}

/// The PCI IDs and virtio type of a plan's block driver (`viostor` or `vioscsi`).
fn driver_ids(driver: &str) -> ([&'static str; 2], u8) {
    let block = if driver == SCSI_DRIVER { BlockDriver::VirtioScsi } else { BlockDriver::VirtioBlk };
    let (_, ids, vtype) = boot_driver(block);
    (ids, vtype)
}
/// Driver files larger than this are refused (real ones are under 2 MiB).
const MAX_DRIVER_FILE: u64 = 64 << 20;
/// At most this many files are copied from the virtio-win tree.
const MAX_DRIVER_FILES: usize = 2000;
/// The guest directory the drivers are copied to (`%SystemRoot%\Drivers\VirtIO`).
const VIRTIO_DIR: &str = "Drivers\\VirtIO";
const SYSTEM: &str = "System32/config/SYSTEM";
const SOFTWARE: &str = "System32/config/SOFTWARE";

/// Every way planning or applying a Windows conversion fails; one line each.
#[derive(Debug, thiserror::Error)]
pub enum WindowsPlanError {
    #[error("{root}: {why}: refusing to convert (boot Windows, shut it down fully with `shutdown /s /t 0`, and try again)")]
    Unsafe { root: String, why: String },

    #[error("{root}: {what}: Ferry does not convert this Windows guest")]
    Unsupported { root: String, what: String },

    #[error("{path}: {why}")]
    VirtioWin { path: String, why: String },

    #[error(transparent)]
    Edit(#[from] HiveFileError),
}

impl From<HiveError> for WindowsPlanError {
    fn from(e: HiveError) -> Self {
        WindowsPlanError::Edit(e.into())
    }
}

impl From<crate::fs::FsError> for WindowsPlanError {
    fn from(e: crate::fs::FsError) -> Self {
        WindowsPlanError::Edit(e.into())
    }
}

/// Where PnP binds boot devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DeviceDatabase {
    /// `SYSTEM\DriverDatabase\DeviceIds\PCI` (Windows 8 / 2012 and later).
    DriverDatabase,
    /// `ControlSetNNN\Control\CriticalDeviceDatabase` (Windows 7 / 2008 R2 and older).
    CriticalDeviceDatabase,
}

/// One driver file copied into the guest.
#[derive(Clone, Debug, Serialize)]
pub struct DriverFile {
    /// Path in the virtio-win tree (`viostor/2k22/amd64/viostor.sys`).
    pub source: String,
    /// Path on the system volume (`/Windows/Drivers/VirtIO/viostor.sys`).
    pub target: String,
    pub size: u64,
}

/// What converting a Windows guest changes.
#[derive(Clone, Debug, Serialize)]
pub struct WindowsPlan {
    /// virtio-win's directory names for the guest: `2k22`, `w10`, ... and `amd64` / `x86`.
    pub os_dir: String,
    pub arch_dir: String,
    /// The virtio-win directory or ISO image.
    pub virtio_win: String,
    /// `/Windows` (from `%SystemRoot%`).
    pub systemroot: String,
    /// `ControlSet001`, from `Select\Current`.
    pub control_set: String,
    pub block_driver: String,
    pub device_database: DeviceDatabase,
    /// Every file copied (the block driver's `.sys` once more to `System32\drivers`).
    pub files: Vec<DriverFile>,
    /// Services set to Start 4 (disabled): VMware Tools, Xen PV drivers.
    pub disable: Vec<String>,
    /// The virtio device model the injected block driver binds.
    pub virtio: VirtioNeed,
    /// The first-boot service and its scripts.
    pub firstboot: FirstBoot,
    /// Files copied into the first-boot directory (the guest agent MSI).
    pub firstboot_files: Vec<DriverFile>,
    pub warnings: Vec<String>,
}

/// virtio-win's OS directory names for libosinfo ids, with fallbacks tried in order (an
/// older ISO has no `w11` or `2k25` directory; their drivers are the `w10` / `2k22` ones).
fn os_dirs(osinfo: &str) -> Option<&'static [&'static str]> {
    Some(match osinfo {
        "win2k25" => &["2k25", "2k22"],
        "win2k22" => &["2k22", "2k19"],
        "win2k19" => &["2k19", "2k16"],
        "win2k16" => &["2k16"],
        "win11" => &["w11", "w10"],
        "win10" => &["w10"],
        "win2k12r2" => &["2k12R2"],
        "win8.1" => &["w8.1"],
        "win2k12" => &["2k12"],
        "win8" => &["w8"],
        "win2k8r2" => &["2k8R2"],
        "win7" => &["w7"],
        "win2k8" => &["2k8"],
        // NT 6.0 and 5.x, where cheap: only older virtio-win ISOs carry their drivers.
        "winvista" => &["vista", "2k8"],
        "win2k3" | "win2k3r2" => &["2k3"],
        "winxp" => &["xp", "2k3"],
        _ => return None,
    })
}

fn arch_dir(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("amd64"),
        "i386" | "i686" | "x86" => Some("x86"),
        "aarch64" => Some("ARM64"),
        _ => None,
    }
}

/// Refuses a volume that is dirty, hibernated or has Fast Startup on (as virt-v2v).
pub fn check_safe(os: &OsInfo) -> Result<(), WindowsPlanError> {
    let Some(s) = &os.windows_state else {
        return Ok(());
    };
    let why = if s.hibernated {
        "Windows is hibernated (hiberfil.sys holds an image)"
    } else if s.fast_startup {
        "Windows has Fast Startup on (HiberbootEnabled = 1), so its volume is left hibernated"
    } else if s.dirty {
        "the NTFS volume is marked dirty (not shut down cleanly, or chkdsk is pending)"
    } else {
        return Ok(());
    };
    Err(WindowsPlanError::Unsafe { root: os.root.clone(), why: why.into() })
}

/// The virtio-win drivers: a directory laid out as the ISO, or the ISO image itself.
pub enum VirtioWin {
    Dir(PathBuf),
    Iso(Iso),
}

impl VirtioWin {
    /// A directory, else an ISO 9660 image read by Ferry.
    pub fn open(path: &Path) -> Result<VirtioWin, WindowsPlanError> {
        if path.is_dir() {
            return Ok(VirtioWin::Dir(path.to_path_buf()));
        }
        Iso::open(path).map(VirtioWin::Iso).map_err(|e| WindowsPlanError::VirtioWin {
            path: path.display().to_string(),
            why: format!("neither a directory nor a readable ISO 9660 image: {}", one_line(&e.to_string())),
        })
    }

    fn err(&self, why: String) -> WindowsPlanError {
        WindowsPlanError::VirtioWin { path: self.name(), why }
    }

    fn name(&self) -> String {
        match self {
            VirtioWin::Dir(d) => d.display().to_string(),
            VirtioWin::Iso(i) => i.name().to_string(),
        }
    }

    /// How a file of the tree is shown: a host path, or `image.iso:/path`.
    pub fn describe(&self, rel: &str) -> String {
        match self {
            VirtioWin::Dir(d) => d.join(rel).display().to_string(),
            VirtioWin::Iso(i) => format!("{}:/{rel}", i.name()),
        }
    }

    /// The names of the directories at the top.
    fn top_dirs(&self) -> Result<Vec<String>, WindowsPlanError> {
        let mut v: Vec<String> = match self {
            VirtioWin::Dir(d) => std::fs::read_dir(d)
                .map_err(|e| self.err(format!("cannot read the virtio-win directory: {e}")))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            VirtioWin::Iso(i) => {
                i.read_dir(&i.root()).map_err(|e| self.err(one_line(&e.to_string())))?.into_iter().filter(|e| e.is_dir).map(|e| e.name).collect()
            }
        };
        v.sort();
        Ok(v)
    }

    /// The regular files of the directory `rel` (name, size, path in the tree), sorted;
    /// None when there is no such directory.
    fn files(&self, rel: &str) -> Result<Option<Vec<(String, u64, String)>>, WindowsPlanError> {
        let mut v: Vec<(String, u64, String)> = match self {
            VirtioWin::Dir(d) => {
                let Ok(rd) = std::fs::read_dir(d.join(rel)) else {
                    return Ok(None);
                };
                let mut v = Vec::new();
                for e in rd.filter_map(|e| e.ok()) {
                    if !e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                        continue;
                    }
                    let size = e.metadata().map_err(|err| self.err(format!("{}: {err}", e.path().display())))?.len();
                    let name = e.file_name().to_string_lossy().into_owned();
                    v.push((name.clone(), size, format!("{rel}/{name}")));
                }
                v
            }
            VirtioWin::Iso(i) => {
                let map = |e: ferry_formats::iso9660::IsoError| self.err(one_line(&e.to_string()));
                let Some(dir) = i.lookup(rel).map_err(map)?.filter(|d| d.is_dir) else {
                    return Ok(None);
                };
                i.read_dir(&dir)
                    .map_err(map)?
                    .into_iter()
                    .filter(|e| !e.is_dir)
                    .map(|e| (e.name.clone(), u64::from(e.size), format!("{rel}/{}", e.name)))
                    .collect()
            }
        };
        v.sort();
        Ok(Some(v))
    }

    /// The bytes of the file `rel`, refused above the driver file limit.
    fn read(&self, rel: &str) -> Result<Vec<u8>, WindowsPlanError> {
        match self {
            VirtioWin::Dir(d) => {
                // Opened as every source is (no FIFO, no device), read at most one byte past
                // the limit.
                let read = || -> std::io::Result<Vec<u8>> {
                    let (f, _) = ferry_formats::disk::open_input(&d.join(rel))?;
                    let mut data = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_DRIVER_FILE + 1), &mut data)?;
                    Ok(data)
                };
                let data = read().map_err(|e| self.err(format!("{rel}: read: {e}")))?;
                if data.len() as u64 > MAX_DRIVER_FILE {
                    return Err(self.err(format!("{rel}: grew past the driver file limit")));
                }
                Ok(data)
            }
            VirtioWin::Iso(i) => {
                let map = |e: ferry_formats::iso9660::IsoError| self.err(one_line(&e.to_string()));
                let e = i.lookup(rel).map_err(map)?.ok_or_else(|| self.err(format!("{rel}: gone from the image")))?;
                i.read(&e, MAX_DRIVER_FILE).map_err(map)
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Plans the conversion of the Windows root `os` with drivers from `vw` (laid out as the
/// virtio-win ISO: `viostor/2k22/amd64/...`), the boot driver the one of `block`'s device.
pub fn plan(os: &OsInfo, vw: &VirtioWin, host: ServiceHost, pnp_wait: Option<PathBuf>, ips: &[firstboot::StaticIp], block: BlockDriver) -> Result<WindowsPlan, WindowsPlanError> {
    check_safe(os)?;
    let (driver, ids, _) = boot_driver(block);
    let unsupported = |what: String| WindowsPlanError::Unsupported { root: os.root.clone(), what };
    let arch = arch_dir(&os.arch).ok_or_else(|| unsupported(format!("architecture {:?}", os.arch.escape_default().to_string())))?;
    let dirs = os_dirs(&os.osinfo).ok_or_else(|| {
        unsupported(format!(
            "Windows {}.{} ({:?}): virtio-win has no drivers for it",
            os.major_version,
            os.minor_version,
            os.product_name.escape_default().to_string()
        ))
    })?;
    let top = vw.top_dirs()?;
    // The first OS directory any driver has, in fallback order.
    let mut found = None;
    'os: for d in dirs.iter() {
        for t in &top {
            if let Some(f) = vw.files(&format!("{t}/{d}/{arch}"))? {
                if !f.is_empty() {
                    found = Some(*d);
                    break 'os;
                }
            }
        }
    }
    let os_dir = found.ok_or_else(|| vw.err(format!("no drivers for {} {arch} (looked for */{}/{arch})", os.osinfo, dirs.join("|"))))?;
    let systemroot = format!("/{}", os.windows_systemroot.as_deref().unwrap_or("\\Windows").trim_start_matches('\\').replace('\\', "/"));
    let vdir = format!("{systemroot}/{}", VIRTIO_DIR.replace('\\', "/"));
    let mut files: Vec<DriverFile> = Vec::new();
    let mut warnings = Vec::new();
    let mut block_sys = None;
    for t in &top {
        let Some(list) = vw.files(&format!("{t}/{os_dir}/{arch}"))? else {
            continue;
        };
        for (name, size, rel) in list {
            if name.is_empty() || name.chars().any(|c| c.is_control() || "\\/:*?\"<>|".contains(c)) {
                warnings.push(format!("{}: not a Windows file name: skipped", vw.describe(&rel).escape_debug()));
                continue;
            }
            if size > MAX_DRIVER_FILE {
                return Err(vw.err(format!("{rel}: {size} bytes, larger than a driver file can be ({MAX_DRIVER_FILE})")));
            }
            let target = format!("{vdir}/{name}");
            if files.iter().any(|f| f.target.eq_ignore_ascii_case(&target)) {
                warnings.push(format!("{}: a file of that name is already copied: skipped", vw.describe(&rel)));
                continue;
            }
            if name.eq_ignore_ascii_case(&format!("{driver}.sys")) {
                block_sys = Some((rel.clone(), size));
            }
            files.push(DriverFile { source: rel, target, size });
            if files.len() > MAX_DRIVER_FILES {
                return Err(vw.err(format!("more than {MAX_DRIVER_FILES} driver files for {os_dir}/{arch}")));
            }
        }
    }
    let (sys, size) = block_sys.ok_or_else(|| vw.err(format!("no {driver}/{os_dir}/{arch}/{driver}.sys: the guest would not boot on {}", block.name())))?;
    let virtio = block_virtio(vw, &sys, ids[1])?;
    files.push(DriverFile { source: sys, target: format!("{systemroot}/System32/drivers/{driver}.sys"), size });
    let device_database = match (os.windows_device_database.as_deref(), os.major_version, os.minor_version) {
        (Some("DriverDatabase"), _, _) => DeviceDatabase::DriverDatabase,
        (Some(_), _, _) => DeviceDatabase::CriticalDeviceDatabase,
        (None, maj, min) if (maj, min) >= (6, 2) => DeviceDatabase::DriverDatabase,
        _ => DeviceDatabase::CriticalDeviceDatabase,
    };
    let disable = os.windows_services.iter().filter(|s| s.role == "hypervisor" && s.start != Some(4)).map(|s| s.name.clone()).collect();
    // The guest agent MSI for the architecture, when the tree has one (guest-agent/).
    let msi = if arch == "amd64" { "qemu-ga-x86_64.msi" } else { "qemu-ga-i386.msi" };
    let mut firstboot_files = Vec::new();
    for t in top.iter().filter(|t| t.eq_ignore_ascii_case("guest-agent")) {
        if let Some((name, size, rel)) = vw.files(t)?.unwrap_or_default().into_iter().find(|(n, _, _)| n.eq_ignore_ascii_case(msi)) {
            if size > MAX_DRIVER_FILE {
                return Err(vw.err(format!("{rel}: {size} bytes, larger than a driver file can be ({MAX_DRIVER_FILE})")));
            }
            firstboot_files.push(DriverFile { source: rel, target: format!("{}/{name}", firstboot::DIR), size });
        }
    }
    let agent = firstboot_files.first().and_then(|f| f.target.rsplit('/').next()).map(str::to_string);
    let (firstboot, fb_warnings) = FirstBoot::new(host, pnp_wait, agent.as_deref(), &os.windows_uninstall, ips);
    warnings.extend(fb_warnings);
    if os.major_version < 6 {
        warnings.push(format!(
            "Windows {}.{} has neither pnputil nor PowerShell: Plug and Play installs the drivers from DevicePath (the boot driver is bound through the CriticalDeviceDatabase); the first-boot steps that need them (pnputil, the guest agent, static addresses, onlining disks) fail in its log",
            os.major_version, os.minor_version
        ));
    }
    Ok(WindowsPlan {
        os_dir: os_dir.to_string(),
        virtio_win: vw.name(),
        arch_dir: arch.into(),
        systemroot,
        control_set: os.windows_current_control_set.clone().unwrap_or_else(|| "ControlSet001".into()),
        block_driver: driver.into(),
        device_database,
        files,
        disable,
        virtio,
        firstboot,
        firstboot_files,
        warnings,
    })
}

/// Modern virtio devices when the block driver's INF (beside its `.sys`) binds the modern
/// device ID 1AF4:`modern` (1042, 1048), else transitional ones (drivers older than virtio 1.0).
fn block_virtio(vw: &VirtioWin, sys: &str, modern: &str) -> Result<VirtioNeed, WindowsPlanError> {
    let inf = format!("{}.inf", sys.strip_suffix(".sys").or_else(|| sys.strip_suffix(".SYS")).unwrap_or(sys));
    let text = match vw.read(&inf) {
        Ok(b) => inf_text(&b),
        Err(_) => String::new(),
    };
    let binds = text.to_ascii_uppercase().contains(&format!("VEN_1AF4&DEV_{modern}"));
    let (interface, reason) = match (text.is_empty(), binds) {
        (true, _) => (VirtioInterface::Unknown, format!("{inf} is missing or empty: transitional devices, the safe choice")),
        (false, true) => (VirtioInterface::Modern, format!("{inf} binds PCI\\VEN_1AF4&DEV_{modern} (virtio 1.0)")),
        (false, false) => (VirtioInterface::Legacy, format!("{inf} binds only the legacy ID (no PCI\\VEN_1AF4&DEV_{modern})")),
    };
    Ok(VirtioNeed { transitional: interface.needs_transitional(), kernel: inf, interface, reason })
}

/// An INF's text: UTF-16LE with a byte-order mark, else bytes as Latin-1.
fn inf_text(b: &[u8]) -> String {
    match b {
        [0xff, 0xfe, rest @ ..] => char::decode_utf16(rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))).map(|c| c.unwrap_or('?')).collect(),
        _ => b.iter().map(|&c| c as char).collect(),
    }
}

impl fmt::Display for WindowsPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let win = |p: &str| format!("C:{}", p.replace('/', "\\"));
        writeln!(f, "  virtio-win drivers: {}/{} ({} files)", self.os_dir, self.arch_dir, self.files.len() - 1)?;
        for d in &self.files {
            writeln!(f, "    copy {}/{} -> {}", self.virtio_win, d.source, win(&d.target))?;
        }
        let cs = &self.control_set;
        let drv = &self.block_driver;
        writeln!(f, "  HKLM\\SYSTEM\\{cs}\\Services\\{drv}: Type=1 Start=0 ErrorControl=1 Group=\"SCSI miniport\" ImagePath=system32\\drivers\\{drv}.sys")?;
        for id in driver_ids(drv).0 {
            match self.device_database {
                DeviceDatabase::DriverDatabase => writeln!(f, "  HKLM\\SYSTEM\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_{id}: {drv}.inf=01 ff 00 00")?,
                DeviceDatabase::CriticalDeviceDatabase => {
                    writeln!(f, "  HKLM\\SYSTEM\\{cs}\\Control\\CriticalDeviceDatabase\\pci#ven_1af4&dev_{id}: Service={drv} ClassGUID={SCSI_CLASS}")?
                }
            }
        }
        writeln!(f, "  HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion DevicePath += %SystemRoot%\\{VIRTIO_DIR}")?;
        for s in &self.disable {
            writeln!(f, "  HKLM\\SYSTEM\\{cs}\\Services\\{s}: Start=4 (disabled)")?;
        }
        writeln!(f, "  HKLM\\SYSTEM\\{cs}\\Services\\partmgr\\Parameters: SanPolicy=1 (every disk online)")?;
        writeln!(f, "  virtio devices: {} ({})", if self.virtio.transitional { "transitional" } else { "modern" }, self.virtio.reason)?;
        let fb = &self.firstboot;
        let host = match &fb.host {
            ServiceHost::Srvany { name, source } => format!("{name} from {}", source.display()),
            ServiceHost::Cmd => "cmd.exe".into(),
        };
        writeln!(f, "  first boot: service {} ({host}) runs {}:", fb.service, win(&format!("{}/firstboot.bat", fb.dir)))?;
        for file in &self.firstboot_files {
            writeln!(f, "    copy {}/{} -> {}", self.virtio_win, file.source, win(&file.target))?;
        }
        for s in &fb.scripts {
            writeln!(f, "    {}: {}", s.name, s.purpose)?;
        }
        Ok(())
    }
}

/// The CriticalDeviceDatabase keys for the block driver's PCI IDs (with and without the
/// subsystem and revision, as Windows 7 looks them up): the transitional function's
/// subsystem is the virtio type, the modern one's QEMU's 1100.
fn critical_keys(driver: &str) -> Vec<String> {
    let ([legacy, modern], vtype) = driver_ids(driver);
    vec![
        format!("pci#ven_1af4&dev_{legacy}&subsys_{vtype:04x}1af4&rev_00"),
        format!("pci#ven_1af4&dev_{legacy}"),
        format!("pci#ven_1af4&dev_{modern}&subsys_11001af4&rev_01"),
        format!("pci#ven_1af4&dev_{modern}"),
    ]
}

/// The SYSTEM hive edits.
fn edit_system(p: &WindowsPlan, h: &mut Hive) -> Result<(), HiveError> {
    let cs = &p.control_set;
    let drv = &p.block_driver;
    let k = h.create_key(&format!("{cs}\\Services\\{drv}"))?;
    h.set_value(k, "Type", &Value::Dword(1))?;
    h.set_value(k, "Start", &Value::Dword(0))?;
    h.set_value(k, "ErrorControl", &Value::Dword(1))?;
    h.set_value(k, "Group", &Value::Sz("SCSI miniport".into()))?;
    h.set_value(k, "ImagePath", &Value::ExpandSz(format!("system32\\drivers\\{drv}.sys")))?;
    match p.device_database {
        DeviceDatabase::DriverDatabase => {
            for id in driver_ids(drv).0 {
                let k = h.create_key(&format!("DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_{id}"))?;
                h.set_value(k, &format!("{drv}.inf"), &Value::Binary(vec![1, 0xff, 0, 0]))?;
            }
        }
        DeviceDatabase::CriticalDeviceDatabase => {
            for name in critical_keys(drv) {
                let k = h.create_key(&format!("{cs}\\Control\\CriticalDeviceDatabase\\{name}"))?;
                h.set_value(k, "ClassGUID", &Value::Sz(SCSI_CLASS.into()))?;
                h.set_value(k, "Service", &Value::Sz(drv.clone()))?;
            }
        }
    }
    for s in &p.disable {
        if let Some(k) = h.lookup(&format!("{cs}\\Services\\{s}"))? {
            h.set_value(k, "Start", &Value::Dword(4))?;
        }
    }
    // A crash stays on screen (0x7B is seen, not a reboot loop), where the key exists.
    if let Some(k) = h.lookup(&format!("{cs}\\Control\\CrashControl"))? {
        h.set_value(k, "AutoReboot", &Value::Dword(0))?;
    }
    // Parallels' storage filter leaves the disk class's LowerFilters (its DelReg).
    if let Some(k) = h.lookup(&format!("{cs}\\Control\\Class\\{DISK_CLASS}"))? {
        if let Some(Value::MultiSz(filters)) = h.value(k, "LowerFilters")? {
            let kept: Vec<String> = filters.iter().filter(|f| !f.eq_ignore_ascii_case("prl_strg") && !f.is_empty()).cloned().collect();
            if kept.len() != filters.len() {
                h.set_value(k, "LowerFilters", &Value::MultiSz(kept))?;
            }
        }
    }
    // Disks found on the new controller come online (SAN policy OnlineAll).
    let k = h.create_key(&format!("{cs}\\Services\\partmgr\\Parameters"))?;
    h.set_value(k, "SanPolicy", &Value::Dword(1))?;
    // The first-boot service: own process, automatic start, as LocalSystem.
    let fb = &p.firstboot;
    let k = h.create_key(&format!("{cs}\\Services\\{}", fb.service))?;
    h.set_value(k, "Type", &Value::Dword(0x10))?;
    h.set_value(k, "Start", &Value::Dword(2))?;
    h.set_value(k, "ErrorControl", &Value::Dword(1))?;
    h.set_value(k, "ImagePath", &Value::ExpandSz(fb.image_path()))?;
    h.set_value(k, "DisplayName", &Value::Sz("Ferry first boot".into()))?;
    h.set_value(k, "ObjectName", &Value::Sz("LocalSystem".into()))?;
    if let Some((cmd, pwd)) = fb.srvany_parameters() {
        let k = h.create_key(&format!("{cs}\\Services\\{}\\Parameters", fb.service))?;
        h.set_value(k, "CommandLine", &Value::ExpandSz(cmd))?;
        h.set_value(k, "PWD", &Value::ExpandSz(pwd))?;
    }
    Ok(())
}

/// `DevicePath` with `%SystemRoot%\Drivers\VirtIO` appended (once).
fn device_path(old: Option<Value>) -> Value {
    let add = format!("%SystemRoot%\\{VIRTIO_DIR}");
    let cur = match old {
        Some(Value::Sz(s) | Value::ExpandSz(s)) => s.trim_end_matches('\0').to_string(),
        _ => "%SystemRoot%\\inf".to_string(),
    };
    if cur.split(';').any(|p| p.eq_ignore_ascii_case(&add)) {
        return Value::ExpandSz(cur);
    }
    Value::ExpandSz(if cur.is_empty() { add } else { format!("{cur};{add}") })
}

/// Carries out `p` on the NTFS system volume `fs` (named `volume` in errors).
pub fn apply(p: &WindowsPlan, vw: &VirtioWin, fs: &mut Ntfs<'_>, volume: &str) -> Result<usize, WindowsPlanError> {
    let root = &p.systemroot;
    for hive in [SYSTEM, SOFTWARE] {
        let path = format!("{root}/{hive}");
        if !fs.exists(&path)? {
            return Err(HiveFileError::Missing { volume: volume.into(), path }.into());
        }
    }
    mkdir_p(fs, &format!("{root}/{}", VIRTIO_DIR.replace('\\', "/")))?;
    for f in &p.files {
        let data = vw.read(&f.source)?;
        fs.write_file(&f.target, &data)?;
    }
    let fb = &p.firstboot;
    mkdir_p(fs, &format!("{}/scripts", fb.dir))?;
    fs.write_file(&format!("{}/firstboot.bat", fb.dir), fb.driver().as_bytes())?;
    for s in &fb.scripts {
        fs.write_file(&format!("{}/scripts/{}", fb.dir, s.name), s.body.as_bytes())?;
    }
    for s in &fb.files {
        fs.write_file(&format!("{}/{}", fb.dir, s.name), s.body.as_bytes())?;
    }
    for f in &p.firstboot_files {
        let data = vw.read(&f.source)?;
        fs.write_file(&f.target, &data)?;
    }
    let mut tools: Vec<(&str, &Path)> = Vec::new();
    if let ServiceHost::Srvany { name, source } = &fb.host {
        tools.push((name, source));
    }
    if let Some(p) = &fb.pnp_wait {
        tools.push(("pnp_wait.exe", p));
    }
    for (name, source) in tools {
        let data = std::fs::read(source).map_err(|e| WindowsPlanError::VirtioWin { path: source.display().to_string(), why: format!("read: {e}") })?;
        if data.len() as u64 > firstboot::MAX_HOST_FILE {
            return Err(WindowsPlanError::VirtioWin { path: source.display().to_string(), why: "larger than a virt-tools file can be".into() });
        }
        fs.write_file(&format!("{}/{name}", fb.dir), &data)?;
    }
    edit_hive_file(fs, volume, &format!("{root}/{SYSTEM}"), |h| edit_system(p, h))?;
    edit_hive_file(fs, volume, &format!("{root}/{SOFTWARE}"), |h| {
        let k = h.create_key("Microsoft\\Windows\\CurrentVersion")?;
        let v = device_path(h.value(k, "DevicePath")?);
        h.set_value(k, "DevicePath", &v)
    })?;
    Ok(p.files.len() + p.firstboot_files.len() + p.firstboot.scripts.len() + p.firstboot.files.len() + 3)
}

/// Creates `path` and any missing parents.
fn mkdir_p(fs: &mut Ntfs<'_>, path: &str) -> Result<(), WindowsPlanError> {
    let mut dir = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        dir = format!("{dir}/{part}");
        if !fs.exists(&dir)? {
            fs.mkdir(&dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_path_appended_once() {
        let v = device_path(Some(Value::ExpandSz("%SystemRoot%\\inf".into())));
        assert_eq!(v, Value::ExpandSz("%SystemRoot%\\inf;%SystemRoot%\\Drivers\\VirtIO".into()));
        assert_eq!(device_path(Some(v.clone())), v);
        assert_eq!(device_path(None), v);
    }

    #[test]
    fn critical_keys_per_driver() {
        assert_eq!(critical_keys("viostor"), ["pci#ven_1af4&dev_1001&subsys_00021af4&rev_00", "pci#ven_1af4&dev_1001", "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01", "pci#ven_1af4&dev_1042"]);
        assert_eq!(critical_keys("vioscsi"), ["pci#ven_1af4&dev_1004&subsys_00081af4&rev_00", "pci#ven_1af4&dev_1004", "pci#ven_1af4&dev_1048&subsys_11001af4&rev_01", "pci#ven_1af4&dev_1048"]);
    }

    #[test]
    fn os_directories() {
        assert_eq!(os_dirs("win2k22"), Some(&["2k22", "2k19"][..]));
        assert_eq!(os_dirs("win2k8r2"), Some(&["2k8R2"][..]));
        assert_eq!(os_dirs("winvista"), Some(&["vista", "2k8"][..]));
        assert_eq!(os_dirs("winxp"), Some(&["xp", "2k3"][..]));
        assert_eq!(os_dirs("win2k3r2"), Some(&["2k3"][..]));
        assert_eq!(os_dirs("win2k"), None);
        assert_eq!(arch_dir("x86_64"), Some("amd64"));
        assert_eq!(arch_dir("unknown"), None);
    }
}
