//! Agreement with the PREVAIL verifier's test cases (data-driven, with a ratchet).
//!
//! Replays the fixed-entry-state cases of `../shared/conformance/ebpf/prevail_verifier.jsonl`
//! (`pre_class` `entry_like` or `empty`, with `program_hex`; see that README, section 3)
//! under PREVAIL's harness conventions translated to ours:
//! - context of 64 bytes, all readable; writable except the `data`/`data_end` words at 0..8
//!   (PREVAIL turns those into packet pointers and rejects writes that overlap them);
//! - r1 = context and r10 = stack at entry (PREVAIL's `empty` leaves them uninitialised:
//!   the only systematic difference, justified in the README);
//! - helpers with Linux prototypes: `trace_printk` (6) and `get_stack` (67);
//!   `skc_lookup_tcp` (99) returns a socket pointer, a type we do not model, so it is not
//!   allowed (a conservative rejection).
//!
//! Every case where PREVAIL rejects and we accept must appear, with a justification, in the
//! table of `README.md` (section "Accepted where PREVAIL rejects"): the test checks it.
//! Agreement must not fall below [`AGREEMENT_RATCHET`].

use ebpf_verifier::{
    verify, ArgType, ByteRange, ContextDescriptor, HelperSpec, RawInsn, RetType, VerifierConfig,
};

/// Cases where our verdict equals PREVAIL's, out of the replayed cases. Raise it when the
/// verifier gets more precise; it must never fall.
const AGREEMENT_RATCHET: usize = 77;

/// The same under PREVAIL's end-is-exit convention ([`with_final_exit`]).
const AGREEMENT_WITH_EXIT_RATCHET: usize = 102;

fn data_path(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/ebpf")
        .join(file)
}

fn config() -> VerifierConfig {
    let mut c = VerifierConfig::new(64);
    c.context = ContextDescriptor {
        size: 64,
        readable: vec![ByteRange::new(0, 64)],
        writable: vec![ByteRange::new(8, 64)],
    };
    c.helpers = vec![
        HelperSpec::from(ebpf::helpers::prototype(6).expect("trace_printk in the runtime table")),
        HelperSpec {
            id: 67,
            name: "get_stack".into(),
            args: vec![
                ArgType::Context,
                ArgType::WritableMemory,
                ArgType::MemorySize,
                ArgType::Scalar,
            ],
            ret: RetType::Scalar,
        },
    ];
    c
}

fn hex_to_slots(hex: &str) -> Vec<RawInsn> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    ebpf::insn::slots_from_bytes(&bytes).expect("whole slots")
}

struct Outcome {
    name: String,
    expected_accept: bool,
    verdict: Result<(), String>,
    /// The verdict under PREVAIL's "the end of the code is an exit" convention.
    verdict_with_exit: Result<(), String>,
}

/// PREVAIL's harness lets a program run off its end (the end acts as an exit and r0 is not
/// checked). Our verifier rejects that; to measure everything else, this variant appends
/// `r0 = 0; exit` after a program whose last slot is not `exit` or `ja`.
fn with_final_exit(slots: &[RawInsn]) -> Vec<RawInsn> {
    let mut out = slots.to_vec();
    let ends = slots
        .last()
        .is_some_and(|s| s.opcode == 0x95 || s.opcode == 0x05 || s.opcode == 0x06);
    if !ends {
        out.push(RawInsn::new(0xb7, 0, 0, 0, 0));
        out.push(RawInsn::new(0x95, 0, 0, 0, 0));
    }
    out
}

fn run_cases() -> Vec<Outcome> {
    let path = data_path("prevail_verifier.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared conformance data is required)",
            path.display()
        )
    });
    let config = config();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
        let class = record["pre_class"].as_str().unwrap_or("");
        let Some(hex) = record["program_hex"].as_str() else {
            continue;
        };
        if class != "entry_like" && class != "empty" {
            continue;
        }
        let slots = hex_to_slots(hex);
        let verdict = verify(&slots, &config)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let verdict_with_exit = verify(&with_final_exit(&slots), &config)
            .map(|_| ())
            .map_err(|e| e.to_string());
        out.push(Outcome {
            name: format!(
                "{}: {}",
                record["source_file"]
                    .as_str()
                    .unwrap_or("?")
                    .trim_start_matches("test-data/"),
                record["name"].as_str().unwrap_or("?")
            ),
            expected_accept: record["expected"].as_str() == Some("accept"),
            verdict,
            verdict_with_exit,
        });
    }
    out
}

#[test]
fn agreement_with_prevail() {
    let outcomes = run_cases();
    assert_eq!(
        outcomes.len(),
        110,
        "the README promises 110 fixed-entry cases"
    );
    let agree = outcomes
        .iter()
        .filter(|o| o.expected_accept == o.verdict.is_ok())
        .count();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut unjustified = Vec::new();
    println!(
        "PREVAIL fixed-entry cases: {agree}/{} agree",
        outcomes.len()
    );
    for o in &outcomes {
        match (o.expected_accept, &o.verdict) {
            (false, Ok(())) => {
                println!("  ACCEPT, PREVAIL rejects: {}", o.name);
                if !readme.contains(&format!("`{}`", o.name)) {
                    unjustified.push(o.name.clone());
                }
            }
            (true, Err(e)) => println!("  REJECT {e}, PREVAIL accepts: {}", o.name),
            _ => {}
        }
    }
    let agree_with_exit = outcomes
        .iter()
        .filter(|o| o.expected_accept == o.verdict_with_exit.is_ok())
        .count();
    println!(
        "with PREVAIL's end-is-exit convention: {agree_with_exit}/{} agree",
        outcomes.len()
    );
    for o in &outcomes {
        match (o.expected_accept, &o.verdict_with_exit) {
            (false, Ok(())) => {
                println!("  ACCEPT, PREVAIL rejects: {}", o.name);
                if !readme.contains(&format!("`{}`", o.name)) {
                    unjustified.push(o.name.clone());
                }
            }
            (true, Err(e)) => println!("  REJECT {e}, PREVAIL accepts: {}", o.name),
            _ => {}
        }
    }
    assert!(
        agree_with_exit >= AGREEMENT_WITH_EXIT_RATCHET,
        "agreement (end-is-exit) fell to {agree_with_exit}, below the ratchet {AGREEMENT_WITH_EXIT_RATCHET}"
    );
    assert!(
        unjustified.is_empty(),
        "accepted where PREVAIL rejects, without a justification in README.md: {unjustified:#?}"
    );
    assert!(
        agree >= AGREEMENT_RATCHET,
        "agreement fell to {agree}, below the ratchet {AGREEMENT_RATCHET}"
    );
}
