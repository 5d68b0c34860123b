//! The extension runtime: load a module, check it against its manifest, link only granted
//! host functions, and call its exports under fuel, memory, table and call-depth limits.
//!
//! Design: one wasmi [`Engine`] per [`Runtime`] (configured once: fuel metering on, eager
//! compilation so every validation error appears at load time, bounded recursion) and one
//! [`Store`] per [`Extension`], so a module's memory and globals persist across calls (a
//! policy may keep state) but never mix with another module's. Linking is done by hand
//! before wasmi sees the imports: every import is checked against the host function table
//! and the manifest, and the first offending one is reported by name. Host functions that
//! refuse their arguments record a typed [`HostFault`] in the store before trapping, so the
//! caller learns *why* instead of a string; the resource limiter records limit hits the same
//! way. Console output and log records are buffered per call and returned to the caller.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, ExternType, FuncType, Instance, Linker,
    Module, Store, Val, ValType,
};
use wasmi::{ResourceLimiter, TrapCode};
use wasmi_core::LimiterError;

use crate::error::{ErrorKind, ExtensionError, Fault, HostFault, LinkReason};
use crate::host::{host_function, HostServices, HostValueType, LogLevel, LogRecord, HOST_MODULE};
use crate::limits;
use crate::manifest::Manifest;

/// Bytes per wasm page.
const PAGE_BYTES: u64 = 65536;

/// A value passed to or returned from a wasm export.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::I32(v) => write!(f, "{v}"),
            Self::I64(v) => write!(f, "{v}"),
            Self::F32(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
        }
    }
}

/// An import of a module, for `wasm info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    /// Import module.
    pub module: String,
    /// Import field.
    pub field: String,
    /// Type, e.g. `func (i32, i32) -> ()`.
    pub ty: String,
}

/// An export of a module, for `wasm info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// Export name.
    pub name: String,
    /// Type, e.g. `func (i64) -> i64` or `memory 1..`.
    pub ty: String,
}

/// What `wasm info` shows about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Imports in module order.
    pub imports: Vec<ImportInfo>,
    /// Exports in module order.
    pub exports: Vec<ExportInfo>,
    /// The capability manifest.
    pub manifest: Manifest,
}

/// The result of a successful call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// The export's results.
    pub results: Vec<Value>,
    /// Fuel the call used.
    pub fuel_used: u64,
    /// Console output the call produced.
    pub console: Vec<u8>,
    /// Log records the call emitted.
    pub logs: Vec<LogRecord>,
    /// Hook output words (unset words are 0), trimmed to the highest index written.
    pub hook_output: Vec<i64>,
}

/// A failed call: the error plus what the call did before it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    /// The error, naming the module.
    pub error: ExtensionError,
    /// Fuel used up to the failure.
    pub fuel_used: u64,
    /// Console output produced before the failure.
    pub console: Vec<u8>,
    /// Log records emitted before the failure.
    pub logs: Vec<LogRecord>,
}

