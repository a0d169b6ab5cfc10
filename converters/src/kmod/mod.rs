//! Linux kernel modules of a guest: its `modules.dep`/`modules.alias`/`modules.builtin`
//! (text and kmod's binary index), a module's `.modinfo`, and the dependency closure of a
//! list of modules, all read from the guest's own files through [`GuestFiles`].

pub mod deps;
pub mod files;
pub mod index;
pub mod modinfo;
pub mod resolve;

pub use deps::{module_name, ModulesDep};
pub use files::{GuestFiles, HostDir};
pub use index::Index;
pub use modinfo::ModInfo;
pub use resolve::{resolve, Closure, ResolvedModule};

/// Errors of the kernel-module readers.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// A file's content is malformed: one line naming the file, the field and the value.
    #[error("{path}: invalid {field} {value}: {reason}")]
    Invalid {
        /// The file (guest path or a description of the buffer).
        path: String,
        /// The field or structure that is wrong.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Reading a guest file failed.
    #[error("{path}: {source}")]
    Io {
        /// The guest path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl KmodError {
    /// Builds [`KmodError::Invalid`].
    pub fn invalid(
        path: impl Into<String>,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        KmodError::Invalid {
            path: path.into(),
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Builds [`KmodError::Io`].
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        KmodError::Io {
            path: path.into(),
            source,
        }
    }
}
