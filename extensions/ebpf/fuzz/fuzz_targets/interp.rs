//! Interpreter on arbitrary programs: no panic and no memory error whatever the program
//! does (checked mode, budget 10 000). When the checked run of a helper-free program
//! succeeds, the unchecked fast mode on the same input must give the same r0, instruction
//! count and output memory (the checked run just proved that deterministic execution stays
//! in bounds). The first 64 bytes are the input memory; the program gets an
//! array map, a hash map and a ring buffer and the standard helpers.
#![no_main]
use std::sync::Arc;

use ebpf::maps::{Map, MapDef, MapKind};
use ebpf::runtime::{HelperTable, HostPlatform};
use ebpf::vm::{Program, RunOptions, Vm};
use libfuzzer_sys::fuzz_target;

fn maps() -> Vec<Arc<Map>> {
    let def = |kind, key_size, value_size, max_entries| MapDef {
        kind,
        key_size,
        value_size,
        max_entries,
    };
    vec![
        Arc::new(Map::new("array", def(MapKind::Array, 4, 16, 4), 1).unwrap()),
        Arc::new(Map::new("hash", def(MapKind::Hash, 8, 8, 8), 1).unwrap()),
        Arc::new(Map::new("ring", def(MapKind::RingBuf, 0, 0, 256), 1).unwrap()),
    ]
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 64 {
        return;
    }
    let (memory, code) = data.split_at(64);
    let Ok(slots) = ebpf::insn::slots_from_bytes(&code[..code.len() / 8 * 8]) else { return };
    let helpers = HelperTable::standard();
    let maps = maps();
    let Ok(program) = Program::load(&slots, &helpers, &maps) else { return };
    let options = RunOptions {
        instruction_budget: 10_000,
        ..Default::default()
    };
    let mut vm = Vm::new();
    let mut input = memory.to_vec();
    let checked = vm.run(&program, &mut input, &options, &HostPlatform::default());
    let Ok(checked) = checked else { return };
    // Differential check of the fast mode, for programs whose execution depends only on the
    // input and the stack: no helper calls and no map references (local calls are fine). The
    // same VM (same stack address) and the same input buffer (same address, contents
    // restored) make the second run repeat the first exactly.
    let pure = slots.iter().all(|s| {
        !(s.opcode == 0x85 && s.src != 1) && s.opcode != 0x8d && !(s.opcode == 0x18 && s.src != 0)
    });
    if !pure {
        return;
    }
    let checked_output = input.clone();
    input.copy_from_slice(memory);
    // The fast mode does not clear the stack; a checked run of `exit` in the same VM does,
    // so the fast run starts from the same (zeroed) stack at the same address.
    let zero = Program::load(&ebpf::asm::assemble("exit").unwrap(), &helpers, &[]).unwrap();
    vm.run(&zero, &mut [], &options, &HostPlatform::default()).unwrap();
    // SAFETY: the checked run of this deterministic, helper-free program on the same input
    // bytes at the same address, with the same (re-zeroed) stack at the same address,
    // completed with every access in bounds; the fast run repeats it exactly.
    let fast = unsafe { vm.run_unchecked(&program, &mut input, &options, &HostPlatform::default()) };
    let fast = fast.expect("fast mode fails where checked mode passed");
    assert_eq!(fast, checked, "fast and checked runs differ");
    assert_eq!(input, checked_output, "fast and checked runs wrote different memory");
});
