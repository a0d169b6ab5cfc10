//! /etc/fstab: entries with UUID=, LABEL=, PARTUUID=, PARTLABEL= and device paths resolved
//! to the devices inspection found.

use super::super::{FstabEntry, KnownDevice};

/// Parses fstab text and resolves each spec against `known`.
pub fn parse(text: &str, known: &[KnownDevice]) -> Vec<FstabEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (spec, mp) = (*f.first()?, *f.get(1)?);
            Some(FstabEntry {
                spec: spec.into(),
                mountpoint: unescape(mp),
                fstype: f.get(2).unwrap_or(&"").to_string(),
                options: f.get(3).unwrap_or(&"").to_string(),
                device: resolve(spec, known),
            })
        })
        .collect()
}

/// fstab escapes spaces as `\040`.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t")
}

/// The device `spec` names, if one of `known` matches.
pub fn resolve(spec: &str, known: &[KnownDevice]) -> Option<String> {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    let by = |f: &dyn Fn(&KnownDevice) -> bool| known.iter().find(|k| f(k)).map(|k| k.device.clone());
    let spec = spec.trim_matches('"');
    if let Some(v) = spec.strip_prefix("UUID=") {
        return by(&|k| eq(&k.uuid, v.trim_matches('"')));
    }
    if let Some(v) = spec.strip_prefix("LABEL=") {
        let v = v.trim_matches('"');
        return by(&|k| k.label.as_deref() == Some(v));
    }
    if let Some(v) = spec.strip_prefix("PARTUUID=") {
        return by(&|k| eq(&k.partuuid, v.trim_matches('"')));
    }
    if let Some(v) = spec.strip_prefix("PARTLABEL=") {
        let v = v.trim_matches('"');
        return by(&|k| k.partlabel.as_deref() == Some(v));
    }
    for (prefix, field) in [
        ("/dev/disk/by-uuid/", 0),
        ("/dev/disk/by-label/", 1),
        ("/dev/disk/by-partuuid/", 2),
        ("/dev/disk/by-partlabel/", 3),
    ] {
        if let Some(v) = spec.strip_prefix(prefix) {
            let s = match field {
                0 => format!("UUID={v}"),
                1 => format!("LABEL={v}"),
                2 => format!("PARTUUID={v}"),
                _ => format!("PARTLABEL={v}"),
            };
            return resolve(&s, known);
        }
    }
    if let Some(m) = spec.strip_prefix("/dev/mapper/") {
        let (vg, lv) = split_mapper(m)?;
        return by(&|k| k.device == format!("/dev/{vg}/{lv}"));
    }
    if spec.starts_with("/dev/") {
        if let Some(d) = by(&|k| k.device == spec) {
            return Some(d);
        }
        // Disk names change with the controller: hdX, sdX, vdX, xvdX all mean disk X.
        let rest = ["/dev/xvd", "/dev/sd", "/dev/vd", "/dev/hd"].iter().find_map(|p| spec.strip_prefix(p))?;
        let alt = format!("/dev/sd{rest}");
        return by(&|k| k.device == alt);
    }
    None
}

/// `VG-LV` with `--` standing for a literal dash.
fn split_mapper(m: &str) -> Option<(String, String)> {
    let b = m.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'-') {
            if b.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let (vg, lv) = (m.get(..i)?, m.get(i + 1..)?);
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapper_names_and_disk_aliases() {
        assert_eq!(split_mapper("rhel-root"), Some(("rhel".into(), "root".into())));
        assert_eq!(split_mapper("my--vg-lv--x"), Some(("my-vg".into(), "lv-x".into())));
        let k = vec![KnownDevice { device: "/dev/sda5".into(), ..Default::default() }];
        assert_eq!(resolve("/dev/vda5", &k).as_deref(), Some("/dev/sda5"));
        assert_eq!(resolve("/dev/sr0", &k), None);
        let e = parse("# c\n/dev/xvda5 /mnt/my\\040dir ext4 defaults 0 0\n", &k);
        assert_eq!(e[0].mountpoint, "/mnt/my dir");
        assert_eq!(e[0].device.as_deref(), Some("/dev/sda5"));
    }
}