/// Resource limiter of one store: memory pages from the manifest, table elements from
/// limits.rs; a refused growth is recorded so it is reported as the module's fault.
#[derive(Debug)]
struct Limiter {
    memory_limit_pages: u32,
    denied: Option<Fault>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let limit_bytes = u64::from(self.memory_limit_pages) * PAGE_BYTES;
        if desired as u64 > limit_bytes {
            self.denied = Some(Fault::MemoryLimit {
                requested_pages: (desired as u64).div_ceil(PAGE_BYTES),
                limit_pages: self.memory_limit_pages,
            });
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired as u64 > u64::from(limits::MAX_TABLE_ELEMENTS) {
            self.denied = Some(Fault::TableLimit {
                requested_elements: desired as u64,
            });
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Per-store host state: the kernel's services, the manifest and the per-call buffers.
struct HostState<S> {
    services: S,
    manifest: Manifest,
    limiter: Limiter,
    console: Vec<u8>,
    logs: Vec<LogRecord>,
    hook_input: Vec<i64>,
    hook_output: Vec<i64>,
    hook_output_len: usize,
    host_fault: Option<HostFault>,
}

/// The engine all extensions of one kernel share.
pub struct Runtime {
    engine: Engine,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// Creates the engine: fuel on, eager compilation, bounded call depth.
    pub fn new() -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .set_max_recursion_depth(limits::MAX_CALL_DEPTH)
            .ignore_custom_sections(true);
        Self {
            engine: Engine::new(&config),
        }
    }

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<(Module, Manifest), ExtensionError> {
        let err = |kind| ExtensionError::new(name, kind);
        if bytes.len() > limits::MAX_MODULE_BYTES {
            return Err(err(ErrorKind::TooLarge { bytes: bytes.len() }));
        }
        let manifest = Manifest::from_module(bytes).map_err(|e| err(ErrorKind::Manifest(e)))?;
        let module =
            Module::new(&self.engine, bytes).map_err(|e| err(ErrorKind::Invalid(e.to_string())))?;
        Ok((module, manifest))
    }

    /// Decodes and validates a module and reads its manifest, without linking: what
    /// `wasm info` shows, also for modules that would not link.
    pub fn inspect(&self, name: &str, bytes: &[u8]) -> Result<ModuleInfo, ExtensionError> {
        let (module, manifest) = self.compile(name, bytes)?;
        Ok(module_info(&module, manifest))
    }

    /// Loads, links and instantiates a module. Fails with a typed error naming the module
    /// (and, for link errors, the import).
    pub fn load<S: HostServices + 'static>(
        &self,
        name: &str,
        bytes: &[u8],
        services: S,
    ) -> Result<Extension<S>, ExtensionError> {
        let (module, manifest) = self.compile(name, bytes)?;
        let info = module_info(&module, manifest.clone());
        let mut linker = Linker::<HostState<S>>::new(&self.engine);
        for import in module.imports() {
            let link_err = |reason| {
                ExtensionError::new(
                    name,
                    ErrorKind::Link {
                        import_module: import.module().to_string(),
                        import_field: import.name().to_string(),
                        reason,
                    },
                )
            };
            let ExternType::Func(ty) = import.ty() else {
                return Err(link_err(LinkReason::NotAFunction));
            };
            if import.module() != HOST_MODULE {
                return Err(link_err(LinkReason::NotHostModule));
            }
            let Some(host) = host_function(import.name()) else {
                return Err(link_err(LinkReason::UnknownHostFunction));
            };
            if !manifest.grants(host.name) {
                return Err(link_err(LinkReason::NotGranted));
            }
            let matches =
                same_types(ty.params(), host.params) && same_types(ty.results(), host.results);
            if !matches {
                return Err(link_err(LinkReason::WrongSignature {
                    expected: host_signature(host.params, host.results),
                    found: func_signature(ty),
                }));
            }
            define_host_function(&mut linker, host.name)
                .map_err(|e| ExtensionError::new(name, ErrorKind::Invalid(e)))?;
        }
        let state = HostState {
            services,
            limiter: Limiter {
                memory_limit_pages: manifest.memory_pages,
                denied: None,
            },
            manifest,
            console: Vec::new(),
            logs: Vec::new(),
            hook_input: Vec::new(),
            hook_output: vec![0; limits::MAX_HOOK_OUTPUTS],
            hook_output_len: 0,
            host_fault: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Instantiation (data segments, a start function) runs under the same budget as a
        // call: a start function is just another entry into the module.
        let instantiation_fuel = store.data().manifest.fuel_per_call;
        store
            .set_fuel(instantiation_fuel)
            .map_err(|e| ExtensionError::new(name, ErrorKind::Invalid(e.to_string())))?;
        let instance = match linker.instantiate_and_start(&mut store, &module) {
            Ok(instance) => instance,
            Err(e) => {
                let fault = classify(e, store.data_mut(), instantiation_fuel);
                return Err(ExtensionError::new(name, ErrorKind::Fault(fault)));
            }
        };
        Ok(Extension {
            name: String::from(name),
            info,
            store,
            instance,
        })
    }
}

fn same_types(wasm: &[ValType], host: &[HostValueType]) -> bool {
    wasm.len() == host.len()
        && wasm.iter().zip(host).all(|(w, h)| {
            matches!(
                (w, h),
                (ValType::I32, HostValueType::I32) | (ValType::I64, HostValueType::I64)
            )
        })
}

fn val_type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::FuncRef => "funcref",
        ValType::ExternRef => "externref",
    }
}

