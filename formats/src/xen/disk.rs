//! xl-disk-configuration(5) disk specs and xl-network-configuration(5) vif specs.

/// One parsed disk spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSpec {
    /// Path; empty for an empty CD-ROM drive.
    pub target: String,
    /// "raw", "qcow2", "qcow", "vhd", "qed"; None when the spec does not say.
    pub format: Option<String>,
    pub vdev: String,
    pub readonly: bool,
    pub cdrom: bool,
    /// `phy:` prefix or a /dev path.
    pub block: bool,
    /// Network storage (`rbd:pool/image`, `iscsi:...`, `nbd:...`): `target` is the reference.
    pub network: bool,
}

const FORMATS: &[&str] = &["raw", "qcow", "qcow2", "vhd", "qed"];
const ACCESS: &[&str] = &["r", "ro", "w", "rw", "w!"];

/// Keys of `key=value` disk parameters.
const KEYS: &[&str] = &[
    "format", "vdev", "access", "devtype", "backendtype", "backend", "script", "discard", "no-discard", "direct-io-safe",
    "colo-host", "colo-port", "colo-export", "active-disk", "hidden-disk", "specification", "trusted", "untrusted",
];

/// Whether a spec item is unmistakably a parameter (not part of a target with commas).
fn is_parameter(item: &str) -> bool {
    match item.split_once('=') {
        Some((k, _)) => KEYS.contains(&k.trim()) || k.trim() == "target",
        None => item.is_empty() || item == "cdrom" || FORMATS.contains(&item) || ACCESS.contains(&item) || is_vdev(item),
    }
}

/// Network storage a target may name (QEMU block drivers xl passes through).
const NETWORK: &[&str] = &["rbd:", "iscsi:", "nbd:", "nbd+unix:", "sheepdog:", "gluster:", "gluster+tcp:", "ssh:", "http:", "https:"];

fn is_vdev(s: &str) -> bool {
    let s = s.strip_prefix("ioemu:").unwrap_or(s);
    let base = s.split(':').next().unwrap_or(s);
    ["xvd", "hd", "sd", "vd"].iter().any(|p| base.strip_prefix(p).is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_alphanumeric())))
        || base.starts_with('d') && base.contains('p')
}

/// Strips legacy prefixes (`phy:`, `file:`, `tap:aio:`, `tap:qcow2:`, `tap2:aio:`, `aio:`...)
/// and returns (format implied, is block device, rest).
fn strip_prefix(t: &str) -> (Option<&'static str>, bool, &str) {
    const P: &[(&str, Option<&str>, bool)] = &[
        ("phy:", Some("raw"), true),
        ("file:", Some("raw"), false),
        ("tap:aio:", Some("raw"), false),
        ("tap:tapdisk:aio:", Some("raw"), false),
        ("tap2:tapdisk:aio:", Some("raw"), false),
        ("tap2:aio:", Some("raw"), false),
        ("tap:qcow2:", Some("qcow2"), false),
        ("tap2:qcow2:", Some("qcow2"), false),
        ("tap:qcow:", Some("qcow"), false),
        ("tap:vhd:", Some("vhd"), false),
        ("tap2:vhd:", Some("vhd"), false),
        ("tap:tapdisk:vhd:", Some("vhd"), false),
        ("aio:", Some("raw"), false),
        ("raw:", Some("raw"), false),
        ("qcow2:", Some("qcow2"), false),
        ("qcow:", Some("qcow"), false),
        ("vhd:", Some("vhd"), false),
    ];
    for (p, f, b) in P {
        if let Some(rest) = t.strip_prefix(p) {
            return (*f, *b, rest);
        }
    }
    (None, t.starts_with("/dev/"), t)
}

