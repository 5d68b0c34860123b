//! `ebpf ...` console commands: the eBPF crate running on the target.
//!
//! - `ebpf selftest`: the crate's conformance subset (`ebpf::selftest`, one program per RFC
//!   9669 group plus maps, helpers, ring buffer, bounds and budget faults), then a multi-core
//!   test of the maps' locking on every online core; one line per case, then
//!   `ebpf selftest: N passed, N failed`.
//! - `ebpf bench [REPEAT|verifier]`: interpreter ns per instruction on the five benchmark programs
//!   (`ebpf::bench`, timed with the generic timer), or verifier time against program size.
//! - `ebpf maps`: the maps shared with WASM and their non-zero entries.
//! - `ebpf count KEY [DELTA]`: a verified eBPF program adds DELTA (default 1) to entry KEY of
//!   the shared map `counts` with an atomic `lock fetch add` and returns the new value, so a
//!   console session (and a QEMU test) can watch eBPF and WASM update the same map.
//!
//! Why the multi-core test is here and not in the portable crate: it needs the kernel's
//! worker pool (`smp::run_on_all_cores`); what it checks is the crate's own locking (hash map
//! slab and index under a spin lock, ring-buffer queue under a spin lock, value atomics,
//! per-CPU copies selected by `RunOptions::cpu`). Each check has an exact expected total, so a
//! lost update on any core shows as a wrong number, not as a flaky timing.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use ::ebpf::maps::{Map, MapDef, MapKind};
use ::ebpf::runtime::HelperTable;
use ::ebpf::vm::{Program, RunOptions, Vm};

use super::limits::{
    EBPF_BENCH_REPEAT, KERNEL_PROGRAM_BUDGET, MAX_EBPF_BENCH_REPEAT, SMP_HASH_CAPACITY,
    SMP_KEYS_PER_CORE, SMP_RING_BYTES, SMP_RING_RECORDS_PER_CORE, SMP_RUNS_PER_CORE,
};
use super::telemetry::EBPF_RUNS;
use super::{now_ns, shared_map, shared_maps, KernelPlatform, SHARED_COUNTS_MAP};
use crate::arch::aarch64::{cpu, smp};
use crate::println;

const USAGE: &str =
    "usage: ebpf selftest | ebpf bench [REPEAT|verifier] | ebpf maps | ebpf count KEY [DELTA]";

/// The `ebpf` console command.
pub fn command(arguments: &[&str], _line: &str) {
    match arguments {
        ["selftest"] => selftest(),
        ["bench"] => bench_interpreter(EBPF_BENCH_REPEAT),
        ["bench", "verifier"] => bench_verifier(),
        ["bench", repeat] => match repeat.parse::<usize>() {
            Ok(repeat) if (1..=MAX_EBPF_BENCH_REPEAT).contains(&repeat) => {
                bench_interpreter(repeat)
            }
            _ => println!("ebpf bench: REPEAT must be 1..={MAX_EBPF_BENCH_REPEAT}"),
        },
        ["maps"] => list_maps(),
        ["count", key] => count(key, "1"),
        ["count", key, delta] => count(key, delta),
        _ => println!("{USAGE}"),
    }
}

