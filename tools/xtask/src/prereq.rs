//! Installing what a fresh Debian bookworm machine lacks, printing each step; quiet and
//! fast when nothing is missing (a second run only probes).
//!
//! Only package registries are used: Debian's archive through apt (QEMU 10 from
//! bookworm-backports; the Raspberry Pi 4 device tree out of Debian's arm64 kernel
//! package) and PyPI through pip (the default model, see `models.rs`). The backports
//! source is written from the machine's own Debian entry (its URIs and Signed-By), so no
//! host name is written into the project.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{io, Error, Result};
use crate::{limits, paths, process};

/// A program the project needs and the Debian package that has it.
struct Tool {
    program: &'static str,
    package: &'static str,
    why: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        program: "ld.lld",
        package: "lld",
        why: "links the kernel on the Debian fallback route",
    },
    Tool {
        program: "clang",
        package: "clang",
        why: "compiles C eBPF programs (clang -target bpf)",
    },
    Tool {
        program: "dtc",
        package: "device-tree-compiler",
        why: "reads and checks device trees",
    },
    Tool {
        program: "gdb-multiarch",
        package: "gdb-multiarch",
        why: "debugs the kernel (qemu.sh --gdb)",
    },
    Tool {
        program: "aarch64-linux-gnu-objdump",
        package: "binutils-aarch64-linux-gnu",
        why: "disassembles the kernel and JIT output",
    },
    Tool {
        program: "wat2wasm",
        package: "wabt",
        why: "compiles WAT test modules",
    },
];

/// Set once `apt-get update` ran in this process.
static APT_UPDATED: AtomicBool = AtomicBool::new(false);

fn privileged(program: &str) -> Result<Command> {
    if process::is_root() {
        return Ok(Command::new(program));
    }
    if process::which("sudo").is_some() {
        let mut command = Command::new("sudo");
        command.arg(program);
        return Ok(command);
    }
    Err(Error::Prerequisite(format!(
        "{program} needs root and there is no sudo: run `cargo xtask setup` as root"
    )))
}

fn apt_update(force: bool) -> Result<()> {
    if APT_UPDATED.load(Ordering::Relaxed) && !force {
        return Ok(());
    }
    let mut update = privileged("apt-get")?;
    update.args(["update", "-q"]);
    process::run(&mut update)?;
    APT_UPDATED.store(true, Ordering::Relaxed);
    Ok(())
}

/// `apt-get install -y PACKAGES` (from `suite` when given), after one `apt-get update`.
pub fn apt_install(packages: &[&str], suite: Option<&str>) -> Result<()> {
    if process::which("apt-get").is_none() {
        return Err(Error::Prerequisite(format!(
            "no apt-get here (not Debian?): install {} yourself",
            packages.join(" ")
        )));
    }
    apt_update(false)?;
    let mut install = privileged("apt-get")?;
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q"]);
    if let Some(suite) = suite {
        install.args(["-t", suite]);
    }
    install.args(packages);
    process::run(&mut install)
}

/// The machine's Debian codename (e.g. `bookworm`).
fn codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// QEMU's major version, when it is installed.
fn qemu_major() -> Option<u32> {
    let text = process::probe("qemu-system-aarch64", &["--version"])?;
    let version = text.split("version ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

/// URIs and Signed-By of the machine's main Debian entry, from deb822 sources or the
/// one-line sources.list.
pub fn debian_entry(
    deb822: Option<&str>,
    one_line: Option<&str>,
    codename: &str,
) -> Option<(String, Option<String>)> {
    if let Some(text) = deb822 {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            let suites = field("Suites:").unwrap_or_default();
            if suites.split_whitespace().any(|s| s == codename) {
                if let Some(uris) = field("URIs:") {
                    return Some((uris, field("Signed-By:")));
                }
            }
        }
    }
    for line in one_line?.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let (options, rest) = match rest.trim_start().strip_prefix('[') {
            Some(after) => match after.split_once(']') {
                Some((opts, rest)) => (Some(opts.to_string()), rest.trim_start()),
                None => continue,
            },
            None => (None, rest.trim_start()),
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() >= 2 && words[1] == codename {
            let signed_by = options.and_then(|o| {
                o.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("signed-by=").map(str::to_string))
            });
            return Some((words[0].to_string(), signed_by));
        }
    }
    None
}

