//! Runs the `ebpf` binary for each subcommand and checks output and exit status (DESIGN.md
//! interface 4: 0 success, 1 refused, 2 unreadable input or usage error).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ebpf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebpf"))
        .args(args)
        .output()
        .expect("run ebpf")
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ebpf_cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, contents: &[u8]) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn asm_writes_bytecode_and_reports_errors_with_line() {
    let src = write("add.s", b"mov %r0, 1\nadd r0, 41\nexit\n");
    let out_path = tmp("add_out.bin");
    let o = ebpf(&["asm", s(&src), "-o", s(&out_path)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let bytes = std::fs::read(&out_path).unwrap();
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[..8], &[0xb7, 0, 0, 0, 1, 0, 0, 0]);
    // Default output name.
    assert_eq!(ebpf(&["asm", s(&src)]).status.code(), Some(0));
    assert!(tmp("add.bin").exists());

    let bad = write("bad.s", b"mov %r0, 1\nfrob %r1\n");
    let o = ebpf(&["asm", s(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2") && err.contains("frob"), "{err}");

    assert_eq!(ebpf(&["asm", s(&tmp("missing.s"))]).status.code(), Some(2));
    assert_eq!(ebpf(&["asm"]).status.code(), Some(2));
}

#[test]
fn disasm_round_trips() {
    let text = "mov %r0, 1\njeq %r1, 0, +1\nlddw %r2, 0x100000002\nexit\n";
    let src = write("rt.s", text.as_bytes());
    let o = ebpf(&["disasm", s(&src)]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), text);
    let bin = write("rt.bin", &ebpf::asm::assemble_bytes(text).unwrap());
    assert_eq!(stdout(&ebpf(&["disasm", s(&bin)])), text);
    // Undecodable bytes are refused (1); a length not a multiple of 8 is unreadable (2).
    let junk = write("junk.bin", &[0xff, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ebpf(&["disasm", s(&junk)]).status.code(), Some(1));
    let odd = write("odd.bin", &[0x95, 0, 0]);
    assert_eq!(ebpf(&["disasm", s(&odd)]).status.code(), Some(2));
}

#[test]
fn run_prints_r0_with_memory_and_exit_codes() {
    // r0 = mem[0] + len.
    let src = write("sum.s", b"ldxb %r0, [%r1+0]\nadd %r0, %r2\nexit\n");
    let mem = write("sum.mem", &[40, 1]);
    let o = ebpf(&["run", "--mem", s(&mem), s(&src)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "42\n");
    // r0 printed unsigned.
    let neg = write("neg.s", b"mov %r0, -1\nexit\n");
    assert_eq!(stdout(&ebpf(&["run", s(&neg)])), "18446744073709551615\n");
    // Without --mem r1 = 0: the load faults, a run error (1).
    assert_eq!(ebpf(&["run", s(&src)]).status.code(), Some(1));
    // Infinite loop: the budget stops it.
    let spin = write("spin.s", b"ja -1\nexit\n");
    let o = ebpf(&["run", "--budget", "1000", s(&spin)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("budget"));
    assert_eq!(ebpf(&["run", "--mem"]).status.code(), Some(2));
    assert_eq!(ebpf(&["run", s(&tmp("nothing.s"))]).status.code(), Some(2));
}

#[test]
fn run_loads_clang_objects_with_maps() {
    let obj = tmp("slice.o");
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../extensions/library/ebpf");
    let status = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-c"])
        .arg(lib.join("sched_slice.c"))
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("clang");
    assert!(status.success());
    let mut ctx = Vec::new();
    ctx.extend(1u32.to_le_bytes());
    ctx.extend(0u32.to_le_bytes());
    ctx.extend(5_000_000u64.to_le_bytes());
    ctx.extend(1_000_000u64.to_le_bytes());
    ctx.extend(2u32.to_le_bytes());
    ctx.extend(0u32.to_le_bytes());
    let mem = write("slice.ctx", &ctx);
    let o = ebpf(&["run", "--mem", s(&mem), s(&obj)]);
    assert_eq!(stdout(&o), "5000\n", "{o:?}");
    let sectioned = format!("{}:sched/slice", s(&obj));
    assert_eq!(
        stdout(&ebpf(&["run", "--mem", s(&mem), &sectioned])),
        "5000\n"
    );
    let o = ebpf(&["disasm", s(&obj)]);
    assert!(stdout(&o).starts_with("# section sched/slice\n"));
    assert!(stdout(&o).contains("call local"));
}

#[test]
fn help_and_usage_errors() {
    let o = ebpf(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for word in [
        "asm",
        "disasm",
        "verify",
        "run",
        "--ctx-size",
        "--mem",
        "exit status",
    ] {
        assert!(stdout(&o).contains(word), "help lacks {word}");
    }
    assert_eq!(ebpf(&[]).status.code(), Some(2));
    assert_eq!(ebpf(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn verify_accepts_rejects_and_reports_usage_errors() {
    let good = write("ok.s", b"mov %r0, 0\nexit\n");
    let o = ebpf(&["verify", s(&good)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "ACCEPT\n");
    // Reads r2, which the entry state leaves uninitialised.
    let bad = write("uninit.s", b"mov %r0, %r2\nexit\n");
    let o = ebpf(&["verify", s(&bad)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).starts_with("REJECT insn=0"), "{}", stdout(&o));
    assert_eq!(
        ebpf(&["verify", s(&tmp("absent.s"))]).status.code(),
        Some(2)
    );
    assert_eq!(ebpf(&["verify", "--ctx-size"]).status.code(), Some(2));
}