fn selftest() {
    let platform = KernelPlatform::new();
    let report = ::ebpf::selftest::run_all(&platform);
    EBPF_RUNS.fetch_add(::ebpf::selftest::CASES.len() as u64, Ordering::Relaxed);
    let mut passed = 0usize;
    let mut failed = 0usize;
    for case in ::ebpf::selftest::CASES {
        match report.failed.iter().find(|(name, _)| *name == case.name) {
            Some((_, why)) => {
                failed += 1;
                println!("case {}: FAIL {why}", case.name);
            }
            None => {
                passed += 1;
                println!("case {}: pass", case.name);
            }
        }
    }
    // The crate's report counts the same cases; a mismatch would mean a case ran twice or
    // not at all, which is itself a failure worth seeing.
    if report.passed != passed {
        failed += 1;
        println!(
            "case report_consistency: FAIL crate counted {} passed, console {passed}",
            report.passed
        );
    }
    for (name, outcome) in smp_map_checks() {
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
    println!("ebpf selftest: {passed} passed, {failed} failed");
}

/// Assembles and loads a kernel-internal program; errors name the program.
fn load(name: &str, source: &str, maps: &[Arc<Map>]) -> Result<Program, String> {
    let slots = ::ebpf::asm::assemble(source).map_err(|e| format!("{name}: {e}"))?;
    Program::load(&slots, &HelperTable::standard(), maps).map_err(|e| format!("{name}: {e}"))
}

/// Array map entry 0 += 1 with an atomic add (map 0).
const SMP_ATOMIC_ADD: &str = "
    stw [%r10-4], 0
    lddw %r1, map:0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, missing
    mov %r1, 1
    lock add [%r0+0], %r1
    mov %r0, 0
    exit
missing:
    mov %r0, 1
    exit";

/// Hash map (map 1): update key ctx[0..8] to value ctx[8..16]; r0 = the helper's status.
const SMP_HASH_INSERT: &str = "
    mov %r6, %r1
    lddw %r1, map:1
    mov %r2, %r6
    mov %r3, %r6
    add %r3, 8
    mov %r4, 0
    call 2
    exit";

/// Per-CPU array (map 2): this core's entry 0 += 1, a plain load/add/store (no atomics:
/// correct only if each core really gets its own copy).
const SMP_PER_CPU_INCREMENT: &str = "
    stw [%r10-4], 0
    lddw %r1, map:2
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, missing
    ldxdw %r1, [%r0+0]
    add %r1, 1
    stxdw [%r0+0], %r1
    mov %r0, 0
    exit
missing:
    mov %r0, 1
    exit";

/// Ring buffer (map 3): output the 8 context bytes as one record; r0 = the helper's status.
const SMP_RING_OUTPUT: &str = "
    mov %r2, %r1
    lddw %r1, map:3
    mov %r3, 8
    mov %r4, 0
    call 130
    exit";

/// The hash map value stored for `key` in the multi-core test.
fn hash_value_for(key: u64) -> u64 {
    key.wrapping_mul(3).wrapping_add(1)
}

/// The maps of the multi-core test, in the programs' `map:N` order.
fn smp_maps(cores: usize) -> Result<Vec<Arc<Map>>, String> {
    let make = |name: &str, kind, key_size, value_size, max_entries| {
        let def = MapDef {
            kind,
            key_size,
            value_size,
            max_entries,
        };
        Map::new(name, def, cores)
            .map(Arc::new)
            .map_err(|e| format!("map {name}: {e}"))
    };
    Ok(alloc::vec![
        make("smp_array", MapKind::Array, 4, 8, 1)?,
        make("smp_hash", MapKind::Hash, 8, 8, SMP_HASH_CAPACITY)?,
        make("smp_per_cpu", MapKind::PerCpuArray, 4, 8, 1)?,
        make("smp_ring", MapKind::RingBuf, 0, 0, SMP_RING_BYTES)?,
    ])
}

/// Runs four programs on every online core at once against shared maps and checks exact
/// totals. Returns one (case name, outcome) per check.
fn smp_map_checks() -> Vec<(&'static str, Result<String, String>)> {
    let cores = smp::online_cores().min(::ebpf::limits::MAX_CPUS);
    let setup = (|| -> Result<_, String> {
        let maps = smp_maps(cores)?;
        let programs = [
            load("smp_atomic_add", SMP_ATOMIC_ADD, &maps)?,
            load("smp_hash_insert", SMP_HASH_INSERT, &maps)?,
            load("smp_per_cpu_increment", SMP_PER_CPU_INCREMENT, &maps)?,
            load("smp_ring_output", SMP_RING_OUTPUT, &maps)?,
        ];
        Ok((maps, programs))
    })();
    let (maps, programs) = match setup {
        Ok(ready) => ready,
        Err(why) => return alloc::vec![("smp_setup", Err(why))],
    };
    let platform = KernelPlatform::new();
    // Per core: runs that returned something other than 0 or failed, and the first error.
    let bad_runs: [AtomicU64; crate::limits::MAX_CPUS] =
        [const { AtomicU64::new(0) }; crate::limits::MAX_CPUS];
    let participated: [AtomicU64; crate::limits::MAX_CPUS] =
        [const { AtomicU64::new(0) }; crate::limits::MAX_CPUS];
    let started = now_ns();
    smp::run_on_all_cores(&|core, _count| {
        if core >= cores {
            return; // more cores than per-CPU maps can hold copies for: sit this one out
        }
        let mut vm = Vm::new();
        let options = RunOptions {
            instruction_budget: KERNEL_PROGRAM_BUDGET,
            input_writable: false,
            cpu: core,
        };
        let mut bad = 0u64;
        let mut run = |program: &Program, input: &mut [u8]| match vm
            .run(program, input, &options, &platform)
        {
            Ok(outcome) if outcome.r0 == 0 => {}
            _ => bad += 1,
        };
        let core_tag = core as u64;
        // Interleave the programs so every map sees several cores at once.
        for i in 0..SMP_RUNS_PER_CORE {
            run(&programs[0], &mut []);
            run(&programs[2], &mut []);
            if i < SMP_KEYS_PER_CORE {
                let key = (core_tag << 32) | i;
                let mut context = [0u8; 16];
                context[..8].copy_from_slice(&key.to_le_bytes());
                context[8..].copy_from_slice(&hash_value_for(key).to_le_bytes());
                run(&programs[1], &mut context);
            }
            if i < SMP_RING_RECORDS_PER_CORE {
                let mut context = ((core_tag << 32) | i).to_le_bytes();
                run(&programs[3], &mut context);
            }
        }
        if let Some(slot) = bad_runs.get(core) {
            slot.store(bad, Ordering::Release);
        }
        if let Some(slot) = participated.get(core) {
            slot.store(1, Ordering::Release);
        }
    });
    let elapsed_us = now_ns().saturating_sub(started) / 1000;
    let runs_per_core = 2 * SMP_RUNS_PER_CORE
        + SMP_KEYS_PER_CORE.min(SMP_RUNS_PER_CORE)
        + SMP_RING_RECORDS_PER_CORE.min(SMP_RUNS_PER_CORE);
    EBPF_RUNS.fetch_add(runs_per_core * cores as u64, Ordering::Relaxed);

    let mut checks = Vec::new();
    let ran: u64 = participated
        .iter()
        .take(cores)
        .map(|p| p.load(Ordering::Acquire))
        .sum();
    let bad: u64 = bad_runs.iter().map(|b| b.load(Ordering::Acquire)).sum();
    checks.push((
        "smp_all_cores_ran",
        if ran == cores as u64 && bad == 0 {
            Ok(format!(
                "{cores} cores, {} runs, {elapsed_us} us",
                runs_per_core * cores as u64
            ))
        } else {
            Err(format!(
                "{ran} of {cores} cores ran; {bad} runs failed or returned non-zero"
            ))
        },
    ));

    let zero_key = 0u32.to_le_bytes();
    let read_u64 = |map: &Map, key: &[u8], cpu: usize| {
        map.lookup(key, cpu)
            .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_le_bytes)
    };
    let expected_adds = SMP_RUNS_PER_CORE * cores as u64;
    checks.push((
        "smp_array_atomic_add",
        match read_u64(&maps[0], &zero_key, 0) {
            Some(total) if total == expected_adds => Ok(format!("total {total}")),
            other => Err(format!("total {other:?}, expected {expected_adds}")),
        },
    ));

    let expected_keys = SMP_KEYS_PER_CORE.min(SMP_RUNS_PER_CORE) * cores as u64;
    let hash = &maps[1];
    let missing_or_wrong = (0..cores as u64)
        .flat_map(|core| {
            (0..SMP_KEYS_PER_CORE.min(SMP_RUNS_PER_CORE)).map(move |i| (core << 32) | i)
        })
        .filter(|key| read_u64(hash, &key.to_le_bytes(), 0) != Some(hash_value_for(*key)))
        .count();
    checks.push((
        "smp_hash_concurrent_inserts",
        if hash.len() as u64 == expected_keys && missing_or_wrong == 0 {
            Ok(format!("{expected_keys} keys"))
        } else {
            Err(format!(
                "{} keys (expected {expected_keys}), {missing_or_wrong} missing or wrong",
                hash.len()
            ))
        },
    ));

    let per_cpu_wrong: Vec<String> = (0..cores)
        .filter_map(|core| match read_u64(&maps[2], &zero_key, core) {
            Some(n) if n == SMP_RUNS_PER_CORE => None,
            other => Some(format!("core {core}: {other:?}")),
        })
        .collect();
    checks.push((
        "smp_per_cpu_copies",
        if per_cpu_wrong.is_empty() {
            Ok(format!("{SMP_RUNS_PER_CORE} on each of {cores} cores"))
        } else {
            Err(format!(
                "expected {SMP_RUNS_PER_CORE} per core; {}",
                per_cpu_wrong.join(", ")
            ))
        },
    ));

    let ring = &maps[3];
    let mut seen: Vec<u64> = Vec::new();
    let mut malformed = 0usize;
    while let Some(record) = ring.ringbuf_pop() {
        match record.get(..8).and_then(|b| b.try_into().ok()) {
            Some(bytes) if record.len() == 8 => seen.push(u64::from_le_bytes(bytes)),
            _ => malformed += 1,
        }
    }
    seen.sort_unstable();
    let total = seen.len();
    seen.dedup();
    let expected_records = SMP_RING_RECORDS_PER_CORE.min(SMP_RUNS_PER_CORE) * cores as u64;
    let dropped = ring.ringbuf_dropped();
    checks.push((
        "smp_ring_buffer",
        if total as u64 == expected_records
            && seen.len() == total
            && malformed == 0
            && dropped == 0
        {
            Ok(format!("{total} records, none lost or doubled"))
        } else {
            Err(format!(
                "{total} records ({} distinct, {malformed} malformed, {dropped} dropped), expected {expected_records}",
                seen.len()
            ))
        },
    ));
    checks
}

