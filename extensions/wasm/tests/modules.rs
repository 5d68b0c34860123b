//! The library modules behave as named: compiled from their WAT sources with the host `wat`
//! crate, given their manifests, and run under the runtime with in-memory services.

use wasm::{
    manifest::with_manifest, ErrorKind, Fault, HostFault, InMemoryServices, LinkReason, LogLevel,
    Manifest, Runtime, Value,
};

fn module_bytes(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/modules/");
    let wasm = wat::parse_file(format!("{dir}{name}.wat")).expect("library WAT compiles");
    let text = std::fs::read(format!("{dir}{name}.manifest")).expect("manifest exists");
    let manifest = Manifest::parse(&text).expect("library manifest parses");
    with_manifest(&wasm, &manifest).expect("module framing is valid")
}

fn services() -> InMemoryServices {
    let mut s = InMemoryServices::default();
    s.set_counter("sched.switches", 1234);
    s.set_counter("secret.counter", 99);
    s.create_map("counts");
    s
}

#[test]
fn hello_prints_through_the_console_capability() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("hello", &module_bytes("hello"), services())
        .unwrap();
    let out = ext.call("run", &[], &[]).unwrap();
    assert_eq!(out.console, b"hello from wasm\n");
    assert_eq!(out.results, vec![Value::I32(0)]);
    assert!(
        out.fuel_used > 0 && out.fuel_used < 100,
        "fuel {}",
        out.fuel_used
    );
    // Output is per call: a second call prints the same, not twice as much.
    assert_eq!(
        ext.call("run", &[], &[]).unwrap().console,
        b"hello from wasm\n"
    );
}

#[test]
fn spin_ends_by_fuel_as_its_own_fault() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("spin", &module_bytes("spin"), services())
        .unwrap();
    let failure = ext.call("run", &[], &[]).unwrap_err();
    assert_eq!(failure.error.module, "spin");
    assert_eq!(
        failure.error.kind,
        ErrorKind::Fault(Fault::OutOfFuel { budget: 100_000 })
    );
    assert_eq!(failure.fuel_used, 100_000);
    assert_eq!(failure.error.code(), "out-of-fuel");
    // The module stays usable (and still spins) after the fault.
    let again = ext.call_with_fuel("run", &[], &[], 500).unwrap_err();
    assert_eq!(
        again.error.kind,
        ErrorKind::Fault(Fault::OutOfFuel { budget: 500 })
    );
}

#[test]
fn grow_past_its_budget_is_a_memory_limit_fault() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("grow", &module_bytes("grow"), services())
        .unwrap();
    let failure = ext.call("run", &[], &[]).unwrap_err();
    assert_eq!(
        failure.error.kind,
        ErrorKind::Fault(Fault::MemoryLimit {
            requested_pages: 3,
            limit_pages: 2
        })
    );
    assert_eq!(failure.error.details(), " requested_pages=3 limit_pages=2");
}