/// Parses one disk spec. Err(reason) for specs that would give a wrong guest.
pub fn parse_disk(spec: &str) -> Result<DiskSpec, String> {
    let mut d = DiskSpec::default();
    let mut target: Option<String> = None;
    let mut positional: Vec<&str> = Vec::new();
    let mut access: Option<String> = None;
    let mut rest = spec;
    loop {
        let (item, tail) = match rest.split_once(',') {
            Some((a, b)) => (a, b),
            None => (rest, ""),
        };
        let item_t = item.trim();
        if let Some(t) = item_t.strip_prefix("target=") {
            // xl wants target= last, since a target may hold commas. Where everything after it
            // reads as other parameters, it is just this item; otherwise it takes the rest.
            if tail.is_empty() || tail.split(',').all(|i| is_parameter(i.trim())) {
                target = Some(t.to_string());
            } else {
                target = Some(format!("{t},{tail}"));
                break;
            }
            if tail.is_empty() {
                break;
            }
            rest = tail;
            continue;
        }
        match item_t.split_once('=') {
            Some((k, v)) => match k.trim() {
                "format" => d.format = Some(v.trim().to_ascii_lowercase()),
                "vdev" => d.vdev = v.trim().to_string(),
                "access" => access = Some(v.trim().to_string()),
                "devtype" => d.cdrom = v.trim() == "cdrom",
                k if KEYS.contains(&k) => {}
                other => return Err(format!("unknown disk parameter {other:?}")),
            },
            None => match item_t {
                "cdrom" => d.cdrom = true,
                "" if positional.is_empty() && target.is_none() => positional.push(""),
                "" => {}
                p => positional.push(p),
            },
        }
        if tail.is_empty() {
            break;
        }
        rest = tail;
    }
    let mut pos = positional.into_iter();
    if target.is_none() {
        target = pos.next().map(str::to_string);
    }
    for p in pos {
        if FORMATS.contains(&p) {
            d.format = Some(p.to_string());
        } else if ACCESS.contains(&p) {
            access = Some(p.to_string());
        } else if is_vdev(p) && d.vdev.is_empty() {
            d.vdev = p.to_string();
        } else {
            return Err(format!("cannot tell what {p:?} is (not a format, a virtual device or an access mode)"));
        }
    }
    // Legacy HVM specs spell the emulated device `ioemu:hda`.
    if let Some(v) = d.vdev.strip_prefix("ioemu:") {
        d.vdev = v.to_string();
    }
    if let Some((v, kind)) = d.vdev.clone().split_once(':') {
        match kind {
            "cdrom" => d.cdrom = true,
            "disk" => {}
            other => return Err(format!("unknown device kind {other:?} in {:?}", d.vdev)),
        }
        d.vdev = v.to_string();
    }
    if d.vdev.is_empty() {
        return Err("no virtual device (vdev)".into());
    }
    match access.as_deref() {
        None | Some("w" | "rw" | "w!") => {}
        Some("r" | "ro") => d.readonly = true,
        Some(other) => return Err(format!("unknown access mode {other:?}")),
    }
    let t = target.unwrap_or_default();
    let t = t.trim();
    if NETWORK.iter().any(|p| t.starts_with(p)) {
        d.network = true;
        d.target = t.to_string();
        d.readonly |= d.cdrom;
        return Ok(d);
    }
    let (fmt, block, path) = strip_prefix(t.strip_prefix("ioemu:").unwrap_or(t));
    if d.format.is_none() {
        d.format = fmt.map(str::to_string);
    }
    if let Some(f) = &d.format {
        if !FORMATS.contains(&f.as_str()) {
            return Err(format!("unknown disk format {f:?}"));
        }
    }
    d.block = block;
    d.target = path.to_string();
    if d.target.is_empty() && !d.cdrom {
        return Err("disk has no target".into());
    }
    if d.cdrom {
        d.readonly = true;
    }
    Ok(d)
}

/// One parsed vif spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VifSpec {
    pub mac: Option<String>,
    pub bridge: Option<String>,
    pub model: Option<String>,
    /// "ioemu" (emulated + PV) or "vif" (PV only).
    pub kind: Option<String>,
}

