//! The grammars against what consumes the model's output:
//!
//! * every canonical example the model sees as few-shot material (extensions/library/ebpf/*.s,
//!   extensions/wasm/modules/*.wat) is a sentence of the grammar, so the mask never blocks the
//!   style the prompt teaches;
//! * random sentences of each grammar get past the real parser: the eBPF assembler fails only on
//!   label resolution or number range (never on syntax), the WAT compiler only on names, types
//!   or limits (never on syntax). So constrained output always reaches the verifier.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpf::asm::{assemble, AsmErrorKind};
use llm::grammar::{Grammar, GrammarState, EBPF_ASM, WAT};
use wasm::wat::WatErrorKind;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_with_extension(directory: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("{}: {e}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn accepts(grammar: &Arc<Grammar>, text: &str) -> Result<(), String> {
    let mut state = GrammarState::new(grammar.clone()).unwrap();
    state.accept_bytes(text.as_bytes()).map_err(|e| {
        let offset = match e {
            llm::grammar::GrammarStateError::Rejected { offset, .. } => offset,
            _ => 0,
        };
        format!(
            "{e} near {:?}",
            &text[offset.saturating_sub(40)..(offset + 10).min(text.len())]
        )
    })?;
    if state.is_complete() {
        Ok(())
    } else {
        Err("incomplete".into())
    }
}

#[test]
fn library_examples_are_sentences_of_the_grammars() {
    let ebpf = Arc::new(Grammar::parse(EBPF_ASM).unwrap());
    let wat = Arc::new(Grammar::parse(WAT).unwrap());
    let assembly = files_with_extension(&repository().join("extensions/library/ebpf"), "s");
    let modules = files_with_extension(&repository().join("extensions/wasm/modules"), "wat");
    assert!(
        !assembly.is_empty() && !modules.is_empty(),
        "library examples found"
    );
    for path in assembly {
        let text = std::fs::read_to_string(&path).unwrap();
        accepts(&ebpf, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for path in modules {
        let text = std::fs::read_to_string(&path).unwrap();
        accepts(&wat, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn generated_assembly_gets_past_the_assembler_parser() {
    let grammar = Grammar::parse(EBPF_ASM).unwrap();
    let mut assembled = 0;
    for seed in 0..400 {
        let text = String::from_utf8(grammar.generate(seed, 10)).unwrap();
        match assemble(&text) {
            Ok(_) => assembled += 1,
            Err(error) => assert!(
                matches!(
                    error.kind,
                    AsmErrorKind::UnknownLabel(_)
                        | AsmErrorKind::DuplicateLabel(_)
                        | AsmErrorKind::JumpOutOfRange(_)
                        | AsmErrorKind::BadNumber(_)
                        | AsmErrorKind::TooLong
                ),
                "seed {seed}: {error:?} in\n{text}"
            ),
        }
    }
    assert!(assembled > 20, "{assembled} of 400 assembled");
}

#[test]
fn generated_modules_get_past_the_wat_compiler_parser() {
    let grammar = Grammar::parse(WAT).unwrap();
    let mut compiled = 0;
    let mut failures = Vec::new();
    for seed in 0..300 {
        let text = String::from_utf8(grammar.generate(seed, 8)).unwrap();
        match wasm::wat::compile(&text) {
            Ok(_) => compiled += 1,
            Err(error) => {
                let semantic = matches!(
                    error.kind,
                    WatErrorKind::UnknownName { .. }
                        | WatErrorKind::DuplicateName { .. }
                        | WatErrorKind::DuplicateExport(_)
                        | WatErrorKind::BadNumber(_)
                        | WatErrorKind::TooMany(_)
                        | WatErrorKind::NoMemory
                        | WatErrorKind::SecondMemory
                        | WatErrorKind::BadAlignment(_)
                        | WatErrorKind::TypeMismatch { .. }
                        | WatErrorKind::StackUnderflow { .. }
                        | WatErrorKind::WrongResultCount { .. }
                ) || matches!(error.kind, WatErrorKind::Expected(what) if what.contains("type"))
                    || matches!(error.kind, WatErrorKind::Unbalanced(what) if what.contains("at most"));
                if !semantic {
                    failures.push(format!("seed {seed}: {error:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "syntax errors on grammar output:\n{}",
        failures.join("\n")
    );
    assert!(compiled > 0, "{compiled} of 300 compiled");
}
