//! `wasm ...` console commands: the wasmi host of the `wasm` crate running on the target.
//!
//! - `wasm list | run NAME [args] | info NAME`: the portable `wasm::WasmShell` (formats in
//!   extensions/wasm/README.md); the kernel only prints its lines.
//! - `wasm compile NAME WAT...`: compiles one line of WAT with the in-kernel WAT-subset
//!   compiler, attaches a default manifest (console and log granted), and adds the module.
//! - `wasm selftest`: compiles every library module in-kernel, checks the four named
//!   behaviours (hello prints, spin ends by fuel, grow hits its memory limit, forbidden fails
//!   to link naming the import), runs the `sched.slice` policy against its contract vectors,
//!   and checks the eBPF map round trip; `wasm selftest: N passed, N failed`.
//! - `wasm bench`: call overhead (empty export, one host call, loops per fuel budget).
//! - `wasm counters`: the telemetry counters modules may read.
//!
//! How the library reaches the kernel: the WAT sources and manifests of
//! `extensions/wasm/modules/` are embedded in the image (`include_str!`) and compiled by the
//! kernel's own WAT-subset compiler the first time a `wasm` command runs. Why not a bundle made
//! at build time: the in-kernel compiler's output is byte-identical to the `wat` crate's for
//! every library module (the `wasm` crate's tests check exactly that), so a build-time step
//! would add a host build dependency (wasmi built twice, a build script on the Debian fallback
//! route) for the same bytes; compiling at boot instead proves on every boot that the WAT
//! subset compiles in-kernel, and costs milliseconds. The bundle format (`wasm::bundle`) stays
//! the way to hand the kernel prebuilt modules later (initrd).
//!
//! Host functions the kernel implements ([`KernelServices`]): `telemetry_read` over
//! [`super::telemetry`], `map_lookup`/`map_update` over the eBPF maps of
//! [`super::shared_maps`]. Console output and log records come back from each call and are
//! printed here, never from inside the module's call.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use ::wasm::host::{HostServices, MapError};
use ::wasm::manifest::{with_manifest, Manifest};
use ::wasm::{Runtime, Value, WasmShell};
use spin::Mutex;

use super::limits::{WASM_BENCH_CALLS, WASM_BENCH_LOOPS};
use super::telemetry::{self, WASM_CALLS};
use super::{now_ns, shared_map};
use crate::arch::aarch64::cpu;
use crate::println;

/// One library module as embedded in the image: name, WAT source, manifest text.
pub struct LibraryModule {
    /// Module name (`wasm run NAME`).
    pub name: &'static str,
    /// WAT source (the documented subset).
    pub source: &'static str,
    /// Manifest text (`anneal-manifest 1` ...).
    pub manifest: &'static str,
}

macro_rules! library_module {
    ($name:literal) => {
        LibraryModule {
            name: $name,
            source: include_str!(concat!("../../../extensions/wasm/modules/", $name, ".wat")),
            manifest: include_str!(concat!(
                "../../../extensions/wasm/modules/",
                $name,
                ".manifest"
            )),
        }
    };
}

/// The library modules of extensions/wasm/modules, in `wasm list` order.
pub static LIBRARY: &[LibraryModule] = &[
    library_module!("hello"),
    library_module!("spin"),
    library_module!("grow"),
    library_module!("forbidden"),
    library_module!("sched_slice"),
    library_module!("roundtrip"),
];

/// Contract vectors of the `sched.slice` policy (`runnable priority used_us prev_us -> slice`).
const SCHED_SLICE_CONTRACT: &str =
    include_str!("../../../extensions/wasm/modules/sched_slice.contract");

/// The kernel side of the host functions: telemetry and the maps shared with eBPF.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelServices;

impl HostServices for KernelServices {
    fn read_counter(&self, name: &str) -> Option<u64> {
        telemetry::read(name)
    }

    fn map_lookup(&mut self, map: &str, key: &[u8], value: &mut [u8]) -> Option<usize> {
        let map = shared_map(map)?;
        if key.len() != map.def().key_size as usize {
            return None;
        }
        let stored = map.lookup(key, cpu::core_index())?;
        let copied = stored.len().min(value.len());
        value[..copied].copy_from_slice(&stored[..copied]);
        Some(stored.len())
    }