fn bench_interpreter(repeat: usize) {
    println!(
        "ebpf bench: 5 programs, best of {repeat} runs per mode, generic timer at {} Hz",
        crate::arch::aarch64::timer::frequency()
    );
    match ::ebpf::bench::run_all(&now_ns, repeat) {
        Ok(results) => {
            for result in results {
                println!(
                    "[ebpf-bench] program={} instructions={} checked_ns_per_insn={:.2} unchecked_ns_per_insn={:.2} checked_ns={} unchecked_ns={}",
                    result.name,
                    result.instructions,
                    result.checked_ns_per_insn(),
                    result.unchecked_ns_per_insn(),
                    result.checked_ns,
                    result.unchecked_ns
                );
            }
        }
        Err(why) => println!("[ebpf-bench] error=\"{}\"", why.escape_debug()),
    }
}

/// Program sizes `ebpf bench verifier` measures: up to the default instruction limit (4096)
/// and one step beyond it, so growth is visible without minutes of emulated time.
const VERIFIER_BENCH_SIZES: [usize; 5] = [64, 256, 1024, 4096, 16384];

fn bench_verifier() {
    let rows = ::ebpf_verifier::bench::run(&now_ns, &VERIFIER_BENCH_SIZES, 1);
    for row in rows {
        println!(
            "[verifier-bench] family={} insns={} accepted={} verify_us={} states_explored={} states_stored={} state_bytes={}",
            row.family,
            row.insns,
            row.accepted,
            row.best_ns / 1000,
            row.states_explored,
            row.states_stored,
            row.peak_state_bytes
        );
    }
}

