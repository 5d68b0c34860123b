//! Passes the linker script in boot/ to the linker, but only for the bare-metal target, so
//! `cargo check` of the workspace on the host does not try to link a host binary with it.
//!
//! It also builds the EL0 task programs of `user/` (assembly: `clang` + `ld.lld`, see
//! user/README.md) into `$OUT_DIR` and writes `user_tasks.rs`, the table of embedded images the
//! kernel's `spawn` reads. Missing tools leave the table empty (with a warning), never a failed
//! kernel build.

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
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    build_user_tasks(
        std::path::Path::new(&manifest_dir),
        std::path::Path::new(&out_dir),
        target == "aarch64-unknown-none",
    );
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

/// The task programs, by name (user/NAME.S).
const USER_TASKS: [&str; 11] = [
    "supervisor",
    "hello",
    "spin",
    "fault",
    "undef",
    "fuzz",
    "ping",
    "pong",
    "latency",
    "syscall",
    "switch",
];

/// Files the task programs `#include` (user/NAME).
const USER_INCLUDES: [&str; 1] = ["common.S"];

fn run_tool(program: &str, arguments: &[&std::ffi::OsStr]) -> Result<(), String> {
    match std::process::Command::new(program).args(arguments).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("{program} not runnable: {error}")),
    }
}

fn build_user_tasks(manifest_dir: &std::path::Path, out_dir: &std::path::Path, wanted: bool) {
    let mut entries = String::new();
    for include in USER_INCLUDES {
        let path = manifest_dir.join("user").join(include);
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for name in USER_TASKS {
        let source = manifest_dir.join("user").join(format!("{name}.S"));
        println!("cargo:rerun-if-changed={}", source.display());
        if !wanted {
            continue;
        }
        let object = out_dir.join(format!("{name}.o"));
        let elf = out_dir.join(format!("{name}.elf"));
        let built = run_tool(
            "clang",
            &[
                "--target=aarch64-none-elf".as_ref(),
                "-c".as_ref(),
                source.as_os_str(),
                "-o".as_ref(),
                object.as_os_str(),
            ],
        )
        .and_then(|()| {
            run_tool(
                "ld.lld",
                &[
                    "-static".as_ref(),
                    "-e".as_ref(),
                    "_start".as_ref(),
                    "--image-base=0x10000".as_ref(),
                    "-z".as_ref(),
                    "max-page-size=4096".as_ref(),
                    "-z".as_ref(),
                    "separate-code".as_ref(),
                    object.as_os_str(),
                    "-o".as_ref(),
                    elf.as_os_str(),
                ],
            )
        });
        match built {
            Ok(()) => entries.push_str(&format!(
                "    (\"{name}\", include_bytes!({:?})),\n",
                elf.display().to_string()
            )),
            Err(error) => println!("cargo:warning=user task {name} not built: {error}"),
        }
    }
    let table = format!(
        "/// Embedded EL0 task images (name, ELF), built by build.rs from user/*.S.\n\
         pub static USER_IMAGES: &[(&str, &[u8])] = &[\n{entries}];\n"
    );
    if let Err(error) = std::fs::write(out_dir.join("user_tasks.rs"), table) {
        println!("cargo:warning=cannot write user_tasks.rs: {error}");
    }
}
