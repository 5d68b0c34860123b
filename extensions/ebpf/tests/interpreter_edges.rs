//! Interpreter behaviour the conformance suites do not cover: budgets, call depth, memory
//! faults and permissions, atomics alignment, callx, legacy packet loads, map references,
//! helper argument checks, and what a load refuses.

use std::sync::Arc;

use ebpf::asm::assemble;
use ebpf::maps::{Map, MapDef, MapKind};
use ebpf::runtime::{HelperError, HelperTable, HostPlatform};
use ebpf::vm::{LoadError, Program, RunError, RunErrorKind, RunOptions, Vm};

fn load(text: &str) -> Program {
    Program::load(&assemble(text).unwrap(), &HelperTable::standard(), &[]).unwrap()
}

fn run_with(program: &Program, input: &mut [u8], options: RunOptions) -> Result<u64, RunError> {
    Vm::new()
        .run(program, input, &options, &HostPlatform::default())
        .map(|o| o.r0)
}

fn run(text: &str, input: &mut [u8]) -> Result<u64, RunError> {
    run_with(&load(text), input, RunOptions::default())
}

#[test]
fn budget_counts_every_instruction_exactly() {
    // 3 instructions per iteration, 10 iterations, plus mov and exit.
    let program = load("mov %r0, 0\nloop:\nadd %r0, 1\njne %r0, 10, loop\nexit");
    let options = |budget| RunOptions {
        instruction_budget: budget,
        ..RunOptions::default()
    };
    let out = Vm::new()
        .run(&program, &mut [], &options(22), &HostPlatform::default())
        .unwrap();
    assert_eq!((out.r0, out.instructions), (10, 22));
    let err = run_with(&program, &mut [], options(21)).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::BudgetExhausted { budget: 21 });
    assert_eq!(err.pc, 3, "stopped at the exit it could not afford");
}

#[test]
fn recursion_stops_at_the_call_depth_limit() {
    let err = run("call local f\nexit\nf:\ncall local f\nexit", &mut []).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::CallDepthExceeded);
    // Depth 7 (main + 7 callees = 8 frames) still works.
    let mut text = String::new();
    for i in 0..7 {
        text += &format!("call local f{i}\nexit\nf{i}:\n");
    }
    text += "mov %r0, 7\nexit";
    assert_eq!(run(&text, &mut []).unwrap(), 7);
}

#[test]
fn local_calls_preserve_callee_saved_registers_and_frames() {
    let text = "mov %r6, 1\nmov %r9, 9\nstdw [%r10-8], 5\ncall local f\n\
                ldxdw %r1, [%r10-8]\nadd %r0, %r1\nadd %r0, %r6\nadd %r0, %r9\nexit\n\
                f:\nmov %r6, 100\nmov %r9, 100\nstdw [%r10-8], 100\nmov %r0, 1000\nexit";
    assert_eq!(run(text, &mut []).unwrap(), 1000 + 5 + 1 + 9);
}

#[test]
fn memory_faults_name_address_size_and_direction() {
    let mut input = [0u8; 8];
    let err = run("ldxdw %r0, [%r1+1]\nexit", &mut input).unwrap_err();
    assert!(matches!(
        err.kind,
        RunErrorKind::OutOfBounds {
            size: 8,
            write: false,
            ..
        }
    ));
    assert_eq!(err.pc, 0);
    let err = run("stxb [%r10+0], %r1\nexit", &mut []).unwrap_err();
    assert!(matches!(
        err.kind,
        RunErrorKind::OutOfBounds { write: true, .. }
    ));
    // Below the deepest frame is outside the stack too.
    let err = run("stb [%r10-4097], 1\nexit", &mut []).unwrap_err();
    assert!(matches!(err.kind, RunErrorKind::OutOfBounds { .. }));
    assert_eq!(
        run("stb [%r10-4096], 1\nmov %r0, 0\nexit", &mut []).unwrap(),
        0
    );
    assert!(err.to_string().contains("insn 0"), "{err}");
}