#[test]
fn initial_memory_over_budget_fails_at_load() {
    let wasm = wat::parse_str(r#"(module (memory 3))"#).unwrap();
    let manifest = Manifest {
        memory_pages: 2,
        ..Manifest::default()
    };
    let bytes = with_manifest(&wasm, &manifest).unwrap();
    let err = Runtime::new()
        .load("big", &bytes, services())
        .err()
        .unwrap();
    assert_eq!(
        err.kind,
        ErrorKind::Fault(Fault::MemoryLimit {
            requested_pages: 3,
            limit_pages: 2
        })
    );
}

#[test]
fn forbidden_fails_to_link_naming_the_import() {
    let runtime = Runtime::new();
    let err = runtime
        .load("forbidden", &module_bytes("forbidden"), services())
        .err()
        .unwrap();
    assert_eq!(err.module, "forbidden");
    assert_eq!(
        err.kind,
        ErrorKind::Link {
            import_module: "anneal".into(),
            import_field: "telemetry_read".into(),
            reason: LinkReason::NotGranted,
        }
    );
    assert!(err.to_string().contains("anneal.telemetry_read"));
    // `inspect` still shows what it imports.
    let info = runtime
        .inspect("forbidden", &module_bytes("forbidden"))
        .unwrap();
    assert_eq!(info.imports.len(), 2);
    assert_eq!(info.imports[1].field, "telemetry_read");
    assert_eq!(info.imports[1].ty, "func (i32, i32) -> (i64)");
}

#[test]
fn other_link_failures_name_the_import() {
    let cases = [
        (
            r#"(module (import "env" "console_write" (func (param i32 i32))))"#,
            "env",
            "console_write",
            LinkReason::NotHostModule,
        ),
        (
            r#"(module (import "anneal" "reboot" (func)))"#,
            "anneal",
            "reboot",
            LinkReason::UnknownHostFunction,
        ),
        (
            r#"(module (import "anneal" "console_write" (func (param i64))))"#,
            "anneal",
            "console_write",
            LinkReason::WrongSignature {
                expected: "(i32, i32) -> ()".into(),
                found: "(i64) -> ()".into(),
            },
        ),
        (
            r#"(module (import "anneal" "mem" (memory 1)))"#,
            "anneal",
            "mem",
            LinkReason::NotAFunction,
        ),
    ];
    let manifest = Manifest {
        grants: vec!["console_write".into()],
        ..Manifest::default()
    };
    for (text, module, field, reason) in cases {
        let bytes = with_manifest(&wat::parse_str(text).unwrap(), &manifest).unwrap();
        let err = Runtime::new().load("m", &bytes, services()).err().unwrap();
        assert_eq!(
            err.kind,
            ErrorKind::Link {
                import_module: module.into(),
                import_field: field.into(),
                reason
            },
            "{text}"
        );
    }
}

#[test]
fn module_without_manifest_is_rejected() {
    let bytes = wat::parse_str("(module)").unwrap();
    let err = Runtime::new()
        .load("bare", &bytes, services())
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::Manifest(wasm::ManifestError::Missing));
}

#[test]
fn sched_slice_policy_meets_its_contract() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("sched_slice", &module_bytes("sched_slice"), services())
        .unwrap();
    assert_eq!(ext.manifest().hook.as_deref(), Some("sched.slice"));
    let contract = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/modules/sched_slice.contract"
    ))
    .unwrap();
    let mut vectors = 0;
    for line in contract
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (input, expected) = line.split_once("->").unwrap();
        let input: Vec<i64> = input
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        let expected: i64 = expected.trim().parse().unwrap();
        let out = ext.call("run", &[], &input).unwrap();
        assert_eq!(out.results, vec![Value::I64(expected)], "vector {line}");
        assert_eq!(out.hook_output, vec![expected], "vector {line}");
        vectors += 1;
    }
    assert_eq!(vectors, 11);
    // Missing inputs are the module's fault, named.
    let failure = ext.call("run", &[], &[1]).unwrap_err();
    assert_eq!(
        failure.error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::HookInputIndex(1)))
    );
}

#[test]
fn host_calls_round_trip() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("roundtrip", &module_bytes("roundtrip"), services())
        .unwrap();
    let out = ext.call("run", &[], &[41]).unwrap();
    assert_eq!(out.results, vec![Value::I64(1)]);
    assert_eq!(out.console, b"4"); // 1234 % 10
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].level, LogLevel::Info);
    assert_eq!(out.logs[0].message, "roundtrip called");
    assert_eq!(out.hook_output, vec![42, 1]);
    let stored = ext.services().maps["counts"][&vec![7u8, 0, 0, 0]].clone();
    assert_eq!(stored, 1u64.to_le_bytes());
    // Second call sees the map value the first stored, and a counter the kernel changed.
    ext.services_mut().set_counter("sched.switches", 7);
    let out = ext.call("run", &[], &[]).unwrap();
    assert_eq!(out.results, vec![Value::I64(2)]);
    assert_eq!(out.console, b"7");
    assert_eq!(out.hook_output, vec![0, 0]);
}

