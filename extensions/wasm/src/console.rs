//! `wasm list|run|info` as a portable function: the kernel's shell passes the words after
//! `wasm` and prints the returned lines; host tests drive the same code.
//!
//! Output formats (stable: QEMU tests match on them):
//!
//! ```text
//! wasm list
//!   name=hello bytes=312 hook=- fuel=10000 memory_pages=1 grants=console_write
//!   name=broken bytes=9 error=manifest reason="..."
//! wasm run NAME [args]
//!   <the module's console output, line by line>
//!   [wasm] module=NAME log=info message="..."        (one per log record)
//!   [wasm] module=NAME result=V fuel_used=N [hook_output=a,b]
//!   [wasm] module=NAME error=CODE [details] fuel_used=N      (on any failure)
//! wasm compile NAME [--grant FN]... WAT      (WAT = rest of the line, in-kernel compiler)
//!   [wasm] module=NAME compiled bytes=N
//!   [wasm] module=NAME error=wat line=L column=C reason="..."
//! wasm info NAME
//!   module=NAME bytes=N
//!   manifest hook=H fuel=F memory_pages=P
//!   grant G / telemetry T / map M                      (one line each)
//!   import MODULE.FIELD TYPE / export NAME TYPE         (one line each)
//! ```
//!
//! `wasm run` calls the export `run`. If `run` takes parameters, the arguments are its
//! parameters (parsed by type); otherwise they become the hook context's input words, so a
//! hook policy can be tried from the console with the inputs its hook would pass.
//! Modules are instantiated on first `run` and kept, so a module's state persists between
//! runs; a module that faults stays loaded (the extension runtime decides about rollback).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::bundle::{self, BundleError};
use crate::error::{ErrorKind, ExtensionError};
use crate::host::{HostServices, LogLevel};
use crate::limits;
use crate::manifest::{with_manifest, Manifest};
use crate::runtime::{CallFailure, Extension, Runtime, Value, ValueType};
use crate::wat::{self, WatError};

/// Name of the export `wasm run` calls.
pub const RUN_EXPORT: &str = "run";

struct ShellModule<S: HostServices + 'static> {
    name: String,
    bytes: Vec<u8>,
    loaded: Option<Extension<S>>,
}

/// The set of modules the console knows, with their instances.
pub struct WasmShell<S: HostServices + 'static> {
    runtime: Runtime,
    services: S,
    modules: Vec<ShellModule<S>>,
}

/// Why a WAT text could not be added as a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddWatError {
    /// The compiler rejected the text.
    Compile(WatError),
    /// The compiled module's framing was rejected (cannot happen for compiler output, but
    /// reported rather than assumed).
    Manifest(crate::manifest::ManifestError),
}

