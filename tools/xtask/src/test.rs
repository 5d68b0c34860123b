//! `cargo xtask test`: every test of the project, ending with ONE line
//! `N passed, N failed` and a non-zero exit on any failure.
//!
//! The run is a list of suites ([`suites`]). Each suite is a command whose output is
//! streamed to the terminal and counted: libtest's `test result: ... N passed; M failed`
//! lines, and for other runners a plain `N passed, M failed` line. A suite that exits
//! non-zero without reporting a failed test (a build error, a crashed runner) counts as
//! one failure, so nothing red can end green.
//!
//! Adding tests:
//! - Host tests and data-driven conformance runners (eBPF, inference golden tests) are
//!   ordinary `#[test]`s in a default workspace member: the `host` suite runs them all.
//! - QEMU tests go in tests/integration/tests/qemu/ (see its main.rs): the `qemu` suite.
//! - Anything else (an external runner): add a [`Suite`] to [`suites`] whose command
//!   prints libtest lines or one `N passed, M failed` line and exits non-zero on failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::{models, paths, prereq, process, toolchain};

/// What suites may need, prepared once before they run.
pub struct Context {
    /// The raw kernel image.
    pub image: PathBuf,
    /// The Raspberry Pi 4 device tree.
    pub rpi4_dtb: PathBuf,
    /// The default model.
    pub model: PathBuf,
    /// libtest name filters (`--filter`): only tests whose name contains one of them run.
    pub filters: Vec<String>,
    /// The synthetic TinyLlama-1.1B-shaped model (written by gguf_synth, cached).
    pub tinyllama: PathBuf,
}

/// One group of tests.
pub struct Suite {
    /// Name for `--suite` and the summary.
    pub name: &'static str,
    /// What it covers (for `--help` and the summary).
    pub about: &'static str,
    /// Whether it needs the kernel image, device tree and model (built/fetched first).
    pub needs_kernel: bool,
    /// Installs what the suite itself needs (beyond cargo); a failure counts as one failed
    /// test of the suite, with its message, never as a skip.
    pub prepare: fn() -> Result<()>,
    /// The command that runs it.
    pub command: fn(&Context) -> Command,
    /// How its output is counted.
    pub counting: Counting,
}

/// Which summary lines of a suite's output are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counting {
    /// Only libtest's `test result:` lines (a failing test's own output may contain
    /// text like "3 passed, 1 failed" that must not be added).
    Libtest,
    /// libtest lines and plain `N passed, M failed` lines (external runners).
    #[allow(dead_code)] // for runners that print a plain summary; none is registered yet
    LibtestAndPlain,
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(paths::root());
    command
}

/// `cargo test --profile hosttest --no-fail-fast ARGS...` (every libtest suite's command).
fn hosttest(args: &[&str]) -> Command {
    let mut command = cargo();
    command
        .args(["test", "--profile", "hosttest", "--no-fail-fast"])
        .args(args);
    command
}

/// Threads for the QEMU tests: the host's cores (each QEMU runs its vCPUs as threads; on
/// 2 cores, two QEMUs at a time keep both busy without starving either).
fn qemu_test_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Every suite, in the order they run.
pub fn suites() -> Vec<Suite> {
    vec![
        Suite {
            name: "host",
            about: "unit, conformance and golden tests of every default workspace member (cargo test --profile hosttest)",
            needs_kernel: false,
            prepare: prepare_host,
            counting: Counting::Libtest,
            command: |context| {
                let mut c = hosttest(&[]);
                if !context.filters.is_empty() {
                    c.arg("--").args(&context.filters);
                }
                // wasmi's executor keeps large frames when debug assertions are on (the
                // hosttest profile), and a long wasm loop overflows libtest's default 2 MiB
                // thread stack (seen in the wasm crate's console and module tests); give
                // test threads 16 MiB.
                c.env("RUST_MIN_STACK", "16777216");
                c
            },
        },
        Suite {
            name: "neon",
            about: "the inference engine's unit tests built for aarch64-unknown-linux-gnu under qemu-aarch64 (cortex-a72): NEON kernels against the portable ones, bit for bit",
            needs_kernel: false,
            prepare: prereq::ensure_neon_tests,
            counting: Counting::Libtest,
            command: |context| {
                let mut c = hosttest(&["-p", "llm", "--lib", "--target", prereq::NEON_TEST_TARGET]);
                c.env(
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                    prereq::NEON_TEST_LINKER,
                )
                .env(
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER",
                    prereq::neon_test_runner(),
                );
                if !context.filters.is_empty() {
                    c.arg("--").args(&context.filters);
                }
                c
            },
        },
        Suite {
            name: "qemu",
            about: "QEMU integration tests on virt and raspi4b (tests/integration/tests/qemu)",
            needs_kernel: true,
            prepare: || Ok(()),
            counting: Counting::Libtest,
            command: |context| {
                let mut c = hosttest(&[
                    "-p",
                    "integration",
                    "--features",
                    "qemu",
                    "--test",
                    "qemu",
                    "--",
                    "--test-threads",
                ]);
                c.arg(qemu_test_threads().to_string())
                .args(&context.filters)
                .env(integration::artifacts::IMAGE_VAR, &context.image)
                .env(integration::artifacts::RPI4_DTB_VAR, &context.rpi4_dtb)
                .env(integration::artifacts::MODEL_VAR, &context.model)
                .env(integration::artifacts::TINYLLAMA_VAR, &context.tinyllama);
                c
            },
        },
    ]
}

