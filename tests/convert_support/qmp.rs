//! A tiny QMP client for tests that start QEMU with `-qmp unix:SOCK,server=on,wait=off`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A tiny QMP client.
pub struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    pub fn connect(sock: &Path, child: &mut Child) -> Qmp {
        let start = Instant::now();
        let s = loop {
            if let Ok(s) = UnixStream::connect(sock) {
                break s;
            }
            if let Ok(Some(st)) = child.try_wait() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("qemu exited {st}: {err}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no QMP socket");
            std::thread::sleep(Duration::from_millis(50));
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut q = Qmp { r: BufReader::new(s.try_clone().unwrap()), w: s };
        let greeting = q.read();
        assert!(greeting.get("QMP").is_some(), "{greeting}");
        q.cmd("qmp_capabilities", json!({}));
        q
    }

    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// The whole answer: `{"return": ...}` or `{"error": ...}`.
    pub fn answer(&mut self, execute: &str, arguments: Value) -> Value {
        writeln!(self.w, "{}", json!({"execute": execute, "arguments": arguments})).unwrap();
        loop {
            let v = self.read();
            if v.get("event").is_none() {
                return v;
            }
        }
    }

    pub fn cmd(&mut self, execute: &str, arguments: Value) -> Value {
        writeln!(self.w, "{}", json!({"execute": execute, "arguments": arguments})).unwrap();
        loop {
            let v = self.read();
            if v.get("event").is_some() {
                continue;
            }
            if let Some(e) = v.get("error") {
                panic!("{execute}: {e}");
            }
            return v["return"].clone();
        }
    }
}