#[test]
fn host_functions_refuse_bad_arguments_as_module_faults() {
    let runtime = Runtime::new();
    let mut ext = runtime
        .load("roundtrip", &module_bytes("roundtrip"), services())
        .unwrap();
    let cases = [
        (
            "bad_pointer",
            vec![],
            Fault::Host(HostFault::BadPointer {
                ptr: 65530,
                len: 100,
            }),
        ),
        (
            "sneaky_counter",
            vec![],
            Fault::Host(HostFault::TelemetryNotGranted("roundtrip".into())),
        ),
        ("recurse", vec![Value::I32(0)], Fault::CallDepth),
        (
            "divide",
            vec![Value::I32(1), Value::I32(0)],
            Fault::Trap("integer-division-by-zero"),
        ),
    ];
    for (export, args, fault) in cases {
        let failure = ext.call(export, &args, &[]).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::Fault(fault), "{export}");
        assert_eq!(failure.error.module, "roundtrip");
    }
    // After all those faults the module still works.
    assert_eq!(
        ext.call("divide", &[Value::I32(9), Value::I32(2)], &[])
            .unwrap()
            .results,
        vec![Value::I32(4)]
    );
    // Call-site errors.
    let e = ext.call("nope", &[], &[]).unwrap_err().error;
    assert_eq!(e.kind, ErrorKind::NoSuchExport("nope".into()));
    let e = ext.call("divide", &[Value::I64(1)], &[]).unwrap_err().error;
    assert_eq!(e.code(), "bad-arguments");
    let e = ext.call("run", &[], &[0; 65]).unwrap_err().error;
    assert_eq!(e.kind, ErrorKind::TooManyHookInputs { given: 65 });
}

#[test]
fn start_function_runs_under_the_call_budget() {
    let manifest = Manifest {
        fuel_per_call: 1000,
        ..Manifest::default()
    };
    let spinning = wat::parse_str("(module (func $s (loop $l (br $l))) (start $s))").unwrap();
    let bytes = with_manifest(&spinning, &manifest).unwrap();
    let err = Runtime::new()
        .load("spinstart", &bytes, services())
        .err()
        .unwrap();
    assert_eq!(
        err.kind,
        ErrorKind::Fault(Fault::OutOfFuel { budget: 1000 })
    );
    // A full page of data segments still instantiates with a tiny budget.
    let data = format!(
        "(module (memory 1) (data (i32.const 0) \"{}\") (func (export \"run\") (result i32) (i32.load8_u (i32.const 65535))))",
        "\\07".repeat(65536)
    );
    let manifest = Manifest {
        fuel_per_call: 10,
        ..Manifest::default()
    };
    let bytes = with_manifest(&wat::parse_str(&data).unwrap(), &manifest).unwrap();
    let mut ext = Runtime::new().load("data", &bytes, services()).unwrap();
    assert_eq!(
        ext.call("run", &[], &[]).unwrap().results,
        vec![Value::I32(7)]
    );
}

