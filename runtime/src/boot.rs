//! Direct kernel boot: PVH ELF (micro-guests, vmlinux) or bzImage (64-bit boot protocol).
use crate::layout::{self, E820Entry};
use crate::memory::Memory;
use linux_loader::loader::{bzimage::BzImage, elf::Elf, elf::PvhBootCapability, KernelLoader};
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, ReadVolatile};

/// Errors while loading the kernel, initrd or command line.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A file could not be read.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The kernel loader rejected the image.
    #[error("{0}: not a loadable kernel: {1}")]
    Kernel(String, String),
    /// An ELF without a PVH note.
    #[error("{0}: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)")]
    NoPvh(String),
    /// The initrd does not fit in RAM.
    #[error("{0}: invalid initrd size {1}: does not fit below {2:#x}")]
    Initrd(String, u64, u64),
    /// The command line is too long or holds a NUL.
    #[error("invalid cmdline length {0}: at most {1} bytes without NUL")]
    Cmdline(usize, usize),
    /// Writing guest memory failed.
    #[error("cannot write boot data at {0:#x}: {1}")]
    Mem(u64, String),
}

/// How the boot vCPU enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// PVH: 32-bit protected mode, paging off, EBX = start_info.
    Pvh(u64),
    /// Linux 64-bit boot protocol: long mode, RSI = zero page.
    Linux64(u64),
}

fn wr(mem: &Memory, addr: u64, data: &[u8]) -> Result<(), BootError> {
    mem.write_slice(data, GuestAddress(addr)).map_err(|e| BootError::Mem(addr, e.to_string()))
}

/// A kernel or initrd: a host file, or bytes already read (from the guest's own disk).
#[derive(Clone, Copy, Debug)]
pub enum Image<'a> {
    /// A host file.
    File(&'a Path),
    /// Bytes named for errors (e.g. `disk0:/boot/vmlinuz-6.1.0`).
    Bytes(&'a str, &'a [u8]),
}

impl Image<'_> {
    fn name(&self) -> String {
        match self {
            Image::File(p) => p.display().to_string(),
            Image::Bytes(n, _) => (*n).to_string(),
        }
    }
}