/// The deb822 stanza for `<codename>-backports`.
pub fn backports_stanza(uris: &str, signed_by: Option<&str>, codename: &str) -> String {
    let mut text = format!(
        "# Written by `cargo xtask setup`: QEMU 10 (machine raspi4b) comes from backports.\n\
         Types: deb\nURIs: {uris}\nSuites: {codename}-backports\nComponents: main\n"
    );
    if let Some(key) = signed_by {
        text.push_str(&format!("Signed-By: {key}\n"));
    }
    text
}

fn backports_configured(codename: &str) -> bool {
    let suite = format!("{codename}-backports");
    let mut files: Vec<PathBuf> = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
    }
    files.iter().any(|f| {
        let name = f.to_string_lossy();
        (name.ends_with(".list") || name.ends_with(".sources"))
            && std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .any(|l| l.split_whitespace().any(|w| w == suite))
            })
    })
}

fn ensure_qemu() -> Result<()> {
    if qemu_major().is_some_and(|major| major >= limits::MIN_QEMU_MAJOR) {
        return Ok(());
    }
    match qemu_major() {
        Some(major) => process::step(&format!(
            "QEMU {major} is too old (no raspi4b / unchecked boot path): installing QEMU {}",
            limits::MIN_QEMU_MAJOR
        )),
        None => process::step("qemu-system-aarch64 is missing: installing QEMU"),
    }
    let codename = codename().unwrap_or_default();
    if codename == "bookworm" {
        if !backports_configured(&codename) {
            let deb822 = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok();
            let one_line = std::fs::read_to_string("/etc/apt/sources.list").ok();
            let (uris, signed_by) = debian_entry(deb822.as_deref(), one_line.as_deref(), &codename)
                .ok_or_else(|| {
                    Error::Prerequisite(
                        "cannot find the Debian bookworm entry in /etc/apt/sources.list(.d) to reuse for backports"
                            .into(),
                    )
                })?;
            let stanza = backports_stanza(&uris, signed_by.as_deref(), &codename);
            let target = Path::new("/etc/apt/sources.list.d/anneal-backports.sources");
            process::step(&format!(
                "adding {} (suite bookworm-backports, URIs {uris})",
                target.display()
            ));
            write_privileged(target, &stanza)?;
            apt_update(true)?;
        }
        apt_install(&["qemu-system-arm"], Some("bookworm-backports"))?;
    } else {
        apt_install(&["qemu-system-arm"], None)?;
    }
    match qemu_major() {
        Some(major) if major >= limits::MIN_QEMU_MAJOR => Ok(()),
        other => Err(Error::Prerequisite(format!(
            "QEMU {} or newer is needed, found {other:?} after installing",
            limits::MIN_QEMU_MAJOR
        ))),
    }
}

fn write_privileged(path: &Path, text: &str) -> Result<()> {
    if process::is_root() {
        return std::fs::write(path, text).map_err(io("write", path));
    }
    let temp = std::env::temp_dir().join("anneal-backports.sources");
    std::fs::write(&temp, text).map_err(io("write", &temp))?;
    let mut copy = privileged("cp")?;
    copy.arg(&temp).arg(path);
    process::run(&mut copy)
}

/// pip for the model download.
pub fn ensure_pip() -> Result<()> {
    if process::probe("python3", &["-m", "pip", "--version"]).is_some() {
        return Ok(());
    }
    process::step("pip is missing: installing python3-pip");
    apt_install(&["python3-pip"], None)
}

