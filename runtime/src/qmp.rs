//! QMP monitor subset (placeholder replaced below).
use crate::Controller;
use std::path::Path;
use std::sync::Arc;

/// A running monitor.
pub struct QmpServer;

/// Serves QMP on `path`.
pub fn serve(_path: &Path, _ctl: Arc<Controller>) -> std::io::Result<QmpServer> {
    Err(std::io::Error::other("QMP is not built yet"))
}