    fn map_update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        let map = shared_map(map).ok_or(MapError::NoSuchMap)?;
        let def = map.def();
        if key.len() != def.key_size as usize || value.len() != def.value_size as usize {
            return Err(MapError::WrongSize);
        }
        map.update(
            key,
            value,
            ::ebpf::maps::update_flags::ANY,
            cpu::core_index(),
        )
        .map_err(|error| match error {
            ::ebpf::maps::MapError::WrongSize { .. } => MapError::WrongSize,
            // Full hash, or an array index past the end: the map has no room for that key.
            _ => MapError::Full,
        })
    }
}

/// One library module that failed to compile or whose manifest was refused.
struct LibraryFailure {
    name: &'static str,
    reason: String,
}

struct WasmState {
    shell: WasmShell<KernelServices>,
    /// Library modules the shell could not take (reported by `wasm list` and `selftest`).
    failures: Vec<LibraryFailure>,
    /// Microseconds the in-kernel compiler took for the whole library.
    library_compile_us: u64,
}

static STATE: Mutex<Option<WasmState>> = Mutex::new(None);

/// Compiles one library module with the in-kernel compiler and attaches its manifest.
fn compile_library_module(module: &LibraryModule) -> Result<Vec<u8>, String> {
    let manifest =
        Manifest::parse(module.manifest.as_bytes()).map_err(|e| format!("manifest: {e}"))?;
    let bytes = ::wasm::wat::compile(module.source).map_err(|e| format!("compile: {e}"))?;
    with_manifest(&bytes, &manifest).map_err(|e| format!("manifest section: {e}"))
}

fn new_state() -> WasmState {
    let mut shell = WasmShell::new(KernelServices);
    let mut failures = Vec::new();
    let started = now_ns();
    for module in LIBRARY {
        match compile_library_module(module) {
            Ok(bytes) => shell.add_module(module.name, bytes),
            Err(reason) => failures.push(LibraryFailure {
                name: module.name,
                reason,
            }),
        }
    }
    WasmState {
        shell,
        failures,
        library_compile_us: now_ns().saturating_sub(started) / 1000,
    }
}

const USAGE: &str = "usage: wasm list | wasm run NAME [args] | wasm info NAME | wasm compile NAME WAT... | wasm selftest | wasm bench | wasm counters";

/// The `wasm` console command.
pub fn command(arguments: &[&str], line: &str) {
    match arguments {
        ["selftest"] => return selftest(),
        ["bench"] => return bench(),
        ["counters"] => return counters(),
        ["compile", name, ..] => return compile_line(name, line),
        ["list"] | ["info", _] | ["run", _, ..] => {}
        _ => return println!("{USAGE}"),
    }
    let mut guard = STATE.lock();
    let state = guard.get_or_insert_with(new_state);
    if arguments.first() == Some(&"run") {
        WASM_CALLS.fetch_add(1, Ordering::Relaxed);
    }
    for output in state.shell.command(arguments) {
        println!("{output}");
    }
    if arguments == ["list"] {
        for failure in &state.failures {
            println!(
                "name={} error=library reason=\"{}\"",
                failure.name,
                failure.reason.escape_debug()
            );
        }
    }
}

/// `wasm compile NAME WAT...`: the WAT is the rest of the line after NAME, untouched.
fn compile_line(name: &str, line: &str) {
    let source = line
        .split_once("compile")
        .map(|(_, rest)| rest.trim_start())
        .and_then(|rest| rest.strip_prefix(name))
        .map(str::trim)
        .unwrap_or("");
    if source.is_empty() {
        println!("usage: wasm compile NAME (module ...)");
        return;
    }
    // One console line is a small module: console and log are the capabilities such a
    // module can use without naming counters or maps, and the default fuel bounds it.
    let manifest = Manifest {
        grants: alloc::vec!["console_write".into(), "log".into()],
        ..Manifest::default()
    };
    let started = now_ns();
    let compiled = ::wasm::wat::compile(source);
    let elapsed_us = now_ns().saturating_sub(started) / 1000;
    let bytes = match compiled {
        Ok(bytes) => bytes,
        Err(error) => {
            println!(
                "[wasm] module={name} error=compile line={} column={} reason=\"{}\"",
                error.line,
                error.column,
                format!("{error}").escape_debug()
            );
            return;
        }
    };
    let module = match with_manifest(&bytes, &manifest) {
        Ok(module) => module,
        Err(error) => {
            println!("[wasm] module={name} error=manifest reason=\"{error}\"");
            return;
        }
    };
    let size = module.len();
    let mut guard = STATE.lock();
    let state = guard.get_or_insert_with(new_state);
    state.shell.add_module(name, module);
    println!("[wasm] compiled module={name} bytes={size} compile_us={elapsed_us}");
}