/// Loads `kernel` (+ `initrd`, `cmdline`) into `mem` and writes the boot information.
pub fn load(mem: &Memory, mem_bytes: u64, kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Result<Entry, BootError> {
    load_image(mem, mem_bytes, Image::File(kernel), initrd.map(Image::File), cmdline)
}

/// Like [`load`], from host files or bytes.
pub fn load_image(mem: &Memory, mem_bytes: u64, kernel: Image<'_>, initrd: Option<Image<'_>>, cmdline: &str) -> Result<Entry, BootError> {
    let kname = kernel.name();
    match kernel {
        Image::File(p) => {
            let f = File::open(p).map_err(|e| BootError::Io(kname.clone(), e))?;
            load_from(mem, mem_bytes, &kname, f, initrd, cmdline)
        }
        Image::Bytes(_, b) => load_from(mem, mem_bytes, &kname, Cursor::new(b), initrd, cmdline),
    }
}

fn load_from<F: Read + ReadVolatile + Seek>(
    mem: &Memory,
    mem_bytes: u64,
    kname: &str,
    mut f: F,
    initrd: Option<Image<'_>>,
    cmdline: &str,
) -> Result<Entry, BootError> {
    let kname = kname.to_string();
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|e| BootError::Io(kname.clone(), e))?;
    if cmdline.len() >= layout::CMDLINE_MAX || cmdline.contains('\0') {
        return Err(BootError::Cmdline(cmdline.len(), layout::CMDLINE_MAX - 1));
    }
    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    wr(mem, layout::CMDLINE_ADDR, &cl)?;
    let low_end = layout::ram_ranges(mem_bytes).first().map(|r| r.1).unwrap_or(0);
    if magic == *b"\x7fELF" {
        let r = Elf::load(mem, None, &mut f, Some(GuestAddress(layout::HIMEM_START)))
            .map_err(|e| BootError::Kernel(kname.clone(), e.to_string()))?;
        let PvhBootCapability::PvhEntryPresent(entry) = r.pvh_boot_cap else {
            return Err(BootError::NoPvh(kname));
        };
        let rd = load_initrd(mem, initrd, r.kernel_end, low_end)?;
        write_pvh_info(mem, mem_bytes, rd)?;
        Ok(Entry::Pvh(entry.0))
    } else {
        let r = BzImage::load(mem, None, &mut f, Some(GuestAddress(layout::HIMEM_START)))
            .map_err(|e| BootError::Kernel(kname.clone(), e.to_string()))?;
        // The zero page starts with the setup header copied verbatim from the image.
        let mut hdr = [0u8; 0x290 - 0x1f1];
        f.seek(SeekFrom::Start(0x1f1)).map_err(|e| BootError::Io(kname.clone(), e))?;
        f.read_exact(&mut hdr).map_err(|e| BootError::Io(kname.clone(), e))?;
        let hdr_len = (0x202 + usize::from(hdr[0x201 - 0x1f1]) - 0x1f1).min(hdr.len());
        let mut zp = vec![0u8; 4096];
        zp[0x1f1..0x1f1 + hdr_len].copy_from_slice(&hdr[..hdr_len]);
        let version = u16::from_le_bytes([zp[0x206], zp[0x207]]);
        let xlf = u16::from_le_bytes([zp[0x236], zp[0x237]]);
        if version < 0x020c || xlf & 1 == 0 {
            return Err(BootError::Kernel(kname, format!("boot protocol {version:#x} lacks the 64-bit entry (XLF_KERNEL_64)")));
        }
        zp[0x210] = 0xff; // type_of_loader: undefined
        zp[0x211] |= 0x80 | 0x01; // loadflags: CAN_USE_HEAP | LOADED_HIGH
        zp[0x224..0x226].copy_from_slice(&0xfe00u16.to_le_bytes()); // heap_end_ptr
        zp[0x228..0x22c].copy_from_slice(&(layout::CMDLINE_ADDR as u32).to_le_bytes());
        let max_rd = u64::from(u32::from_le_bytes([zp[0x22c], zp[0x22d], zp[0x22e], zp[0x22f]]));
        let kernel_end = r.kernel_end.max(r.kernel_load.0);
        if let Some((addr, size)) = load_initrd(mem, initrd, kernel_end, low_end.min(max_rd.saturating_add(1)))? {
            zp[0x218..0x21c].copy_from_slice(&(addr as u32).to_le_bytes());
            zp[0x21c..0x220].copy_from_slice(&(size as u32).to_le_bytes());
        }
        let map = layout::e820(mem_bytes);
        zp[0x1e8] = map.len() as u8;
        for (i, e) in map.iter().enumerate() {
            let o = 0x2d0 + i * 20;
            zp[o..o + 8].copy_from_slice(&e.addr.to_le_bytes());
            zp[o + 8..o + 16].copy_from_slice(&e.size.to_le_bytes());
            zp[o + 16..o + 20].copy_from_slice(&e.kind.to_le_bytes());
        }
        wr(mem, layout::ZERO_PAGE_ADDR, &zp)?;
        Ok(Entry::Linux64(r.kernel_load.0 + 0x200))
    }
}

/// Places the initrd page-aligned at the top of low RAM, above the kernel.
fn load_initrd(mem: &Memory, initrd: Option<Image<'_>>, kernel_end: u64, limit: u64) -> Result<Option<(u64, u64)>, BootError> {
    let Some(image) = initrd else { return Ok(None) };
    let name = image.name();
    let (mut file, size) = match image {
        Image::File(path) => {
            let f = File::open(path).map_err(|e| BootError::Io(name.clone(), e))?;
            let size = f.metadata().map_err(|e| BootError::Io(name.clone(), e))?.len();
            (Some(f), size)
        }
        Image::Bytes(_, b) => (None, b.len() as u64),
    };
    let addr = limit.checked_sub(size).map(|a| a & !0xfff).filter(|a| *a >= kernel_end);
    let Some(addr) = addr else { return Err(BootError::Initrd(name, size, limit)) };
    match (&mut file, image) {
        (Some(f), _) => mem.read_exact_volatile_from(GuestAddress(addr), f, size as usize).map_err(|e| BootError::Mem(addr, e.to_string()))?,
        (None, Image::Bytes(_, b)) => wr(mem, addr, b)?,
        (None, Image::File(_)) => return Err(BootError::Mem(addr, "initrd file not open".into())),
    }
    Ok(Some((addr, size)))
}

