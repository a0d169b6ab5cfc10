//! `man/` holds the man pages generated from the clap definitions (`ferry man man/`); this
//! test regenerates them and fails when the committed ones are stale (FERRY_UPDATE_MAN=1
//! rewrites them). Shell completions come from `ferry completions SHELL`: the bash script
//! must parse (`bash -n`) and every shell's must know the subcommands.

use std::path::Path;
use std::process::Command;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    v.sort();
    v
}

#[test]
fn committed_man_pages_match_the_cli() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    if std::env::var_os("FERRY_UPDATE_MAN").is_some() {
        for f in std::fs::read_dir(&committed).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().ends_with(".1") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let o = ferry(&["man", committed.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let t = tempfile::tempdir().unwrap();
    let o = ferry(&["man", t.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fresh = listing(t.path());
    assert!(fresh.iter().any(|n| n == "ferry-batch-run.1"), "{fresh:?}");
    assert_eq!(listing(&committed), fresh, "man/ is stale: run FERRY_UPDATE_MAN=1 cargo test --test man_pages");
    for n in &fresh {
        let (a, b) = (std::fs::read(committed.join(n)).unwrap(), std::fs::read(t.path().join(n)).unwrap());
        assert!(a == b, "man/{n} is stale: run FERRY_UPDATE_MAN=1 cargo test --test man_pages");
    }
    // The pages render.
    if Command::new("sh").arg("-c").arg("command -v man").output().is_ok_and(|o| o.status.success()) {
        let o = Command::new("man").arg("-l").arg(committed.join("ferry-batch.1")).env("MANPAGER", "cat").output().unwrap();
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("manifest"));
    }
}

#[test]
fn completions_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = ferry(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&o.stdout);
        for sub in ["convert", "batch", "img"] {
            assert!(s.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("ferry.bash");
    std::fs::write(&f, ferry(&["completions", "bash"]).stdout).unwrap();
    let o = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
