//! Fuzz the in-kernel WAT-subset compiler: any text gives a module or a positioned error,
//! never a panic; and whatever it accepts must pass wasmi's validator (the compiler's own
//! type checker may not let an invalid module through).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm::manifest::{with_manifest, Manifest};
use wasm::{ErrorKind, InMemoryServices, Runtime};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match wasm::wat::compile(text) {
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "error without position: {e:?}");
        }
        Ok(module) => {
            let module = with_manifest(&module, &Manifest::default()).expect("own output frames");
            match Runtime::new().inspect("fuzz", &module) {
                Err(e) if matches!(e.kind, ErrorKind::Invalid(_)) => {
                    panic!("compiler accepted an invalid module: {e}\n{text}")
                }
                _ => {}
            }
            let _ = Runtime::new().load("fuzz", &module, InMemoryServices::default());
        }
    }
});