fn list_maps() {
    let maps = shared_maps();
    if maps.is_empty() {
        println!("no shared maps");
    }
    for map in maps {
        let def = map.def();
        println!(
            "map {} kind={:?} key_size={} value_size={} max_entries={}",
            map.name(),
            def.kind,
            def.key_size,
            def.value_size,
            def.max_entries
        );
        if def.kind == MapKind::Array && def.value_size == 8 {
            for index in 0..def.max_entries {
                let value = map
                    .lookup(&index.to_le_bytes(), 0)
                    .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_le_bytes)
                    .unwrap_or(0);
                if value != 0 {
                    println!("  {index} = {value}");
                }
            }
        }
    }
}

/// The `ebpf count` program: context = u32 key, u32 delta (read-only, 8 bytes); adds delta
/// to `counts[key]` atomically and returns the new value, or u64::MAX for a key outside the
/// map.
const COUNT_PROGRAM: &str = "
    ldxw %r2, [%r1+0]
    stxw [%r10-4], %r2
    ldxw %r6, [%r1+4]
    lddw %r1, map:0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, missing
    mov %r1, %r6
    lock fetch add [%r0+0], %r1
    add %r1, %r6
    mov %r0, %r1
    exit
missing:
    mov %r0, -1
    exit";

/// Size of the `ebpf count` context.
const COUNT_CONTEXT_BYTES: u32 = 8;

