//! LVM2 (placeholder while being written).

/// PV/VG/LV UUID text: 32 characters in LVM's 6-4-4-4-4-4-6 grouping.
pub fn format_lvm_uuid(id: &[u8]) -> String {
    let s = String::from_utf8_lossy(id);
    let groups = [6, 4, 4, 4, 4, 4, 6];
    let mut out = String::new();
    let mut i = 0;
    for (n, g) in groups.iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        out.push_str(s.get(i..i + g).unwrap_or_default());
        i += g;
    }
    out
}
