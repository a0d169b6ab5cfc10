//! The first step of a Windows conversion that needs both writers: a boot-start storage
//! driver (`viostor`, `vioscsi`) copied into `Windows\System32\drivers` on the NTFS volume
//! and registered in the SYSTEM hive's current control set as virt-v2v registers it:
//! `Services\<name>` with Type 1 (kernel driver), Start 0 (boot), ErrorControl 1, Group
//! "SCSI miniport" and ImagePath `system32\drivers\<name>.sys`.

use super::hive::Value;
use super::hive_file::{edit_hive_file, HiveFileError};
use crate::fs::ntfs::Ntfs;

const SYSTEM: &str = "/Windows/System32/config/SYSTEM";

/// Copies `sys` to `Windows\System32\drivers\<name>.sys` (created or replaced) and makes
/// `name` a boot-start driver in the current control set (`Select\Current`).
pub fn install_boot_driver(fs: &mut Ntfs<'_>, volume: &str, name: &str, sys: &[u8]) -> Result<(), HiveFileError> {
    if name.is_empty() || name.len() > 32 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(HiveFileError::DriverName { volume: volume.into(), name: name.escape_default().to_string() });
    }
    if !fs.exists(SYSTEM)? {
        return Err(HiveFileError::Missing { volume: volume.into(), path: SYSTEM.into() });
    }
    fs.write_file(&format!("/Windows/System32/drivers/{name}.sys"), sys)?;
    edit_hive_file(fs, volume, SYSTEM, |h| {
        let current = match h.lookup("Select")? {
            Some(k) => match h.value(k, "Current")? {
                Some(Value::Dword(n)) if (1..=999).contains(&n) => n,
                _ => 1,
            },
            None => 1,
        };
        let k = h.create_key(&format!("ControlSet{current:03}\\Services\\{name}"))?;
        h.set_value(k, "Type", &Value::Dword(1))?;
        h.set_value(k, "Start", &Value::Dword(0))?;
        h.set_value(k, "ErrorControl", &Value::Dword(1))?;
        h.set_value(k, "Group", &Value::Sz("SCSI miniport".into()))?;
        h.set_value(k, "ImagePath", &Value::ExpandSz(format!("system32\\drivers\\{name}.sys")))
    })
}
