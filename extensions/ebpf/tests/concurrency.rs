//! Programs sharing maps across threads (the kernel runs hooks on every core): one loaded
//! program, one VM per thread; atomic counter updates and NOEXIST hash inserts must be exact.

use std::sync::Arc;

use ebpf::maps::{Map, MapDef, MapKind};
use ebpf::runtime::{HelperTable, HostPlatform};
use ebpf::vm::{Program, RunOptions, Vm};

const PROGRAM: &str = "
    mov %r6, %r1            # input: an 8-byte key
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map:0
    call 1                  # &count[0]
    jeq %r0, 0, fail
    mov %r1, 1
    lock add [%r0+0], %r1
    ldxdw %r1, [%r6+0]
    stxdw [%r10-16], %r1    # key
    stdw [%r10-24], 1       # value
    lddw %r1, map:1
    mov %r2, %r10
    add %r2, -16
    mov %r3, %r10
    add %r3, -24
    mov %r4, 1              # BPF_NOEXIST
    call 2                  # 0 for the first insert of a key, -EEXIST after
    exit
fail:
    mov %r0, 99
    exit";

#[test]
fn four_threads_count_exactly_through_atomics_and_hash_inserts() {
    let slots = ebpf::asm::assemble(PROGRAM).unwrap();
    let array = MapDef {
        kind: MapKind::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
    };
    let hash = MapDef {
        kind: MapKind::Hash,
        key_size: 8,
        value_size: 8,
        max_entries: 4096,
    };
    let maps = vec![
        Arc::new(Map::new("count", array, 1).unwrap()),
        Arc::new(Map::new("seen", hash, 1).unwrap()),
    ];
    let program = Arc::new(Program::load(&slots, &HelperTable::standard(), &maps).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|cpu| {
            let program = program.clone();
            std::thread::spawn(move || {
                let mut vm = Vm::new();
                let platform = HostPlatform::default();
                let options = RunOptions {
                    cpu,
                    ..RunOptions::default()
                };
                let mut first_inserts = 0;
                for i in 0..5000u64 {
                    let mut input = (i % 1000).to_le_bytes();
                    let out = vm.run(&program, &mut input, &options, &platform).unwrap();
                    match out.r0 as i64 {
                        0 => first_inserts += 1,
                        -17 => {}
                        other => panic!("unexpected r0 {other}"),
                    }
                }
                first_inserts
            })
        })
        .collect();
    let first_inserts: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(first_inserts, 1000, "each key inserted exactly once");
    assert_eq!(maps[1].len(), 1000);
    assert_eq!(
        maps[0].lookup(&0u32.to_le_bytes(), 0),
        Some(20_000u64.to_le_bytes().to_vec())
    );
}
