//! Finding a compiler for the kernel and building it (TOOLCHAIN.md): the rustup route
//! first, the Debian build-std route as the fallback.
//!
//! Rustup route: the pinned toolchain (rust-toolchain.toml) plus its prebuilt
//! `aarch64-unknown-none` library. xtask checks that the library is really there (rustup
//! may skip a missing target silently when auto-install is off) and runs
//! `rustup target add` itself, with a time limit, when it is not.
//!
//! Debian fallback: bookworm's `rustc-web`/`cargo-web` (Rust 1.96 with `rust-web-src`)
//! builds core and alloc from source with `-Zbuild-std`, links with `ld.lld`, in its own
//! target directory (the host crates are built by the rustup compiler; sharing a target
//! directory would rebuild everything on every switch).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::{limits, paths, prereq, process};

/// The kernel's target triple.
pub const KERNEL_TARGET: &str = "aarch64-unknown-none";
/// The kernel's package and binary names (the contract with the kernel engineer).
pub const KERNEL_PACKAGE: &str = "kernel";
/// See [`KERNEL_PACKAGE`].
pub const KERNEL_BINARY: &str = "anneal";
/// Environment variable naming a prebuilt kernel ELF to use instead of building one
/// (for bisecting, or for testing xtask with a hand-made kernel).
pub const KERNEL_ELF_OVERRIDE: &str = "ANNEAL_KERNEL_ELF";

/// Which way the kernel was (or is to be) compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// rustup's pinned toolchain with the prebuilt target library.
    Rustup,
    /// Debian's rustc-web with build-std.
    DebianFallback,
    /// A prebuilt ELF given through [`KERNEL_ELF_OVERRIDE`].
    Prebuilt,
}

/// What the user asked for with `--toolchain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Rustup when it works, else the fallback.
    Auto,
    /// Only the Debian fallback (CI uses it once so it keeps working).
    Fallback,
}

impl Choice {
    /// Parses `--toolchain auto|rustup|fallback`.
    pub fn parse(value: &str) -> Result<Choice> {
        match value {
            "auto" | "rustup" => Ok(Choice::Auto),
            "fallback" | "debian" => Ok(Choice::Fallback),
            other => Err(Error::Usage(format!(
                "--toolchain {other}: use auto (rustup first) or fallback (Debian build-std)"
            ))),
        }
    }
}

/// A built kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The ELF.
    pub elf: PathBuf,
    /// The raw image written from it.
    pub image: PathBuf,
    /// Its size in bytes.
    pub image_bytes: u64,
    /// How it was compiled.
    pub route: Route,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The rustup toolchain's library directory for `target`.
fn rustup_target_lib(target: &str) -> Option<PathBuf> {
    let mut rustc = Command::new("rustc");
    rustc
        .args(["--print", "sysroot"])
        .current_dir(paths::root());
    let sysroot = process::output(&mut rustc).ok()?;
    Some(
        Path::new(sysroot.trim())
            .join("lib/rustlib")
            .join(target)
            .join("lib"),
    )
}

