//! Typed errors of the extension host. Every error names the module it belongs to, so a
//! fault is always blamed on the extension that caused it, never on the kernel.
//!
//! [`ExtensionError::code`] gives a short token without spaces and
//! [`ExtensionError::details`] extra `key=value` pairs, which is what the console's one-line
//! `[wasm] module=NAME error=CODE ... fuel_used=N` report prints; `Display` gives a sentence.

use alloc::string::String;
use core::fmt;

use crate::manifest::ManifestError;

/// An error tied to one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionError {
    /// Module name (as loaded, e.g. the bundle entry name).
    pub module: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong with a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The binary is larger than `MAX_MODULE_BYTES`.
    TooLarge { bytes: usize },
    /// The capability manifest is missing or malformed.
    Manifest(ManifestError),
    /// wasmi rejected the binary (decode or validation); the text is wasmi's reason.
    Invalid(String),
    /// An import cannot be linked.
    Link {
        /// Import module name.
        import_module: String,
        /// Import field name.
        import_field: String,
        /// Why.
        reason: LinkReason,
    },
    /// No export by that name, or it is not a function.
    NoSuchExport(String),
    /// The arguments do not fit the export's parameters.
    BadArguments {
        /// Export called.
        export: String,
        /// Its signature, e.g. `(i32, i64) -> i32`.
        expected: String,
    },
    /// The hook context has more input words than `MAX_HOOK_INPUTS`.
    TooManyHookInputs { given: usize },
    /// The module misbehaved while running (instantiation or a call).
    Fault(Fault),
}

/// Why an import did not link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkReason {
    /// Imports must come from module `anneal`.
    NotHostModule,
    /// No host function has that name.
    UnknownHostFunction,
    /// The host function exists but the manifest does not grant it.
    NotGranted,
    /// The import's type differs from the host function's.
    WrongSignature { expected: String, found: String },
    /// Only functions may be imported (no memories, tables or globals).
    NotAFunction,
}

/// A module's misbehaviour at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call used up its fuel.
    OutOfFuel { budget: u64 },
    /// Memory growth (or the initial memory) went past the manifest's page budget.
    MemoryLimit {
        requested_pages: u64,
        limit_pages: u32,
    },
    /// Table growth went past `MAX_TABLE_ELEMENTS`.
    TableLimit { requested_elements: u64 },
    /// Calls nested deeper than `MAX_CALL_DEPTH`.
    CallDepth,
    /// A WebAssembly trap (`unreachable`, division by zero, out-of-bounds access, ...).
    Trap(&'static str),
    /// A host function refused the call's arguments.
    Host(HostFault),
    /// Any other engine error, with wasmi's text.
    Engine(String),
}

/// A host function's reason to trap the calling module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFault {
    /// The module passed a pointer but exports no memory named `memory`.
    NoMemoryExport,
    /// `ptr..ptr+len` is outside linear memory or the length is negative/too large.
    BadPointer { ptr: i32, len: i32 },
    /// Console output exceeded `MAX_CONSOLE_BYTES_PER_CALL`.
    ConsoleQuota,
    /// More than `MAX_LOG_RECORDS_PER_CALL` log records.
    LogQuota,
    /// A telemetry counter not listed in the manifest.
    TelemetryNotGranted(String),
    /// A name is not UTF-8.
    NameNotUtf8,
    /// A map handle past the manifest's map list.
    BadMapHandle(i32),
    /// `hook_input` index out of range.
    HookInputIndex(i32),
    /// `hook_output` index out of range.
    HookOutputIndex(i32),
}

impl ExtensionError {
    /// Builds an error for `module`.
    pub fn new(module: &str, kind: ErrorKind) -> Self {
        Self {
            module: String::from(module),
            kind,
        }
    }

