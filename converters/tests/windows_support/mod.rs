//! Shared by the Windows tests: hives built by hivex from .reg fixtures, .reg edits parsed
//! into operations (so hivexregedit and Ferry apply the same edits), and hivex exports.

#![allow(dead_code)]

use ferry_converters::windows::hive::{Hive, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map(|o| o.status.success());
    if !matches!(ok, Ok(true)) {
        eprintln!("skipped: {tool} is not installed (tests/run.sh installs it)");
        return false;
    }
    true
}

pub fn support() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/windows_support")
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Recomputes the base block checksum (after a test patches a field).
pub fn fix_checksum(b: &mut [u8]) {
    let mut x = 0u32;
    for i in 0..127 {
        x ^= u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
    }
    b[508..512].copy_from_slice(&x.to_le_bytes());
}

/// An empty hive (testdata/inspect/minimal-hive.pl) with regf minor version `minor`, then
/// `reg` merged into it by hivexregedit under `prefix`.
pub fn build_hive(dir: &Path, name: &str, minor: u32, reg: Option<&Path>, prefix: &str) -> PathBuf {
    let out = dir.join(name);
    let pl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/inspect/minimal-hive.pl");
    run("perl", &[pl.to_str().unwrap(), out.to_str().unwrap()]);
    let mut b = std::fs::read(&out).unwrap();
    b[24..28].copy_from_slice(&minor.to_le_bytes());
    fix_checksum(&mut b);
    std::fs::write(&out, &b).unwrap();
    if let Some(reg) = reg {
        merge(&out, reg, prefix);
    }
    out
}

pub fn merge(hive: &Path, reg: &Path, prefix: &str) {
    run("hivexregedit", &["--merge", "--prefix", prefix, hive.to_str().unwrap(), reg.to_str().unwrap()]);
}

pub fn export(hive: &Path) -> String {
    run("hivexregedit", &["--export", hive.to_str().unwrap(), "\\"])
}

/// One edit of a .reg file.
#[derive(Clone, Debug)]
pub enum Op {
    Key(String),
    DeleteKey(String),
    Set(String, String, Value),
    DeleteValue(String, String),
}

fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => out.push(it.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn hex(s: &str) -> Vec<u8> {
    s.split(',').filter(|x| !x.trim().is_empty()).map(|x| u8::from_str_radix(x.trim(), 16).unwrap()).collect()
}

fn value(s: &str) -> Value {
    if let Some(d) = s.strip_prefix("dword:") {
        return Value::Dword(u32::from_str_radix(d, 16).unwrap());
    }
    if let Some(h) = s.strip_prefix("hex:") {
        return Value::Binary(hex(h));
    }
    if let Some(rest) = s.strip_prefix("hex(") {
        let (ty, h) = rest.split_once("):").unwrap();
        let ty = u32::from_str_radix(ty, 16).unwrap();
        let data = hex(h);
        let v = Value::decode(ty, data.clone());
        // The typed value must store exactly the bytes hivex stores.
        assert_eq!(v.encode(), (ty, data), "{s}");
        return v;
    }
    Value::Sz(quoted(s).unwrap().0)
}

/// The edits of a .reg file, paths relative to `prefix`, in file order.
pub fn parse_reg(text: &str, prefix: &str) -> Vec<Op> {
    let rel = |p: &str| p.strip_prefix(prefix).unwrap_or(p).trim_start_matches('\\').to_string();
    let mut ops = Vec::new();
    let mut cur = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with(';') || line.starts_with("Windows Registry") {
            continue;
        }
        if let Some(p) = line.strip_prefix("[-").and_then(|l| l.strip_suffix(']')) {
            ops.push(Op::DeleteKey(rel(p)));
            cur = None;
        } else if let Some(p) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            ops.push(Op::Key(rel(p)));
            cur = Some(rel(p));
        } else {
            let k = cur.clone().expect("value outside a key");
            let (name, rest) = match line.strip_prefix('@') {
                Some(r) => (String::new(), r),
                None => quoted(line).unwrap(),
            };
            let rest = rest.strip_prefix('=').unwrap();
            if rest == "-" {
                ops.push(Op::DeleteValue(k, name));
            } else {
                ops.push(Op::Set(k, name, value(rest)));
            }
        }
    }
    ops
}

/// Applies edits with Ferry's writer.
pub fn apply(h: &mut Hive, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Key(p) => {
                h.create_key(p).unwrap();
            }
            Op::DeleteKey(p) => {
                h.delete_key(p).unwrap();
            }
            Op::Set(p, n, v) => {
                let k = h.lookup(p).unwrap().unwrap();
                h.set_value(k, n, v).unwrap();
            }
            Op::DeleteValue(p, n) => {
                let k = h.lookup(p).unwrap().unwrap();
                h.delete_value(k, n).unwrap();
            }
        }
    }
}

