//! The assembler and disassembler against the conformance corpora: every `asm` must assemble
//! to exactly `program_hex`, and disassemble → assemble must give the same bytes back.

mod common;

use common::{hex, records, str_field, to_hex};
use ebpf::asm::{assemble_bytes, AsmErrorKind};
use ebpf::disasm::disassemble;
use ebpf::insn::slots_from_bytes;

#[test]
fn bpf_conformance_asm_matches_program_hex() {
    let recs = records("conformance/ebpf/bpf_conformance.jsonl");
    assert_eq!(recs.len(), 313);
    let mut failures = Vec::new();
    for r in &recs {
        let name = str_field(r, "name").unwrap();
        let asm = str_field(r, "asm").unwrap();
        let expected = str_field(r, "program_hex").unwrap();
        match assemble_bytes(asm) {
            Ok(bytes) if to_hex(&bytes) == expected => {}
            Ok(bytes) => failures.push(format!("{name}: got {} want {expected}", to_hex(&bytes))),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ubpf_asm_matches_program_hex() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for r in &records("conformance/ebpf/ubpf.jsonl") {
        let name = str_field(r, "name").unwrap();
        let Some(asm) = str_field(r, "asm") else {
            continue;
        };
        let expected = str_field(r, "program_hex").unwrap_or("");
        let raw_only = str_field(r, "program_source") == Some("raw")
            && r.get("raw_matches_asm").and_then(|v| v.as_bool()) != Some(true);
        if raw_only {
            continue; // the raw bytes are deliberately not what the asm says (error tests)
        }
        match assemble_bytes(asm) {
            Ok(bytes) if to_hex(&bytes) == expected => checked += 1,
            Ok(bytes) => failures.push(format!("{name}: got {} want {expected}", to_hex(&bytes))),
            // r11 is not a register: our assembler refuses what ubpf's load step refuses.
            Err(e) if name.starts_with("errors/err-invalid-reg") => {
                assert!(
                    matches!(e.kind, AsmErrorKind::BadRegister(_)),
                    "{name}: {e}"
                );
                checked += 1;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 60, "only {checked} ubpf programs checked");
}

#[test]
fn disassemble_then_assemble_round_trips() {
    let mut count = 0;
    for file in [
        "conformance/ebpf/bpf_conformance.jsonl",
        "conformance/ebpf/ubpf.jsonl",
        "bench/ebpf/programs.jsonl",
    ] {
        for r in &records(file) {
            let Some(program) = str_field(r, "program_hex") else {
                continue;
            };
            let bytes = hex(program);
            let Ok(slots) = slots_from_bytes(&bytes) else {
                continue;
            };
            if slots.len() > ebpf::limits::MAX_PROGRAM_SLOTS {
                continue; // the ubpf too-many-instructions case: refused by design
            }
            // Programs that do not decode (the ubpf load-error cases) have no text form.
            let Ok(text) = disassemble(&slots) else {
                continue;
            };
            let again = assemble_bytes(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", str_field(r, "name").unwrap()));
            assert_eq!(to_hex(&again), program, "{}", str_field(r, "name").unwrap());
            count += 1;
        }
    }
    assert!(count >= 313 + 50 + 5, "round-tripped only {count}");
}
