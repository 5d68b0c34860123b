//! The sample extensions of extensions/library/ebpf: C ones compiled with
//! `clang -target bpf -O2` and loaded through the ELF loader, assembly ones through the
//! assembler; all run on contexts with known answers, and the C and assembly versions of
//! the slice policy must agree.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use ebpf::elf;
use ebpf::maps::{Map, MapDef, MapKind};
use ebpf::runtime::{HelperTable, Platform};
use ebpf::vm::{Program, RunOptions, Vm};

fn library() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../library/ebpf")
}

fn compile(name: &str) -> Vec<u8> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.o"));
    let status = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(library().join(format!("{name}.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("clang must be installed (Debian package clang) to build the C samples");
    assert!(status.success(), "clang failed on {name}.c");
    std::fs::read(out).unwrap()
}

struct TestPlatform {
    lines: RefCell<Vec<String>>,
}

impl Platform for TestPlatform {
    fn now_ns(&self) -> u64 {
        123_456
    }
    fn log(&self, line: &str) {
        self.lines.borrow_mut().push(line.to_string());
    }
    fn random_u32(&self) -> u32 {
        4
    }
}

fn platform() -> TestPlatform {
    TestPlatform {
        lines: RefCell::new(Vec::new()),
    }
}

fn slice_ctx(task: u32, priority: u32, runtime: u64, wait: u64, nr_running: u32) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend(task.to_le_bytes());
    c.extend(priority.to_le_bytes());
    c.extend(runtime.to_le_bytes());
    c.extend(wait.to_le_bytes());
    c.extend(nr_running.to_le_bytes());
    c.extend(0u32.to_le_bytes());
    c
}

/// (task, priority, runtime_ns, wait_ns, nr_running) and the expected slice in µs.
type SliceCase = ((u32, u32, u64, u64, u32), u64);

const SLICE_CASES: [SliceCase; 6] = [
    ((1, 0, 5_000_000, 1_000_000, 2), 5000),
    ((1, 0, 1_000_000, 5_000_000, 2), 1250),
    ((2, 39, 5_000_000, 0, 1), 2200),
    ((3, 0, 5_000_000, 0, 0), 10000),
    ((4, 20, 5_000_000, 0, 16), 500),
    ((5, 0, 1, 2, 1), 2500),
];

#[test]
fn sched_slice_c_loads_and_runs() {
    let object = elf::parse(&compile("sched_slice")).unwrap();
    assert_eq!(object.license.as_deref(), Some("GPL"));
    let prog = object.program("sched/slice").expect("sched/slice section");
    assert_eq!(prog.name, "slice_policy");
    assert_eq!(object.maps.len(), 1);
    assert_eq!(object.maps[0].name, "times_scheduled");
    assert_eq!(object.maps[0].def.kind, MapKind::Hash);
    let maps = object.create_maps(4).unwrap();
    let program = Program::load(&prog.slots, &HelperTable::standard(), &maps).unwrap();
    let mut vm = Vm::new();
    let p = platform();
    for ((task, prio, run, wait, n), expected) in SLICE_CASES {
        let mut ctx = slice_ctx(task, prio, run, wait, n);
        let out = vm
            .run(&program, &mut ctx, &RunOptions::default(), &p)
            .unwrap();
        assert_eq!(out.r0, expected, "task {task}");
    }
    // Task 1 ran twice, task 2 once: the hash map counted them (update, then atomic add).
    assert_eq!(
        maps[0].lookup(&1u32.to_le_bytes(), 0),
        Some(2u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        maps[0].lookup(&2u32.to_le_bytes(), 0),
        Some(1u64.to_le_bytes().to_vec())
    );
    assert_eq!(maps[0].len(), 5);
}

#[test]
fn slice_asm_agrees_with_the_c_version() {
    let text = std::fs::read_to_string(library().join("slice_simple.s")).unwrap();
    let slots = ebpf::asm::assemble(&text).unwrap();
    let program = Program::load(&slots, &HelperTable::standard(), &[]).unwrap();
    let mut vm = Vm::new();
    for ((task, prio, run, wait, n), expected) in SLICE_CASES {
        let mut ctx = slice_ctx(task, prio, run, wait, n);
        let out = vm
            .run(&program, &mut ctx, &RunOptions::default(), &platform())
            .unwrap();
        assert_eq!(out.r0, expected, "task {task}");
    }
}

fn packet(protocol: u8, dst_port: u16) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend(60u32.to_le_bytes());
    c.extend([protocol, 0, 0, 0]);
    c.extend(1234u16.to_le_bytes());
    c.extend(dst_port.to_le_bytes());
    c
}

#[test]
fn packet_counter_c_filters_and_counts() {
    let object = elf::parse(&compile("packet_counter")).unwrap();
    let names: Vec<&str> = object.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["proto_count", "blocked_ports", "drops"]);
    let maps = object.create_maps(4).unwrap();
    maps[1].update(&80u16.to_le_bytes(), &[1], 0, 0).unwrap();
    let prog = object.program("net/filter").unwrap();
    let program = Program::load(&prog.slots, &HelperTable::standard(), &maps).unwrap();
    let mut vm = Vm::new();
    let p = platform();
    let options = RunOptions {
        cpu: 2,
        input_writable: false,
        ..RunOptions::default()
    };
    let verdicts: Vec<u64> = [(6, 80), (6, 443), (17, 80), (6, 80), (1, 0)]
        .iter()
        .map(|&(proto, port)| {
            vm.run(&program, &mut packet(proto, port), &options, &p)
                .unwrap()
                .r0
        })
        .collect();
    assert_eq!(verdicts, [0, 1, 1, 0, 1]);
    let count = |proto: u32| maps[0].lookup(&proto.to_le_bytes(), 0).unwrap();
    assert_eq!(count(6), 3u64.to_le_bytes());
    assert_eq!(count(17), 1u64.to_le_bytes());
    assert_eq!(count(1), 1u64.to_le_bytes());
    // Drops were counted on core 2's copy only.
    assert_eq!(
        maps[2].lookup(&0u32.to_le_bytes(), 2),
        Some(2u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        maps[2].lookup(&0u32.to_le_bytes(), 0),
        Some(0u64.to_le_bytes().to_vec())
    );
}

#[test]
fn events_c_writes_the_ring_buffer_and_logs() {
    let object = elf::parse(&compile("events")).unwrap();
    let names: Vec<&str> = object.maps.iter().map(|m| m.name.as_str()).collect();
    // Maps in section order: BTF maps by symbol offset, then global data.
    assert_eq!(names, ["last_event", "events", ".data", ".rodata.str1.1"]);
    // BTF-style definitions: the shapes come from .BTF.
    assert_eq!(object.maps[1].def.kind, MapKind::RingBuf);
    assert_eq!(object.maps[1].def.max_entries, 4096);
    assert_eq!(
        object.maps[0].def,
        MapDef {
            kind: MapKind::Hash,
            key_size: 4,
            value_size: 32,
            max_entries: 64
        }
    );
    let maps = object.create_maps(1).unwrap();
    let prog = object.program("syscall/enter").unwrap();
    let program = Program::load(&prog.slots, &HelperTable::standard(), &maps).unwrap();
    let mut vm = Vm::new();
    let p = platform();
    let mut ctx = Vec::new();
    ctx.extend(7u32.to_le_bytes());
    ctx.extend(42u32.to_le_bytes());
    ctx.extend(0xdead_beefu64.to_le_bytes());
    let on_core_1 = RunOptions {
        cpu: 1,
        ..RunOptions::default()
    };
    let out = vm.run(&program, &mut ctx, &on_core_1, &p).unwrap();
    assert_eq!(out.r0, 0);
    let (last_event, events) = (&maps[0], &maps[1]);
    let record = events.ringbuf_pop().expect("one event");
    assert_eq!(record.len(), 32);
    assert_eq!(&record[0..8], &123_456u64.to_le_bytes());
    assert_eq!(&record[8..12], &7u32.to_le_bytes());
    assert_eq!(&record[12..16], &42u32.to_le_bytes());
    assert_eq!(&record[16..20], &1u32.to_le_bytes()); // the core of the run
    assert_eq!(&record[24..32], &0xdead_beefu64.to_le_bytes());
    assert_eq!(*p.lines.borrow(), ["syscall 7 by task 42 on core 1"]);
    assert_eq!(
        last_event.lookup(&42u32.to_le_bytes(), 0),
        Some(record.clone())
    );
    // Below the threshold in .data (min_nr = 2): no event. Raising it through the map
    // changes the program's behaviour without reloading.
    ctx[0..4].copy_from_slice(&1u32.to_le_bytes());
    vm.run(&program, &mut ctx, &RunOptions::default(), &p)
        .unwrap();
    assert!(maps[0].ringbuf_pop().is_none());
    let data = maps.iter().find(|m| m.name() == ".data").unwrap();
    data.update(&0u32.to_le_bytes(), &100u32.to_le_bytes(), 0, 0)
        .unwrap();
    ctx[0..4].copy_from_slice(&7u32.to_le_bytes());
    vm.run(&program, &mut ctx, &RunOptions::default(), &p)
        .unwrap();
    assert!(maps[0].ringbuf_pop().is_none());
}

#[test]
fn counter_asm_uses_an_array_map() {
    let text = std::fs::read_to_string(library().join("counter.s")).unwrap();
    let slots = ebpf::asm::assemble(&text).unwrap();
    let def = MapDef {
        kind: MapKind::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 2,
    };
    let maps = vec![Arc::new(Map::new("counts", def, 1).unwrap())];
    let program = Program::load(&slots, &HelperTable::standard(), &maps).unwrap();
    let mut vm = Vm::new();
    let results: Vec<u64> = [1u32, 3, 2, 5]
        .iter()
        .map(|task| {
            vm.run(
                &program,
                &mut task.to_le_bytes(),
                &RunOptions::default(),
                &platform(),
            )
            .unwrap()
            .r0
        })
        .collect();
    assert_eq!(results, [1, 2, 1, 3]);
}

#[test]
fn corrupt_objects_give_errors_not_panics() {
    let good = compile("sched_slice");
    // Every truncation, and single-byte corruptions across the headers and tables.
    for len in 0..good.len() {
        let _ = elf::parse(&good[..len]);
    }
    let mut state = 0x1234_5678u32;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let mut bad = good.clone();
        let at = state as usize % bad.len();
        bad[at] ^= (state >> 24) as u8 | 1;
        if let Ok(object) = elf::parse(&bad) {
            // Whatever still parses must also load or fail cleanly.
            if let Ok(maps) = object.create_maps(1) {
                for p in &object.programs {
                    let _ = Program::load(&p.slots, &HelperTable::standard(), &maps);
                }
            }
        }
    }
    assert!(matches!(
        elf::parse(b"not an elf"),
        Err(elf::ElfError::Truncated { .. })
    ));
    let mut other = good.clone();
    other[18] = 62; // x86-64
    assert_eq!(
        elf::parse(&other),
        Err(elf::ElfError::NotBpf { machine: 62 })
    );
}
