//! `ferry batch` manifests: any bytes through the TOML and the YAML parser (with the YAML
//! line scan) must give a manifest or a one-line error, never a panic.
#![no_main]

#[path = "../../../src/batch/parse.rs"]
#[allow(dead_code)]
mod parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for r in [parse::parse_toml(text), parse::parse_yaml(text)] {
        if let Err(e) = r {
            assert!(!e.contains('\n'), "multi-line error: {e:?}");
        }
    }
});
