//! Interpreter on arbitrary programs (bounds-checking mode, budget 10 000): no panic and no
//! memory error whatever the program does. The first 64 bytes are the input memory; the
//! program gets an array map, a hash map and a ring buffer and the standard helpers.
#![no_main]
use std::sync::{Arc, OnceLock};

use ebpf::maps::{Map, MapDef, MapKind};
use libfuzzer_sys::fuzz_target;

fn maps() -> &'static Vec<Arc<Map>> {
    static MAPS: OnceLock<Vec<Arc<Map>>> = OnceLock::new();
    MAPS.get_or_init(|| {
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
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 64 {
        return;
    }
    let (memory, code) = data.split_at(64);
    let Ok(slots) = ebpf::insn::slots_from_bytes(&code[..code.len() / 8 * 8]) else { return };
    let Ok(program) =
        ebpf::vm::Program::load(&slots, &ebpf::runtime::HelperTable::standard(), maps())
    else {
        return;
    };
    let mut input = memory.to_vec();
    let options = ebpf::vm::RunOptions {
        instruction_budget: 10_000,
        ..Default::default()
    };
    let _ = ebpf::vm::Vm::new().run(
        &program,
        &mut input,
        &options,
        &ebpf::runtime::HostPlatform::default(),
    );
    while maps()[2].ringbuf_pop().is_some() {}
});
