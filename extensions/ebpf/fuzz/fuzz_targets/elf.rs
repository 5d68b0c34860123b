//! ELF loader on arbitrary bytes: no panic, and whatever parses loads or fails cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = ebpf::elf::parse(data) {
        if let Ok(maps) = object.create_maps(2) {
            for program in &object.programs {
                let _ = ebpf::vm::Program::load(
                    &program.slots,
                    &ebpf::runtime::HelperTable::standard(),
                    &maps,
                );
            }
        }
    }
});