/// Counts from one line of a suite's output, as its [`Counting`] allows.
pub fn counts_for(counting: Counting, line: &str) -> Option<(u64, u64)> {
    match counting {
        Counting::Libtest if !line.trim_start().starts_with("test result: ") => None,
        _ => counts_in_line(line),
    }
}

/// Counts from one line of runner output, if it is a summary line.
pub fn counts_in_line(line: &str) -> Option<(u64, u64)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("test result: ") {
        // "ok. 16 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.31s"
        let mut passed = None;
        let mut failed = None;
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
            match words.as_slice() {
                [.., _, "passed"] => passed = n(words.len() - 2),
                [_, "failed"] => failed = n(0),
                _ => {}
            }
        }
        return passed.zip(failed);
    }
    // A plain "N passed, M failed" line (optionally "word: " before it).
    let body = line.split_once(": ").map_or(line, |(_, b)| b);
    let (p, f) = body.split_once(", ")?;
    let passed = p.strip_suffix(" passed")?.parse().ok()?;
    let failed_text = f.split(", ").next()?;
    let failed = failed_text.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

/// The outcome of one suite.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Tests passed.
    pub passed: u64,
    /// Tests failed (plus one when the suite failed without naming a test).
    pub failed: u64,
}

fn run_suite(suite: &Suite, context: &Context) -> Result<Tally> {
    let mut command = (suite.command)(context);
    process::step(&format!(
        "suite {}: {}",
        suite.name,
        process::describe(&command)
    ));
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: "cargo".into(),
            source,
        })?;
    let mut tally = Tally::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some((passed, failed)) = counts_for(suite.counting, &line) {
                tally.passed += passed;
                tally.failed += failed;
            }
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        program: "cargo".into(),
        source,
    })?;
    if !status.success() && tally.failed == 0 {
        eprintln!(
            "suite {} exited with {status} without reporting a failed test (a build error, or a test binary that crashed before its summary): counted as one failure",
            suite.name
        );
        tally.failed += 1;
    }
    Ok(tally)
}

/// Runs `cargo xtask test [--suite NAME]... [--filter PATTERN]... [--toolchain
/// auto|fallback]`; returns the exit status. Filters go to libtest as they are (a test runs when
/// its path, such as `tasks::ipc_round_trips`, contains one of them), so
/// `--suite qemu --filter tasks::` runs one QEMU test file.
pub fn command(args: &mut Args) -> Result<i32> {
    let choice = match args.value("--toolchain")? {
        Some(v) => toolchain::Choice::parse(&v)?,
        None => toolchain::Choice::Auto,
    };
    let mut wanted = Vec::new();
    while let Some(name) = args.value("--suite")? {
        wanted.push(name);
    }
    let mut filters = Vec::new();
    while let Some(pattern) = args.value("--filter")? {
        filters.push(pattern);
    }
    args.finish()?;
    let all = suites();
    for name in &wanted {
        if !all.iter().any(|s| s.name == name) {
            let known: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(Error::Usage(format!(
                "--suite {name}: known suites are {}",
                known.join(", ")
            )));
        }
    }
    let selected: Vec<&Suite> = all
        .iter()
        .filter(|s| wanted.is_empty() || wanted.iter().any(|w| w == s.name))
        .collect();

    let started = Instant::now();
    let mut results: Vec<(&str, Tally)> = Vec::new();
    // Host tests need only the Debian tools and the default model (their `prepare`) and run
    // first, so a host failure shows early; the kernel image, device tree and the models of
    // the QEMU suite are prepared before the first suite that needs them.
    let mut context = None;
    for suite in &selected {
        if suite.needs_kernel && context.is_none() {
            match prepare(choice, &filters) {
                Ok(c) => context = Some(c),
                Err(e) => {
                    eprintln!("cannot prepare the kernel image for the QEMU suites: {e}");
                    results.push((
                        "kernel build",
                        Tally {
                            passed: 0,
                            failed: 1,
                        },
                    ));
                    break;
                }
            }
        }
        if let Err(e) = (suite.prepare)() {
            eprintln!("cannot prepare suite {}: {e}", suite.name);
            results.push((
                suite.name,
                Tally {
                    passed: 0,
                    failed: 1,
                },
            ));
            continue;
        }
        let placeholder = Context {
            image: PathBuf::new(),
            rpi4_dtb: PathBuf::new(),
            model: PathBuf::new(),
            filters: filters.clone(),
            tinyllama: PathBuf::new(),
        };
        let tally = run_suite(suite, context.as_ref().unwrap_or(&placeholder))?;
        results.push((suite.name, tally));
    }

    let total = results.iter().fold(Tally::default(), |acc, (_, t)| Tally {
        passed: acc.passed + t.passed,
        failed: acc.failed + t.failed,
    });
    eprintln!("\n==> summary ({:.0} s)", started.elapsed().as_secs_f64());
    for (name, tally) in &results {
        eprintln!(
            "    suite {name:<12} passed {:>5}   failed {:>3}",
            tally.passed, tally.failed
        );
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 && total.passed > 0 {
        0
    } else {
        1
    })
}

