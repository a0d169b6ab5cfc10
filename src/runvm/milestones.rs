//! Boot milestones recognised on a guest's serial console.

/// One milestone: a name and the console substrings that prove it (any of them).
#[derive(Clone, Debug)]
pub struct Milestone {
    pub name: String,
    pub patterns: Vec<String>,
}

/// The known milestones, in boot order; `marker` is the user's own string.
pub fn catalog(marker: Option<&str>) -> Vec<Milestone> {
    let m = |name: &str, p: &[&str]| Milestone { name: name.into(), patterns: p.iter().map(|s| s.to_string()).collect() };
    let mut v = vec![
        m("kernel", &["Linux version "]),
        m("virtio", &[" [vda] ", "virtio_blk virtio", "virtio_net virtio"]),
        m("root", &["EXT4-fs (vd", "XFS (vd", "BTRFS info (device vd", "VFS: Mounted root"]),
        m("init", &["Run /init", "Run /sbin/init", "Run /lib/systemd/systemd", "systemd[1]: ", "Welcome to "]),
        m("login", &[" login: "]),
    ];
    if let Some(s) = marker {
        v.push(m("marker", &[s]));
    }
    v
}

/// Resolves `--expect a,b,c` against the catalog (unknown names are an error naming them).
pub fn select(expect: &str, marker: Option<&str>) -> Result<Vec<Milestone>, String> {
    let all = catalog(marker);
    expect
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            all.iter().find(|m| m.name == name).cloned().ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
                format!("invalid --expect milestone {name:?}: known are {}", names.join(", "))
            })
        })
        .collect()
}

/// Where in `console` each milestone is first reached (in order, each after the previous).
pub fn progress(milestones: &[Milestone], console: &str) -> usize {
    let mut pos = 0;
    let mut reached = 0;
    for m in milestones {
        let hit = m.patterns.iter().filter_map(|p| console[pos..].find(p.as_str()).map(|i| pos + i + p.len())).min();
        match hit {
            Some(end) => {
                pos = end;
                reached += 1;
            }
            None => break,
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_are_matched_in_order() {
        let ms = select("kernel,root,init", None).expect("select");
        assert_eq!(progress(&ms, "Linux version 6.1\nEXT4-fs (vda): mounted\nRun /init as init"), 3);
        assert_eq!(progress(&ms, "Run /init\nLinux version 6.1\n"), 1);
        assert!(select("kernel,bogus", None).is_err());
        let ms = select("marker", Some("pci scan end")).expect("select");
        assert_eq!(progress(&ms, "x\npci scan end\n"), 1);
    }
}
