//! A QMP monitor subset on a unix socket: greeting, `qmp_capabilities`, `query-version`,
//! `query-status`, `query-pci`, `query-block`, `balloon`, `query-balloon`, `stop`, `cont`,
//! `system_powerdown` (ACPI power button), `system_reset`, `quit`, `blockdev-add`/
//! `blockdev-del` and `device_add`/`device_del` (hotplug on pc, refused where QEMU refuses,
//! see [`hotplug`]); events SHUTDOWN, POWERDOWN, RESET, STOP, RESUME, BALLOON_CHANGE,
//! DEVICE_DELETED (QEMU's names and
//! `reason` strings). Each client gets its own thread; events go to every negotiated client.
mod hotplug;

use crate::{Controller, ExitReason};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A running monitor; the socket file is removed on drop.
pub struct QmpServer {
    path: PathBuf,
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        // Let event writers flush SHUTDOWN before the process goes away.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` and serves QMP to any number of clients in background threads.
pub fn serve(path: &Path, ctl: Arc<Controller>) -> std::io::Result<QmpServer> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new().name("qmp".into()).spawn(move || {
        // Clients and their event writers start from this thread and inherit its filter.
        if let Err(e) = crate::sandbox::enter(crate::sandbox::ThreadClass::Monitor) {
            return eprintln!("ferry run: QMP not served: {e}");
        }
        for conn in listener.incoming().flatten() {
            let ctl = ctl.clone();
            let _ = std::thread::Builder::new().name("qmp-client".into()).spawn(move || client(conn, &ctl));
        }
    })?;
    Ok(QmpServer { path: path.to_path_buf() })
}

fn send(w: &Mutex<UnixStream>, v: &Value) -> bool {
    let Ok(mut s) = w.lock() else { return false };
    let mut line = v.to_string();
    line.push_str("\r\n");
    s.write_all(line.as_bytes()).is_ok()
}

fn error(class: &str, desc: String) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

fn client(conn: UnixStream, ctl: &Arc<Controller>) {
    let Ok(w) = conn.try_clone() else { return };
    let writer = Arc::new(Mutex::new(w));
    let version = env!("CARGO_PKG_VERSION");
    ctl.wait_attached(std::time::Duration::from_secs(60));
    let greeting = json!({"QMP": {"version": {"qemu": {"major": 0, "minor": 1, "micro": 0}, "package": format!("ferry-runtime {version}")}, "capabilities": []}});
    if !send(&writer, &greeting) {
        return;
    }
    let mut negotiated = false;
    for req in serde_json::Deserializer::from_reader(conn).into_iter::<Value>() {
        let Ok(req) = req else {
            send(&writer, &error("GenericError", "JSON parse error".into()));
            return;
        };
        let id = req.get("id").cloned();
        let cmd = req.get("execute").and_then(Value::as_str).unwrap_or("").to_string();
        let mut reply = if !negotiated && cmd != "qmp_capabilities" {
            error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'".into())
        } else {
            match cmd.as_str() {
                "qmp_capabilities" if negotiated => error("CommandNotFound", "Capabilities negotiation is already complete, command ignored".into()),
                "qmp_capabilities" => {
                    negotiated = true;
                    let rx = ctl.subscribe();
                    let w2 = writer.clone();
                    let _ = std::thread::Builder::new().name("qmp-events".into()).spawn(move || {
                        for ev in rx {
                            if !send(&w2, &ev) {
                                break;
                            }
                        }
                    });
                    json!({"return": {}})
                }
                "query-version" => json!({"return": {"qemu": {"major": 0, "minor": 1, "micro": 0}, "package": format!("ferry-runtime {version}")}}),
                "query-status" => json!({"return": {"status": ctl.status(), "running": ctl.status() == "running"}}),
                "query-pci" => json!({"return": [{"bus": 0, "devices": ctl.query_pci()}]}),
                "query-block" => json!({"return": ctl.query_block().into_iter().map(|b| json!({
                    "device": "", "qdev": format!("/machine/peripheral/{}/virtio-backend", b["device"].as_str().unwrap_or("")), "locked": false, "removable": false, "type": "unknown",
                    "inserted": {"file": b["file"], "ro": b["ro"], "image": {"virtual-size": b["size"]}},
                })).collect::<Vec<_>>()}),
                "balloon" => match req.pointer("/arguments/value").and_then(Value::as_u64) {
                    None => error("GenericError", "Parameter 'value' is missing".into()),
                    Some(v) if ctl.set_balloon(v) => json!({"return": {}}),
                    Some(_) => error("DeviceNotActive", "No balloon device has been activated".into()),
                },
                "query-balloon" => match ctl.query_balloon() {
                    Some(actual) => json!({"return": {"actual": actual}}),
                    None => error("DeviceNotActive", "No balloon device has been activated".into()),
                },
                "stop" => {
                    ctl.pause();
                    json!({"return": {}})
                }
                "cont" => {
                    ctl.resume();
                    json!({"return": {}})
                }
                "system_powerdown" => {
                    // QEMU emits POWERDOWN whether or not the guest listens to the power button.
                    ctl.emit("POWERDOWN", json!({}));
                    ctl.power_button();
                    json!({"return": {}})
                }
                "system_reset" => {
                    ctl.request(ExitReason::HostReset);
                    json!({"return": {}})
                }
                "device_add" => hotplug::device_add(ctl, req.get("arguments").unwrap_or(&Value::Null)),
                "device_del" => hotplug::device_del(ctl, req.get("arguments").unwrap_or(&Value::Null)),
                "blockdev-add" => hotplug::blockdev_add(ctl, req.get("arguments").unwrap_or(&Value::Null)),
                "blockdev-del" => hotplug::blockdev_del(ctl, req.get("arguments").unwrap_or(&Value::Null)),
                "quit" => {
                    if let Some(i) = &id {
                        send(&writer, &json!({"return": {}, "id": i}));
                    } else {
                        send(&writer, &json!({"return": {}}));
                    }
                    ctl.request(ExitReason::Quit);
                    continue;
                }
                other => error("CommandNotFound", format!("The command {other} has not been found")),
            }
        };
        if let (Some(i), Some(obj)) = (id, reply.as_object_mut()) {
            obj.insert("id".into(), i);
        }
        if !send(&writer, &reply) {
            return;
        }
    }
}
