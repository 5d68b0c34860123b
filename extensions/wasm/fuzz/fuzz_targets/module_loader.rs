//! Fuzz the module loader: bundle parsing, manifest parsing, wasmi decoding/validation,
//! linking against the manifest, instantiation and a short fuel-bounded call of every
//! exported function. Any input must give a value or a typed error, never a panic.
//!
//! Half of the inputs are used as a module as-is; the other half get a valid manifest
//! granting every host function appended, so the fuzzer reaches linking and execution
//! without having to invent the manifest text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm::host::HOST_FUNCTIONS;
use wasm::manifest::{append_custom_section, Manifest, MANIFEST_SECTION};
use wasm::{InMemoryServices, Runtime, Value};

fuzz_target!(|data: &[u8]| {
    let _ = wasm::bundle::parse(data);
    let _ = Manifest::parse(data);
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut module = rest.to_vec();
    if mode & 1 == 1 {
        let manifest = Manifest {
            grants: HOST_FUNCTIONS.iter().map(|h| h.name.into()).collect(),
            telemetry: vec!["a".into()],
            maps: vec!["m".into()],
            fuel_per_call: 10_000,
            memory_pages: 2,
            ..Manifest::default()
        };
        append_custom_section(&mut module, MANIFEST_SECTION, manifest.to_text().as_bytes());
    }
    let runtime = Runtime::new();
    let _ = runtime.inspect("fuzz", &module);
    let mut services = InMemoryServices::default();
    services.create_map("m");
    services.set_counter("a", 1);
    let Ok(mut ext) = runtime.load("fuzz", &module, services) else { return };
    let exports: Vec<String> = ext.info().exports.iter().map(|e| e.name.clone()).collect();
    for name in exports {
        if let Some((params, _)) = ext.export_signature(&name) {
            let args: Vec<Value> = params
                .iter()
                .map(|t| match t {
                    wasm::ValueType::I64 => Value::I64(7),
                    wasm::ValueType::F32 => Value::F32(1.0),
                    wasm::ValueType::F64 => Value::F64(1.0),
                    _ => Value::I32(7),
                })
                .collect();
            let _ = ext.call(&name, &args, &[1, 2, 3]);
        }
    }
});
