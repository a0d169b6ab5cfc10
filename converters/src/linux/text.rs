//! Text helpers shared by the steps: whole-word replacement and block device name rewriting.

use super::facts::TargetLayout;

/// Characters that continue an interface or device name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Replaces each whole-word occurrence of `word` in `text` (a word boundary is any character
/// that cannot be part of an interface name: `ens192.100` and `ens192:1` contain `ens192`).
pub fn replace_word(text: &str, word: &str, new: &str) -> String {
    if word.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(pos) = rest.find(word) {
        let before = rest[..pos].chars().next_back().or(prev);
        let after = rest[pos + word.len()..].chars().next();
        out.push_str(&rest[..pos]);
        if before.is_some_and(is_name_char) || after.is_some_and(is_name_char) {
            out.push_str(word);
        } else {
            out.push_str(new);
        }
        prev = word.chars().next_back();
        rest = &rest[pos + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` contains `word` as a whole word.
pub fn has_word(text: &str, word: &str) -> bool {
    replace_word(text, word, "\0") != text
}

/// A parsed block device name.
struct DevName<'a> {
    /// The whole disk: `sda`, `xvdb`, `nvme0n1`.
    disk: &'a str,
    /// Partition number digits, empty for the whole disk.
    part: &'a str,
}

/// Splits a disk-like name (`sd`/`hd`/`xvd`/`vd` + letters + digits, `nvmeXnY[pZ]`); `None` for
/// everything else (md, sr, fd, cdrom, mapper, tty...).
fn parse_dev(name: &str) -> Option<DevName<'_>> {
    if let Some(rest) = name.strip_prefix("nvme") {
        let c = rest.find(|ch: char| !ch.is_ascii_digit())?;
        let rest2 = rest[c..].strip_prefix('n')?;
        let n = rest2
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(rest2.len());
        if c == 0 || n == 0 {
            return None;
        }
        let disk_len = 4 + c + 1 + n;
        let tail = &name[disk_len..];
        if tail.is_empty() {
            return Some(DevName {
                disk: name,
                part: "",
            });
        }
        let part = tail.strip_prefix('p')?;
        return (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())).then(|| DevName {
            disk: &name[..disk_len],
            part,
        });
    }
    let prefix = ["xvd", "sd", "hd", "vd"]
        .into_iter()
        .find(|p| name.starts_with(p))?;
    let rest = &name[prefix.len()..];
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 || letters > 2 || (prefix == "hd" && letters > 1) {
        return None;
    }
    let part = &rest[letters..];
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(DevName {
        disk: &name[..prefix.len() + letters],
        part,
    })
}

/// The `vdX` name of the disk at `index` (0 → `vda`, 26 → `vdaa`).
pub fn vd_name(index: usize) -> String {
    let letter = |i: usize| char::from(b'a' + (i % 26) as u8);
    if index < 26 {
        format!("vd{}", letter(index))
    } else {
        format!("vd{}{}", letter(index / 26 - 1), letter(index))
    }
}

/// How device rewriting treats one file.
#[derive(Debug, Clone, Copy)]
pub struct DevRewrite {
    /// Write `UUID=`/`LABEL=` where the layout knows the filesystem (not in `device.map`).
    pub use_ids: bool,
    /// Leave lines starting with `#` alone.
    pub skip_comments: bool,
}

/// Rewrites every `/dev/<disk>[part]` of the layout's source disks to its target name (or the
/// filesystem id, when allowed and the name stands alone as a field). Returns the new text and
/// the disk-like names that are not in the layout (left unchanged).
pub fn rewrite_devices(
    text: &str,
    layout: &TargetLayout,
    how: DevRewrite,
) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    for line in text.split_inclusive('\n') {
        if how.skip_comments && line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("/dev/") {
            let before = rest[..pos]
                .chars()
                .next_back()
                .or_else(|| out.chars().next_back());
            out.push_str(&rest[..pos]);
            let after_dev = &rest[pos + 5..];
            let name_len = after_dev
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after_dev.len());
            let name = &after_dev[..name_len];
            let next = after_dev[name_len..].chars().next();
            let field_alone = before.is_none_or(|c| c.is_whitespace() || "=\"'".contains(c))
                && next.is_none_or(|c| c.is_whitespace() || "\"',".contains(c));
            let replaced = (next != Some('/'))
                .then(|| parse_dev(name))
                .flatten()
                .and_then(
                    |d| match layout.disks.iter().position(|t| t.source == d.disk) {
                        Some(i) => {
                            let id = layout
                                .fs_ids
                                .get(name)
                                .filter(|_| how.use_ids && field_alone);
                            Some(match id {
                                Some(id) => id.clone(),
                                None => format!("/dev/{}{}", vd_name(i), d.part),
                            })
                        }
                        None => {
                            if !d.disk.starts_with("vd") && !unknown.iter().any(|u| u == name) {
                                unknown.push(name.to_owned());
                            }
                            None
                        }
                    },
                );
            match replaced {
                Some(r) => out.push_str(&r),
                None => {
                    out.push_str("/dev/");
                    out.push_str(name);
                }
            }
            rest = &after_dev[name_len..];
        }
        out.push_str(rest);
    }
    (out, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::facts::DiskTarget;

    fn layout(disks: &[&str]) -> TargetLayout {
        TargetLayout {
            disks: disks
                .iter()
                .map(|d| DiskTarget {
                    source: (*d).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn words() {
        assert_eq!(
            replace_word(
                "iface ens192 inet dhcp\nauto ens192.100 ens1920",
                "ens192",
                "enp0s3"
            ),
            "iface enp0s3 inet dhcp\nauto enp0s3.100 ens1920"
        );
        assert_eq!(
            replace_word("console=hvc0,115200 xhvc0", "hvc0", "ttyS0"),
            "console=ttyS0,115200 xhvc0"
        );
        assert!(has_word("a eth0", "eth0") && !has_word("eth01", "eth0"));
    }

    #[test]
    fn devices() {
        let mut l = layout(&["sda", "nvme0n1", "xvdc"]);
        l.fs_ids.insert("sda1".into(), "UUID=1234".into());
        let how = DevRewrite {
            use_ids: true,
            skip_comments: true,
        };
        let (t, u) = rewrite_devices("/dev/sda1 / ext4\n/dev/sda2 none swap\n/dev/nvme0n1p3 /x\n/dev/xvdc /y\n# /dev/sda1\n/dev/sdz1 /z\n/dev/md0 /m\n/dev/sr0 /c\n/dev/sda1/x\nroot=/dev/sda1,\n", &l, how);
        assert_eq!(t, "UUID=1234 / ext4\n/dev/vda2 none swap\n/dev/vdb3 /x\n/dev/vdc /y\n# /dev/sda1\n/dev/sdz1 /z\n/dev/md0 /m\n/dev/sr0 /c\n/dev/sda1/x\nroot=UUID=1234,\n");
        assert_eq!(u, vec!["sdz1"]);
        let (t, _) = rewrite_devices(
            "(hd0) /dev/sda\n",
            &l,
            DevRewrite {
                use_ids: false,
                skip_comments: false,
            },
        );
        assert_eq!(t, "(hd0) /dev/vda\n");
        assert_eq!(vd_name(27), "vdab");
    }

    /// LVM paths name a volume group and a logical volume, not a disk: renaming leaves
    /// `/dev/<vg>/<lv>` and `/dev/mapper/<vg>-<lv>` alone (even for a VG named like a disk of
    /// the layout) and does not report them as unknown disks, while partitions beside them
    /// are renamed.
    #[test]
    fn lvm_paths_are_left_alone() {
        let l = layout(&["sda", "sdb"]);
        let fstab = "/dev/vg0/root / ext4 errors=remount-ro 0 1
                     /dev/mapper/vg0-root /alt ext4 defaults 0 2
                     /dev/sda1 /boot ext4 defaults 0 2
                     /dev/sdb/data /data xfs defaults 0 2
                     /dev/mapper/sdb-data /data2 xfs defaults 0 2
                     /dev/mapper/vg0-swap_1 none swap sw 0 0
";
        let grub = "linux /vmlinuz root=/dev/mapper/vg0-root ro resume=/dev/vg0/swap_1
                    search --set=root --hint-bios=hd0,msdos1 /dev/sda1
";
        let crypttab = "sda2_crypt /dev/sda2 none luks,discard
vg0-home_crypt /dev/mapper/vg0-home none luks
";
        for how in [
            DevRewrite { use_ids: false, skip_comments: true },
            DevRewrite { use_ids: false, skip_comments: false },
        ] {
            let (t, u) = rewrite_devices(fstab, &l, how);
            assert_eq!(t, fstab.replace("/dev/sda1 /boot", "/dev/vda1 /boot"));
            assert!(u.is_empty(), "{u:?}");
            let (t, u) = rewrite_devices(grub, &l, how);
            assert_eq!(t, grub.replace("hd0,msdos1 /dev/sda1", "hd0,msdos1 /dev/vda1"));
            assert!(u.is_empty(), "{u:?}");
            let (t, u) = rewrite_devices(crypttab, &l, how);
            assert_eq!(t, crypttab.replace("/dev/sda2", "/dev/vda2"));
            assert!(u.is_empty(), "{u:?}");
        }
    }
}
