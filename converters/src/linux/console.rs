//! Serial console: Xen's `hvc0`/`xvc0` becomes `ttyS0` on kernel command lines, in
//! `/etc/inittab` getty lines, `/etc/securetty`, and the systemd `serial-getty@` instance.

use super::draft::Draft;
use super::facts::GuestFacts;
use super::grub::edit_cmdlines;
use super::text::replace_word;
use super::LinuxError;

const REASON: &str = "the Xen console (hvc0/xvc0) is a serial port (ttyS0) on KVM";
const OLD: [&str; 2] = ["hvc0", "xvc0"];

fn to_ttys0(s: &str) -> String {
    OLD.iter()
        .fold(s.to_owned(), |acc, old| replace_word(&acc, old, "ttyS0"))
}

/// Plans the console changes.
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts) -> Result<(), LinuxError> {
    edit_cmdlines(d, facts, REASON, &to_ttys0)?;

    // inittab: only the process field (4th) of non-comment lines.
    if let Some(text) = d.read("/etc/inittab")? {
        let new: String = text
            .split_inclusive('\n')
            .map(|l| {
                if l.trim_start().starts_with('#') {
                    return l.to_owned();
                }
                match l.splitn(4, ':').collect::<Vec<_>>().as_slice() {
                    [id, rl, action, process] => {
                        format!("{id}:{rl}:{action}:{}", to_ttys0(process))
                    }
                    _ => l.to_owned(),
                }
            })
            .collect();
        d.edit("/etc/inittab", new, REASON)?;
    }

    // securetty: root may log in on ttyS0.
    if let Some(text) = d.read("/etc/securetty")? {
        let listed = |t: &str| t.lines().any(|l| l.trim() == "ttyS0");
        if !listed(&text) && OLD.iter().any(|o| text.lines().any(|l| l.trim() == *o)) {
            let mut new = text.clone();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str("ttyS0\n");
            d.edit("/etc/securetty", new, REASON)?;
        }
    }

    // systemd: an explicitly enabled serial-getty@hvc0 moves to ttyS0.
    for wants in [
        "/etc/systemd/system/getty.target.wants",
        "/etc/systemd/system/multi-user.target.wants",
    ] {
        for old in OLD {
            let link = format!("{wants}/serial-getty@{old}.service");
            let Some(st) = d.lstat(&link)? else { continue };
            if st.kind != crate::guestfs::FileKind::Symlink {
                continue;
            }
            let target = d.fs().read_link(&d.canon_link(&link)?)?;
            d.symlink(
                &format!("{wants}/serial-getty@ttyS0.service"),
                &target,
                REASON,
            )?;
            d.delete(&link, REASON)?;
        }
    }
    Ok(())
}