#[test]
fn read_only_input_refuses_stores_but_allows_loads() {
    let program = load("ldxb %r0, [%r1+0]\nstb [%r1+0], 9\nexit");
    let read_only = RunOptions {
        input_writable: false,
        ..RunOptions::default()
    };
    let err = run_with(&program, &mut [7], read_only).unwrap_err();
    assert_eq!(
        (
            err.pc,
            matches!(err.kind, RunErrorKind::OutOfBounds { write: true, .. })
        ),
        (1, true)
    );
    let mut input = [7];
    assert_eq!(
        run_with(&program, &mut input, RunOptions::default()).unwrap(),
        7
    );
    assert_eq!(input, [9]);
}

#[test]
fn misaligned_atomics_are_refused() {
    let err = run(
        "stdw [%r10-16], 0\nmov %r1, 1\nlock add [%r10-12], %r1\nexit",
        &mut [],
    )
    .unwrap_err();
    assert!(matches!(err.kind, RunErrorKind::MisalignedAtomic { .. }));
    assert_eq!(
        run(
            "stdw [%r10-16], 0\nmov %r1, 1\nlock add32 [%r10-12], %r1\nldxw %r0, [%r10-12]\nexit",
            &mut []
        )
        .unwrap(),
        1
    );
}

#[test]
fn callx_calls_registered_helpers_and_faults_on_unknown_ids() {
    assert_eq!(run("mov %r3, 8\ncall %r3\nexit", &mut []).unwrap(), 0); // get_smp_processor_id
    let err = run("mov %r3, 200\ncall %r3\nexit", &mut []).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::UnknownHelper { id: 200 });
    let err = run("mov %r3, -1\ncall %r3\nexit", &mut []).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::UnknownHelper { id: u64::MAX });
}

#[test]
fn legacy_packet_loads_are_big_endian_and_end_the_program_out_of_bounds() {
    let mut packet = [0x12, 0x34, 0x56, 0x78, 0x9a];
    assert_eq!(run("ldabsh 1\nexit", &mut packet).unwrap(), 0x3456);
    assert_eq!(
        run("mov %r2, 1\nldindw %r2, 0\nexit", &mut packet).unwrap(),
        0x3456789a
    );
    assert_eq!(
        run("mov %r0, 5\nldabsw 2\nmov %r0, 7\nexit", &mut packet).unwrap(),
        0
    );
}

#[test]
fn helpers_check_pointer_arguments() {
    let def = MapDef {
        kind: MapKind::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
    };
    let maps = vec![Arc::new(Map::new("a", def, 1).unwrap())];
    // Key pointer outside memory.
    let slots = assemble("lddw %r1, map:0\nmov %r2, 16\ncall 1\nexit").unwrap();
    let program = Program::load(&slots, &HelperTable::standard(), &maps).unwrap();
    let err = run_with(&program, &mut [], RunOptions::default()).unwrap_err();
    assert!(matches!(
        err.kind,
        RunErrorKind::Helper(HelperError::Memory { .. })
    ));
    // Not a map handle.
    let slots = assemble("mov %r1, 5\nmov %r2, %r10\nadd %r2, -4\ncall 1\nexit").unwrap();
    let program = Program::load(&slots, &HelperTable::standard(), &maps).unwrap();
    let err = run_with(&program, &mut [], RunOptions::default()).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::Helper(HelperError::BadMapHandle(5)));
}

#[test]
fn map_value_lddw_points_into_an_array_value() {
    let def = MapDef {
        kind: MapKind::Array,
        key_size: 4,
        value_size: 16,
        max_entries: 1,
    };
    let maps = vec![Arc::new(Map::new("globals", def, 1).unwrap())];
    maps[0]
        .update(
            &0u32.to_le_bytes(),
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
            0,
            0,
        )
        .unwrap();
    // map_value: offset 8 in the upper half.
    let slots =
        assemble("lddw %r1, map_value:0x800000000\nldxdw %r0, [%r1+0]\nstdw [%r1+0], 42\nexit")
            .unwrap();
    let program = Program::load(&slots, &HelperTable::empty(), &maps).unwrap();
    assert_eq!(
        run_with(&program, &mut [], RunOptions::default()).unwrap(),
        2
    );
    assert_eq!(maps[0].lookup(&0u32.to_le_bytes(), 0).unwrap()[8], 42);
    // Past the value, or into a map that is not an array: refused at load.
    let slots = assemble("lddw %r1, map_value:0x1000000000\nexit").unwrap();
    assert!(matches!(
        Program::load(&slots, &HelperTable::empty(), &maps),
        Err(LoadError::BadMapValue { .. })
    ));
}

