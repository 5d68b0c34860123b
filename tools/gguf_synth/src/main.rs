//! `gguf_synth [--small] [--seed N] OUT.gguf`: writes a synthetic GGUF with TinyLlama-1.1B-Chat's
//! exact tensor names, shapes, Q4_K_M type mix and metadata (random weights), or with
//! `--small` a 2-layer model of the same structure. Exit 2 on usage errors, 1 on I/O errors.

use std::process::ExitCode;

use gguf_synth::{synthesize, SynthConfig};

fn main() -> ExitCode {
    let mut config = SynthConfig::tinyllama();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--small" => {
                let seed = config.seed;
                config = SynthConfig::small();
                config.seed = seed;
            }
            "--seed" => match args.next().and_then(|v| v.parse().ok()) {
                Some(s) => config.seed = s,
                None => {
                    eprintln!("--seed needs a number");
                    return ExitCode::from(2);
                }
            },
            _ if out.is_none() && !a.starts_with('-') => out = Some(a),
            _ => {
                eprintln!("usage: gguf_synth [--small] [--seed N] OUT.gguf");
                return ExitCode::from(2);
            }
        }
    }
    let Some(out) = out else {
        eprintln!("usage: gguf_synth [--small] [--seed N] OUT.gguf");
        return ExitCode::from(2);
    };
    let bytes = synthesize(&config);
    if let Err(e) = std::fs::write(&out, &bytes) {
        eprintln!("writing {out}: {e}");
        return ExitCode::from(1);
    }
    println!("wrote {out}: {} bytes, {config:?}", bytes.len());
    ExitCode::SUCCESS
}
