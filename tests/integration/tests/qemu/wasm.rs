//! WASM in the kernel: the library modules behave as named (hello prints, spin ends by fuel,
//! grow hits its memory limit, forbidden fails to link naming the import), the `sched.slice`
//! policy runs, WAT compiles in-kernel, eBPF and WASM share a map, and the kernel keeps
//! running after every fault.

use integration::Info;

use crate::ebpf::summary;
use crate::{boot, ensure, poweroff, virt, Outcome};

/// The library modules the kernel must list.
const LIBRARY: [&str; 6] = [
    "hello",
    "spin",
    "grow",
    "forbidden",
    "sched_slice",
    "roundtrip",
];

#[test]
fn library_modules_behave_as_named_and_the_kernel_keeps_running() -> Outcome {
    let mut config = virt()?;
    config.smp = 2;
    let mut qemu = boot(&config)?;
    let list = qemu.command("wasm list")?;
    for name in LIBRARY {
        ensure!(
            qemu,
            list.contains(&format!("name={name} bytes=")),
            "`wasm list` should list {name}"
        );
    }
    ensure!(qemu, !list.contains("error="), "no library module may fail");

    // (command, text the reply must contain)
    let expectations = [
        ("wasm run hello", "hello from wasm\n"),
        ("wasm run hello", "[wasm] module=hello result=0 fuel_used="),
        (
            "wasm run spin",
            "[wasm] module=spin error=out-of-fuel budget=100000 fuel_used=100000",
        ),
        (
            "wasm run grow",
            "[wasm] module=grow error=memory-limit requested_pages=3 limit_pages=2 fuel_used=",
        ),
        (
            "wasm run forbidden",
            "[wasm] module=forbidden error=link-not-granted import=anneal.telemetry_read fuel_used=0",
        ),
    ];
    for (command, expected) in expectations {
        let reply = qemu.command(command)?;
        ensure!(
            qemu,
            reply.contains(expected),
            "`{command}` should print {expected:?}"
        );
        // The kernel is still there after each module's fault.
        let info = Info::parse(&qemu.command("info")?);
        ensure!(
            qemu,
            info.board()? == "qemu-virt",
            "kernel should still answer after `{command}`"
        );
    }
    // A faulted module stays loaded and runs again with the same verdict.
    let again = qemu.command("wasm run spin")?;
    ensure!(
        qemu,
        again.contains("error=out-of-fuel"),
        "spin again should end by fuel again"
    );
    let info = qemu.command("wasm info forbidden")?;
    ensure!(
        qemu,
        info.contains("import anneal.telemetry_read func (i32, i32) -> (i64)")
            && info.contains("grant console_write")
            && !info.contains("grant telemetry_read"),
        "`wasm info forbidden` should show the import and that the manifest does not grant it"
    );
    let missing = qemu.command("wasm run nosuch")?;
    ensure!(
        qemu,
        missing.contains("[wasm] module=nosuch error=no-such-module fuel_used=0"),
        "an unknown module is one error line"
    );
    poweroff(&mut qemu)
}

#[test]
fn policy_module_runs_and_selftest_passes() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    let reply = qemu.command("wasm run sched_slice 4 0 1000 3000")?;
    ensure!(
        qemu,
        reply.contains("[wasm] module=sched_slice result=1500 fuel_used=")
            && reply.contains("hook_output=1500"),
        "the policy gives 1500 us for an interactive task among 4"
    );
    let info = qemu.command("wasm info sched_slice")?;
    for line in [
        "manifest hook=sched.slice fuel=5000 memory_pages=0",
        "grant hook_input",
        "import anneal.hook_output func (i32, i64) -> ()",
        "export run func () -> (i64)",
    ] {
        ensure!(
            qemu,
            info.contains(line),
            "`wasm info` should show {line:?}"
        );
    }
    let selftest = qemu.command("wasm selftest")?;
    let counts = summary(&selftest, "wasm selftest");
    ensure!(
        qemu,
        counts == Some((12, 0)),
        "expected `wasm selftest: 12 passed, 0 failed`, got {counts:?}"
    );
    for case in [
        "compile_sched_slice",
        "sched_slice_contract",
        "roundtrip_shared_map",
    ] {
        ensure!(
            qemu,
            selftest.contains(&format!("case {case}: pass")),
            "case {case} should pass"
        );
    }
    poweroff(&mut qemu)
}

#[test]
fn wat_compiles_in_kernel_and_traps_stay_in_the_module() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    let compiled = qemu.command(
        "wasm compile sq (module (func (export \"run\") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0))))",
    )?;
    ensure!(
        qemu,
        compiled.contains("[wasm] compiled module=sq bytes="),
        "the WAT line should compile in-kernel"
    );
    let run = qemu.command("wasm run sq 12")?;
    ensure!(
        qemu,
        run.contains("[wasm] module=sq result=144"),
        "sq 12 should be 144"
    );
    let bad_args = qemu.command("wasm run sq twelve")?;
    ensure!(
        qemu,
        bad_args.contains("error=bad-arguments"),
        "a non-number argument is refused"
    );
    let rejected = qemu
        .command("wasm compile bad (module (func (export \"run\") (result i32) (i64.const 1)))")?;
    ensure!(
        qemu,
        rejected.contains("[wasm] module=bad error=compile line=1 column=43"),
        "a type error is reported with its line and column"
    );
    let unclosed = qemu.command("wasm compile worse (module (func")?;
    ensure!(
        qemu,
        unclosed.contains("[wasm] module=worse error=compile"),
        "unbalanced text is a compile error"
    );
    qemu.command("wasm compile boom (module (func (export \"run\") unreachable))")?;
    let trap = qemu.command("wasm run boom")?;
    ensure!(
        qemu,
        trap.contains("[wasm] module=boom error=trap trap=unreachable"),
        "a trap is the module's fault"
    );
    let still = qemu.command("wasm run sq 3")?;
    ensure!(
        qemu,
        still.contains("result=9"),
        "other modules still run after a trap"
    );
    poweroff(&mut qemu)
}

#[test]
fn ebpf_and_wasm_update_the_same_map() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    let first = qemu.command("wasm run roundtrip 41")?;
    ensure!(
        qemu,
        first.contains("[wasm] module=roundtrip log=info message=\"roundtrip called\"")
            && first.contains("result=1 ")
            && first.contains("hook_output=42,1"),
        "roundtrip bumps counts[7] to 1 and echoes its input + 1"
    );
    let ebpf = qemu.command("ebpf count 7 10")?;
    ensure!(
        qemu,
        ebpf.contains("[ebpf] program=count key=7 result=11"),
        "the eBPF program sees the WASM write (1 + 10)"
    );
    let second = qemu.command("wasm run roundtrip")?;
    ensure!(
        qemu,
        second.contains("result=12 "),
        "the WASM module sees the eBPF write (11 + 1)"
    );
    let counters = qemu.command("wasm counters")?;
    ensure!(
        qemu,
        counters.contains("kernel.cores_online = 1") && counters.contains("wasm.calls = 2"),
        "telemetry counters reflect the kernel"
    );
    poweroff(&mut qemu)
}
