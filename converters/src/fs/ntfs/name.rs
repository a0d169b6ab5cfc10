//! File names: the `$UpCase` collation of `$I30` indexes, Win32 name checks, and DOS 8.3
//! names generated as Windows does (`LONGNA~1.TXT`).

use std::cmp::Ordering;

/// `$FILE_NAME` namespaces.
pub(super) const NS_WIN32: u8 = 1;
pub(super) const NS_DOS: u8 = 2;
pub(super) const NS_BOTH: u8 = 3;

fn up(t: &[u16], c: u16) -> u16 {
    t.get(c as usize).copied().unwrap_or(c)
}

/// Collation of file names: case-insensitive through the volume's upcase table, then
/// shorter first, then case-sensitive.
pub(super) fn collate(t: &[u16], a: &[u16], b: &[u16]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match up(t, *x).cmp(&up(t, *y)) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Equal ignoring case.
pub(super) fn same(t: &[u16], a: &[u16], b: &[u16]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| up(t, *x) == up(t, *y))
}

/// Why `name` cannot be a Win32 file name, if it cannot.
pub(super) fn invalid(name: &[u16]) -> Option<&'static str> {
    if name.is_empty() || name.len() > 255 {
        return Some("length not 1..255 UTF-16 units");
    }
    if name.iter().any(|&c| c < 0x20 || "\"*/:<>?\\|".encode_utf16().any(|x| x == c)) {
        return Some("a character Windows forbids in names");
    }
    if name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16] {
        return Some("a reserved name");
    }
    None
}

fn dos_char(c: u16) -> bool {
    (c as u32) < 0x80 && (c as u8).is_ascii_graphic() && !b"\"*+,/:;<=>?[\\]|.".contains(&(c as u8))
}

/// True if `name` is itself a valid upper-case 8.3 name (one entry serves both
/// namespaces).
pub(super) fn is_dos(name: &[u16]) -> bool {
    let s: Vec<u16> = name.to_vec();
    let (base, ext) = match s.iter().position(|&c| c == b'.' as u16) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (&s[..], &[][..]),
    };
    let ok = |p: &[u16]| p.iter().all(|&c| dos_char(c) && !(b'a' as u16..=b'z' as u16).contains(&c));
    !base.is_empty() && base.len() <= 8 && ext.len() <= 3 && ok(base) && ok(ext) && name.last() != Some(&(b'.' as u16))
}

/// The DOS name Windows would give `name` with tail number `n` (`BASE~N.EXT`).
pub(super) fn dos_name(name: &[u16], n: u32) -> Vec<u16> {
    let last_dot = name.iter().rposition(|&c| c == b'.' as u16).filter(|&i| i > 0);
    let (base, ext) = match last_dot {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, &[][..]),
    };
    let clean = |p: &[u16], max: usize| -> Vec<u16> {
        p.iter()
            .filter(|&&c| c != b' ' as u16 && c != b'.' as u16)
            .map(|&c| if (c as u32) < 0x80 && dos_char(c) { (c as u8).to_ascii_uppercase() as u16 } else { b'_' as u16 })
            .take(max)
            .collect()
    };
    let tail: Vec<u16> = format!("~{n}").encode_utf16().collect();
    let mut b = clean(base, 8 - tail.len());
    if b.is_empty() {
        b.push(b'_' as u16);
    }
    b.extend_from_slice(&tail);
    let e = clean(ext, 3);
    if !e.is_empty() {
        b.push(b'.' as u16);
        b.extend_from_slice(&e);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn dos_names() {
        assert!(is_dos(&u("VIOSTOR.SYS")));
        assert!(!is_dos(&u("viostor.sys")));
        assert!(!is_dos(&u("LONGFILENAME.TXT")));
        assert_eq!(dos_name(&u("Long File Name.text"), 1), u("LONGFI~1.TEX"));
        assert_eq!(dos_name(&u("a.b.c"), 2), u("AB~2.C"));
        assert_eq!(dos_name(&u(".profile"), 1), u("PROFIL~1"));
    }
}
