//! Decoder on arbitrary bytes: no panic; every decodable program disassembles to text that
//! assembles back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(slots) = ebpf::insn::slots_from_bytes(data) else { return };
    if ebpf::insn::decode_program(&slots).is_ok() {
        let text = ebpf::disasm::disassemble(&slots).expect("decodable disassembles");
        let again = ebpf::asm::assemble(&text).expect("disassembly re-assembles");
        assert_eq!(again, slots, "{text}");
    }
});