impl<S: HostServices + Clone + 'static> WasmShell<S> {
    /// An empty shell; each module gets a clone of `services`.
    pub fn new(services: S) -> Self {
        Self {
            runtime: Runtime::new(),
            services,
            modules: Vec::new(),
        }
    }

    /// A shell holding every module of a bundle.
    pub fn from_bundle(bundle_bytes: &[u8], services: S) -> Result<Self, BundleError> {
        let mut shell = Self::new(services);
        for entry in bundle::parse(bundle_bytes)? {
            shell.add_module(entry.name, entry.module.to_vec());
        }
        Ok(shell)
    }

    /// Adds (or replaces) a module by name; it is instantiated on first use.
    pub fn add_module(&mut self, name: &str, bytes: Vec<u8>) {
        self.modules.retain(|m| m.name != name);
        self.modules.push(ShellModule {
            name: String::from(name),
            bytes,
            loaded: None,
        });
    }

    /// Compiles WAT text with the in-kernel compiler, attaches `manifest`, and adds it.
    pub fn add_wat(
        &mut self,
        name: &str,
        source: &str,
        manifest: &Manifest,
    ) -> Result<(), AddWatError> {
        let module = wat::compile(source).map_err(AddWatError::Compile)?;
        let module = with_manifest(&module, manifest).map_err(AddWatError::Manifest)?;
        self.add_module(name, module);
        Ok(())
    }

    /// Names of the modules, in the order added.
    pub fn names(&self) -> Vec<&str> {
        self.modules.iter().map(|m| m.name.as_str()).collect()
    }

    /// Runs one console command line (`wasm ...` or just the words after `wasm`) and
    /// returns the lines to print.
    pub fn command_line(&mut self, line: &str) -> Vec<String> {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"wasm") {
            words.remove(0);
        }
        self.command(&words)
    }

    /// Runs `wasm <args>`; returns the lines to print.
    pub fn command(&mut self, args: &[&str]) -> Vec<String> {
        match args {
            ["list"] => self.list(),
            ["info", name] => self.info(name),
            ["run", name, rest @ ..] => self.run(name, rest),
            ["compile", name, rest @ ..] if !rest.is_empty() => self.compile(name, rest),
            _ => alloc::vec![String::from(
                "usage: wasm list | wasm run NAME [args] | wasm info NAME | \
                 wasm compile NAME [--grant FN]... WAT"
            )],
        }
    }

    /// `wasm compile NAME [--grant FN]... WAT...`: compiles the WAT text (the rest of the
    /// line) with the in-kernel compiler and adds it under NAME with a default manifest
    /// granting the listed host functions.
    fn compile(&mut self, name: &str, args: &[&str]) -> Vec<String> {
        let mut manifest = Manifest::default();
        let mut rest = args;
        while let ["--grant", function, tail @ ..] = rest {
            if crate::host::host_function(function).is_none() {
                return alloc::vec![format!(
                    "[wasm] module={name} error=manifest reason=\"`{function}` is not a host function\""
                )];
            }
            if !manifest.grants(function) {
                manifest.grants.push(String::from(*function));
            }
            rest = tail;
        }
        let source = rest.join(" ");
        match self.add_wat(name, &source, &manifest) {
            Ok(()) => {
                let bytes = self
                    .modules
                    .iter()
                    .find(|m| m.name == name)
                    .map_or(0, |m| m.bytes.len());
                alloc::vec![format!("[wasm] module={name} compiled bytes={bytes}")]
            }
            Err(AddWatError::Compile(e)) => alloc::vec![format!(
                "[wasm] module={name} error=wat line={} column={} reason=\"{}\"",
                e.line,
                e.column,
                e.kind.to_string().replace('"', "'")
            )],
            Err(AddWatError::Manifest(e)) => {
                alloc::vec![format!(
                    "[wasm] module={name} error=manifest reason=\"{e}\""
                )]
            }
        }
    }

    fn list(&self) -> Vec<String> {
        if self.modules.is_empty() {
            return alloc::vec![String::from("no wasm modules")];
        }
        self.modules
            .iter()
            .map(|m| match Manifest::from_module(&m.bytes) {
                Ok(manifest) => format!(
                    "name={} bytes={} hook={} fuel={} memory_pages={} grants={}",
                    m.name,
                    m.bytes.len(),
                    manifest.hook.as_deref().unwrap_or("-"),
                    manifest.fuel_per_call,
                    manifest.memory_pages,
                    if manifest.grants.is_empty() {
                        String::from("-")
                    } else {
                        manifest.grants.join(",")
                    }
                ),
                Err(e) => format!(
                    "name={} bytes={} error=manifest reason=\"{e}\"",
                    m.name,
                    m.bytes.len()
                ),
            })
            .collect()
    }

    fn info(&self, name: &str) -> Vec<String> {
        let Some(m) = self.modules.iter().find(|m| m.name == name) else {
            return alloc::vec![format!(
                "[wasm] module={name} error=no-such-module fuel_used=0"
            )];
        };
        let info = match self.runtime.inspect(name, &m.bytes) {
            Ok(info) => info,
            Err(e) => return alloc::vec![error_line(&e, 0)],
        };
        let mf = &info.manifest;
        let mut lines = alloc::vec![
            format!("module={name} bytes={}", m.bytes.len()),
            format!(
                "manifest hook={} fuel={} memory_pages={}",
                mf.hook.as_deref().unwrap_or("-"),
                mf.fuel_per_call,
                mf.memory_pages
            ),
        ];
        lines.extend(mf.grants.iter().map(|g| format!("grant {g}")));
        lines.extend(mf.telemetry.iter().map(|t| format!("telemetry {t}")));
        lines.extend(mf.maps.iter().map(|t| format!("map {t}")));
        lines.extend(
            info.imports
                .iter()
                .map(|i| format!("import {}.{} {}", i.module, i.field, i.ty)),
        );
        lines.extend(
            info.exports
                .iter()
                .map(|e| format!("export {} {}", e.name, e.ty)),
        );
        lines
    }

    fn run(&mut self, name: &str, args: &[&str]) -> Vec<String> {
        let Some(index) = self.modules.iter().position(|m| m.name == name) else {
            return alloc::vec![format!(
                "[wasm] module={name} error=no-such-module fuel_used=0"
            )];
        };
        if args.len() > limits::MAX_RUN_ARGS {
            let e = ExtensionError::new(name, ErrorKind::TooManyHookInputs { given: args.len() });
            return alloc::vec![error_line(&e, 0)];
        }
        let services = self.services.clone();
        let module = &mut self.modules[index];
        if module.loaded.is_none() {
            match self.runtime.load(name, &module.bytes, services) {
                Ok(ext) => module.loaded = Some(ext),
                Err(e) => return alloc::vec![error_line(&e, 0)],
            }
        }
        let Some(ext) = module.loaded.as_mut() else {
            return Vec::new();
        };
        let Some((params, _)) = ext.export_signature(RUN_EXPORT) else {
            let e = ExtensionError::new(name, ErrorKind::NoSuchExport(RUN_EXPORT.into()));
            return alloc::vec![error_line(&e, 0)];
        };
        let bad_args = || {
            let expected = params
                .iter()
                .map(|p| format!("{p:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            let e = ExtensionError::new(
                name,
                ErrorKind::BadArguments {
                    export: RUN_EXPORT.into(),
                    expected: if params.is_empty() {
                        String::from("integers (hook input words)")
                    } else {
                        expected
                    },
                },
            );
            alloc::vec![error_line(&e, 0)]
        };
        let (call_args, hook_input) = if params.is_empty() {
            let words: Option<Vec<i64>> = args.iter().map(|a| parse_i64(a)).collect();
            match words {
                Some(w) => (Vec::new(), w),
                None => return bad_args(),
            }
        } else {
            if params.len() != args.len() {
                return bad_args();
            }
            let values: Option<Vec<Value>> = params
                .iter()
                .zip(args)
                .map(|(t, a)| match t {
                    ValueType::I32 => parse_i64(a)
                        .and_then(|v| {
                            i32::try_from(v)
                                .ok()
                                .or(u32::try_from(v).ok().map(|u| u as i32))
                        })
                        .map(Value::I32),
                    ValueType::I64 => parse_i64(a).map(Value::I64),
                    ValueType::F32 => a.parse::<f32>().ok().map(Value::F32),
                    ValueType::F64 => a.parse::<f64>().ok().map(Value::F64),
                    ValueType::Other => None,
                })
                .collect();
            match values {
                Some(v) => (v, Vec::new()),
                None => return bad_args(),
            }
        };
        let mut lines = Vec::new();
        match ext.call(RUN_EXPORT, &call_args, &hook_input) {
            Ok(out) => {
                push_console(&mut lines, &out.console);
                push_logs(&mut lines, name, &out.logs);
                let result = out
                    .results
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let mut line = format!(
                    "[wasm] module={name} result={} fuel_used={}",
                    if result.is_empty() { "-" } else { &result },
                    out.fuel_used
                );
                if !out.hook_output.is_empty() {
                    let words: Vec<String> = out.hook_output.iter().map(i64::to_string).collect();
                    line.push_str(&format!(" hook_output={}", words.join(",")));
                }
                lines.push(line);
            }
            Err(CallFailure {
                error,
                fuel_used,
                console,
                logs,
            }) => {
                push_console(&mut lines, &console);
                push_logs(&mut lines, name, &logs);
                lines.push(error_line(&error, fuel_used));
            }
        }
        lines
    }
}

fn parse_i64(text: &str) -> Option<i64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as i64),
        None => text.parse::<i64>().ok(),
    }
}

fn push_console(lines: &mut Vec<String>, console: &[u8]) {
    if console.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(console);
    lines.extend(text.trim_end_matches('\n').split('\n').map(String::from));
}

fn push_logs(lines: &mut Vec<String>, name: &str, logs: &[crate::host::LogRecord]) {
    for record in logs {
        let level = match record.level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        };
        lines.push(format!(
            "[wasm] module={name} log={level} message=\"{}\"",
            record.message.replace('"', "'").replace('\n', " ")
        ));
    }
}

/// The one-line failure report: `[wasm] module=NAME error=CODE [details] fuel_used=N`.
pub fn error_line(error: &ExtensionError, fuel_used: u64) -> String {
    format!(
        "[wasm] module={} error={}{} fuel_used={fuel_used}",
        error.module,
        error.code(),
        error.details()
    )
}