/// Parses a vif spec (`mac=…,bridge=…,model=…,type=ioemu`).
pub fn parse_vif(spec: &str) -> Result<VifSpec, String> {
    let mut v = VifSpec::default();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, val)) = item.split_once('=') else { return Err(format!("{item:?} is not key=value")) };
        let val = val.trim().to_string();
        match k.trim() {
            "mac" => v.mac = Some(val),
            "bridge" => v.bridge = Some(val),
            "model" => v.model = Some(val),
            "type" => v.kind = Some(val),
            _ => {}
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DiskSpec {
        parse_disk(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn disk_forms() {
        let a = d("phy:/dev/vg0/web01,xvda,w");
        assert_eq!((a.target.as_str(), a.vdev.as_str(), a.block, a.readonly, a.format.as_deref()), ("/dev/vg0/web01", "xvda", true, false, Some("raw")));
        let b = d("tap:qcow2:/var/lib/xen/d.qcow2,xvdb,r");
        assert_eq!((b.format.as_deref(), b.readonly, b.block), (Some("qcow2"), true, false));
        let c = d("file:/iso/virtio.iso,hdc:cdrom,r");
        assert!(c.cdrom && c.vdev == "hdc");
        let e = d(",hdc:cdrom,r");
        assert!(e.cdrom && e.target.is_empty());
        let f = d("format=raw, vdev=xvda, access=rw, target=/dev/vg/lv,with,commas");
        assert_eq!((f.target.as_str(), f.vdev.as_str()), ("/dev/vg/lv,with,commas", "xvda"));
        assert!(f.block);
        let g = d("/srv/xen/g.img,raw,xvda,rw");
        assert_eq!((g.format.as_deref(), g.block), (Some("raw"), false));
        let h = d("tap2:aio:/x.img,xvdc,w!");
        assert_eq!(h.target, "/x.img");
        let i = d("aio:/y.img,hda,w");
        assert_eq!(i.vdev, "hda");
        let j = d("vdev=hdc, devtype=cdrom, target=/iso/x.iso");
        assert!(j.cdrom && j.readonly);
        // target= first or in the middle, as xl reads it where the rest is unambiguous.
        let k = d("target=/srv/k.img,format=raw,vdev=xvda,access=rw");
        assert_eq!((k.target.as_str(), k.vdev.as_str(), k.format.as_deref()), ("/srv/k.img", "xvda", Some("raw")));
        let l = d("vdev=xvdb,access=r,target=/srv/a,b.img");
        assert_eq!((l.target.as_str(), l.vdev.as_str(), l.readonly), ("/srv/a,b.img", "xvdb", true));
        let l2 = d("vdev=xvdb,target=/srv/x,odd,format=raw");
        assert_eq!(l2.target, "/srv/x,odd,format=raw", "an unknown item after target= makes it take the rest");
        // ioemu: device prefixes of xm HVM configs.
        let m = d("file:/srv/w.img,ioemu:hda,w");
        assert_eq!((m.vdev.as_str(), m.target.as_str()), ("hda", "/srv/w.img"));
        let n = d("file:/iso/w.iso,ioemu:hdc:cdrom,r");
        assert!(n.cdrom && n.vdev == "hdc");
        // Network storage.
        let o = d("format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=rbd:pool/vm-disk:id=admin");
        assert!(o.network && o.target == "rbd:pool/vm-disk:id=admin");
        let q = d("iscsi:iqn.2001-04.com.example:storage/1,xvdb,w");
        assert!(q.network && q.vdev == "xvdb");
    }

    #[test]
    fn disk_errors() {
        for bad in ["phy:/dev/a,xvda,q", "/x.img,floppy,w", "phy:/dev/a", "format=vmdk,vdev=xvda,target=/x", "bogus=1,vdev=xvda,target=/x", "/a,xvda:tape,w"] {
            assert!(parse_disk(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vifs() {
        let v = parse_vif("mac=00:16:3e:12:34:56, bridge=xenbr0,model=e1000,type=ioemu").unwrap();
        assert_eq!(v.mac.as_deref(), Some("00:16:3e:12:34:56"));
        assert_eq!(v.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(v.model.as_deref(), Some("e1000"));
        assert!(parse_vif("bridge").is_err());
    }
}
