//! Shared helpers of the Linux conversion tests: fixture trees copied to temporary
//! directories, whole-tree comparison against golden trees, the real-tool oracles.
#![allow(dead_code)]

use ferry_converters::guestfs::HostDirFs;
use ferry_converters::linux::{self, GuestFacts, Plan, TargetLayout};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `testdata/linux`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/linux")
}

/// Copies a tree, keeping symlinks as symlinks and file modes.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s).unwrap(), &d).unwrap();
        } else if ft.is_dir() {
            copy_tree(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
            let mode = std::fs::metadata(&s).unwrap().permissions().mode();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// A flat listing of a tree: (relative path, "link -> T" | "file" + contents). Directories
/// are not listed (git keeps no empty ones), only what they hold.
pub fn listing(root: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.push((
                    rel,
                    format!("link -> {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if ft.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((
                    rel,
                    format!(
                        "file\n{}",
                        String::from_utf8_lossy(&std::fs::read(&p).unwrap())
                    ),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// Differences between two trees, one line each.
pub fn tree_diff(got: &Path, want: &Path) -> Vec<String> {
    let (g, w) = (listing(got), listing(want));
    let mut diffs = Vec::new();
    for (p, v) in &g {
        match w.iter().find(|(q, _)| q == p) {
            None => diffs.push(format!("unexpected {p}")),
            Some((_, wv)) if wv != v => {
                diffs.push(format!("differs {p}:\n--- got\n{v}\n--- want\n{wv}"))
            }
            _ => {}
        }
    }
    for (p, _) in &w {
        if !g.iter().any(|(q, _)| q == p) {
            diffs.push(format!("missing {p}"));
        }
    }
    diffs
}

/// Whether golden files are being (re)written: `FERRY_BLESS=1`.
pub fn blessing() -> bool {
    std::env::var_os("FERRY_BLESS").is_some_and(|v| v == "1")
}

/// Compares `got` with the golden file `want` (or writes it when blessing).
pub fn golden(got: &str, want: &Path) {
    if blessing() {
        std::fs::create_dir_all(want.parent().unwrap()).unwrap();
        std::fs::write(want, got).unwrap();
        return;
    }
    let w = std::fs::read_to_string(want).unwrap_or_else(|e| panic!("{}: {e}", want.display()));
    assert_eq!(got, w, "golden file {} differs", want.display());
}

/// A converted copy of a fixture guest.
pub struct Converted {
    pub dir: tempfile::TempDir,
    pub facts: GuestFacts,
    pub layout: TargetLayout,
    pub plan: Plan,
}

impl Converted {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn path(&self, guest: &str) -> PathBuf {
        self.root().join(guest.trim_start_matches('/'))
    }
}

/// Copies fixture `name`, detects, plans, checks the plan and result against the goldens,
/// checks idempotence, and returns the converted tree for tool oracles.
pub fn convert_fixture(name: &str) -> Converted {
    let base = testdata().join(name);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&base.join("root"), &root);
    // git keeps only the executable bit: modes.txt restores the rest ("0600 /etc/x" lines).
    if let Ok(modes) = std::fs::read_to_string(base.join("modes.txt")) {
        for l in modes.lines() {
            let (mode, path) = l.split_once(' ').unwrap();
            let mode = u32::from_str_radix(mode, 8).unwrap();
            std::fs::set_permissions(
                root.join(path.trim_start_matches('/')),
                std::fs::Permissions::from_mode(mode),
            )
            .unwrap();
        }
    }
    let layout: TargetLayout =
        serde_json::from_str(&std::fs::read_to_string(base.join("layout.json")).unwrap()).unwrap();
    let mut fs = HostDirFs::new(&root);
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    // Deterministic: planning again from the same tree gives the same plan.
    assert_eq!(plan, linux::plan(&facts, &layout, &fs).unwrap());
    let expected = testdata().join("expected").join(name);
    golden(&format!("{plan}"), &expected.join("plan.txt"));
    // The JSON form carries the same changes.
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["changes"].as_array().unwrap().len(),
        plan.changes.len()
    );

    let report = linux::apply(&plan, &mut fs).unwrap();
    let rebuilds = plan
        .changes
        .iter()
        .filter(|c| matches!(c.kind, linux::ChangeKind::InitramfsRebuild { .. }))
        .count();
    assert_eq!(
        report.applied.len() + rebuilds,
        plan.changes.len(),
        "every change applied: {report:?}"
    );
    assert_eq!(report.deferred.len(), rebuilds);

    if blessing() {
        let _ = std::fs::remove_dir_all(expected.join("root"));
        copy_tree(&root, &expected.join("root"));
    } else {
        let diffs = tree_diff(&root, &expected.join("root"));
        assert!(
            diffs.is_empty(),
            "{name}: converted tree differs from the golden tree:\n{}",
            diffs.join("\n")
        );
    }
    // The dry-run plan lists exactly the paths that changed.
    let before = listing(&base.join("root"));
    let after = listing(&root);
    let mut changed: Vec<String> = after
        .iter()
        .filter(|e| !before.contains(e))
        .map(|(p, _)| format!("/{p}"))
        .collect();
    changed.extend(
        before
            .iter()
            .filter(|(p, _)| !after.iter().any(|(q, _)| q == p))
            .map(|(p, _)| format!("/{p}")),
    );
    changed.sort();
    changed.dedup();
    let mut planned: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| !matches!(c.kind, linux::ChangeKind::InitramfsRebuild { .. }))
        .flat_map(|c| match &c.kind {
            linux::ChangeKind::Rename { to } => vec![c.path.clone(), to.clone()],
            _ => vec![c.path.clone()],
        })
        .collect();
    planned.sort();
    planned.dedup();
    assert_eq!(
        changed, planned,
        "{name}: the plan lists exactly the changed paths"
    );

    // Idempotence: applying the same plan again changes nothing, and a new plan is empty
    // (except the initramfs rebuild, which only the caller can do).
    let again = linux::apply(&plan, &mut fs).unwrap();
    assert!(
        again.applied.is_empty(),
        "second apply changed {:?}",
        again.applied
    );
    let replan = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
    let leftover: Vec<_> = replan
        .changes
        .iter()
        .filter(|c| !matches!(c.kind, linux::ChangeKind::InitramfsRebuild { .. }))
        .collect();
    assert!(
        leftover.is_empty(),
        "{name}: planning again after apply gives changes: {leftover:?}"
    );
    assert_eq!(tree_diff(&root, &expected.join("root")).len(), 0);
    Converted {
        dir,
        facts,
        layout,
        plan,
    }
}

/// `findmnt --verify` on a fstab: no parse errors, no errors other than "unreachable" (the
/// devices are not on this host); returns the sources util-linux parsed, in order.
pub fn findmnt_sources(fstab: &Path) -> Vec<String> {
    let out = Command::new("findmnt")
        .args(["--verify", "--tab-file"])
        .arg(fstab)
        .output()
        .expect("findmnt (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("0 parse errors"),
        "findmnt --verify {}:\n{text}",
        fstab.display()
    );
    for l in text.lines().filter(|l| l.contains("[E]")) {
        assert!(l.contains("unreachable"), "findmnt error: {l}");
    }
    let out = Command::new("findmnt")
        .args(["--tab-file"])
        .arg(fstab)
        .args(["-n", "-r", "-o", "SOURCE"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `grub-script-check` on a GRUB 2 script; skipped (printed) when grub-common is absent.
pub fn grub_script_check(cfg: &Path) {
    match Command::new("grub-script-check").arg(cfg).output() {
        Ok(out) => assert!(
            out.status.success(),
            "grub-script-check {}: {}",
            cfg.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("skipping grub-script-check: grub-common is not installed"),
    }
}

/// Parses YAML with python3's yaml module and returns it as JSON.
pub fn yaml_to_json(path: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "yaml parse {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `netplan generate --root-dir ROOT`: netplan itself renders the guest's YAML into systemd-networkd
/// files; returns (file name, contents) of what it wrote under /run/systemd/network, or `None`
/// (printed) when netplan.io is not installed.
pub fn netplan_generate(root: &Path) -> Option<Vec<(String, String)>> {
    let out = match Command::new("netplan")
        .arg("generate")
        .arg("--root-dir")
        .arg(root)
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("skipping netplan generate: netplan.io is not installed");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "netplan generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.join("run/systemd/network");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    Some(files)
}

/// Loads a host tree into a [`MemFs`] (files, directories, symlinks, modes).
pub fn memfs_from(dir: &Path) -> ferry_converters::guestfs::MemFs {
    use ferry_converters::guestfs::GuestFs;
    fn walk(fs: &mut ferry_converters::guestfs::MemFs, host: &Path, guest: &str) {
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let g = format!(
                "{}/{}",
                guest.trim_end_matches('/'),
                e.file_name().to_string_lossy()
            );
            let ft = e.file_type().unwrap();
            let mode = std::fs::symlink_metadata(e.path())
                .unwrap()
                .permissions()
                .mode()
                & 0o7777;
            if ft.is_symlink() {
                fs.symlink(&std::fs::read_link(e.path()).unwrap().to_string_lossy(), &g)
                    .unwrap();
            } else if ft.is_dir() {
                fs.mkdir(&g, mode).unwrap();
                walk(fs, &e.path(), &g);
            } else {
                fs.write_file(&g, &std::fs::read(e.path()).unwrap(), mode)
                    .unwrap();
            }
        }
    }
    let mut fs = ferry_converters::guestfs::MemFs::new();
    walk(&mut fs, dir, "/");
    fs
}

/// The same listing as [`listing`], of a [`GuestFs`] (no symlinks followed).
pub fn guest_listing(fs: &dyn ferry_converters::guestfs::GuestFs) -> Vec<(String, String)> {
    use ferry_converters::guestfs::FileKind;
    fn walk(
        fs: &dyn ferry_converters::guestfs::GuestFs,
        dir: &str,
        out: &mut Vec<(String, String)>,
    ) {
        for name in fs.read_dir(dir).unwrap() {
            let p = format!("{}/{name}", dir.trim_end_matches('/'));
            let rel = p.trim_start_matches('/').to_owned();
            match fs.lstat(&p).unwrap().unwrap().kind {
                FileKind::Symlink => {
                    out.push((rel, format!("link -> {}", fs.read_link(&p).unwrap())))
                }
                FileKind::Dir => walk(fs, &p, out),
                _ => out.push((
                    rel,
                    format!(
                        "file\n{}",
                        String::from_utf8_lossy(&fs.read_file(&p).unwrap())
                    ),
                )),
            }
        }
    }
    let mut out = Vec::new();
    walk(fs, "/", &mut out);
    out
}

/// The value of shell variable `name` after `bash` sources `file` (as SUSE's sysconfig readers,
/// dracut and `grub2-mkconfig` read these files), `vars` set beforehand (`add_drivers+=` needs
/// the variable to exist).
pub fn sourced_var(file: &Path, name: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", "set -e; . \"$1\"; printf %s \"${!2}\"", "bash"])
        .arg(file)
        .arg(name)
        .output()
        .expect("bash");
    assert!(out.status.success(), "bash . {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (target, options) of each fstab line as util-linux parses it.
pub fn findmnt_options(fstab: &Path) -> Vec<(String, String)> {
    let out = Command::new("findmnt")
        .args(["--tab-file"])
        .arg(fstab)
        .args(["-n", "-r", "-o", "TARGET,OPTIONS"])
        .output()
        .expect("findmnt (util-linux)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(t, o)| (t.to_owned(), o.to_owned())))
        .collect()
}
