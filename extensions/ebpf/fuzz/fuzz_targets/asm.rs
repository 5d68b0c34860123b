//! Assembler on arbitrary text: no panic; whatever assembles must disassemble and
//! re-assemble to the same slots.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(slots) = ebpf::asm::assemble(&text) {
        if let Ok(listing) = ebpf::disasm::disassemble(&slots) {
            let again = ebpf::asm::assemble(&listing).expect("disassembly re-assembles");
            assert_eq!(again, slots);
        }
    }
});
