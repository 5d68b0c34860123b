//! `wasm_pack`: host tool for Anneal's WASM extensions.
//!
//! ```text
//! wasm_pack pack [--modules DIR] [--out FILE]   compile DIR/*.wat with the `wat` crate, attach
//!                                               DIR/NAME.manifest as the anneal.manifest
//!                                               section, write the bundle the kernel loads
//! wasm_pack compile FILE.wat [--manifest M] [--out FILE.wasm]
//!                                               compile with the in-kernel WAT-subset compiler
//!                                               (what the kernel does with model output)
//! wasm_pack bench [--json] [--calls N]          call-overhead benchmarks on the host
//! ```
//!
//! The `wat` crate (std, full text format) builds the library modules; the in-kernel
//! compiler is checked against it by the `wasm` crate's tests. Exit status: 0 success,
//! 1 a module or text was rejected, 2 usage or I/O error.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use wasm::bundle::{self, BundleEntry};
use wasm::manifest::{with_manifest, Manifest};

fn usage() -> ExitCode {
    eprintln!(
        "usage: wasm_pack pack [--modules DIR] [--out FILE]\n       \
         wasm_pack compile FILE.wat [--manifest FILE] [--out FILE.wasm]\n       \
         wasm_pack bench [--json] [--calls N]"
    );
    ExitCode::from(2)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Default bundle path: beside the other build outputs, outside git.
fn default_bundle_path() -> PathBuf {
    workspace_root().join("target/wasm_modules.anwb")
}

fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Compiles every `NAME.wat` with its `NAME.manifest` into (name, module) pairs, sorted.
fn build_modules(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "wat").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    let mut modules = Vec::new();
    for name in names {
        let wat_path = dir.join(format!("{name}.wat"));
        let manifest_path = dir.join(format!("{name}.manifest"));
        let module =
            wat::parse_file(&wat_path).map_err(|e| format!("{}: {e}", wat_path.display()))?;
        let text = std::fs::read(&manifest_path).map_err(|e| {
            format!(
                "{}: {e} (every module needs a manifest)",
                manifest_path.display()
            )
        })?;
        let manifest =
            Manifest::parse(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        let module = with_manifest(&module, &manifest).map_err(|e| format!("{name}: {e}"))?;
        modules.push((name, module));
    }
    Ok(modules)
}

fn pack(args: &[String]) -> ExitCode {
    let dir = option(args, "--modules")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("extensions/wasm/modules"));
    let out = option(args, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(default_bundle_path);
    let modules = match build_modules(&dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("wasm_pack: {e}");
            return ExitCode::from(1);
        }
    };
    let entries: Vec<BundleEntry> = modules
        .iter()
        .map(|(name, module)| BundleEntry { name, module })
        .collect();
    let bytes = match bundle::encode(&entries) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("wasm_pack: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(e) = std::fs::write(&out, &bytes) {
        eprintln!("wasm_pack: {}: {e}", out.display());
        return ExitCode::from(2);
    }
    for (name, module) in &modules {
        println!("packed {name} ({} bytes)", module.len());
    }
    println!(
        "wrote {} ({} modules, {} bytes)",
        out.display(),
        modules.len(),
        bytes.len()
    );
    ExitCode::SUCCESS
}

fn compile(args: &[String]) -> ExitCode {
    let Some(source_path) = args.first() else {
        return usage();
    };
    let source = match std::fs::read_to_string(source_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wasm_pack: {source_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let module = match wasm::wat::compile(&source) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{source_path}:{}:{}: {}", e.line, e.column, e.kind);
            return ExitCode::from(1);
        }
    };
    let module = match option(args, "--manifest") {
        None => module,
        Some(path) => {
            let manifest = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|t| Manifest::parse(&t).map_err(|e| e.to_string()));
            match manifest.and_then(|m| with_manifest(&module, &m).map_err(|e| e.to_string())) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("wasm_pack: {path}: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    let out = option(args, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(source_path).with_extension("wasm"));
    if let Err(e) = std::fs::write(&out, &module) {
        eprintln!("wasm_pack: {}: {e}", out.display());
        return ExitCode::from(2);
    }
    println!("wrote {} ({} bytes)", out.display(), module.len());
    ExitCode::SUCCESS
}

fn bench(args: &[String]) -> ExitCode {
    let json = args.iter().any(|a| a == "--json");
    let calls = match option(args, "--calls").map(str::parse::<u32>) {
        None => 20_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };
    let start = Instant::now();
    let mut clock = || start.elapsed().as_nanos() as u64;
    match wasm::bench::run(&mut clock, calls, &[100, 10_000, 1_000_000]) {
        Ok(results) => {
            for r in results {
                println!("{}", if json { r.json() } else { r.text() });
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm_pack bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("pack") => pack(&args[1..]),
        Some("compile") => compile(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_bundle_holds_every_module_with_a_manifest() {
        let dir = workspace_root().join("extensions/wasm/modules");
        let modules = build_modules(&dir).unwrap();
        let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
        for required in ["forbidden", "grow", "hello", "sched_slice", "spin"] {
            assert!(
                names.contains(&required),
                "{required} missing from {names:?}"
            );
        }
        let entries: Vec<BundleEntry> = modules
            .iter()
            .map(|(name, module)| BundleEntry { name, module })
            .collect();
        let bytes = bundle::encode(&entries).unwrap();
        let parsed = bundle::parse(&bytes).unwrap();
        assert_eq!(parsed.len(), modules.len());
        for entry in parsed {
            assert!(
                Manifest::from_module(entry.module).is_ok(),
                "{}",
                entry.name
            );
        }
    }

    #[test]
    fn a_module_without_a_manifest_is_refused() {
        let dir = std::env::temp_dir().join(format!("wasm_pack_test_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("lonely.wat"), "(module)").unwrap();
        let err = build_modules(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("lonely.manifest") && err.contains("needs a manifest"),
            "{err}"
        );
    }
}
