//! Golden-file tests: every reader over the realistic inputs in `testdata/configs/`, the
//! parsed model (as JSON) compared with the checked-in `<input>.json`. Regenerate after a
//! reviewed change with `FERRY_UPDATE_GOLDEN=1 cargo test -p ferry-formats --test config_golden`.

use ferry_formats::model::VmModel;
use std::path::{Path, PathBuf};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs")
}

fn parse(kind: &str, path: &Path) -> VmModel {
    let r = match kind {
        "vmx" => ferry_formats::vmx::read_vmx(path),
        "xen" => ferry_formats::xen::read_xen(path),
        "libvirt" => ferry_formats::libvirt::read_libvirt_xml(path),
        "ovf" => {
            let text = std::fs::read_to_string(path).unwrap();
            ferry_formats::ovf::parse_ovf_text(&text, path)
        }
        _ => unreachable!(),
    };
    r.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_dir(kind: &str) -> usize {
    let dir = configs().join(kind);
    let update = std::env::var_os("FERRY_UPDATE_GOLDEN").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "json"))
        .collect();
    inputs.sort();
    let root = configs().canonicalize().unwrap();
    for input in &inputs {
        let canon = input.canonicalize().unwrap();
        let vm = parse(kind, &canon);
        let json = vm.to_json().replace(&root.display().to_string(), "@CONFIGS@") + "\n";
        // Parsing twice gives the same bytes.
        assert_eq!(vm.to_json(), parse(kind, &canon).to_json());
        let golden = PathBuf::from(format!("{}.json", input.display()));
        if update {
            std::fs::write(&golden, &json).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("{} missing: run with FERRY_UPDATE_GOLDEN=1", golden.display()));
        assert_eq!(json, want, "{} differs from its golden file", input.display());
        // The JSON reads back to the same model.
        let back: VmModel = serde_json::from_str(&vm.to_json()).unwrap();
        assert_eq!(back, vm);
    }
    inputs.len()
}

#[test]
fn vmx_golden() {
    assert!(check_dir("vmx") >= 3);
}

#[test]
fn xen_golden() {
    assert!(check_dir("xen") >= 4);
}

#[test]
fn libvirt_golden() {
    assert!(check_dir("libvirt") >= 4);
}

#[test]
fn ovf_golden() {
    assert!(check_dir("ovf") >= 3);
}