fn counters() {
    for counter in telemetry::COUNTERS {
        println!(
            "{} = {}    ({})",
            counter.name,
            (counter.read)(),
            counter.summary
        );
    }
}

fn bench() {
    println!(
        "wasm bench: {WASM_BENCH_CALLS} calls per case, loops of {WASM_BENCH_LOOPS:?}, generic timer at {} Hz",
        crate::arch::aarch64::timer::frequency()
    );
    let mut clock = now_ns;
    match ::wasm::bench::run(&mut clock, WASM_BENCH_CALLS, WASM_BENCH_LOOPS) {
        Ok(results) => {
            for r in results {
                println!(
                    "[wasm-bench] case={} iterations={} fuel_budget={} calls={} fuel_used={} out_of_fuel={} ns_per_call={}",
                    r.case, r.iterations, r.fuel_budget, r.calls, r.fuel_used, r.out_of_fuel, r.ns_per_call
                );
            }
        }
        Err(error) => println!(
            "[wasm-bench] error=\"{}\"",
            format!("{error}").escape_debug()
        ),
    }
}

/// Parses one contract line `a b c d -> slice`; `None` for comments and blank lines.
fn contract_vector(line: &str) -> Option<Result<(Vec<i64>, i64), String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let parsed = (|| {
        let (inputs, output) = line.split_once("->")?;
        let inputs: Option<Vec<i64>> = inputs.split_whitespace().map(|w| w.parse().ok()).collect();
        Some((inputs?, output.trim().parse().ok()?))
    })();
    Some(parsed.ok_or_else(|| format!("unreadable contract line `{line}`")))
}

