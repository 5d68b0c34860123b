//! Call-overhead benchmarks, written once for the host and the kernel: the caller passes a
//! nanosecond clock (std's `Instant` on the host, the generic timer in the kernel).
//!
//! Three measurements: an empty export (the fixed cost of entering and leaving wasm with fuel
//! set and buffers reset), an export making one host call (`hook_input_len`, the cheapest
//! host function: the cost of crossing the boundary), and a counted loop of N iterations
//! under several fuel budgets: one sized generously (the loop completes, fuel per
//! iteration is reported) and one at half of what the loop needs (the call ends by fuel: the
//! cost of the fault path). The modules are compiled by the in-kernel WAT compiler, so the
//! kernel needs no bundle to run this.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{ErrorKind, ExtensionError};
use crate::host::InMemoryServices;
use crate::manifest::{with_manifest, Manifest};
use crate::runtime::{Extension, Runtime, Value};
use crate::wat;

/// WAT source of the benchmark module.
pub const BENCH_WAT: &str = r#"(module
  (import "anneal" "hook_input_len" (func $input_len (result i32)))
  (func (export "empty"))
  (func (export "host_call") (result i32) (call $input_len))
  (func (export "loop") (param $n i64) (result i64) (local $i i64)
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $i)))"#;

/// Timed rounds per case; the fastest round's mean is reported.
pub const ROUNDS: u32 = 5;

/// One measured case.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// `empty`, `host_call` or `loop`.
    pub case: &'static str,
    /// Loop iterations asked for (0 for the call cases).
    pub iterations: u64,
    /// Fuel budget per call.
    pub fuel_budget: u64,
    /// Calls timed.
    pub calls: u32,
    /// Fuel one call used.
    pub fuel_used: u64,
    /// Whether the call ended by running out of fuel.
    pub out_of_fuel: bool,
    /// Mean nanoseconds per call in the fastest of [`ROUNDS`] rounds.
    pub ns_per_call: u64,
}

impl BenchResult {
    /// One JSON object (for `cargo xtask bench wasm --json`).
    pub fn json(&self) -> String {
        format!(
            "{{\"bench\":\"wasm\",\"case\":\"{}\",\"iterations\":{},\"fuel_budget\":{},\"calls\":{},\"fuel_used\":{},\"out_of_fuel\":{},\"ns_per_call\":{}}}",
            self.case, self.iterations, self.fuel_budget, self.calls, self.fuel_used, self.out_of_fuel, self.ns_per_call
        )
    }

    /// One human-readable line.
    pub fn text(&self) -> String {
        let mut line = format!(
            "wasm {:<9} n={:<7} fuel_budget={:<9} fuel_used={:<8} {:>10} ns/call",
            self.case, self.iterations, self.fuel_budget, self.fuel_used, self.ns_per_call
        );
        if self.out_of_fuel {
            line.push_str("  (ended by fuel)");
        }
        if self.iterations > 0 && !self.out_of_fuel {
            line.push_str(&format!(
                "  {} ps/iteration",
                self.ns_per_call.saturating_mul(1000) / self.iterations
            ));
        }
        line
    }
}

