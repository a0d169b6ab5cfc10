//! Disks without an OS and with damaged tables: a GPT data disk (ext2, LUKS2, btrfs,
//! swap, BIOS boot), the same with its primary GPT header corrupted, with a hybrid MBR
//! (sgdisk -h), and an MBR whose extended chain loops. Oracles: sfdisk --json, blkid -p.

mod inspect_support;
use inspect_support::*;

fn check_gpt_like_sfdisk(r: &serde_json::Value, want: &[serde_json::Value]) {
    let parts = r["disks"][0]["partition_table"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), want.len());
    for (p, w) in parts.iter().zip(want) {
        assert_eq!(p["start"].as_u64().unwrap(), w["start"].as_u64().unwrap() * 512);
        assert_eq!(p["size"].as_u64().unwrap(), w["size"].as_u64().unwrap() * 512);
        assert_eq!(p["type_id"], w["type"]);
        assert_eq!(p["partuuid"].as_str().unwrap(), w["uuid"].as_str().unwrap().to_lowercase());
    }
}

#[test]
fn disk_without_os_says_so() {
    let Some(dir) = fixtures() else { return };
    let m = manifest(&dir);
    let img = dir.join("noos-gpt.img");
    let r = inspect_json(std::slice::from_ref(&img));
    assert_eq!(r["operating_systems"], serde_json::json!([]));
    let want = sfdisk_json(&img);
    check_gpt_like_sfdisk(&r, &want);
    let kinds: Vec<&str> =
        r["disks"][0]["partition_table"]["partitions"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["linux", "other", "linux", "linux-swap", "bios-boot"]);
    // A BIOS boot partition and no ESP: BIOS.
    assert_eq!(r["firmware"], "bios");
    for (i, w) in want.iter().enumerate().take(4) {
        let b = blkid(&img, w["start"].as_u64().unwrap() * 512);
        let f = fs(&r, &format!("/dev/sda{}", i + 1));
        assert_eq!(f["fstype"].as_str(), b.get("TYPE").map(String::as_str), "partition {}", i + 1);
        assert_eq!(f["uuid"].as_str(), b.get("UUID").map(String::as_str), "partition {}", i + 1);
        assert_eq!(f["label"].as_str(), b.get("LABEL").map(String::as_str), "partition {}", i + 1);
    }
    assert_eq!(fs(&r, "/dev/sda1")["uuid"], m["NOOS_EXT2_UUID"]);
    assert_eq!(fs(&r, "/dev/sda2")["fstype"], "crypto_LUKS");
    assert_eq!(fs(&r, "/dev/sda2")["version"], "2");
    assert_eq!(fs(&r, "/dev/sda2")["uuid"], m["NOOS_LUKS_UUID"]);
    assert_eq!(fs(&r, "/dev/sda3")["uuid"], m["NOOS_BTRFS_UUID"]);
    let text = ferry(&["inspect", &img.display().to_string()]);
    assert!(text.contains("No operating system found on these disks."), "{text}");
    let xml = ferry(&["inspect", "--xml", &img.display().to_string()]);
    assert!(xml.contains("<operatingsystems") && !xml.contains("<operatingsystem>"), "{xml}");
}

#[test]
fn bad_primary_gpt_uses_backup() {
    let Some(dir) = fixtures() else { return };
    let r = inspect_json(&[dir.join("gpt-bad-primary.img")]);
    let t = &r["disks"][0]["partition_table"];
    assert_eq!(t["used_backup"], true);
    let w = t["warnings"][0].as_str().unwrap();
    assert!(w.contains("primary GPT header is bad") && w.contains("CRC32"), "{w}");
    // Same partitions as the intact disk, per sfdisk on the intact one.
    check_gpt_like_sfdisk(&r, &sfdisk_json(&dir.join("noos-gpt.img")));
    assert_eq!(fs(&r, "/dev/sda3")["fstype"], "btrfs");
}

#[test]
fn hybrid_mbr_is_noticed() {
    let Some(dir) = fixtures() else { return };
    let img = dir.join("gpt-hybrid.img");
    let r = inspect_json(std::slice::from_ref(&img));
    let t = &r["disks"][0]["partition_table"];
    assert_eq!(t["kind"], "gpt");
    assert_eq!(t["hybrid_mbr"], true);
    check_gpt_like_sfdisk(&r, &sfdisk_json(&dir.join("noos-gpt.img")));
}

#[test]
fn looping_extended_chain_stops() {
    let Some(dir) = fixtures() else { return };
    let m = manifest(&dir);
    let img = dir.join("mbr-loop.img");
    let r = inspect_json(std::slice::from_ref(&img));
    let t = &r["disks"][0]["partition_table"];
    // sfdisk follows the loop, listing the same two logical partitions over and over:
    // Ferry must list each once and stop.
    let all = sfdisk(&img);
    let mut want = Vec::new();
    for p in &all {
        if !want.iter().any(|w: &(u32, u64, u64, String)| (w.1, w.2) == (p.1, p.2)) {
            want.push(p.clone());
        }
    }
    assert!(all.len() > want.len() + 2, "sfdisk shows no loop: {all:?}");
    let got: Vec<(u64, u64, u64)> = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["number"].as_u64().unwrap(), p["start"].as_u64().unwrap() / 512, p["size"].as_u64().unwrap() / 512))
        .collect();
    let want: Vec<(u64, u64, u64)> = want.iter().map(|(n, s, z, _)| (u64::from(*n), *s, *z)).collect();
    assert_eq!(got, want);
    let ebr1 = 18432;
    assert!(m["MBRLOOP_EBR2"].parse::<u64>().unwrap() > ebr1);
    let w = t["warnings"][0].as_str().unwrap();
    assert!(w.contains(&format!("loops back to sector {ebr1}")) && w.contains("after 2 logical"), "{w}");
}
