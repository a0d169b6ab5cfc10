//! Errors of reading and editing a registry hive.

/// Every way opening or editing a hive fails; each message is one line naming the hive file
/// and, for bad data, the field and its (escaped) value.
#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    #[error("{file}: invalid {field} {value}: {reason}")]
    Invalid { file: String, field: String, value: String, reason: String },

    #[error(
        "{file}: hive has pending transaction logs (sequence numbers {primary} and {secondary} \
         differ): shut Windows down cleanly so {file}.LOG1/.LOG2 are applied"
    )]
    PendingLogs { file: String, primary: u32, secondary: u32 },

    #[error("{file}: {path}: {problem}")]
    Path { file: String, path: String, problem: String },

    #[error("{file}: hive would grow past {limit} bytes")]
    TooLarge { file: String, limit: u64 },
}

/// Escapes untrusted bytes for an error message: printable ASCII kept, others as `\xNN`.
pub(crate) fn escape(b: &[u8]) -> String {
    b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(char::from).collect()
}

/// Escapes an untrusted string for an error message.
pub(crate) fn escape_str(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect()
}