/// The count program, verified for its context and map, then loaded; built once.
fn count_program() -> Result<&'static Program, String> {
    static PROGRAM: spin::Once<Result<Program, String>> = spin::Once::new();
    PROGRAM
        .call_once(|| {
            let map = shared_map(SHARED_COUNTS_MAP)
                .ok_or_else(|| String::from("shared map `counts` is missing"))?;
            let slots =
                ::ebpf::asm::assemble(COUNT_PROGRAM).map_err(|e| format!("assembler: {e}"))?;
            let mut config = ::ebpf_verifier::VerifierConfig::new(COUNT_CONTEXT_BYTES)
                .with_all_runtime_helpers();
            config.maps.push(::ebpf_verifier::MapDef {
                name: SHARED_COUNTS_MAP.into(),
                key_size: map.def().key_size,
                value_size: map.def().value_size,
            });
            let summary = ::ebpf_verifier::verify(&slots, &config)
                .map_err(|e| format!("verifier: REJECT {e}"))?;
            log::info!(
                "ebpf count program verified: {} insns, {} states explored",
                summary.insns,
                summary.states_explored
            );
            Program::load(&slots, &HelperTable::standard(), core::slice::from_ref(map))
                .map_err(|e| format!("load: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn count(key: &str, delta: &str) {
    let (Some(key_value), Some(delta_value)) = (parse_u32(key), parse_u32(delta)) else {
        println!("ebpf count: KEY and DELTA must be unsigned 32-bit numbers");
        return;
    };
    let program = match count_program() {
        Ok(program) => program,
        Err(why) => {
            println!("[ebpf] program=count error=\"{}\"", why.escape_debug());
            return;
        }
    };
    let mut context = [0u8; COUNT_CONTEXT_BYTES as usize];
    context[..4].copy_from_slice(&key_value.to_le_bytes());
    context[4..].copy_from_slice(&delta_value.to_le_bytes());
    let options = RunOptions {
        instruction_budget: KERNEL_PROGRAM_BUDGET,
        input_writable: false,
        cpu: cpu::core_index(),
    };
    EBPF_RUNS.fetch_add(1, Ordering::Relaxed);
    match Vm::new().run(program, &mut context, &options, &KernelPlatform::new()) {
        Ok(outcome) if outcome.r0 == u64::MAX => println!(
            "[ebpf] program=count key={key_value} error=no-such-key instructions={}",
            outcome.instructions
        ),
        Ok(outcome) => println!(
            "[ebpf] program=count key={key_value} result={} instructions={}",
            outcome.r0, outcome.instructions
        ),
        Err(error) => println!(
            "[ebpf] program=count key={key_value} error=\"{}\"",
            error.to_string().escape_debug()
        ),
    }
}
