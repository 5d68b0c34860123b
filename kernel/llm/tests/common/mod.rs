//! Shared helper for tests that need the default model: it must be present (xtask fetches it);
//! a missing file is a clear failure, never a skip.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of the default model under models/cache/.
pub fn smollm2_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The default model's bytes; panics with instructions when it is absent.
pub fn smollm2_bytes() -> Vec<u8> {
    let path = smollm2_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the default model is required at {} ({e}); run `cargo xtask` to fetch it \
             (models/ has the fetch command)",
            path.display()
        )
    })
}