    /// The fault, if this error is a run-time fault.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.kind {
            ErrorKind::Fault(f) => Some(f),
            _ => None,
        }
    }

    /// Short token naming the kind of error (no spaces), for one-line reports.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ErrorKind::TooLarge { .. } => "too-large",
            ErrorKind::Manifest(_) => "manifest",
            ErrorKind::Invalid(_) => "invalid-module",
            ErrorKind::Link { reason, .. } => match reason {
                LinkReason::NotHostModule => "link-not-host-module",
                LinkReason::UnknownHostFunction => "link-unknown-function",
                LinkReason::NotGranted => "link-not-granted",
                LinkReason::WrongSignature { .. } => "link-wrong-signature",
                LinkReason::NotAFunction => "link-not-a-function",
            },
            ErrorKind::NoSuchExport(_) => "no-such-export",
            ErrorKind::BadArguments { .. } => "bad-arguments",
            ErrorKind::TooManyHookInputs { .. } => "too-many-inputs",
            ErrorKind::Fault(f) => match f {
                Fault::OutOfFuel { .. } => "out-of-fuel",
                Fault::MemoryLimit { .. } => "memory-limit",
                Fault::TableLimit { .. } => "table-limit",
                Fault::CallDepth => "call-depth",
                Fault::Trap(_) => "trap",
                Fault::Host(_) => "host-fault",
                Fault::Engine(_) => "engine",
            },
        }
    }

    /// Extra ` key=value` pairs (with a leading space each; values with spaces are quoted).
    pub fn details(&self) -> String {
        use core::fmt::Write;
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = match &self.kind {
            ErrorKind::TooLarge { bytes } => write!(out, " bytes={bytes}"),
            ErrorKind::Manifest(e) => write!(out, " reason=\"{e}\""),
            ErrorKind::Invalid(e) => write!(out, " reason=\"{}\"", e.replace('"', "'")),
            ErrorKind::Link {
                import_module,
                import_field,
                ..
            } => write!(out, " import={import_module}.{import_field}"),
            ErrorKind::NoSuchExport(e) => write!(out, " export={e}"),
            ErrorKind::BadArguments { export, expected } => {
                write!(out, " export={export} expected=\"{expected}\"")
            }
            ErrorKind::TooManyHookInputs { given } => write!(out, " given={given}"),
            ErrorKind::Fault(f) => match f {
                Fault::OutOfFuel { budget } => write!(out, " budget={budget}"),
                Fault::MemoryLimit {
                    requested_pages,
                    limit_pages,
                } => write!(
                    out,
                    " requested_pages={requested_pages} limit_pages={limit_pages}"
                ),
                Fault::TableLimit { requested_elements } => {
                    write!(out, " requested_elements={requested_elements}")
                }
                Fault::CallDepth => Ok(()),
                Fault::Trap(t) => write!(out, " trap={t}"),
                Fault::Host(h) => write!(out, " reason=\"{h}\""),
                Fault::Engine(e) => write!(out, " reason=\"{}\"", e.replace('"', "'")),
            },
        };
        out
    }
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm module `{}`: ", self.module)?;
        match &self.kind {
            ErrorKind::TooLarge { bytes } => write!(f, "module is {bytes} bytes, too large"),
            ErrorKind::Manifest(e) => write!(f, "{e}"),
            ErrorKind::Invalid(e) => write!(f, "invalid module: {e}"),
            ErrorKind::Link {
                import_module,
                import_field,
                reason,
            } => {
                write!(f, "import `{import_module}.{import_field}` ")?;
                match reason {
                    LinkReason::NotHostModule => write!(f, "is not from module `anneal`"),
                    LinkReason::UnknownHostFunction => write!(f, "is not a host function"),
                    LinkReason::NotGranted => write!(f, "is not granted by the manifest"),
                    LinkReason::WrongSignature { expected, found } => {
                        write!(f, "has type {found}, host function has {expected}")
                    }
                    LinkReason::NotAFunction => write!(f, "is not a function"),
                }
            }
            ErrorKind::NoSuchExport(e) => write!(f, "no exported function `{e}`"),
            ErrorKind::BadArguments { export, expected } => {
                write!(f, "arguments do not fit `{export}`: {expected}")
            }
            ErrorKind::TooManyHookInputs { given } => {
                write!(f, "{given} hook input words, too many")
            }
            ErrorKind::Fault(fault) => write!(f, "{fault}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfFuel { budget } => write!(f, "ran out of fuel (budget {budget})"),
            Self::MemoryLimit {
                requested_pages,
                limit_pages,
            } => write!(
                f,
                "memory limit: asked for {requested_pages} pages, manifest allows {limit_pages}"
            ),
            Self::TableLimit { requested_elements } => {
                write!(f, "table limit: asked for {requested_elements} elements")
            }
            Self::CallDepth => write!(f, "call depth limit exceeded"),
            Self::Trap(t) => write!(f, "trap: {t}"),
            Self::Host(h) => write!(f, "host function refused: {h}"),
            Self::Engine(e) => write!(f, "engine error: {e}"),
        }
    }
}

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemoryExport => write!(f, "module exports no memory named `memory`"),
            Self::BadPointer { ptr, len } => write!(f, "bad memory range ptr={ptr} len={len}"),
            Self::ConsoleQuota => write!(f, "console output quota exceeded"),
            Self::LogQuota => write!(f, "log record quota exceeded"),
            Self::TelemetryNotGranted(n) => write!(f, "telemetry counter `{n}` not granted"),
            Self::NameNotUtf8 => write!(f, "name is not UTF-8"),
            Self::BadMapHandle(m) => write!(f, "map handle {m} not in manifest"),
            Self::HookInputIndex(i) => write!(f, "hook input index {i} out of range"),
            Self::HookOutputIndex(i) => write!(f, "hook output index {i} out of range"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_size_stays_small() {
        // Errors travel through every call path; keep them a few words (wasmi pins its own
        // error size the same way).
        let size = core::mem::size_of::<ExtensionError>();
        assert!(size <= 128, "ExtensionError grew to {size} bytes");
    }

    #[test]
    fn link_error_names_the_import() {
        let e = ExtensionError::new(
            "forbidden",
            ErrorKind::Link {
                import_module: "anneal".into(),
                import_field: "telemetry_read".into(),
                reason: LinkReason::NotGranted,
            },
        );
        assert_eq!(e.code(), "link-not-granted");
        assert_eq!(e.details(), " import=anneal.telemetry_read");
        assert_eq!(
            e.to_string(),
            "wasm module `forbidden`: import `anneal.telemetry_read` is not granted by the manifest"
        );
    }
}
