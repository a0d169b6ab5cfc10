//! The registry hive reader and writer: open any bytes, walk every key and value, then
//! create, overwrite and delete keys and values and read the written hive back. Never
//! panics; what Ferry writes always reopens with the edits in it.
#![no_main]

use ferry_converters::windows::hive::{Hive, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut h) = Hive::open("fuzz", data.to_vec()) else { return };
    let mut stack = vec![(h.root(), 0)];
    let mut seen = 0;
    while let Some((k, depth)) = stack.pop() {
        seen += 1;
        if seen > 4096 || depth > 64 {
            break;
        }
        let _ = h.values(k);
        if let Ok(subs) = h.subkeys(k) {
            stack.extend(subs.into_iter().map(|(_, k)| (k, depth + 1)));
        }
    }
    let edited = (|| {
        let k = h.create_key("Fuzz\\Services\\viostor")?;
        h.set_value(k, "Start", &Value::Dword(0))?;
        h.set_value(k, "Big", &Value::Binary(vec![0x5a; 20000]))?;
        h.set_value(k, "Big", &Value::MultiSz(vec!["a".into(), "b".into()]))?;
        h.delete_value(k, "Start")?;
        let _ = h.delete_key("Fuzz\\Services");
        h.create_key("Fuzz\\Kept")
    })();
    if edited.is_ok() {
        let out = h.to_bytes();
        let again = Hive::open("fuzz-out", out).expect("Ferry's output reopens");
        assert!(again.lookup("Fuzz\\Kept").expect("lookup").is_some());
        assert!(again.lookup("Fuzz\\Services").expect("lookup").is_none());
    }
});
