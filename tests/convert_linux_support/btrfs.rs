//! btrfs roots read back with btrfs-progs as the oracle: `btrfs check --readonly`, files of
//! a subvolume through `btrfs restore`, subvolume ids and the default subvolume from
//! `btrfs inspect-internal dump-tree -t root`.

use super::run;
use std::path::Path;
use std::process::Command;

/// Panics unless `btrfs check --readonly` finds the btrfs image `part` clean (exit 0).
pub fn btrfs_check_clean(part: &Path, what: &str) {
    let o = Command::new("btrfs").args(["check", "--readonly"]).arg(part).output().unwrap();
    assert!(
        o.status.success(),
        "btrfs check --readonly on {what}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The top-level subvolumes of `part` and the default one, from the root tree as
/// `btrfs inspect-internal dump-tree -t root` prints it: (name, id) pairs (ROOT_REF items
/// of FS_TREE) and the id the root tree directory's `default` entry points at (5, the top
/// level, without one).
pub fn btrfs_subvolumes(part: &Path) -> (Vec<(String, u64)>, u64) {
    let out = run(Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "root"]).arg(part));
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut subvols = Vec::new();
    let mut default = 5;
    for (i, l) in lines.iter().enumerate() {
        // item 5 key (FS_TREE ROOT_REF 257) itemoff 14907 itemsize 19
        //     root ref key dirid 256 sequence 3 name @
        if let Some(rest) = l.split_once("key (FS_TREE ROOT_REF ").map(|(_, r)| r) {
            let id = rest.split(')').next().unwrap().parse().unwrap();
            let name = lines[i + 1].split_once(" name ").expect("a root ref's name").1;
            subvols.push((name.to_string(), id));
        }
        // location key (257 ROOT_ITEM 0) type DIR / transid 3 data_len 0 name_len 7 / name: default
        if *l == "name: default" && i >= 2 {
            let loc = lines[i - 2].strip_prefix("location key (").expect("the default entry's location");
            default = loc.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    (subvols, default)
}

/// The id of the top-level subvolume `name` of `part`; panics without one.
pub fn btrfs_subvolume_id(part: &Path, name: &str) -> u64 {
    let (subvols, _) = btrfs_subvolumes(part);
    subvols.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no subvolume {name}: {subvols:?}")).1
}

/// The file `path` of subvolume `id` of the btrfs image `part`, as `btrfs restore` extracts
/// it (into `work`); None when restore does not find it.
pub fn btrfs_read(part: &Path, id: u64, path: &str, work: &Path) -> Option<Vec<u8>> {
    // ^/(|etc(|/fstab))$ : the path and the directories above it.
    let parts: Vec<String> = path.trim_start_matches('/').split('/').map(regex_escape).collect();
    let mut re = String::new();
    for (i, p) in parts.iter().rev().enumerate() {
        let sep = if i == parts.len() - 1 { "" } else { "/" };
        re = if re.is_empty() { format!("{sep}{p}") } else { format!("{sep}{p}(|{re})") };
    }
    let dir = tempfile::tempdir_in(work).unwrap();
    run(Command::new("btrfs")
        .args(["restore", "-r", &id.to_string(), "--path-regex", &format!("^/(|{re})$")])
        .arg(part)
        .arg(dir.path()));
    std::fs::read(dir.path().join(path.trim_start_matches('/'))).ok()
}

/// [`btrfs_read`] as text; panics when the file is missing.
pub fn btrfs_cat(part: &Path, id: u64, path: &str, work: &Path) -> String {
    String::from_utf8(btrfs_read(part, id, path, work).unwrap_or_else(|| panic!("btrfs restore finds no {path} in subvolume {id}"))).unwrap()
}

fn regex_escape(s: &str) -> String {
    s.chars().map(|c| if ".[]{}()\\*+?^$|".contains(c) { format!("\\{c}") } else { c.to_string() }).collect()
}
