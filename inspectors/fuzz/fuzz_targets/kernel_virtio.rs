//! The virtio-pci capability judgement on arbitrary guest files: a virtio_pci module (ELF
//! `.modinfo`), `modules.builtin.modinfo`, a kernel config and command line, modprobe text.
//! Never panics; always gives one of the four interfaces with a reason.
#![no_main]
use ferry_inspectors::os::linux::virtio::{assess, force_legacy_cmdline, force_legacy_modprobe, KernelEvidence, ModuleFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let version = text.lines().next().unwrap_or_default();
    let force = force_legacy_cmdline(&text) || force_legacy_modprobe(&text);
    let modules: Vec<String> = text.lines().take(64).map(str::to_string).collect();
    for builtin in [false, true] {
        let s = assess(&KernelEvidence {
            version,
            config: &text,
            has_virtio_pci: true,
            builtin_modinfo: builtin.then_some(data),
            builtin,
            module: ModuleFile::Plain("/lib/modules/x/virtio_pci.ko", Some(data)),
            modules: &modules,
            force_legacy: force.then(|| "fuzz".to_string()),
        });
        assert!(!s.reason.is_empty());
    }
});
