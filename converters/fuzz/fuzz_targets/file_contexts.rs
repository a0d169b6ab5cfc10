//! The SELinux file_contexts reader (`linux::file_contexts`): the input is a file_contexts
//! text, a NUL, a `.subs_dist` text, a NUL, and paths (one a line) looked up as every file
//! type. Parsing and lookups never panic; a lookup is either a context, none, or a one-line
//! error.
#![no_main]

use ferry_converters::linux::file_contexts::{is_c_space, FileContexts, FileType};
use libfuzzer_sys::fuzz_target;

const TYPES: [FileType; 7] = [FileType::File, FileType::Dir, FileType::Symlink, FileType::Char, FileType::Block, FileType::Socket, FileType::Fifo];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (fc, subs, paths) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let fc = match FileContexts::from_texts("fuzz", fc, subs) {
        Ok(fc) => fc,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            return;
        }
    };
    let text = String::from_utf8_lossy(paths);
    for path in text.lines().take(32).chain(["/", "/etc/fstab", "/boot/initrd.img-6.1.0-27-amd64", "//x//"]) {
        for t in TYPES {
            match fc.lookup(path, t) {
                Ok(Some(ctx)) => assert!(!ctx.is_empty() && !ctx.bytes().any(is_c_space), "{ctx:?}"),
                Ok(None) => {}
                Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
            }
        }
    }
});