/// Writes `reg`'s edits into a copy of `hive` with Ferry, into another copy with
/// hivexregedit, and returns both paths.
pub fn edit_both(dir: &Path, hive: &Path, reg_text: &str, prefix: &str) -> (PathBuf, PathBuf) {
    let ferry = dir.join("ferry.hive");
    let hivex = dir.join("hivex.hive");
    std::fs::copy(hive, &hivex).unwrap();
    let reg = dir.join("edits.reg");
    std::fs::write(&reg, reg_text).unwrap();
    let t = std::time::Instant::now();
    merge(&hivex, &reg, prefix);
    let hivex_time = t.elapsed();
    let ops = parse_reg(reg_text, prefix);
    let t = std::time::Instant::now();
    let mut h = Hive::open(&hive.display().to_string(), std::fs::read(hive).unwrap()).unwrap();
    apply(&mut h, &ops);
    std::fs::write(&ferry, h.to_bytes()).unwrap();
    eprintln!("{} edits: Ferry {:?}, hivexregedit {hivex_time:?}", ops.len(), t.elapsed());
    (ferry, hivex)
}

/// Asserts two exports are equal, showing the first differing lines.
pub fn assert_same(got: &str, want: &str) {
    if got == want {
        return;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let i = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
    let show = |v: &[&str]| v[i.saturating_sub(3)..(i + 4).min(v.len())].iter().map(|l| &l[..l.len().min(200)]).collect::<Vec<_>>().join("\n");
    let (gl, wl) = (g.get(i).unwrap_or(&""), w.get(i).unwrap_or(&""));
    let at = gl.bytes().zip(wl.bytes()).position(|(a, b)| a != b);
    panic!("exports differ at line {i} ({} vs {} lines), line lengths {} vs {}, first byte difference at {at:?}\nFerry:\n{}\nhivex:\n{}", g.len(), w.len(), gl.len(), wl.len(), show(&g), show(&w));
}

/// A whole-disk NTFS volume of `mib` MiB made by mkntfs and filled through an ntfs-3g FUSE
/// mount with `files` (volume path, bytes; parents created); None, with the reason printed,
/// when FUSE mounts are not allowed here. The unmount is retried while the mount is busy.
pub fn ntfs_volume(dir: &Path, name: &str, mib: u64, files: &[(&str, Vec<u8>)]) -> Option<PathBuf> {
    let img = dir.join(name);
    std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
    run("mkntfs", &["-q", "-F", "-f", "-L", "Windows", img.to_str().unwrap()]);
    let mnt = dir.join(format!("{name}.mnt"));
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("ntfs-3g").args([img.to_str().unwrap(), mnt.to_str().unwrap()]).status();
    if !matches!(ok, Ok(s) if s.success()) {
        eprintln!("skipped: ntfs-3g cannot mount here (needs root and /dev/fuse)");
        return None;
    }
    for (path, data) in files {
        let f = mnt.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, data).unwrap();
    }
    for _ in 0..20 {
        if Command::new("umount").arg(&mnt).status().unwrap().success() {
            return Some(img);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("umount {}", mnt.display());
}

/// A hiberfil.sys beginning with `magic`, `len` bytes.
pub fn hiberfil(magic: &[u8], len: usize) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.resize(len, 0);
    b
}

/// Gives the NTFS volume `img` the change journal Windows keeps, `$Extend\$UsnJrnl`, with the
/// `$Max` stream `max` and a `$J` of `j_len` bytes (`j` gives each byte); false when FUSE
/// mounts are not allowed here. ntfs-3g will not create files in `$Extend`: it writes
/// `/UsnJrnl` (named streams through its `user.` xattrs), and Ferry's NTFS writer moves the
/// file in place.
pub fn add_usn_journal(img: &Path, max: &[u8], j: impl Fn(usize) -> u8, j_len: usize) -> bool {
    use ferry_converters::fs::{ntfs::Ntfs, Volume};
    use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
    let mnt = img.with_extension("usn.mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    if !Command::new("ntfs-3g").arg(img).arg(&mnt).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: ntfs-3g cannot mount here (needs root and /dev/fuse)");
        return false;
    }
    std::fs::write(mnt.join("UsnJrnl"), b"").unwrap();
    let hex = |b: &[u8]| format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    let data: Vec<u8> = (0..j_len).map(j).collect();
    for (n, v) in [("user.$Max", hex(max)), ("user.$J", hex(&data))] {
        let o = Command::new("setfattr").args(["-n", n, "-v", &v]).arg(mnt.join("UsnJrnl")).output().unwrap();
        assert!(o.status.success(), "setfattr {n}: {}", String::from_utf8_lossy(&o.stderr));
    }
    for i in 0..20 {
        if Command::new("umount").arg(&mnt).status().unwrap().success() {
            break;
        }
        assert!(i < 19, "umount {}", mnt.display());
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let overlay = CowOverlay::new(RawImage::open(img).unwrap()).unwrap();
    {
        let vol = Volume::new(&overlay, 0, overlay.size(), "journal").unwrap();
        Ntfs::open(vol, "journal").unwrap().rename("/UsnJrnl", "/$Extend/$UsnJrnl").unwrap();
    }
    let mut b = vec![0u8; overlay.size() as usize];
    overlay.read_at(&mut b, 0).unwrap();
    std::fs::write(img, b).unwrap();
    true
}

/// `ntfscat -a 0x80 -n NAME IMG PATH`: a named `$DATA` stream, as ntfs-3g reads it.
pub fn ntfs_stream(img: &Path, path: &str, name: &str) -> Vec<u8> {
    let o = Command::new("ntfscat").args(["-a", "0x80", "-n", name]).arg(img).arg(path).output().unwrap();
    assert!(o.status.success(), "ntfscat {path}:{name}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}