/// Runs the benchmarks: `calls` timed calls per case, loops of each of `loop_sizes`.
/// `now_ns` is a monotonic clock in nanoseconds.
pub fn run(
    now_ns: &mut dyn FnMut() -> u64,
    calls: u32,
    loop_sizes: &[u64],
) -> Result<Vec<BenchResult>, ExtensionError> {
    let module = wat::compile(BENCH_WAT)
        .map_err(|e| ExtensionError::new("bench", ErrorKind::Invalid(format!("bench WAT: {e}"))))?;
    let manifest = Manifest {
        grants: alloc::vec!["hook_input_len".into()],
        ..Manifest::default()
    };
    let module = with_manifest(&module, &manifest)
        .map_err(|e| ExtensionError::new("bench", ErrorKind::Manifest(e)))?;
    let runtime = Runtime::new();
    let mut ext = runtime.load("bench", &module, InMemoryServices::default())?;
    let calls = calls.max(1);
    let mut results = Vec::new();
    let fuel = crate::limits::DEFAULT_FUEL_PER_CALL;
    results.push(time(&mut ext, now_ns, "empty", &[], 0, fuel, calls)?);
    results.push(time(&mut ext, now_ns, "host_call", &[], 0, fuel, calls)?);
    for &n in loop_sizes {
        // Measure what the loop needs, then time it with 10x that and with half of it.
        let probe = ext
            .call_with_fuel(
                "loop",
                &[Value::I64(n as i64)],
                &[],
                crate::limits::MAX_FUEL_PER_CALL,
            )
            .map_err(|f| f.error)?;
        let need = probe.fuel_used.max(1);
        let loop_calls = (calls as u64 * 100 / (n + 100)).clamp(1, calls as u64) as u32;
        for budget in [need.saturating_mul(10), need / 2] {
            let budget = budget.clamp(1, crate::limits::MAX_FUEL_PER_CALL);
            results.push(time(
                &mut ext,
                now_ns,
                "loop",
                &[Value::I64(n as i64)],
                n,
                budget,
                loop_calls,
            )?);
        }
    }
    Ok(results)
}

fn time(
    ext: &mut Extension<InMemoryServices>,
    now_ns: &mut dyn FnMut() -> u64,
    case: &'static str,
    args: &[Value],
    iterations: u64,
    fuel_budget: u64,
    calls: u32,
) -> Result<BenchResult, ExtensionError> {
    let mut fuel_used = 0;
    let mut out_of_fuel = false;
    // One untimed call first: the first call of an export pays for lazy setup (and caches).
    let _ = ext.call_with_fuel(case, args, &[], fuel_budget);
    // The calls are split into rounds and the fastest round's mean is reported: on a shared
    // machine (or a kernel taking interrupts) the minimum is the figure least disturbed by
    // other work, and it is what the code itself costs.
    let per_round = calls.div_ceil(ROUNDS).max(1);
    let mut best = u64::MAX;
    for _ in 0..ROUNDS {
        let start = now_ns();
        for _ in 0..per_round {
            match ext.call_with_fuel(case, args, &[], fuel_budget) {
                Ok(out) => fuel_used = out.fuel_used,
                Err(failure) => {
                    if !matches!(
                        failure.error.fault(),
                        Some(crate::error::Fault::OutOfFuel { .. })
                    ) {
                        return Err(failure.error);
                    }
                    out_of_fuel = true;
                    fuel_used = failure.fuel_used;
                }
            }
        }
        best = best.min(now_ns().saturating_sub(start) / u64::from(per_round));
    }
    Ok(BenchResult {
        case,
        iterations,
        fuel_budget,
        calls: per_round * ROUNDS,
        fuel_used,
        out_of_fuel,
        ns_per_call: best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_runs_every_case_with_a_fake_clock() {
        // A clock that advances 10 ns per reading: results are about structure and fuel,
        // not speed (speed is measured by the bench command, never asserted).
        let mut t = 0u64;
        let mut clock = || {
            t += 10;
            t
        };
        let results = run(&mut clock, 3, &[100]).unwrap();
        let cases: Vec<_> = results.iter().map(|r| (r.case, r.out_of_fuel)).collect();
        assert_eq!(
            cases,
            [
                ("empty", false),
                ("host_call", false),
                ("loop", false),
                ("loop", true)
            ]
        );
        let complete = &results[2];
        // The loop's fuel grows with N: at least one unit per iteration.
        assert!(complete.fuel_used >= 100, "{complete:?}");
        assert_eq!(results[3].fuel_used, results[3].fuel_budget);
        assert!(results[0]
            .json()
            .starts_with("{\"bench\":\"wasm\",\"case\":\"empty\""));
    }
}
