//! eBPF in the kernel: `ebpf selftest` runs the crate's conformance subset and the multi-core
//! map test on every online core (virt with 4 cores, and the Pi 4's 4 cores released from the
//! spin table); `ebpf count` runs a verified program on the map shared with WASM; bad
//! arguments get an answer and the kernel keeps running.

use integration::{Info, QemuConfig};

use crate::{boot, ensure, poweroff, rpi4, virt, Outcome};

/// Cases of `ebpf::selftest::CASES` (15) plus the five multi-core checks.
const SELFTEST_CASES: usize = 20;

/// The multi-core checks that must each report `pass`.
const SMP_CASES: [&str; 5] = [
    "smp_all_cores_ran",
    "smp_array_atomic_add",
    "smp_hash_concurrent_inserts",
    "smp_per_cpu_copies",
    "smp_ring_buffer",
];

/// Reads `NAME: N passed, M failed` from a reply.
pub fn summary(reply: &str, name: &str) -> Option<(usize, usize)> {
    let prefix = format!("{name}: ");
    let line = reply.lines().find_map(|l| l.trim().strip_prefix(&prefix))?;
    let mut words = line.split_whitespace();
    let passed = words.next()?.parse().ok()?;
    let failed = words.nth(1)?.parse().ok()?;
    Some((passed, failed))
}

fn selftest_passes(config: &QemuConfig) -> Outcome {
    let mut qemu = boot(config)?;
    let reply = qemu.command("ebpf selftest")?;
    let counts = summary(&reply, "ebpf selftest");
    ensure!(
        qemu,
        counts == Some((SELFTEST_CASES, 0)),
        "expected `ebpf selftest: {SELFTEST_CASES} passed, 0 failed`, got {counts:?}"
    );
    for case in SMP_CASES {
        ensure!(
            qemu,
            reply.contains(&format!("case {case}: pass")),
            "multi-core case {case} should pass"
        );
    }
    let cores = Info::parse(&qemu.command("info")?).cores()?;
    ensure!(
        qemu,
        reply.contains(&format!("({} cores,", cores.0)),
        "the multi-core test should run on all {} online cores",
        cores.0
    );
    // A second run gets fresh maps: the same exact totals again.
    let again = qemu.command("ebpf selftest")?;
    ensure!(
        qemu,
        summary(&again, "ebpf selftest") == Some((SELFTEST_CASES, 0)),
        "a second selftest should pass too"
    );
    poweroff(&mut qemu)
}

#[test]
fn selftest_passes_on_four_cores_of_virt() -> Outcome {
    let mut config = virt()?;
    config.smp = 4;
    selftest_passes(&config)
}

#[test]
fn selftest_passes_on_rpi4() -> Outcome {
    selftest_passes(&rpi4()?)
}

#[test]
fn count_program_adds_to_the_shared_map_and_bad_arguments_get_answers() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    let first = qemu.command("ebpf count 3")?;
    ensure!(
        qemu,
        first.contains("[ebpf] program=count key=3 result=1"),
        "first count of key 3 should give 1"
    );
    let second = qemu.command("ebpf count 3 40")?;
    ensure!(
        qemu,
        second.contains("[ebpf] program=count key=3 result=41"),
        "adding 40 should give 41"
    );
    let maps = qemu.command("ebpf maps")?;
    ensure!(
        qemu,
        maps.contains("map counts kind=Array") && maps.contains("3 = 41"),
        "`ebpf maps` should show counts[3] = 41"
    );
    let outside = qemu.command("ebpf count 999")?;
    ensure!(
        qemu,
        outside.contains("error=no-such-key"),
        "a key past the map's end is reported, not a fault"
    );
    for bad in [
        "ebpf count seven",
        "ebpf",
        "ebpf frobnicate",
        "ebpf count 1 2 3",
    ] {
        let reply = qemu.command(bad)?;
        ensure!(qemu, !reply.trim().is_empty(), "`{bad}` needs an answer");
    }
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == "qemu-virt",
        "kernel should still answer"
    );
    poweroff(&mut qemu)
}
