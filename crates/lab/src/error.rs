//! The lab's error type.

use std::io;

/// Result alias of the lab.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// What went wrong while building or using a lab.
///
/// [`LabError::Unsupported`] means "this machine cannot run the lab" (not
/// root, a tool or a kernel feature missing); tests turn it into a skip, or
/// into a loud failure when `CI=true` (see [`crate::or_skip`]). Every other
/// variant is a real failure.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The machine lacks something the lab needs (root, a tool, a kernel
    /// feature).
    #[error("lab unsupported here: {0}")]
    Unsupported(String),
    /// A command ran and failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the reader.
        cmd: String,
        /// Its exit status, as printed by std.
        status: String,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// A system call or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An answer (HTTP, UDP, command output) was not what the lab expected.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// Bad arguments given to the lab (e.g. too many real servers).
    #[error("invalid lab request: {0}")]
    Invalid(String),
}

impl LabError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// True for [`LabError::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Unsupported(_))
    }
}

impl From<nix::Error> for LabError {
    fn from(e: nix::Error) -> Self {
        Self::io("system call", io::Error::from(e))
    }
}
