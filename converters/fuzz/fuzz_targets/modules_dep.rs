//! The kernel-module metadata readers: modules.dep / modules.alias / modules.softdep text,
//! kmod binary indexes (round trip through the writer) and `.modinfo` of (compressed) ELF
//! modules. Never panics.
#![no_main]

use ferry_converters::kmod::deps::{parse_aliases, parse_builtin, parse_softdeps};
use ferry_converters::kmod::{Index, ModInfo, ModulesDep};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dep) = ModulesDep::parse("fuzz", data) {
        let text = dep.to_text();
        let again = ModulesDep::parse("fuzz", text.as_bytes()).expect("re-read");
        assert_eq!(again.entries, dep.entries);
    }
    let _ = parse_aliases(data);
    let _ = parse_builtin(data);
    let _ = parse_softdeps(data);
    if let Ok(index) = Index::parse("fuzz", data) {
        if let Ok(bytes) = index.write() {
            assert_eq!(Index::parse("fuzz", &bytes).expect("re-read"), index);
        }
    }
    let _ = ModInfo::parse("fuzz.ko", data);
    let _ = ModInfo::parse("fuzz.ko.xz", data);
});
