//! The ACPI tables as QEMU hands them to firmware: `etc/acpi/tables` (every table but the
//! RSDP, as one blob), `etc/acpi/rsdp`, and `etc/table-loader`, the linker script
//! (QEMU's `hw/acpi/bios-linker-loader.c`) with which SeaBIOS allocates both files, patches
//! each pointer to the address it allocated and fixes the checksums. The tables are the ones
//! the runtime gives a directly booted kernel ([`crate::acpi::build`]), so both boots see the
//! same ACPI.
use crate::acpi::AcpiTables;

/// The tables file.
pub const TABLES_FILE: &str = "etc/acpi/tables";
/// The RSDP file.
pub const RSDP_FILE: &str = "etc/acpi/rsdp";
/// The loader script.
pub const LOADER_FILE: &str = "etc/table-loader";

const CMD_ALLOCATE: u32 = 1;
const CMD_ADD_POINTER: u32 = 2;
const CMD_ADD_CHECKSUM: u32 = 3;
const ZONE_HIGH: u8 = 1;
const ZONE_FSEG: u8 = 2;
const ENTRY: usize = 128;
const NAME: usize = 56;

/// The three fw_cfg files.
#[derive(Clone, Debug)]
pub struct LoaderFiles {
    /// `etc/acpi/tables`.
    pub tables: Vec<u8>,
    /// `etc/acpi/rsdp`.
    pub rsdp: Vec<u8>,
    /// `etc/table-loader`.
    pub loader: Vec<u8>,
}

/// The tables cannot be expressed as a loader script.
#[derive(Debug, thiserror::Error)]
#[error("invalid ACPI table {0} for the table loader: {1}")]
pub struct LoaderError(String, String);

fn name(n: &str) -> [u8; NAME] {
    let mut b = [0u8; NAME];
    b[..n.len()].copy_from_slice(n.as_bytes());
    b
}

fn entry(cmd: u32, body: &[u8]) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..4].copy_from_slice(&cmd.to_le_bytes());
    e[4..4 + body.len()].copy_from_slice(body);
    e
}

fn allocate(file: &str, align: u32, zone: u8) -> [u8; ENTRY] {
    let mut b = name(file).to_vec();
    b.extend_from_slice(&align.to_le_bytes());
    b.push(zone);
    entry(CMD_ALLOCATE, &b)
}

fn pointer(dest: &str, src: &str, offset: u32, size: u8) -> [u8; ENTRY] {
    let mut b = name(dest).to_vec();
    b.extend_from_slice(&name(src));
    b.extend_from_slice(&offset.to_le_bytes());
    b.push(size);
    entry(CMD_ADD_POINTER, &b)
}

fn checksum(file: &str, at: u32, start: u32, len: u32) -> [u8; ENTRY] {
    let mut b = name(file).to_vec();
    for v in [at, start, len] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    entry(CMD_ADD_CHECKSUM, &b)
}