/// The self-test cases: (name, outcome with a detail on success).
fn selftest_cases() -> Vec<(String, Result<String, String>)> {
    let mut cases = Vec::new();
    let runtime = Runtime::new();
    let mut library: Vec<(&str, Vec<u8>)> = Vec::new();

    // 1. Every library module compiles with the in-kernel compiler.
    for module in LIBRARY {
        let started = now_ns();
        let outcome = compile_library_module(module);
        let elapsed_us = now_ns().saturating_sub(started) / 1000;
        cases.push((
            format!("compile_{}", module.name),
            match outcome {
                Ok(bytes) => {
                    let detail = format!("{} bytes in {elapsed_us} us", bytes.len());
                    library.push((module.name, bytes));
                    Ok(detail)
                }
                Err(why) => Err(why),
            },
        ));
    }
    let bytes_of = |name: &str| {
        library
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.as_slice())
    };

    // 2. The named behaviours, checked on the typed results (the console shows the same
    //    through `wasm run`).
    let run = |name: &str, args: &[Value], input: &[i64]| {
        let bytes = bytes_of(name).ok_or_else(|| format!("{name} did not compile"))?;
        let mut extension = runtime
            .load(name, bytes, KernelServices)
            .map_err(|e| format!("load: {}", ::wasm::console::error_line(&e, 0)))?;
        WASM_CALLS.fetch_add(1, Ordering::Relaxed);
        Ok::<_, String>(extension.call("run", args, input))
    };
    cases.push((
        "hello_prints".into(),
        match run("hello", &[], &[]) {
            Ok(Ok(out)) if out.console == b"hello from wasm\n" => {
                Ok(format!("fuel_used={}", out.fuel_used))
            }
            Ok(Ok(out)) => Err(format!(
                "printed {:?}",
                String::from_utf8_lossy(&out.console)
            )),
            Ok(Err(failure)) => Err(::wasm::console::error_line(
                &failure.error,
                failure.fuel_used,
            )),
            Err(why) => Err(why),
        },
    ));
    cases.push((
        "spin_ends_by_fuel".into(),
        match run("spin", &[], &[]) {
            Ok(Err(failure)) if failure.error.code() == "out-of-fuel" => {
                Ok(format!("fuel_used={}", failure.fuel_used))
            }
            Ok(Err(failure)) => Err(::wasm::console::error_line(
                &failure.error,
                failure.fuel_used,
            )),
            Ok(Ok(_)) => Err("returned instead of running out of fuel".into()),
            Err(why) => Err(why),
        },
    ));
    cases.push((
        "grow_hits_memory_limit".into(),
        match run("grow", &[], &[]) {
            Ok(Err(failure)) if failure.error.code() == "memory-limit" => Ok(
                ::wasm::console::error_line(&failure.error, failure.fuel_used),
            ),
            Ok(Err(failure)) => Err(::wasm::console::error_line(
                &failure.error,
                failure.fuel_used,
            )),
            Ok(Ok(out)) => Err(format!("returned {:?}", out.results)),
            Err(why) => Err(why),
        },
    ));
    cases.push((
        "forbidden_fails_to_link".into(),
        match bytes_of("forbidden") {
            None => Err("forbidden did not compile".into()),
            Some(bytes) => match runtime.load("forbidden", bytes, KernelServices) {
                Err(error) => {
                    let line = ::wasm::console::error_line(&error, 0);
                    if error.code() == "link-not-granted" && line.contains("anneal.telemetry_read")
                    {
                        Ok(line)
                    } else {
                        Err(line)
                    }
                }
                Ok(_) => Err("linked although telemetry_read is not granted".into()),
            },
        },
    ));

    // 3. The policy module against its contract.
    let vectors: Vec<_> = SCHED_SLICE_CONTRACT
        .lines()
        .filter_map(contract_vector)
        .collect();
    cases.push((
        "sched_slice_contract".into(),
        (|| {
            let bytes = bytes_of("sched_slice").ok_or("sched_slice did not compile")?;
            let mut policy = runtime
                .load("sched_slice", bytes, KernelServices)
                .map_err(|e| ::wasm::console::error_line(&e, 0))?;
            let mut checked = 0;
            for vector in &vectors {
                let (inputs, expected) = vector.clone()?;
                WASM_CALLS.fetch_add(1, Ordering::Relaxed);
                let out = policy
                    .call("run", &[], &inputs)
                    .map_err(|f| ::wasm::console::error_line(&f.error, f.fuel_used))?;
                if out.results != [Value::I64(expected)] || out.hook_output != [expected] {
                    return Err(format!(
                        "inputs {inputs:?}: got {:?} / hook_output {:?}, expected {expected}",
                        out.results, out.hook_output
                    ));
                }
                checked += 1;
            }
            if checked == 0 {
                return Err(String::from("no contract vectors"));
            }
            Ok(format!("{checked} vectors"))
        })(),
    ));

    // 4. Host functions against kernel state: telemetry and the map shared with eBPF.
    cases.push((
        "roundtrip_shared_map".into(),
        (|| {
            let map = shared_map(super::SHARED_COUNTS_MAP).ok_or("shared map missing")?;
            let key = 7u32.to_le_bytes();
            let read = || {
                map.lookup(&key, 0)
                    .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_le_bytes)
            };
            let before = read().ok_or("counts[7] unreadable")?;
            let out = match run("roundtrip", &[], &[41])? {
                Ok(out) => out,
                Err(f) => return Err(::wasm::console::error_line(&f.error, f.fuel_used)),
            };
            let after = read().ok_or("counts[7] unreadable")?;
            if after != before + 1 || out.results != [Value::I64((before + 1) as i64)] {
                return Err(format!(
                    "counts[7] {before} -> {after}, module returned {:?}",
                    out.results
                ));
            }
            if out.hook_output != [42, 1] {
                return Err(format!(
                    "hook_output {:?}, expected [42, 1]",
                    out.hook_output
                ));
            }
            Ok(format!("counts[7] {before} -> {after}"))
        })(),
    ));
    cases
}

fn selftest() {
    let mut passed = 0usize;
    let mut failed = 0usize;
    for (name, outcome) in selftest_cases() {
        match outcome {
            Ok(detail) => {
                passed += 1;
                println!("case {name}: pass ({detail})");
            }
            Err(why) => {
                failed += 1;
                println!("case {name}: FAIL {why}");
            }
        }
    }
    if let Some(state) = STATE.lock().as_ref() {
        println!(
            "library compiled in-kernel at first use: {} modules in {} us",
            LIBRARY.len() - state.failures.len(),
            state.library_compile_us
        );
    }
    println!("wasm selftest: {passed} passed, {failed} failed");
}