fn dir_has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Makes sure the pinned rustup toolchain has `target`'s library, running `rustup target
/// add` (with a time limit) when it is missing. `Err` says why it cannot be had.
pub fn ensure_rustup_target(target: &str) -> std::result::Result<(), String> {
    let Some(lib) = rustup_target_lib(target) else {
        return Err("no working rustc on PATH".into());
    };
    if dir_has_files(&lib) {
        return Ok(());
    }
    if process::which("rustup").is_none() {
        return Err(format!(
            "{} is missing and there is no rustup",
            lib.display()
        ));
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", target])
        .current_dir(paths::root());
    match process::run_with_timeout(&mut add, limits::RUSTUP_TARGET_ADD_TIMEOUT) {
        Ok(()) if dir_has_files(&lib) => Ok(()),
        Ok(()) => Err(format!("target added but {} is still empty", lib.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// Makes sure the rustup route can build the kernel; false when it cannot.
fn rustup_route_ready() -> bool {
    match ensure_rustup_target(KERNEL_TARGET) {
        Ok(()) => true,
        Err(why) => {
            process::step(&format!("rustup route unavailable: {why}"));
            false
        }
    }
}

fn build_with_rustup(verbosity: Verbosity) -> Result<PathBuf> {
    process::step("toolchain: rustup route (pinned toolchain + prebuilt aarch64-unknown-none)");
    let mut build = Command::new(cargo());
    build
        .args([
            "build",
            "--release",
            "-p",
            KERNEL_PACKAGE,
            "--target",
            KERNEL_TARGET,
        ])
        .current_dir(paths::root());
    run_build(&mut build, verbosity)?;
    Ok(paths::target_dir()
        .join(KERNEL_TARGET)
        .join("release")
        .join(KERNEL_BINARY))
}

/// Debian's compiler, its library source and ld.lld; installed when missing.
fn ensure_fallback_toolchain() -> Result<()> {
    let ready = Path::new("/usr/bin/rustc").is_file()
        && Path::new("/usr/bin/cargo").is_file()
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
        && process::which("ld.lld").is_some();
    if ready {
        return Ok(());
    }
    process::step("Debian fallback route: installing rustc-web cargo-web rust-web-src lld");
    prereq::apt_install(&["rustc-web", "cargo-web", "rust-web-src", "lld"], None)
}

fn build_with_debian(verbosity: Verbosity) -> Result<PathBuf> {
    ensure_fallback_toolchain()?;
    process::step("toolchain: Debian fallback route (rustc-web + build-std, linked by ld.lld)");
    let target_dir = paths::fallback_target_dir();
    let mut build = Command::new("/usr/bin/cargo");
    build
        .args([
            "build",
            "--release",
            "-p",
            KERNEL_PACKAGE,
            "--target",
            KERNEL_TARGET,
            "-Zbuild-std=core,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
        ])
        .current_dir(paths::root())
        // Nothing of the rustup toolchain may leak into this build.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC_WRAPPER")
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_NONE_LINKER", "ld.lld");
    run_build(&mut build, verbosity)?;
    Ok(target_dir
        .join(KERNEL_TARGET)
        .join("release")
        .join(KERNEL_BINARY))
}

/// How much of cargo's output a kernel build shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Everything (build, test, setup).
    Full,
    /// Only on failure (run: the console should start with the QEMU command line, not
    /// with the compiler's warnings).
    OnFailure,
}

fn run_build(command: &mut Command, verbosity: Verbosity) -> Result<()> {
    match verbosity {
        Verbosity::Full => process::run(command),
        Verbosity::OnFailure => {
            let output = command.output().map_err(|source| Error::Spawn {
                program: command.get_program().to_string_lossy().into_owned(),
                source,
            })?;
            if output.status.success() {
                return Ok(());
            }
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            Err(Error::CommandFailed {
                command: process::describe(command),
                status: output.status.code(),
            })
        }
    }
}

/// Builds the kernel by the chosen route and writes the raw image.
pub fn build_kernel(choice: Choice) -> Result<Kernel> {
    build_kernel_with(choice, Verbosity::Full)
}

/// [`build_kernel`] with a choice of how much cargo output to show.
pub fn build_kernel_with(choice: Choice, verbosity: Verbosity) -> Result<Kernel> {
    let (elf, route) = match std::env::var_os(KERNEL_ELF_OVERRIDE).filter(|v| !v.is_empty()) {
        Some(elf) => {
            process::step(&format!(
                "kernel: using the prebuilt ELF {} ({KERNEL_ELF_OVERRIDE} is set)",
                Path::new(&elf).display()
            ));
            (PathBuf::from(elf), Route::Prebuilt)
        }
        None => match choice {
            Choice::Fallback => (build_with_debian(verbosity)?, Route::DebianFallback),
            Choice::Auto if rustup_route_ready() => (build_with_rustup(verbosity)?, Route::Rustup),
            Choice::Auto => {
                process::step("rustup route not available: taking the Debian fallback route");
                (build_with_debian(verbosity)?, Route::DebianFallback)
            }
        },
    };
    let image = paths::image();
    let image_bytes = crate::image::write_raw_image(&elf, &image)?;
    process::step(&format!(
        "image: {} ({image_bytes} bytes) from {}",
        image.display(),
        elf.display()
    ));
    Ok(Kernel {
        elf,
        image,
        image_bytes,
        route,
    })
}
