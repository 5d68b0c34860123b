//! Passes the linker script in boot/ to the linker, but only for the bare-metal target, so
//! `cargo check` of the workspace on the host does not try to link a host binary with it.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let boot = std::path::Path::new(&manifest_dir).join("..").join("boot");
    println!(
        "cargo:rerun-if-changed={}",
        boot.join("kernel.ld").display()
    );
    println!("cargo:rerun-if-changed={}", boot.join("entry.S").display());
    println!("cargo:rerun-if-changed=src/arch/aarch64/exception_vectors.S");
    if target == "aarch64-unknown-none" {
        println!(
            "cargo:rustc-link-arg-bins=-T{}",
            boot.join("kernel.ld").display()
        );
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-z");
        println!("cargo:rustc-link-arg-bins=max-page-size=4096");
    }
}