/// The Raspberry Pi 4 device tree, from Debian's arm64 kernel package, cached in
/// models/cache/.
pub fn ensure_rpi4_dtb() -> Result<PathBuf> {
    let cached = paths::rpi4_dtb();
    if cached.is_file() {
        return Ok(cached);
    }
    process::step("bcm2711-rpi-4-b.dtb is missing: taking it from Debian's arm64 kernel package");
    let foreign = process::probe("dpkg", &["--print-foreign-architectures"]).unwrap_or_default();
    if !foreign.split_whitespace().any(|a| a == "arm64") {
        let mut add = privileged("dpkg")?;
        add.args(["--add-architecture", "arm64"]);
        process::run(&mut add)?;
        apt_update(true)?;
    } else {
        apt_update(false)?;
    }
    let mut search = Command::new("apt-cache");
    search.args([
        "search",
        "--names-only",
        "^linux-image-[0-9.]+-[0-9]+-arm64-unsigned$",
    ]);
    let listing = process::output(&mut search)?;
    let package = newest_kernel_package(&listing).ok_or_else(|| {
        Error::Prerequisite("apt-cache finds no linux-image-*-arm64-unsigned package".into())
    })?;
    let work = std::env::temp_dir().join(format!("anneal-dtb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io("create", &work))?;
    let mut download = Command::new("apt-get");
    download
        .args(["download", "-q", &format!("{package}:arm64")])
        .current_dir(&work);
    process::run(&mut download)?;
    let deb = std::fs::read_dir(&work)
        .map_err(io("list", &work))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| {
            Error::Prerequisite(format!(
                "apt-get download left no .deb in {}",
                work.display()
            ))
        })?;
    let mut extract = Command::new("sh");
    extract
        .args([
            "-c",
            "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards '*/bcm2711-rpi-4-b.dtb'",
            "sh",
        ])
        .arg(&deb)
        .arg(&work);
    process::run(&mut extract)?;
    let found = find_file(&work, "bcm2711-rpi-4-b.dtb").ok_or_else(|| {
        Error::Prerequisite(format!("{} holds no bcm2711-rpi-4-b.dtb", deb.display()))
    })?;
    let cache = paths::cache_dir();
    std::fs::create_dir_all(&cache).map_err(io("create", &cache))?;
    std::fs::copy(&found, &cached).map_err(io("copy the device tree to", &cached))?;
    let _ = std::fs::remove_dir_all(&work);
    process::step(&format!(
        "device tree: {} (from {package})",
        cached.display()
    ));
    Ok(cached)
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Picks the newest `linux-image-X.Y.Z-N-arm64-unsigned` from `apt-cache search` output.
pub fn newest_kernel_package(listing: &str) -> Option<String> {
    let version_key = |name: &str| -> Vec<u64> {
        name.trim_start_matches("linux-image-")
            .split(['.', '-'])
            .map_while(|part| part.parse().ok())
            .collect()
    };
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with("linux-image-") && name.ends_with("-arm64-unsigned"))
        .max_by_key(|name| version_key(name))
        .map(str::to_string)
}

/// Installs every missing Debian tool (one apt-get call) and QEMU 10.
pub fn ensure_tools() -> Result<()> {
    ensure_debian_tools()?;
    ensure_qemu()
}

/// Installs every missing Debian tool (one apt-get call): clang for the eBPF C samples, wabt,
/// lld and the rest of [`TOOLS`].
pub fn ensure_debian_tools() -> Result<()> {
    let missing: Vec<&Tool> = TOOLS
        .iter()
        .filter(|t| process::which(t.program).is_none())
        .collect();
    if !missing.is_empty() {
        for tool in &missing {
            process::step(&format!(
                "{} is missing ({}): installing {}",
                tool.program, tool.why, tool.package
            ));
        }
        let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
        apt_install(&packages, None)?;
    }
    Ok(())
}

/// The target the NEON unit tests are built for (std, so libtest runs; the kernels are the
/// same code the kernel runs).
pub const NEON_TEST_TARGET: &str = "aarch64-unknown-linux-gnu";

/// The linker for [`NEON_TEST_TARGET`] (Debian's cross gcc, package gcc-aarch64-linux-gnu).
pub const NEON_TEST_LINKER: &str = "aarch64-linux-gnu-gcc";

/// Where Debian's arm64 cross libc lives (package libc6-dev-arm64-cross).
const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The cargo runner for [`NEON_TEST_TARGET`]: qemu-aarch64 as the board's CPU.
pub fn neon_test_runner() -> String {
    format!("qemu-aarch64 -cpu cortex-a72 -L {ARM64_SYSROOT}")
}

/// Installs what the `neon` suite needs: the rustup target, the cross linker and libc, and
/// qemu-aarch64 (user mode, from the same suite as qemu-system).
pub fn ensure_neon_tests() -> Result<()> {
    crate::toolchain::ensure_rustup_target(NEON_TEST_TARGET).map_err(|why| {
        Error::Prerequisite(format!(
            "the {NEON_TEST_TARGET} library for the NEON tests cannot be had: {why}"
        ))
    })?;
    let crt = Path::new(ARM64_SYSROOT).join("lib/crt1.o");
    let mut packages = Vec::new();
    if process::which(NEON_TEST_LINKER).is_none() {
        packages.push("gcc-aarch64-linux-gnu");
    }
    if !crt.is_file() {
        packages.push("libc6-dev-arm64-cross");
    }
    if !packages.is_empty() {
        process::step(&format!(
            "the NEON tests need a cross linker and libc: installing {}",
            packages.join(" ")
        ));
        apt_install(&packages, None)?;
    }
    if process::which("qemu-aarch64").is_none() {
        process::step("qemu-aarch64 (user mode) is missing: installing qemu-user");
        ensure_qemu()?;
        let codename = codename().unwrap_or_default();
        let suite = (codename == "bookworm").then_some("bookworm-backports");
        apt_install(&["qemu-user"], suite)?;
    }
    Ok(())
}

/// Everything `run`, `test`, `bench` and `image` need: tools, QEMU, the device tree and
/// the default model.
pub fn ensure_all() -> Result<()> {
    ensure_tools()?;
    ensure_rpi4_dtb()?;
    crate::models::ensure(&crate::models::default_model()?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_deb822_debian_entry() {
        let deb822 = "Types: deb\n# snapshot\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                      Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
        let (uris, key) = debian_entry(Some(deb822), None, "bookworm").expect("entry");
        assert_eq!(uris, "http://mirror.example/debian");
        assert_eq!(
            key.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        let stanza = backports_stanza(&uris, key.as_deref(), "bookworm");
        assert!(stanza.contains("Suites: bookworm-backports\n"));
        assert!(stanza.contains("URIs: http://mirror.example/debian\n"));
        assert!(stanza.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
    }

    #[test]
    fn reuses_a_one_line_sources_list_entry() {
        let list = "# comment\ndeb-src http://m.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n";
        let (uris, key) = debian_entry(None, Some(list), "bookworm").expect("entry");
        assert_eq!(uris, "http://m.example/debian");
        assert_eq!(key.as_deref(), Some("/k.gpg"));
        let plain = "deb http://m.example/debian bookworm main\n";
        assert_eq!(
            debian_entry(None, Some(plain), "bookworm"),
            Some(("http://m.example/debian".into(), None))
        );
        assert_eq!(debian_entry(None, Some(plain), "trixie"), None);
    }

    #[test]
    fn picks_the_newest_arm64_kernel_package() {
        let listing =
            "linux-image-6.1.0-9-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines (unsigned)\n\
                       linux-image-6.1.0-37-arm64-unsigned - Linux 6.1 (unsigned)\n\
                       linux-image-6.1.0-10-arm64-unsigned - Linux 6.1 (unsigned)\n\
                       linux-image-6.12.30-arm64-unsigned - backports\n";
        assert_eq!(
            newest_kernel_package(listing).as_deref(),
            Some("linux-image-6.12.30-arm64-unsigned")
        );
        assert_eq!(newest_kernel_package(""), None);
    }
}