#[test]
fn host_quotas_and_handles_are_enforced() {
    let text = r#"(module
      (import "anneal" "console_write" (func $write (param i32 i32)))
      (import "anneal" "log" (func $log (param i32 i32 i32)))
      (import "anneal" "map_lookup" (func $lookup (param i32 i32 i32 i32 i32) (result i32)))
      (import "anneal" "hook_output" (func $out (param i32 i64)))
      (memory (export "memory") 1)
      (func (export "flood") (loop $l (call $write (i32.const 0) (i32.const 4096)) (br $l)))
      (func (export "chatter") (loop $l (call $log (i32.const 3) (i32.const 0) (i32.const 1)) (br $l)))
      (func (export "bad_map") (result i32)
        (call $lookup (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 8) (i32.const 8)))
      (func (export "negative_len") (result i32)
        (call $lookup (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 8) (i32.const 8)))
      (func (export "bad_output") (call $out (i32.const 16) (i64.const 1))))"#;
    let manifest = Manifest {
        grants: vec![
            "console_write".into(),
            "log".into(),
            "map_lookup".into(),
            "hook_output".into(),
        ],
        maps: vec!["counts".into()],
        fuel_per_call: 1_000_000,
        ..Manifest::default()
    };
    let bytes = with_manifest(&wat::parse_str(text).unwrap(), &manifest).unwrap();
    let mut ext = Runtime::new().load("quota", &bytes, services()).unwrap();
    let fault = |ext: &mut wasm::Extension<InMemoryServices>, export: &str| {
        ext.call(export, &[], &[]).unwrap_err()
    };
    let flood = fault(&mut ext, "flood");
    assert_eq!(
        flood.error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::ConsoleQuota))
    );
    // What was written before the quota hit is kept, and no more than the quota.
    assert_eq!(
        flood.console.len(),
        wasm::limits::MAX_CONSOLE_BYTES_PER_CALL
    );
    let chatter = fault(&mut ext, "chatter");
    assert_eq!(
        chatter.error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::LogQuota))
    );
    assert_eq!(chatter.logs.len(), wasm::limits::MAX_LOG_RECORDS_PER_CALL);
    assert_eq!(
        fault(&mut ext, "bad_map").error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::BadMapHandle(1)))
    );
    assert_eq!(
        fault(&mut ext, "negative_len").error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::BadPointer { ptr: 0, len: -1 }))
    );
    assert_eq!(
        fault(&mut ext, "bad_output").error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::HookOutputIndex(16)))
    );
}

#[test]
fn pointer_functions_need_an_exported_memory() {
    let text = r#"(module
      (import "anneal" "console_write" (func $write (param i32 i32)))
      (memory 1)
      (func (export "run") (call $write (i32.const 0) (i32.const 1))))"#;
    let manifest = Manifest {
        grants: vec!["console_write".into()],
        ..Manifest::default()
    };
    let bytes = with_manifest(&wat::parse_str(text).unwrap(), &manifest).unwrap();
    let mut ext = Runtime::new().load("nomem", &bytes, services()).unwrap();
    assert_eq!(
        ext.call("run", &[], &[]).unwrap_err().error.kind,
        ErrorKind::Fault(Fault::Host(HostFault::NoMemoryExport))
    );
}

#[test]
fn modules_are_isolated_from_each_other() {
    // Two instances of the same module: state in one never shows in the other.
    let text = r#"(module (global $n (mut i32) (i32.const 0))
      (func (export "run") (result i32)
        (global.set $n (i32.add (global.get $n) (i32.const 1))) (global.get $n)))"#;
    let bytes = with_manifest(&wat::parse_str(text).unwrap(), &Manifest::default()).unwrap();
    let runtime = Runtime::new();
    let mut a = runtime.load("a", &bytes, services()).unwrap();
    let mut b = runtime.load("b", &bytes, services()).unwrap();
    for _ in 0..3 {
        a.call("run", &[], &[]).unwrap();
    }
    assert_eq!(
        a.call("run", &[], &[]).unwrap().results,
        vec![Value::I32(4)]
    );
    assert_eq!(
        b.call("run", &[], &[]).unwrap().results,
        vec![Value::I32(1)]
    );
}

#[test]
fn table_growth_past_the_limit_is_a_table_fault() {
    let text = r#"(module (table 1 funcref)
      (func (export "run") (result i32)
        (table.grow (ref.null func) (i32.const 2000))))"#;
    let bytes = with_manifest(&wat::parse_str(text).unwrap(), &Manifest::default()).unwrap();
    let mut ext = Runtime::new().load("tables", &bytes, services()).unwrap();
    assert_eq!(
        ext.call("run", &[], &[]).unwrap_err().error.kind,
        ErrorKind::Fault(Fault::TableLimit {
            requested_elements: 2001
        })
    );
    let big = wat::parse_str("(module (table 5000 funcref))").unwrap();
    let bytes = with_manifest(&big, &Manifest::default()).unwrap();
    assert_eq!(
        Runtime::new()
            .load("bigtable", &bytes, services())
            .err()
            .unwrap()
            .kind,
        ErrorKind::Fault(Fault::TableLimit {
            requested_elements: 5000
        })
    );
}
