//! Damaged or unsafe-to-write ext filesystems are refused with one-line errors naming the
//! field and value, never a panic. Uses the small committed images in testdata/fs/.

use ferry_converters::fs::ext4::Ext4;
use ferry_converters::fs::{FsError, Volume};
use ferry_formats::disk::{CowOverlay, RawImage};
use std::path::Path;

fn image(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fs").join(name)).unwrap()
}

/// Opens `bytes` as a filesystem and runs `f` on the result.
fn with_fs<R>(bytes: &[u8], f: impl FnOnce(Result<Ext4, FsError>) -> R) -> R {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    let ov = CowOverlay::new(RawImage::open(file.path()).unwrap()).unwrap();
    let vol = Volume::new(&ov, 0, bytes.len() as u64, "img").unwrap();
    f(Ext4::open(vol, "img"))
}

fn open_err(bytes: &[u8]) -> String {
    with_fs(bytes, |r| r.err().map(|e| e.to_string()).unwrap_or_else(|| "opened".into()))
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn committed_images_open_and_read() {
    for name in ["ext4-nocsum.img", "ext4-csum.img", "ext2.img"] {
        with_fs(&image(name), |r| {
            let fs = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(fs.read_file("/etc/fstab", 1 << 20).unwrap(), b"/dev/sda1 / ext4 defaults 0 1\n");
            assert_eq!(fs.read_dir("/many").unwrap().len(), 60, "{name}");
            assert_eq!(fs.read_file("/var/lib/data", 1 << 20).unwrap(), vec![b'x'; 20000]);
            assert_eq!(fs.read_link("/bin").unwrap(), b"usr/bin");
            assert!(fs.read_link("/etc/slow-link").unwrap().ends_with(b"deep/target"));
            assert_eq!(fs.metadata("/etc/hostname").unwrap().links, 2);
            assert!(matches!(fs.read_file("/var/lib/data", 100), Err(FsError::Path { .. })), "size cap");
        });
    }
}

#[test]
fn bad_superblock_fields_are_named() {
    let base = image("ext4-nocsum.img");
    let mut b = base.clone();
    put32(&mut b, 1024 + 0x18, 9);
    assert_eq!(open_err(&b), "img: invalid s_log_block_size 9: block size above 64 KiB");
    let mut b = base.clone();
    put32(&mut b, 1024 + 0x28, 0);
    assert!(open_err(&b).starts_with("img: invalid s_inodes_per_group 0:"), "{}", open_err(&b));
    let mut b = base.clone();
    put32(&mut b, 1024 + 0x04, 1 << 30);
    assert!(open_err(&b).starts_with("img: invalid s_blocks_count 1073741824:"), "{}", open_err(&b));
    let mut b = base.clone();
    b[1024 + 0x38] = 0;
    assert!(open_err(&b).contains("superblock magic"));
    let mut b = image("ext4-csum.img");
    b[1024 + 0x78] ^= 1; // volume name: only the checksum notices
    assert!(open_err(&b).contains("superblock checksum"), "{}", open_err(&b));
}

#[test]
fn unsafe_states_are_refused() {
    let base = image("ext4-nocsum.img");
    let mut b = base.clone();
    b[1024 + 0x60] |= 0x4; // needs_recovery
    assert_eq!(open_err(&b), "img: filesystem journal needs recovery: shut the guest down cleanly");
    let mut b = base.clone();
    put32(&mut b, 1024 + 0xE8, 12); // s_last_orphan
    assert!(open_err(&b).contains("orphan inodes pending"));
    let mut b = base.clone();
    b[1024 + 0x3A] |= 2; // errors recorded
    assert!(open_err(&b).contains("errors recorded"));
    let mut b = base.clone();
    b[1024 + 0x64 + 1] |= 0x01; // ro_compat quota (0x100)
    assert!(open_err(&b).contains("unsupported read-only-compatible features 0x100"), "{}", open_err(&b));
}

#[test]
fn corrupted_directory_is_an_error_not_a_panic() {
    let base = image("ext4-nocsum.img");
    let root_block = with_fs(&base, |r| {
        let fs = r.unwrap();
        fs.metadata("/").unwrap();
        // Find the root directory's first block: the block holding "." with inode 2 and ".." 2.
        let bs = fs.block_size() as usize;
        (0..base.len() / bs)
            .find(|&i| {
                let b = &base[i * bs..(i + 1) * bs];
                b[0..4] == 2u32.to_le_bytes() && b[8] == b'.' && b[12..16] == 2u32.to_le_bytes() && &b[20..22] == b".."
            })
            .unwrap()
            * bs
    });
    let mut b = base.clone();
    b[root_block + 12 + 4..root_block + 12 + 6].copy_from_slice(&3u16.to_le_bytes()); // ".." rec_len 3
    with_fs(&b, |r| {
        let fs = r.unwrap();
        let e = fs.read_dir("/").unwrap_err().to_string();
        assert!(e.contains("rec_len 3"), "{e}");
        assert!(fs.read_file("/etc/fstab", 100).is_err());
    });
}
