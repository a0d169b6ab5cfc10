//! The initramfs and kmod readers/writers against the real images and module trees of the
//! Debian test guests, with the real tools as oracles: `lsinitramfs`/`lsinitrd` (the member
//! lists recorded at build time), `zstd`/`gzip` + `cpio` (contents), `depmod` (byte-identical
//! kmod indexes) and the host's `modprobe` (dependency and alias resolution).

mod guest_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferry_converters::initramfs::{add_modules, Initramfs, Limits, VIRTIO_MODULES};
use ferry_converters::kmod::{resolve, HostDir, Index, ModInfo, ModulesDep};
use guest_support::*;

fn segments_of(image: &Initramfs) -> Vec<(usize, Option<&'static str>)> {
    image.segments.iter().map(|s| (s.offset, s.compression.map(|c| c.name()))).collect()
}

/// Every member the library reads equals what the real tools unpack, and the member list is
/// the one lsinitramfs/lsinitrd printed when the guest was built.
fn check_image_against_tools(g: &Guest) {
    let work = tempfile::tempdir().unwrap();
    let (_, initrd) = extract_boot(g, work.path());
    let image = Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    let unpacked = work.path().join("unpacked");
    unpack_with_tools(&initrd, &segments_of(&image), &unpacked);
    let mut ours = BTreeSet::new();
    for e in image.segments.iter().flat_map(|s| &s.entries) {
        let path = e.path();
        ours.insert(path.clone());
        let host = unpacked.join(&path);
        let meta = std::fs::symlink_metadata(&host).unwrap_or_else(|_| panic!("{path} not unpacked by cpio"));
        if e.is_file() {
            assert!(std::fs::read(&host).unwrap() == image.data(e), "{path}: contents differ");
        } else if e.is_symlink() {
            assert_eq!(std::fs::read_link(&host).unwrap().as_os_str().as_encoded_bytes(), &e.data[..], "{path}");
        } else if e.is_dir() {
            assert!(meta.is_dir(), "{path}");
        }
    }
    // lsinitramfs prints paths relative to the root (lsinitrd like `ls -l`: last field).
    let listed: BTreeSet<String> = std::fs::read_to_string(g.dir.join("initrd.list"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| !p.starts_with("->"))
        .map(ferry_converters::initramfs::cpio::normalize)
        .collect();
    let missing: Vec<_> = ours.iter().filter(|p| !listed.contains(*p)).take(5).collect();
    let files_listed: Vec<_> = listed.iter().filter(|p| p.contains("modules/") && p.ends_with(".ko")).collect();
    assert!(!files_listed.is_empty());
    for p in files_listed {
        assert!(ours.contains(p), "{p} listed by the tool but not read");
    }
    assert!(missing.is_empty() || g.dir.to_string_lossy().contains("dracut"), "read but not listed: {missing:?}");

    // Rewriting the main segment with the same members gives an image the tools unpack alike.
    let main = image.main_segment();
    let rewritten = image.rewrite_segment(main, &image.segments[main].entries).unwrap();
    let again = Initramfs::parse("rewritten", rewritten.clone(), Limits::default()).unwrap();
    assert_eq!(again.segments.len(), image.segments.len());
    assert_eq!(again.segments[main].entries, image.segments[main].entries);
    assert_eq!(again.segments[main].compression, image.segments[main].compression);
    let path = work.path().join("rewritten.img");
    std::fs::write(&path, &rewritten).unwrap();
    let unpacked2 = work.path().join("unpacked2");
    unpack_with_tools(&path, &segments_of(&again), &unpacked2);
    assert!(manifest(&unpacked) == manifest(&unpacked2), "rewritten image unpacks differently");
}

/// Type, mode, size, link target, device and SHA-256 of everything under `dir`, sorted.
fn manifest(dir: &Path) -> String {
    let script = "find . -printf '%y %m %s %l %p\\n' | sort; find . -type f -print0 | sort -z | xargs -0 sha256sum; \
                  find . \\( -type c -o -type b \\) -exec stat -c '%n %t:%T' {} + | sort";
    String::from_utf8_lossy(&run(Command::new("sh").arg("-c").arg(script).current_dir(dir))).into_owned()
}

#[test]
fn initramfs_tools_image_reads_like_cpio_and_lsinitramfs() {
    let Some(g) = guest("debian-vmware") else { return };
    check_image_against_tools(&g);
}

#[test]
fn dracut_image_reads_like_cpio_and_lsinitrd() {
    let Some(g) = guest("debian-dracut") else { return };
    check_image_against_tools(&g);
}

/// Our kmod index writer reproduces depmod's files byte for byte (the whole 4000-module tree).
#[test]
fn kmod_indexes_roundtrip_byte_identical_to_depmod() {
    let Some(g) = guest("debian-vmware") else { return };
    let dir = g.root().join(format!("usr/lib/modules/{}", g.kver));
    for name in ["modules.dep.bin", "modules.alias.bin", "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let index = Index::parse(name, &bytes).unwrap();
        assert!(!index.entries.is_empty(), "{name}");
        assert!(index.write().unwrap() == bytes, "{name}: rewritten index differs from depmod's");
    }
    // modules.dep (text) and modules.dep.bin agree line for line.
    let dep = ModulesDep::parse("modules.dep", &std::fs::read(dir.join("modules.dep")).unwrap()).unwrap();
    let bin = Index::parse("dep.bin", &std::fs::read(dir.join("modules.dep.bin")).unwrap()).unwrap();
    assert_eq!(dep.entries.len(), bin.entries.len());
    for e in &dep.entries {
        let name = ferry_converters::kmod::module_name(&e.path);
        assert_eq!(bin.entries[&name][0].value, e.line(), "{name}");
    }
}

fn modprobe_show_depends(root: &Path, kver: &str, module: &str) -> Vec<String> {
    let out = run(Command::new("modprobe").arg("-d").arg(root).arg("-S").arg(kver).arg("--show-depends").arg(module));
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .map(|l| ferry_converters::kmod::module_name(l.split_whitespace().next().unwrap_or_default()))
        .collect()
}

/// The closure equals modprobe's own dependency list on the guest's tree, and `.modinfo`
/// read through goblin matches `modinfo -F`.
#[test]
fn closure_matches_modprobe_and_modinfo() {
    let Some(g) = guest("debian-vmware") else { return };
    if !which("modprobe") {
        eprintln!("skipped: kmod's modprobe not installed (tests/run.sh installs it)");
        return;
    }
    let files = HostDir::new(g.root());
    let closure = resolve(&files, &g.kver, &VIRTIO_MODULES).unwrap();
    assert!(closure.missing.is_empty(), "{:?}", closure.missing);
    let names: Vec<&str> = closure.modules.iter().map(|m| m.name.as_str()).collect();
    for wanted in VIRTIO_MODULES {
        let mut expected = modprobe_show_depends(&g.root(), &g.kver, wanted);
        expected.sort();
        for dep in &expected {
            assert!(names.contains(&dep.as_str()), "{wanted} needs {dep} (modprobe) but the closure is {names:?}");
        }
        let pos = |n: &str| names.iter().position(|x| *x == n);
        for dep in &expected {
            assert!(pos(dep) <= pos(wanted), "{dep} must come before {wanted}");
        }
    }
    for m in &closure.modules {
        let path = g.root().join(format!("lib/modules/{}/{}", g.kver, m.path));
        let info = ModInfo::parse(&m.path, &std::fs::read(&path).unwrap()).unwrap();
        let tool = String::from_utf8_lossy(&run(Command::new("modinfo").arg("-F").arg("depends").arg(&path))).trim().to_string();
        let tool: BTreeSet<String> = tool.split(',').filter(|s| !s.is_empty()).map(ferry_converters::kmod::module_name).collect();
        let ours: BTreeSet<String> = info.depends().into_iter().collect();
        assert_eq!(ours, tool, "{}", m.name);
        let aliases = String::from_utf8_lossy(&run(Command::new("modinfo").arg("-F").arg("alias").arg(&path))).lines().count();
        assert_eq!(info.values("alias").count(), aliases, "{}", m.name);
    }
}

/// After injection, the host's modprobe, reading only the new image's files (our
/// `modules.dep.bin` and `modules.alias.bin`), resolves virtio_blk's dependencies to files
/// that exist in the image and maps the virtio PCI and virtio-bus aliases to the drivers.
#[test]
fn injected_image_resolves_with_modprobe() {
    let Some(g) = guest("debian-vmware") else { return };
    if !which("modprobe") {
        eprintln!("skipped: kmod's modprobe not installed (tests/run.sh installs it)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_, initrd) = extract_boot(&g, work.path());
    let image = Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    let (new, _) = add_modules(&HostDir::new(g.root()), &g.kver, &image, &VIRTIO_MODULES).unwrap();
    let path = work.path().join("new.img");
    std::fs::write(&path, &new).unwrap();
    let parsed = Initramfs::parse("new", new, Limits::default()).unwrap();
    let root = work.path().join("root");
    unpack_with_tools(&path, &segments_of(&parsed), &root);
    let out = String::from_utf8_lossy(&run(Command::new("modprobe").arg("-d").arg(&root).arg("-S").arg(&g.kver).arg("--show-depends").arg("virtio_blk"))).into_owned();
    for want in ["virtio_ring", "virtio.ko", "virtio_blk"] {
        assert!(out.contains(want), "{want} missing from {out}");
    }
    for line in out.lines().filter_map(|l| l.strip_prefix("insmod ")) {
        let file = line.split_whitespace().next().unwrap();
        let rel = file.strip_prefix(root.to_str().unwrap()).unwrap_or(file);
        assert!(root.join(rel.trim_start_matches('/')).is_file(), "{file} not in the image");
    }
    let resolve = |alias: &str| String::from_utf8_lossy(&run(Command::new("modprobe").arg("-d").arg(&root).arg("-S").arg(&g.kver).arg("-R").arg(alias))).trim().to_string();
    assert_eq!(resolve("pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00"), "virtio_pci");
    assert_eq!(resolve("virtio:d00000002v00001AF4"), "virtio_blk");
    assert_eq!(resolve("virtio:d00000001v00001AF4"), "virtio_net");
    // the drivers the image had still resolve
    assert!(String::from_utf8_lossy(&run(Command::new("modprobe").arg("-d").arg(&root).arg("-S").arg(&g.kver).arg("--show-depends").arg("vmw_pvscsi"))).contains("vmw_pvscsi"));
    let conf = std::fs::read_to_string(root.join("conf/modules")).unwrap();
    assert!(conf.lines().any(|l| l == "virtio_blk") && conf.lines().any(|l| l.trim() == "vmw_pvscsi"), "{conf}");
}

/// `.ko.xz`, `.ko.zst` and `.ko.gz` (made by the real compressors from the guest's modules)
/// give the same `.modinfo` as the plain `.ko`, and a tree of compressed modules resolves the
/// same closure, with the compressed paths.
#[test]
fn compressed_modules_read_like_plain_ones() {
    let Some(g) = guest("debian-vmware") else { return };
    let files = HostDir::new(g.root());
    let closure = resolve(&files, &g.kver, &["virtio_blk", "virtio_net"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    for (ext, tool) in [("xz", "xz -c --check=crc32"), ("zst", "zstd -qc"), ("gz", "gzip -nc")] {
        let root = work.path().join(ext);
        let moddir = root.join(format!("lib/modules/{}", g.kver));
        let mut dep = String::new();
        for m in &closure.modules {
            let src = g.root().join(format!("lib/modules/{}/{}", g.kver, m.path));
            let dst = moddir.join(format!("{}.{ext}", m.path));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            run(Command::new("sh").arg("-c").arg(format!("{tool} '{}' > '{}'", src.display(), dst.display())));
            let plain = ModInfo::parse(&m.path, &std::fs::read(&src).unwrap()).unwrap();
            let packed = ModInfo::parse(&format!("{}.{ext}", m.path), &std::fs::read(&dst).unwrap()).unwrap();
            assert_eq!(plain.pairs, packed.pairs, "{} .{ext}", m.name);
            let deps: Vec<String> = m.deps.iter().map(|d| format!(" {d}.{ext}")).collect();
            dep.push_str(&format!("{}.{ext}:{}\n", m.path, deps.concat()));
        }
        std::fs::write(moddir.join("modules.dep"), dep).unwrap();
        let again = resolve(&HostDir::new(&root), &g.kver, &["virtio_blk", "virtio_net"]).unwrap();
        let names = |c: &ferry_converters::kmod::Closure| c.modules.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&again), names(&closure), ".{ext}");
        assert!(again.modules.iter().all(|m| m.path.ends_with(&format!(".ko.{ext}"))));
    }
}
