//! Runs each fuzz entry point (`formats/fuzz`) over seed inputs and deterministic mutations of
//! them, so the targets stay compiled and their seeds never panic.
mod vmdk_support;

use ferry_formats::vmdk::fuzzing;
use vmdk_support::*;

/// Seeds: qemu-made sparse and stream files of a small disk, hand-made stream, COWD, seSparse.
fn seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("r.raw");
    pattern(&raw, 256 * 1024 + 512, &[(0, 4096), (70_000, 100_000), (256 * 1024, 512)]);
    let disk = std::fs::read(&raw).unwrap();
    let mut out = vec![synth::vmware_stream(&disk, false), synth::cowd(&disk, 2), synth::sesparse(&disk, false)];
    for sub in ["monolithicSparse", "streamOptimized"] {
        let p = dir.path().join(format!("{sub}.vmdk"));
        qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", &format!("subformat={sub}"), s(&raw), s(&p)]);
        out.push(std::fs::read(&p).unwrap());
    }
    out
}

/// Deterministic mutations: header fields overwritten with extreme values, truncations.
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec(), seed[..seed.len().min(511)].to_vec(), seed[..seed.len() / 2].to_vec()];
    let extremes: [&[u8]; 4] = [&[0xff; 8], &[0; 8], &[0x00, 0x00, 0x00, 0x80, 0, 0, 0, 0], &[1, 0, 0, 0, 0, 0, 0, 0]];
    for at in (4..80).step_by(4) {
        for x in extremes {
            if at >= seed.len() {
                continue;
            }
            let mut m = seed.to_vec();
            let end = (at + x.len()).min(m.len());
            m[at..end].copy_from_slice(&x[..end - at]);
            out.push(m);
        }
    }
    let noise = noise(7, seed.len());
    for k in 0..16 {
        let mut m = seed.to_vec();
        for i in (k * 977..m.len()).step_by(4099) {
            m[i] ^= noise[i] | 1;
        }
        out.push(m);
    }
    out
}

#[test]
fn sparse_and_stream_entry_points_survive_seeds_and_mutations() {
    for seed in seeds() {
        for m in mutations(&seed) {
            fuzzing::sparse(&m);
            fuzzing::stream(&m);
        }
    }
}

#[test]
fn descriptor_entry_point_survives_seeds() {
    let texts = [
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentFlat\"\nRW 4192256 FLAT \"a-f001.vmdk\" 0\n",
        "version=3\r\ncreateType=streamOptimized\r\nRDONLY 128 SPARSE \"x\"\r\nRW 1 ZERO\r\nNOACCESS 99999999999999999999 FLAT \"\n",
        "RW \"\nRW 1 FLAT \"unterminated\nparentCID=zz\n",
        "\u{0}\u{0}version=1",
    ];
    for t in texts {
        fuzzing::descriptor(t.as_bytes());
        fuzzing::sparse(t.as_bytes());
        for m in mutations(t.as_bytes()) {
            fuzzing::descriptor(&m);
        }
    }
}

/// The committed tiny seeds (testdata/vmdk/make-fuzz-seeds.py) are valid files with the
/// contents their generator wrote.
#[test]
fn committed_seeds_read_as_written() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vmdk/fuzz-seeds/vmdk_sparse");
    let ramp: Vec<u8> = (0..16).flat_map(|_| 0..=255u8).collect();
    let read = |name: &str| {
        let dev = ferry_formats::vmdk::open(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        read_all(dev.as_ref(), 4096)
    };
    let k = read("kdmv.vmdk");
    assert_eq!(k.len(), 64 * 512);
    assert!(
        k[..4096] == ramp[..] && k[4096..12288].iter().all(|&b| b == 0) && k[12288..16384].iter().all(|&b| b == 0xab)
    );
    let st = read("stream.vmdk");
    assert!(st[4096..8192] == ramp[..] && st[..4096].iter().all(|&b| b == 0));
    let c = read("cowd.vmdk");
    assert!(c[..512].iter().all(|&b| b == 0x11) && c[7 * 512..8 * 512].iter().all(|&b| b == 0x22));
    let se = read("sesparse.vmdk");
    assert!(se[..4096].iter().all(|&b| b == 0x33) && se[5 * 4096..6 * 4096].iter().all(|&b| b == 0x44));
    assert!(se[4096..5 * 4096].iter().all(|&b| b == 0));
    for name in ["kdmv.vmdk", "stream.vmdk", "cowd.vmdk", "sesparse.vmdk", "descriptor.vmdk", "child.vmdk"] {
        fuzzing::sparse(&std::fs::read(dir.join(name)).unwrap());
    }
}