/// What the host suite needs besides cargo: the Debian tools (clang builds the eBPF C samples)
/// and the default model (the tokenizer, GGUF and golden tests read it).
fn prepare_host() -> Result<()> {
    prereq::ensure_debian_tools()?;
    models::ensure(&models::default_model()?)?;
    Ok(())
}

/// The manifest name of the synthetic TinyLlama the QEMU suite boots.
const SYNTHETIC_TINYLLAMA: &str = "tinyllama-synthetic";

fn prepare(choice: toolchain::Choice, filters: &[String]) -> Result<Context> {
    prereq::ensure_tools()?;
    let kernel = toolchain::build_kernel(choice)?;
    Ok(Context {
        image: kernel.image,
        rpi4_dtb: prereq::ensure_rpi4_dtb()?,
        model: models::ensure(&models::default_model()?)?,
        filters: filters.to_vec(),
        tinyllama: models::ensure(&models::find(SYNTHETIC_TINYLLAMA)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_summary_lines() {
        assert_eq!(
            counts_in_line("test result: ok. 16 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.31s"),
            Some((16, 0))
        );
        assert_eq!(
            counts_in_line(
                "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out"
            ),
            Some((3, 2))
        );
        assert_eq!(counts_in_line("test foo::bar ... ok"), None);
        assert_eq!(counts_in_line("running 16 tests"), None);
    }

    #[test]
    fn counts_plain_summary_lines() {
        assert_eq!(counts_in_line("313 passed, 0 failed"), Some((313, 0)));
        assert_eq!(
            counts_in_line("conformance: 300 passed, 13 failed, 2 skipped"),
            Some((300, 13))
        );
        assert_eq!(counts_in_line("we passed, the rest failed"), None);
        assert_eq!(counts_in_line("board: qemu-virt"), None);
        assert_eq!(
            counts_for(Counting::LibtestAndPlain, "3 passed, 1 failed"),
            Some((3, 1))
        );
        assert_eq!(counts_for(Counting::Libtest, "3 passed, 1 failed"), None);
        assert_eq!(
            counts_for(
                Counting::Libtest,
                "test result: ok. 2 passed; 0 failed; 0 ignored"
            ),
            Some((2, 0))
        );
    }

    #[test]
    fn suite_names_are_unique_and_the_qemu_suite_gets_the_artifacts() {
        let all = suites();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let context = Context {
            image: "/i/Image".into(),
            rpi4_dtb: "/d/x.dtb".into(),
            model: "/m/x.gguf".into(),
            filters: vec!["tasks::".into()],
            tinyllama: "/m/t.gguf".into(),
        };
        let qemu = all.iter().find(|s| s.name == "qemu").expect("qemu suite");
        assert!(qemu.needs_kernel);
        let command = (qemu.command)(&context);
        let envs: Vec<(String, String)> = command
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        assert!(envs.contains(&("ANNEAL_IMAGE".into(), "/i/Image".into())));
        assert!(envs.contains(&("ANNEAL_RPI4_DTB".into(), "/d/x.dtb".into())));
        assert!(envs.contains(&("ANNEAL_MODEL".into(), "/m/x.gguf".into())));
        let words: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            words.last().map(String::as_str),
            Some("tasks::"),
            "{words:?}"
        );
        assert!(envs.contains(&("ANNEAL_TINYLLAMA".into(), "/m/t.gguf".into())));
    }
}