fn join<T>(items: &[T], name: impl Fn(&T) -> String) -> String {
    items.iter().map(name).collect::<Vec<_>>().join(", ")
}

fn func_signature(ty: &FuncType) -> String {
    format!(
        "({}) -> ({})",
        join(ty.params(), |t| val_type_name(t).into()),
        join(ty.results(), |t| val_type_name(t).into())
    )
}

fn host_signature(params: &[HostValueType], results: &[HostValueType]) -> String {
    format!(
        "({}) -> ({})",
        join(params, |t| t.to_string()),
        join(results, |t| t.to_string())
    )
}

fn extern_type_text(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => format!("func {}", func_signature(f)),
        ExternType::Memory(m) => match m.maximum() {
            Some(max) => format!("memory {}..{}", m.minimum(), max),
            None => format!("memory {}..", m.minimum()),
        },
        ExternType::Table(t) => format!("table {}", t.minimum()),
        ExternType::Global(g) => format!("global {}", val_type_name(&g.content())),
    }
}

fn module_info(module: &Module, manifest: Manifest) -> ModuleInfo {
    ModuleInfo {
        imports: module
            .imports()
            .map(|i| ImportInfo {
                module: i.module().to_string(),
                field: i.name().to_string(),
                ty: extern_type_text(i.ty()),
            })
            .collect(),
        exports: module
            .exports()
            .map(|e| ExportInfo {
                name: e.name().to_string(),
                ty: extern_type_text(e.ty()),
            })
            .collect(),
        manifest,
    }
}

/// Short name of a wasm trap, as printed in `trap=` fields.
pub fn trap_name(code: TrapCode) -> &'static str {
    match code {
        TrapCode::UnreachableCodeReached => "unreachable",
        TrapCode::MemoryOutOfBounds => "memory-out-of-bounds",
        TrapCode::TableOutOfBounds => "table-out-of-bounds",
        TrapCode::IndirectCallToNull => "indirect-call-to-null",
        TrapCode::IntegerDivisionByZero => "integer-division-by-zero",
        TrapCode::IntegerOverflow => "integer-overflow",
        TrapCode::BadConversionToInteger => "bad-conversion-to-integer",
        TrapCode::StackOverflow => "stack-overflow",
        TrapCode::BadSignature => "bad-signature",
        TrapCode::OutOfFuel => "out-of-fuel",
        TrapCode::GrowthOperationLimited => "growth-limited",
        TrapCode::OutOfSystemMemory => "out-of-system-memory",
    }
}

/// Turns an engine error into the module's fault, preferring the typed reason a host
/// function or the limiter recorded.
fn classify<S>(error: wasmi::Error, state: &mut HostState<S>, budget: u64) -> Fault {
    if let Some(host) = state.host_fault.take() {
        return Fault::Host(host);
    }
    if let Some(denied) = state.limiter.denied.take() {
        return denied;
    }
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => Fault::OutOfFuel { budget },
        Some(TrapCode::StackOverflow) => Fault::CallDepth,
        Some(code) => Fault::Trap(trap_name(code)),
        None => Fault::Engine(error.to_string()),
    }
}

type HostResult<T> = Result<T, wasmi::Error>;

/// Records `fault` in the store and returns the trap that unwinds the module.
fn refuse<S, T>(caller: &mut Caller<'_, HostState<S>>, fault: HostFault) -> HostResult<T> {
    let message = fault.to_string();
    caller.data_mut().host_fault = Some(fault);
    Err(wasmi::Error::new(message))
}

/// Reads `memory[ptr..ptr+len]` (at most `max` bytes) from the caller's `memory` export.
fn read_bytes<S>(
    caller: &mut Caller<'_, HostState<S>>,
    ptr: i32,
    len: i32,
    max: usize,
) -> HostResult<Vec<u8>> {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return refuse(caller, HostFault::NoMemoryExport);
    };
    if ptr < 0 || len < 0 || len as usize > max {
        return refuse(caller, HostFault::BadPointer { ptr, len });
    }
    let mut buffer = vec![0u8; len as usize];
    if memory.read(&*caller, ptr as usize, &mut buffer).is_err() {
        return refuse(caller, HostFault::BadPointer { ptr, len });
    }
    Ok(buffer)
}

