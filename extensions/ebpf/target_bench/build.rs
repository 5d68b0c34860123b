//! Link the `system` harness with its bare-metal layout (the user-mode binary keeps the
//! default static layout).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rustc-link-arg-bin=system=-T{dir}/link_system.ld");
    println!("cargo:rerun-if-changed=link_system.ld");
}
