//! `ferry inspect` command-line behaviour on bad input: missing files (disks and
//! descriptions), garbage and truncated disks (never a panic; one-line errors naming the file).

mod inspect_support;
use std::process::Command;

fn ferry_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().unwrap();
    assert!(!out.status.success(), "ferry {args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn missing_disk_and_missing_description() {
    let err = ferry_fails(&["inspect", "/nonexistent/disk.img"]);
    assert!(err.contains("/nonexistent/disk.img"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = ferry_fails(&["inspect", "-i", "vmx", "/nonexistent/guest.vmx"]);
    assert!(err.contains("/nonexistent/guest.vmx"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn garbage_and_truncated_disks_do_not_panic() {
    let t = tempfile::tempdir().unwrap();
    // Pseudo-random bytes (xorshift), 1 MiB.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let junk: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let junk_path = t.path().join("junk.img");
    std::fs::write(&junk_path, &junk).unwrap();
    let out = inspect_support::ferry(&["inspect", &junk_path.display().to_string()]);
    assert!(out.contains("No operating system found"), "{out}");

    // A GPT disk cut short: the backup header and most partitions are gone.
    let gpt = t.path().join("gpt.img");
    let f = std::fs::File::create(&gpt).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    inspect_support::run(
        "sgdisk",
        &["-n", "1:2048:+8M", "-t", "1:8300", "-n", "2:0:+40M", "-t", "2:8E00", &gpt.display().to_string()],
    );
    let data = std::fs::read(&gpt).unwrap();
    std::fs::write(&gpt, &data[..1 << 20]).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&inspect_support::ferry(&["inspect", "--json", &gpt.display().to_string()])).unwrap();
    let t = &j["disks"][0]["partition_table"];
    assert_eq!(t["kind"], "gpt");
    let warns = t["warnings"].to_string();
    assert!(warns.contains("outside the usable") || warns.contains("backup GPT header is bad"), "{warns}");
}