/// Writes `hvm_start_info`, the module list and the memory map.
fn write_pvh_info(mem: &Memory, mem_bytes: u64, initrd: Option<(u64, u64)>) -> Result<(), BootError> {
    let map: Vec<E820Entry> = layout::e820(mem_bytes);
    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&0x336e_c578u32.to_le_bytes()); // magic
    info.extend_from_slice(&1u32.to_le_bytes()); // version (memmap fields valid)
    info.extend_from_slice(&0u32.to_le_bytes()); // flags
    info.extend_from_slice(&u32::from(initrd.is_some()).to_le_bytes()); // nr_modules
    info.extend_from_slice(&layout::PVH_MODLIST_ADDR.to_le_bytes());
    info.extend_from_slice(&layout::CMDLINE_ADDR.to_le_bytes());
    info.extend_from_slice(&0u64.to_le_bytes()); // rsdp_paddr
    info.extend_from_slice(&layout::PVH_MEMMAP_ADDR.to_le_bytes());
    info.extend_from_slice(&(map.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    wr(mem, layout::PVH_INFO_ADDR, &info)?;
    if let Some((addr, size)) = initrd {
        let mut m = Vec::with_capacity(32);
        for v in [addr, size, 0, 0] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        wr(mem, layout::PVH_MODLIST_ADDR, &m)?;
    }
    let mut m = Vec::with_capacity(map.len() * 24);
    for e in &map {
        m.extend_from_slice(&e.addr.to_le_bytes());
        m.extend_from_slice(&e.size.to_le_bytes());
        m.extend_from_slice(&e.kind.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
    }
    wr(mem, layout::PVH_MEMMAP_ADDR, &m)
}

/// Writes the GDT and (for the 64-bit entry) identity page tables for the first 4 GiB.
pub fn write_tables(mem: &Memory) -> Result<(), BootError> {
    let gdt: [u64; 4] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    let bytes: Vec<u8> = gdt.iter().flat_map(|g| g.to_le_bytes()).collect();
    wr(mem, layout::GDT_ADDR, &bytes)?;
    let pml4 = layout::PML4_ADDR;
    let pdpt = pml4 + 0x1000;
    wr(mem, pml4, &(pdpt | 3).to_le_bytes())?;
    for i in 0..4u64 {
        let pd = pdpt + 0x1000 * (i + 1);
        wr(mem, pdpt + i * 8, &(pd | 3).to_le_bytes())?;
        let entries: Vec<u8> = (0..512u64).flat_map(|j| (((i << 30) | (j << 21)) | 0x83).to_le_bytes()).collect();
        wr(mem, pd, &entries)?;
    }
    Ok(())
}

/// Writes `data` (an MP table or other firmware blob) at `addr`.
pub fn write_blob(mem: &Memory, addr: u64, data: &[u8]) -> Result<(), BootError> {
    if mem.check_range(GuestAddress(addr), data.len()) {
        wr(mem, addr, data)
    } else {
        Err(BootError::Mem(addr, "outside guest RAM".into()))
    }
}

/// Tells the kernel where the RSDP is: PVH `start_info.rsdp_paddr` or the zero page's
/// `acpi_rsdp_addr` (it is also found by the legacy scan of 0xe0000..0x100000).
pub fn set_rsdp(mem: &Memory, entry: Entry, rsdp: u64) -> Result<(), BootError> {
    match entry {
        Entry::Pvh(_) => wr(mem, layout::PVH_INFO_ADDR + 32, &rsdp.to_le_bytes()),
        Entry::Linux64(_) => wr(mem, layout::ZERO_PAGE_ADDR + 0x70, &rsdp.to_le_bytes()),
    }
}