fn write_bytes<S>(caller: &mut Caller<'_, HostState<S>>, ptr: i32, bytes: &[u8]) -> HostResult<()> {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return refuse(caller, HostFault::NoMemoryExport);
    };
    let len = bytes.len() as i32;
    if ptr < 0 || memory.write(&mut *caller, ptr as usize, bytes).is_err() {
        return refuse(caller, HostFault::BadPointer { ptr, len });
    }
    Ok(())
}

fn read_name<S>(caller: &mut Caller<'_, HostState<S>>, ptr: i32, len: i32) -> HostResult<String> {
    let bytes = read_bytes(caller, ptr, len, limits::MAX_NAME_BYTES)?;
    match String::from_utf8(bytes) {
        Ok(name) => Ok(name),
        Err(_) => refuse(caller, HostFault::NameNotUtf8),
    }
}

fn map_name<S>(caller: &mut Caller<'_, HostState<S>>, map: i32) -> HostResult<String> {
    let name = usize::try_from(map)
        .ok()
        .and_then(|i| caller.data().manifest.maps.get(i).cloned());
    match name {
        Some(name) => Ok(name),
        None => refuse(caller, HostFault::BadMapHandle(map)),
    }
}

/// Adds host function `name` to the linker. Only called for granted functions.
fn define_host_function<S: HostServices + 'static>(
    linker: &mut Linker<HostState<S>>,
    name: &str,
) -> Result<(), String> {
    type C<'a, S> = Caller<'a, HostState<S>>;
    let result = match name {
        "console_write" => {
            linker.func_wrap(HOST_MODULE, name, |mut c: C<'_, S>, ptr: i32, len: i32| {
                let room =
                    limits::MAX_CONSOLE_BYTES_PER_CALL.saturating_sub(c.data().console.len());
                if len > 0 && len as usize > room {
                    return refuse(&mut c, HostFault::ConsoleQuota);
                }
                let bytes = read_bytes(&mut c, ptr, len, limits::MAX_CONSOLE_BYTES_PER_CALL)?;
                c.data_mut().console.extend_from_slice(&bytes);
                Ok(())
            })
        }
        "log" => linker.func_wrap(
            HOST_MODULE,
            name,
            |mut c: C<'_, S>, level: i32, ptr: i32, len: i32| {
                if c.data().logs.len() >= limits::MAX_LOG_RECORDS_PER_CALL {
                    return refuse(&mut c, HostFault::LogQuota);
                }
                let bytes = read_bytes(&mut c, ptr, len, limits::MAX_LOG_MESSAGE_BYTES)?;
                let message = String::from_utf8_lossy(&bytes).into_owned();
                c.data_mut().logs.push(LogRecord {
                    level: LogLevel::from_wasm(level),
                    message,
                });
                Ok(())
            },
        ),
        "telemetry_read" => {
            linker.func_wrap(HOST_MODULE, name, |mut c: C<'_, S>, ptr: i32, len: i32| {
                let counter = read_name(&mut c, ptr, len)?;
                if !c.data().manifest.telemetry.contains(&counter) {
                    return refuse(&mut c, HostFault::TelemetryNotGranted(counter));
                }
                Ok(match c.data().services.read_counter(&counter) {
                    Some(v) => v as i64,
                    None => -1,
                })
            })
        }
        "map_lookup" => linker.func_wrap(
            HOST_MODULE,
            name,
            |mut c: C<'_, S>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> HostResult<i32> {
                let map = map_name(&mut c, map)?;
                let key = read_bytes(&mut c, kp, kl, limits::MAX_MAP_ENTRY_BYTES)?;
                if vl < 0 || vl as usize > limits::MAX_MAP_ENTRY_BYTES {
                    return refuse(&mut c, HostFault::BadPointer { ptr: vp, len: vl });
                }
                let mut value = vec![0u8; vl as usize];
                match c.data_mut().services.map_lookup(&map, &key, &mut value) {
                    Some(full) => {
                        let copied = full.min(value.len());
                        write_bytes(&mut c, vp, &value[..copied])?;
                        Ok(i32::try_from(full).unwrap_or(i32::MAX))
                    }
                    None => Ok(-1),
                }
            },
        ),
        "map_update" => linker.func_wrap(
            HOST_MODULE,
            name,
            |mut c: C<'_, S>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> HostResult<i32> {
                let map = map_name(&mut c, map)?;
                let key = read_bytes(&mut c, kp, kl, limits::MAX_MAP_ENTRY_BYTES)?;
                let value = read_bytes(&mut c, vp, vl, limits::MAX_MAP_ENTRY_BYTES)?;
                Ok(match c.data_mut().services.map_update(&map, &key, &value) {
                    Ok(()) => 0,
                    Err(_) => -1,
                })
            },
        ),
        "hook_input_len" => linker.func_wrap(HOST_MODULE, name, |c: C<'_, S>| -> i32 {
            c.data().hook_input.len() as i32
        }),
        "hook_input" => linker.func_wrap(HOST_MODULE, name, |mut c: C<'_, S>, index: i32| {
            let value = usize::try_from(index)
                .ok()
                .and_then(|i| c.data().hook_input.get(i).copied());
            match value {
                Some(v) => Ok(v),
                None => refuse(&mut c, HostFault::HookInputIndex(index)),
            }
        }),
        "hook_output" => linker.func_wrap(
            HOST_MODULE,
            name,
            |mut c: C<'_, S>, index: i32, value: i64| {
                let Some(i) = usize::try_from(index)
                    .ok()
                    .filter(|&i| i < limits::MAX_HOOK_OUTPUTS)
                else {
                    return refuse(&mut c, HostFault::HookOutputIndex(index));
                };
                let state = c.data_mut();
                state.hook_output[i] = value;
                state.hook_output_len = state.hook_output_len.max(i + 1);
                Ok(())
            },
        ),
        other => return Err(format!("no host function `{other}`")),
    };
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// A loaded, linked, instantiated module with its own store.
pub struct Extension<S: HostServices + 'static> {
    name: String,
    info: ModuleInfo,
    store: Store<HostState<S>>,
    instance: Instance,
}

