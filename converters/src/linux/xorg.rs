//! X11: the `vmware` (and VirtualBox `vboxvideo`) display drivers become `modesetting`, and the
//! Device sections lose `VendorName`/`BoardName`, which named the old virtual card.

use super::draft::Draft;
use super::LinuxError;

const FILES: [&str; 3] = [
    "/etc/X11/xorg.conf",
    "/etc/X11/XF86Config",
    "/etc/X11/XF86Config-4",
];
const OLD_DRIVERS: [&str; 3] = ["vmware", "vmwgfx", "vboxvideo"];
const REASON: &str = "the display is a standard KMS device on KVM";

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// Plans the xorg.conf rewrite.
pub fn plan(d: &mut Draft<'_>) -> Result<(), LinuxError> {
    for path in FILES {
        let Some(text) = d.read(path)? else { continue };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        // Find the Device sections that use an old driver.
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let w: Vec<&str> = l.split_whitespace().collect();
            let is_device = w.first().is_some_and(|k| k.eq_ignore_ascii_case("Section"))
                && w.get(1)
                    .is_some_and(|s| unquote(s).eq_ignore_ascii_case("Device"));
            if !is_device {
                out.push_str(l);
                i += 1;
                continue;
            }
            let end = (i..lines.len())
                .find(|&j| {
                    lines[j]
                        .split_whitespace()
                        .next()
                        .is_some_and(|k| k.eq_ignore_ascii_case("EndSection"))
                })
                .unwrap_or(lines.len() - 1);
            let section = &lines[i..=end];
            let old = section.iter().any(|s| {
                let w: Vec<&str> = s.split_whitespace().collect();
                w.first().is_some_and(|k| k.eq_ignore_ascii_case("Driver"))
                    && w.get(1).is_some_and(|v| OLD_DRIVERS.contains(&unquote(v)))
            });
            for s in section {
                let key = s.split_whitespace().next().unwrap_or("");
                if !old {
                    out.push_str(s);
                } else if key.eq_ignore_ascii_case("Driver") {
                    let indent = &s[..s.len() - s.trim_start().len()];
                    out.push_str(&format!("{indent}Driver      \"modesetting\"\n"));
                } else if !key.eq_ignore_ascii_case("VendorName")
                    && !key.eq_ignore_ascii_case("BoardName")
                {
                    out.push_str(s);
                }
            }
            i = end + 1;
        }
        d.edit(path, out, REASON)?;
    }
    Ok(())
}