/// Builds the files from `acpi` (tables placed at absolute addresses, RSDP first): each
/// pointer field that holds a table's address becomes that table's offset in the blob plus
/// an ADD_POINTER command; each table's checksum is recomputed by an ADD_CHECKSUM command.
pub fn build(acpi: &AcpiTables) -> Result<LoaderFiles, LoaderError> {
    let (rsdp_entry, rest) = acpi.tables.split_first().ok_or_else(|| LoaderError("RSDP".into(), "no tables".into()))?;
    let base = rest.iter().map(|t| t.1).min().ok_or_else(|| LoaderError("XSDT".into(), "no tables".into()))?;
    let end = rest.iter().map(|t| t.1 + t.2.len() as u64).max().unwrap_or(base);
    let mut blob = vec![0u8; (end - base) as usize];
    for (_, at, b) in rest {
        let o = (at - base) as usize;
        blob[o..o + b.len()].copy_from_slice(b);
    }
    let addrs: Vec<u64> = rest.iter().map(|t| t.1).collect();
    let mut script = vec![allocate(TABLES_FILE, 64, ZONE_HIGH)];
    // Pointer fields: (table offset in blob, field offset, size).
    let mut fields: Vec<(usize, usize, u8)> = Vec::new();
    for (sig, at, b) in rest {
        let o = (at - base) as usize;
        match sig.as_str() {
            "FACP" => {
                for (f, size) in [(36, 4u8), (40, 4), (132, 8), (140, 8)] {
                    if f + usize::from(size) <= b.len() {
                        fields.push((o, f, size));
                    }
                }
            }
            "XSDT" | "RSDT" => {
                let step = if sig == "XSDT" { 8 } else { 4 };
                let mut f = 36;
                while f + step <= b.len() {
                    fields.push((o, f, step as u8));
                    f += step;
                }
            }
            _ => {}
        }
    }
    for (o, f, size) in fields {
        let at = o + f;
        let n = usize::from(size);
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&blob[at..at + n]);
        let value = u64::from_le_bytes(v);
        if value == 0 {
            continue;
        }
        if !addrs.contains(&value) {
            return Err(LoaderError(format!("at offset {at:#x}"), format!("pointer {value:#x} names no table")));
        }
        blob[at..at + n].copy_from_slice(&(value - base).to_le_bytes()[..n]);
        script.push(pointer(TABLES_FILE, TABLES_FILE, at as u32, size));
    }
    for (sig, at, b) in rest {
        if sig == "FACS" {
            continue; // no checksum
        }
        let o = (at - base) as u32;
        script.push(checksum(TABLES_FILE, o + 9, o, b.len() as u32));
    }
    let mut rsdp = rsdp_entry.2.clone();
    if rsdp.len() < 36 {
        return Err(LoaderError("RSDP".into(), format!("{} bytes, expected 36", rsdp.len())));
    }
    script.push(allocate(RSDP_FILE, 16, ZONE_FSEG));
    for (f, size) in [(16usize, 4u8), (24, 8)] {
        let n = usize::from(size);
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&rsdp[f..f + n]);
        let value = u64::from_le_bytes(v);
        if value == 0 {
            continue;
        }
        if !addrs.contains(&value) {
            return Err(LoaderError("RSDP".into(), format!("pointer {value:#x} names no table")));
        }
        rsdp[f..f + n].copy_from_slice(&(value - base).to_le_bytes()[..n]);
        script.push(pointer(RSDP_FILE, TABLES_FILE, f as u32, size));
    }
    script.push(checksum(RSDP_FILE, 8, 0, 20));
    if rsdp[15] >= 2 {
        script.push(checksum(RSDP_FILE, 32, 0, 36));
    }
    Ok(LoaderFiles { tables: blob, rsdp, loader: script.concat() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuid::CpuTopology;
    use crate::pci::Machine;

    /// Runs the script as SeaBIOS's `romfile_loader_execute` does, placing the tables at
    /// `hi` and the RSDP at `fseg`, and returns the memory image the guest would see.
    fn execute(f: &LoaderFiles, hi: u64, fseg: u64) -> (Vec<u8>, Vec<u8>) {
        let (mut t, mut r) = (f.tables.clone(), f.rsdp.clone());
        for e in f.loader.chunks(ENTRY) {
            let cmd = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let file = |o: usize| String::from_utf8_lossy(&e[o..o + NAME]).trim_end_matches('\0').to_string();
            let u32at = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]) as usize;
            match cmd {
                CMD_ALLOCATE => {}
                CMD_ADD_POINTER => {
                    let (dest, src, off, size) = (file(4), file(60), u32at(116), usize::from(e[120]));
                    let add = if src == TABLES_FILE { hi } else { fseg };
                    let d = if dest == TABLES_FILE { &mut t } else { &mut r };
                    let mut v = [0u8; 8];
                    v[..size].copy_from_slice(&d[off..off + size]);
                    let nv = u64::from_le_bytes(v) + add;
                    d[off..off + size].copy_from_slice(&nv.to_le_bytes()[..size]);
                }
                CMD_ADD_CHECKSUM => {
                    let (dest, at, start, len) = (file(4), u32at(60), u32at(64), u32at(68));
                    let d = if dest == TABLES_FILE { &mut t } else { &mut r };
                    let s = d[start..start + len].iter().fold(0u8, |a, b| a.wrapping_add(*b));
                    d[at] = d[at].wrapping_sub(s);
                }
                other => panic!("command {other}"),
            }
        }
        (t, r)
    }

    #[test]
    fn loaded_tables_equal_the_direct_boot_tables_when_placed_where_they_were() {
        for m in [Machine::Q35, Machine::Pc] {
            let acpi = crate::acpi::build(m, &CpuTopology::flat(2)).expect("acpi");
            let files = build(&acpi).expect("loader");
            assert_eq!(files.loader.len() % ENTRY, 0);
            let base = acpi.tables[1..].iter().map(|t| t.1).min().expect("base");
            let (t, r) = execute(&files, base, acpi.rsdp_addr());
            assert_eq!(r, acpi.tables[0].2, "{m:?} RSDP");
            for (sig, at, b) in &acpi.tables[1..] {
                let o = (at - base) as usize;
                assert_eq!(&t[o..o + b.len()], &b[..], "{m:?} {sig}");
            }
            // Placed elsewhere, every checksum still holds.
            let (t, r) = execute(&files, 0x7ff0000, 0xf5a00);
            assert_eq!(r[..20].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
            assert_eq!(r.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
            let xsdt = u64::from_le_bytes(r[24..32].try_into().expect("8"));
            assert!(xsdt >= 0x7ff0000);
            for (sig, at, b) in &acpi.tables[1..] {
                if sig != "FACS" {
                    let o = (at - base) as usize;
                    assert_eq!(t[o..o + b.len()].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "{sig}");
                }
            }
        }
    }
}