#[test]
fn load_refuses_what_cannot_run() {
    let helpers = HelperTable::standard();
    let refuse = |text: &str| Program::load(&assemble(text).unwrap(), &helpers, &[]).unwrap_err();
    assert_eq!(
        Program::load(&[], &helpers, &[]).unwrap_err(),
        LoadError::Empty
    );
    assert!(matches!(
        refuse("ja +5\nexit"),
        LoadError::JumpOutOfRange { slot: 0, target: 6 }
    ));
    assert!(matches!(
        refuse("jeq %r0, 0, -2\nexit"),
        LoadError::JumpOutOfRange { .. }
    ));
    assert!(matches!(
        refuse("ja +1\nlddw %r0, 1\nexit"),
        LoadError::JumpIntoLddw { slot: 0, target: 2 }
    ));
    assert!(matches!(
        refuse("call 99\nexit"),
        LoadError::UnknownHelper { id: 99, .. }
    ));
    assert!(matches!(
        refuse("call local +5\nexit"),
        LoadError::JumpOutOfRange { .. }
    ));
    assert!(matches!(
        refuse("lddw %r1, map:0\nexit"),
        LoadError::UnknownMap { index: 0, .. }
    ));
    assert!(matches!(
        refuse("call btf:7\nexit"),
        LoadError::Unsupported { .. }
    ));
    let e = refuse("mov %r0, 0\nja +3\nexit");
    assert_eq!(e.to_string(), "insn 1: jump to 5, outside the program");
}

#[test]
fn falling_off_the_end_is_an_error() {
    let err = run("mov %r0, 1", &mut []).unwrap_err();
    assert_eq!(err.kind, RunErrorKind::FellOffEnd);
}

#[test]
fn division_edge_cases_follow_rfc_9669() {
    let cases = [
        ("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0u64),
        ("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", 7),
        (
            "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit",
            0x8000000000000000,
        ),
        ("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0),
        ("mov32 %r0, -7\nsmod32 %r0, 2\nexit", (-1i32) as u32 as u64),
        (
            "lddw %r0, 0xffffffff00000007\nmov %r1, 0\nmod32 %r0, %r1\nexit",
            7,
        ),
        ("mov %r0, 1\nlsh %r0, 65\nexit", 2),
        ("mov32 %r0, 1\nlsh32 %r0, 33\nexit", 2),
    ];
    for (text, expected) in cases {
        assert_eq!(run(text, &mut []).unwrap(), expected, "{text}");
    }
}

#[test]
fn stack_is_cleared_between_checked_runs() {
    let program = load("ldxdw %r0, [%r10-8]\nstdw [%r10-8], 77\nexit");
    let mut vm = Vm::new();
    let p = HostPlatform::default();
    let options = RunOptions::default();
    assert_eq!(vm.run(&program, &mut [], &options, &p).unwrap().r0, 0);
    assert_eq!(vm.run(&program, &mut [], &options, &p).unwrap().r0, 0);
}

#[test]
fn error_types_stay_small() {
    // Errors travel through every run and load; keep them a few words (pinned so growth is
    // a visible decision).
    assert!(
        std::mem::size_of::<RunError>() <= 48,
        "{}",
        std::mem::size_of::<RunError>()
    );
    assert!(
        std::mem::size_of::<LoadError>() <= 40,
        "{}",
        std::mem::size_of::<LoadError>()
    );
    assert!(std::mem::size_of::<ebpf::asm::AsmError>() <= 64);
    assert!(std::mem::size_of::<ebpf::elf::ElfError>() <= 64);
}
