//! Fuzz target: any bytes through the GGUF parser, every accessor, the model loader and, when
//! a model loads, one forward step. Nothing may panic or read out of bounds.
//!
//! Run (the pinned stable toolchain needs RUSTC_BOOTSTRAP for the sanitizer flags):
//! `cd kernel/llm/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run gguf_parse -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use llm::gguf::Value;
use llm::{Gguf, Model, Sequential};

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Gguf::parse(data) {
        for (key, value) in g.metadata() {
            let _ = g.get_u32(key);
            let _ = g.get_f32(key);
            let _ = g.get_str(key);
            if let Value::Array(a) = value {
                let _ = a.strings().count();
                for i in 0..a.len().min(64) {
                    let _ = (a.get_f32(i), a.get_i32(i), a.get_u32(i), a.get_int(i));
                }
            }
        }
        for t in g.tensors() {
            assert!(t.data.len() <= data.len());
        }
    }
    if let Ok(model) = Model::load(data, &mut |_| {}) {
        if let Ok(mut session) = model.session(2) {
            let _ = session.forward(0, 0, &Sequential);
            let _ = session.forward(1, 1, &Sequential);
            let _ = session.forward(1, 2, &Sequential);
            session.reset();
            let _ = session.forward_batch(&[1, 0], 0, &Sequential);
            let _ = session.forward_batch(&[0, 1, 1], 1, &Sequential);
        }
    }
});