impl<S: HostServices + 'static> Extension<S> {
    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Imports, exports and manifest.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.info.manifest
    }

    /// The kernel services this module reaches (read access, e.g. for tests).
    pub fn services(&self) -> &S {
        &self.store.data().services
    }

    /// Mutable access to the services (e.g. to update counters between calls).
    pub fn services_mut(&mut self) -> &mut S {
        &mut self.store.data_mut().services
    }

    /// Parameter and result types of export `export`, if it is a function.
    pub fn export_signature(&self, export: &str) -> Option<(Vec<ValueType>, Vec<ValueType>)> {
        let func = self.instance.get_func(&self.store, export)?;
        let ty = func.ty(&self.store);
        let conv = |ts: &[ValType]| ts.iter().map(ValueType::from_wasmi).collect();
        Some((conv(ty.params()), conv(ty.results())))
    }

    /// Calls export `export` with `args`, with the hook context's input words `hook_input`,
    /// under the manifest's fuel budget. Any trap, fuel exhaustion or limit hit comes back
    /// as a [`CallFailure`] naming this module.
    // A failure carries the output produced before it by value; it is the cold path, and
    // boxing it would only move the allocation.
    #[allow(clippy::result_large_err)]
    pub fn call(
        &mut self,
        export: &str,
        args: &[Value],
        hook_input: &[i64],
    ) -> Result<CallOutcome, CallFailure> {
        self.call_with_fuel(export, args, hook_input, self.info.manifest.fuel_per_call)
    }

    /// Like [`Extension::call`] with an explicit fuel budget (clamped to
    /// `MAX_FUEL_PER_CALL`); used by benchmarks to sweep fuel settings.
    #[allow(clippy::result_large_err)]
    pub fn call_with_fuel(
        &mut self,
        export: &str,
        args: &[Value],
        hook_input: &[i64],
        fuel: u64,
    ) -> Result<CallOutcome, CallFailure> {
        let budget = fuel.min(limits::MAX_FUEL_PER_CALL);
        let fail = |error: ErrorKind, name: &str| CallFailure {
            error: ExtensionError::new(name, error),
            fuel_used: 0,
            console: Vec::new(),
            logs: Vec::new(),
        };
        if hook_input.len() > limits::MAX_HOOK_INPUTS {
            return Err(fail(
                ErrorKind::TooManyHookInputs {
                    given: hook_input.len(),
                },
                &self.name,
            ));
        }
        let Some(func) = self.instance.get_func(&self.store, export) else {
            return Err(fail(ErrorKind::NoSuchExport(export.into()), &self.name));
        };
        let ty = func.ty(&self.store);
        let params: Option<Vec<Val>> = if ty.params().len() == args.len() {
            ty.params()
                .iter()
                .zip(args)
                .map(|(t, a)| match (t, a) {
                    (ValType::I32, Value::I32(v)) => Some(Val::I32(*v)),
                    (ValType::I64, Value::I64(v)) => Some(Val::I64(*v)),
                    (ValType::F32, Value::F32(v)) => Some(Val::F32((*v).into())),
                    (ValType::F64, Value::F64(v)) => Some(Val::F64((*v).into())),
                    _ => None,
                })
                .collect()
        } else {
            None
        };
        let Some(params) = params else {
            return Err(fail(
                ErrorKind::BadArguments {
                    export: export.into(),
                    expected: func_signature(&ty),
                },
                &self.name,
            ));
        };
        let mut results: Vec<Val> = ty
            .results()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        {
            let state = self.store.data_mut();
            state.console.clear();
            state.logs.clear();
            state.hook_input.clear();
            state.hook_input.extend_from_slice(hook_input);
            state.hook_output.iter_mut().for_each(|w| *w = 0);
            state.hook_output_len = 0;
            state.host_fault = None;
            state.limiter.denied = None;
        }
        if let Err(e) = self.store.set_fuel(budget) {
            return Err(fail(
                ErrorKind::Fault(Fault::Engine(e.to_string())),
                &self.name,
            ));
        }
        let outcome = func.call(&mut self.store, &params, &mut results);
        let remaining = self.store.get_fuel().unwrap_or(0);
        let fuel_used = budget.saturating_sub(remaining);
        let state = self.store.data_mut();
        let console = core::mem::take(&mut state.console);
        let logs = core::mem::take(&mut state.logs);
        match outcome {
            Ok(()) => Ok(CallOutcome {
                results: results.iter().filter_map(value_from_wasmi).collect(),
                fuel_used,
                console,
                logs,
                hook_output: state.hook_output[..state.hook_output_len].to_vec(),
            }),
            Err(e) => {
                let fault = classify(e, state, budget);
                // wasmi charges fuel per basic block up front: it stops when the next block
                // costs more than what is left, so a few units may remain unspent. Those
                // cannot be used by anything; report the budget as spent.
                let fuel_used = if matches!(fault, Fault::OutOfFuel { .. }) {
                    budget
                } else {
                    fuel_used
                };
                Err(CallFailure {
                    error: ExtensionError::new(&self.name, ErrorKind::Fault(fault)),
                    fuel_used,
                    console,
                    logs,
                })
            }
        }
    }
}

fn value_from_wasmi(v: &Val) -> Option<Value> {
    match v {
        Val::I32(x) => Some(Value::I32(*x)),
        Val::I64(x) => Some(Value::I64(*x)),
        Val::F32(x) => Some(Value::F32((*x).into())),
        Val::F64(x) => Some(Value::F64((*x).into())),
        _ => None,
    }
}

/// Value types an export may take or return (as far as the console cares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// A reference or vector type: exports taking these cannot be called from the console.
    Other,
}

impl ValueType {
    fn from_wasmi(t: &ValType) -> Self {
        match t {
            ValType::I32 => Self::I32,
            ValType::I64 => Self::I64,
            ValType::F32 => Self::F32,
            ValType::F64 => Self::F64,
            _ => Self::Other,
        }
    }
}
