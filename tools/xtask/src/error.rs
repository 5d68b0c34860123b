//! xtask's error type: what went wrong, with the context a person needs to act on it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can stop an xtask command.
#[derive(Debug)]
pub enum Error {
    /// Bad command line; the message says what is accepted.
    Usage(String),
    /// A file operation failed.
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A program could not be started.
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// A program ended with a failing status.
    CommandFailed {
        command: String,
        status: Option<i32>,
    },
    /// The kernel ELF cannot become a boot image.
    Image { path: PathBuf, problem: String },
    /// A prerequisite is missing and cannot be installed here.
    Prerequisite(String),
    /// A model file or manifest is wrong.
    Model(String),
    /// Starting or driving QEMU failed.
    Qemu(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message} (see `cargo xtask --help`)"),
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
            Error::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            Error::CommandFailed { command, status } => match status {
                Some(code) => write!(f, "`{command}` failed with exit status {code}"),
                None => write!(f, "`{command}` was killed by a signal"),
            },
            Error::Image { path, problem } => {
                write!(
                    f,
                    "cannot make a boot image from {}: {problem}",
                    path.display()
                )
            }
            Error::Prerequisite(message) => write!(f, "prerequisite: {message}"),
            Error::Model(message) => write!(f, "model: {message}"),
            Error::Qemu(message) => write!(f, "qemu: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for xtask results.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds an [`Error::Io`] for `action` on `path`.
pub fn io(action: &str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.to_string();
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
