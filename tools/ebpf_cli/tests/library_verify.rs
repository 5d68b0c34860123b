//! Every sample extension in extensions/library/ebpf must pass the verifier with its hook's
//! context size: the samples are examples for people and few-shot material for the model,
//! so a sample the verifier rejects teaches the wrong thing.
//!
//! C samples are compiled with `clang -target bpf -O2 -g` (Debian package clang) and
//! verified as ELF objects (their maps come from the object); assembly samples that use no
//! maps are verified from source.

use std::path::PathBuf;
use std::process::Command;

fn library() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../extensions/library/ebpf")
}

fn verify(path: &std::path::Path, ctx_size: u32, writable: bool) -> (Option<i32>, String) {
    let size = ctx_size.to_string();
    let mut args = vec!["verify", "--ctx-size", size.as_str()];
    if writable {
        args.push("--ctx-writable");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ebpf"))
        .args(&args)
        .arg(path)
        .output()
        .expect("run ebpf");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn compile(name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("verify_{name}.o"));
    let status = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(library().join(format!("{name}.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("clang must be installed (Debian package clang) to build the C samples");
    assert!(status.success(), "clang failed on {name}.c");
    out
}

/// (sample, context size in bytes of its hook's struct, context writable)
const C_SAMPLES: &[(&str, u32, bool)] = &[
    ("sched_slice", 32, false),    // struct sched_slice_ctx
    ("packet_counter", 12, false), // struct packet_ctx
    ("events", 16, false),         // struct syscall_ctx
];

#[test]
fn c_samples_pass_the_verifier() {
    for &(name, ctx_size, writable) in C_SAMPLES {
        let object = compile(name);
        let (code, text) = verify(&object, ctx_size, writable);
        assert_eq!(code, Some(0), "{name}.c: {text}");
        assert_eq!(text.trim(), "ACCEPT", "{name}.c");
    }
}

#[test]
fn map_free_assembly_samples_pass_the_verifier() {
    let (code, text) = verify(&library().join("slice_simple.s"), 32, false);
    assert_eq!(code, Some(0), "slice_simple.s: {text}");
    assert_eq!(text.trim(), "ACCEPT");
}

#[test]
fn a_sample_with_too_small_a_context_is_rejected() {
    // sched_slice reads nr_running at offset 24: with a 16-byte context that read is out of
    // bounds, and the verifier must say so rather than accept.
    let (code, text) = verify(&library().join("slice_simple.s"), 16, false);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("REJECT insn="), "{text}");
}
