//! The directory-index name hashes of ext3/4 htree directories: legacy ("dx_hack"),
//! half-MD4 and TEA, each in the signed-char and unsigned-char flavour, as the kernel
//! (`fs/ext4/hash.c`) and e2fsprogs (`ext2fs_dirhash`) define them.

/// `dx_root_info.hash_version` / `s_def_hash_version` values.
pub const HASH_LEGACY: u8 = 0;
pub const HASH_HALF_MD4: u8 = 1;
pub const HASH_TEA: u8 = 2;
/// Added to the three base versions when the superblock says chars are unsigned.
pub const UNSIGNED_OFFSET: u8 = 3;

/// The seed used when `s_hash_seed` is all zeros.
const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The largest hash a name may get: 0xffff_fffe is the 32-bit "end of directory" cookie.
const EOF_HASH: u32 = 0x7fff_ffff << 1;

/// A byte of the name as the hash sees it: sign-extended or not.
fn widen(b: u8, signed: bool) -> u32 {
    if signed {
        i32::from(b as i8) as u32
    } else {
        u32::from(b)
    }
}

fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ widen(b, signed).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Packs up to `out.len() * 4` bytes of `msg` into words, padded with the length pattern.
fn str2hashbuf(msg: &[u8], out: &mut [u32], signed: bool) {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut val = pad;
    let take = msg.len().min(out.len() * 4);
    let mut w = 0;
    for (i, &b) in msg.iter().take(take).enumerate() {
        val = widen(b, signed).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < out.len() {
        out[w] = val;
        w += 1;
    }
    for slot in out.iter_mut().skip(w) {
        *slot = pad;
    }
}

fn md4_f(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}
fn md4_g(x: u32, y: u32, z: u32) -> u32 {
    (x & y).wrapping_add((x ^ y) & z)
}
fn md4_h(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

/// One MD4 round: its function, the order it takes the message words in, its shifts, and
/// the constant added to each word.
type Md4Round = (fn(u32, u32, u32) -> u32, [usize; 8], [u32; 4], u32);

const MD4_ROUNDS: [Md4Round; 3] = [
    (md4_f, [0, 1, 2, 3, 4, 5, 6, 7], [3, 7, 11, 19], 0),
    (md4_g, [1, 3, 5, 7, 0, 2, 4, 6], [3, 5, 9, 13], 0o13240474631),
    (md4_h, [3, 7, 2, 6, 1, 5, 0, 4], [3, 9, 11, 15], 0o15666365641),
];

/// The kernel's `half_md4_transform`: three MD4 rounds of eight steps over eight words.
fn half_md4(buf: &mut [u32; 4], x: &[u32; 8]) {
    let [mut a, mut b, mut c, mut d] = *buf;
    // The registers rotate a, d, c, b as in MD4.
    for (func, order, shifts, k) in MD4_ROUNDS {
        for (step, &wi) in order.iter().enumerate() {
            let m = x[wi].wrapping_add(k);
            let s = shifts[step % 4];
            match step % 4 {
                0 => a = a.wrapping_add(func(b, c, d)).wrapping_add(m).rotate_left(s),
                1 => d = d.wrapping_add(func(a, b, c)).wrapping_add(m).rotate_left(s),
                2 => c = c.wrapping_add(func(d, a, b)).wrapping_add(m).rotate_left(s),
                _ => b = b.wrapping_add(func(c, d, a)).wrapping_add(m).rotate_left(s),
            }
        }
    }
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

/// The kernel's `TEA_transform`: 16 TEA rounds of the first two words keyed by four.
fn tea(buf: &mut [u32; 4], x: &[u32; 4]) {
    const DELTA: u32 = 0x9E37_79B9;
    let (mut sum, mut b0, mut b1) = (0u32, buf[0], buf[1]);
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add((b1 << 4).wrapping_add(x[0]) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(x[1]));
        b1 = b1.wrapping_add((b0 << 4).wrapping_add(x[2]) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(x[3]));
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

/// The (major, minor) hash of `name` under `version` (0..=5; the caller validated it).
/// The major hash has bit 0 clear: bit 0 of an index entry marks a collision continuation.
pub fn dx_hash(name: &[u8], version: u8, seed: [u32; 4]) -> (u32, u32) {
    let mut buf = if seed.iter().any(|&w| w != 0) { seed } else { DEFAULT_SEED };
    let signed = version < UNSIGNED_OFFSET;
    let (major, minor) = match version % UNSIGNED_OFFSET {
        HASH_LEGACY => (legacy(name, signed), 0),
        HASH_HALF_MD4 => {
            let mut x = [0u32; 8];
            // Each 32-byte step hashes the rest of the name (its length sets the padding).
            for off in (0..name.len()).step_by(32) {
                str2hashbuf(name.get(off..).unwrap_or(&[]), &mut x, signed);
                half_md4(&mut buf, &x);
            }
            (buf[1], buf[2])
        }
        _ => {
            let mut x = [0u32; 4];
            for off in (0..name.len()).step_by(16) {
                str2hashbuf(name.get(off..).unwrap_or(&[]), &mut x, signed);
                tea(&mut buf, &x);
            }
            (buf[0], buf[1])
        }
    };
    let major = major & !1;
    (if major == EOF_HASH { EOF_HASH - 2 } else { major }, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Names of many lengths (around the 16- and 32-byte steps), with bytes above 0x7f where
    /// signed and unsigned hashes differ.
    fn names() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![b"a".to_vec(), b"..".to_vec(), b"lost+found".to_vec()];
        for len in [3usize, 4, 5, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100, 255] {
            out.push((0..len).map(|i| b'a' + (i * 7 % 26) as u8).collect());
            out.push("é".repeat(len / 2 + 1).into_bytes());
        }
        out.push("entry_with_a_longer_name_number_00042_ü".as_bytes().to_vec());
        out
    }

    fn seed_uuid(seed: [u32; 4]) -> String {
        let b: Vec<u8> = seed.iter().flat_map(|w| w.to_le_bytes()).collect();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }

    /// Every version and both seeds (default and a set one) against debugfs's `dx_hash`
    /// (e2fsprogs' `ext2fs_dirhash`), run once over a command file.
    #[test]
    fn hashes_match_debugfs() {
        let have = Command::new("debugfs").arg("-V").output().is_ok_and(|o| o.status.success());
        if !have {
            eprintln!("skipping: debugfs (e2fsprogs) not installed");
            return;
        }
        let seeds = [[0u32; 4], [0x0123_4567, 0x89ab_cdef, 0x0011_2233, 0x4455_6677]];
        let mut script = Vec::new();
        let mut want = Vec::new();
        for seed in seeds {
            for version in 0..6u8 {
                for name in names() {
                    script
                        .extend_from_slice(format!("dx_hash -h HASHALG_{version} -s {} ", seed_uuid(seed)).as_bytes());
                    script.extend_from_slice(&name);
                    script.push(b'\n');
                    want.push((dx_hash(&name, version, seed), version, name));
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("ferry-dxhash-{}", std::process::id()));
        std::fs::write(&dir, &script).unwrap();
        let out = Command::new("debugfs").arg("-f").arg(&dir).output().unwrap();
        let _ = std::fs::remove_file(&dir);
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<(u32, u32)> = text
            .lines()
            .filter_map(|l| {
                let (_, rest) = l.rsplit_once(" is 0x")?;
                let (major, minor) = rest.split_once(" (minor 0x")?;
                Some((u32::from_str_radix(major, 16).ok()?, u32::from_str_radix(minor.trim_end_matches(')'), 16).ok()?))
            })
            .collect();
        assert_eq!(got.len(), want.len(), "debugfs output: {text}");
        for ((mine, version, name), theirs) in want.iter().zip(&got) {
            // debugfs prints the raw hash; the stored one has bit 0 clear.
            assert_eq!(*mine, (theirs.0 & !1, theirs.1), "version {version} name {:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn known_values() {
        // From `debugfs -R "dx_hash -h HASHALG_N -s 01234567-89ab-cdef-0011-223344556677 NAME"`.
        let seed = [0x6745_2301, 0xefcd_ab89, 0x3322_1100, 0x7766_5544];
        let name = "héllo_wörld_ça_va_a_long_name_over_32_bytes".as_bytes();
        assert_eq!(dx_hash(name, 0, seed), (0x7e9a_1eb2, 0));
        assert_eq!(dx_hash(name, 1, seed), (0x378b_89c6, 0x6296_3f78));
        assert_eq!(dx_hash(name, 2, seed), (0xeecc_5b40, 0x50e3_43e0));
        assert_eq!(dx_hash(name, 3, seed), (0xb805_a948, 0));
        assert_eq!(dx_hash(name, 4, seed), (0xb24e_fd24, 0x5861_be9f));
        assert_eq!(dx_hash(name, 5, seed), (0x04c3_e87a, 0x1bb4_64f7));
    }
}
