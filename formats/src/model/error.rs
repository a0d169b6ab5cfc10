use std::path::{Path, PathBuf};

/// Every way reading a VM description can fail. Each message is one line naming the file,
/// the field (key, element or line) and the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is part of the message (not a `source`), so a report printing the
    /// error chain does not repeat it.
    #[error("{}: {op}: {err}", shown(path))]
    Io { path: PathBuf, op: &'static str, err: std::io::Error },

    /// An empty `value` prints without the quotes (`invalid FIELD: REASON`).
    #[error("{}: {}", shown(path), invalid_text(field, value, reason))]
    Invalid { path: PathBuf, field: String, value: String, reason: String },

    /// A required field that is absent.
    #[error("{}: {field} missing: {reason}", shown(path))]
    Missing { path: PathBuf, field: String, reason: String },

    #[error("{}: {what}", shown(path))]
    Other { path: PathBuf, what: String },
}

/// A path for a one-line message: control characters escaped.
pub fn shown(path: &Path) -> String {
    one_line(&path.display().to_string())
}

fn invalid_text(field: &str, value: &str, reason: &str) -> String {
    if value.is_empty() {
        format!("invalid {field}: {reason}")
    } else {
        format!("invalid {field} {value:?}: {reason}")
    }
}

impl ConfigError {
    /// I/O failure on `path` while doing `op`.
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        ConfigError::Io { path: path.to_path_buf(), op, err: source }
    }

    /// A field holding a value that would make a wrong guest.
    pub fn invalid(
        path: &Path,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        let mut value = value.to_string();
        if value.len() > 200 {
            let mut cut = 200;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            value.push('…');
        }
        ConfigError::Invalid {
            path: path.to_path_buf(),
            field: one_line(&field.into()),
            value,
            reason: one_line(&reason.into()),
        }
    }

    /// A required field `field` that the file does not have.
    pub fn missing(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Missing { path: path.to_path_buf(), field: one_line(&field.into()), reason: one_line(&reason.into()) }
    }

    /// Any other one-line failure about `path`.
    pub fn other(path: &Path, what: impl Into<String>) -> Self {
        ConfigError::Other { path: path.to_path_buf(), what: one_line(&what.into()) }
    }
}

/// `s` with every control character escaped (`\n`, `\u{1b}`...), so it prints on one line.
pub fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// Reads a whole description file, refusing files above `limit` bytes before reading them.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    if path.is_dir() {
        return Err(ConfigError::other(path, "is a directory, expected a file"));
    }
    // Non-blocking, regular files and block devices only: a FIFO must not hang the open.
    let (file, len) = crate::disk::open_input(path).map_err(|e| ConfigError::io(path, "open", e))?;
    if len > limit {
        return Err(ConfigError::invalid(path, "file size", len, format!("larger than {limit} bytes")));
    }
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf).map_err(|e| ConfigError::io(path, "read", e))?;
    if buf.len() as u64 > limit {
        return Err(ConfigError::invalid(path, "file size", buf.len(), format!("larger than {limit} bytes")));
    }
    Ok(buf)
}
