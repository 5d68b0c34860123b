//! eBPF verifier: proves before load that a program is safe to run in the kernel.
//!
//! The verifier is a pure function from a program and a description of the hook
//! ([`VerifierConfig`]) to a verdict, in four stages (the split PREVAIL and uBPF use):
//!
//! 1. **decode** ([`ebpf::insn::decode_program`]): every slot must be a defined RFC 9669
//!    encoding; the length must fit the instruction limit.
//! 2. **control-flow graph** ([`cfg`]): jump and call targets in range and not inside an
//!    `lddw`, no fall-through past the end, no unreachable code; prune points found.
//! 3. **abstract interpretation** ([`analyze`]): every path is followed over an abstract
//!    state of typed registers ([`state`]) whose integers are ranges plus known bits
//!    ([`scalar`], [`tnum`]). Memory accesses, helper calls, pointer use and exits are
//!    checked on the way; branches refine both edges; states are pruned by inclusion at join
//!    points; loops are unrolled until proven finished (a repeating state or the complexity
//!    limit rejects).
//! 4. **verdict**: [`VerifySummary`] or the first [`VerifyError`], naming the instruction.
//!
//! What "safe" means here: the program ends; it reads no uninitialised register or stack
//! byte; it touches memory only inside the context (as the hook describes it), its stack
//! frames (512 bytes each) and map values, with bounds proven for every possible offset;
//! it never leaks a pointer (into the context, a map value, or r0 at exit) nor turns one into
//! a scalar; it calls only the hook's helpers with arguments of the prototype's types; it
//! never writes r10. Division by zero is *allowed*: RFC 9669 defines the result (`x / 0 = 0`,
//! `x % 0 = x`), the interpreter implements it, and the analysis models it exactly.
//! `callx` is accepted only when its register holds a known constant, which is then checked
//! as a helper call; any other indirect call is rejected.

#![cfg_attr(not(any(test, feature = "fuzzing")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod analyze;
pub mod bench;
pub mod cfg;
pub mod config;
pub mod error;
pub mod limits;
pub mod scalar;
pub mod state;
pub mod tnum;

#[cfg(any(test, feature = "fuzzing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use config::{
    ArgType, ByteRange, ContextDescriptor, HelperSpec, MapDef, RetType, VerifierConfig,
};
pub use ebpf::insn::RawInsn;
pub use error::{VerifyError, VerifyErrorKind};

/// What the analysis did, for the extension history and for tuning limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// Instruction slots in the program.
    pub insns: usize,
    /// Instructions processed over all paths (the complexity measure).
    pub states_explored: u64,
    /// Abstract states kept for pruning.
    pub states_stored: usize,
    /// Most paths pending at once.
    pub peak_pending_paths: usize,
    /// Paths cut short because a kept state included them.
    pub paths_pruned: u64,
    /// Deepest stack byte touched in any frame (bytes below r10).
    pub max_stack_depth: usize,
    /// Deepest call chain (frames, 1 = no BPF-to-BPF calls).
    pub max_call_depth: usize,
    /// Subprograms (functions reached by local calls) besides the main one.
    pub subprograms: usize,
    /// Peak bytes of analysis state (kept states plus pending paths, including their stack
    /// slots): the verifier's working memory apart from the decoded program.
    pub peak_state_bytes: usize,
}

/// Verifies `program` for the hook `config` describes, from the standard entry state
/// (r1 = context, r10 = stack, nothing else initialised).
pub fn verify(program: &[RawInsn], config: &VerifierConfig) -> Result<VerifySummary, VerifyError> {
    verify_from(program, config, state::State::entry())
}

/// Verifies `program` from a given abstract entry state (one frame), for callers that know
/// more about the registers at entry than the standard convention (and for replaying
/// other verifiers' test cases with abstract preconditions). r10 must be the stack pointer
/// of frame 0 at offset 0, or the entry state is replaced by the standard one's r10.
pub fn verify_from(
    program: &[RawInsn],
    config: &VerifierConfig,
    mut entry: state::State,
) -> Result<VerifySummary, VerifyError> {
    entry.frames.truncate(1);
    if entry.frames.is_empty() {
        entry = state::State::entry();
    }
    entry.frames[0].regs[10] = state::State::entry().frames[0].regs[10];
    // The entry state is input too: anything the analysis could not have produced itself
    // (a pointer into a frame that does not exist, a map the hook lacks, an offset beyond the
    // pointer limit, contradictory facts) becomes uninitialised, so no later step can
    // index out of range or overflow.
    let maps = config.maps.len();
    entry.map_values(|v| {
        let valid = match v {
            state::Value::Uninit => true,
            state::Value::Scalar(s) => s.normalize() == Some(*s),
            state::Value::Pointer { region, offset } => {
                let region_ok = match region {
                    state::Region::Context => true,
                    state::Region::Stack { frame } => *frame == 0,
                    state::Region::MapValue { map } => (*map as usize) < maps,
                };
                region_ok
                    && offset.normalize() == Some(*offset)
                    && offset.smin >= -limits::MAX_POINTER_OFFSET
                    && offset.smax <= limits::MAX_POINTER_OFFSET
            }
            state::Value::MapValueOrNull { map, .. } | state::Value::MapPointer { map } => {
                (*map as usize) < maps
            }
        };
        (!valid).then_some(state::Value::Uninit)
    });
    if program.is_empty() {
        return Err(VerifyError {
            insn: 0,
            kind: VerifyErrorKind::EmptyProgram,
        });
    }
    if program.len() > config.max_insns {
        return Err(VerifyError {
            insn: config.max_insns,
            kind: VerifyErrorKind::TooManyInstructions {
                count: program.len(),
                limit: config.max_insns,
            },
        });
    }
    let decoded = ebpf::insn::decode_program(program).map_err(|e| VerifyError {
        insn: e.slot,
        kind: VerifyErrorKind::Decode(e.kind),
    })?;
    let helper_args = |id: i64| {
        u32::try_from(id)
            .ok()
            .and_then(|id| config.helper(id))
            .map(|h| h.args.len())
            .unwrap_or(5)
    };
    let graph = cfg::build(&decoded, &helper_args)?;
    let mut config_checked;
    let config = if config.max_call_depth > limits::MAX_CALL_DEPTH {
        config_checked = config.clone();
        config_checked.max_call_depth = limits::MAX_CALL_DEPTH;
        &config_checked
    } else {
        config
    };
    let stats = analyze::Analyzer::new(&decoded, &graph, config).run(entry)?;
    Ok(VerifySummary {
        insns: program.len(),
        states_explored: stats.insns_processed,
        states_stored: stats.states_stored,
        peak_pending_paths: stats.peak_pending_paths,
        paths_pruned: stats.paths_pruned,
        max_stack_depth: stats.max_stack_depth,
        max_call_depth: stats.max_call_depth,
        subprograms: graph.subprograms.len(),
        peak_state_bytes: stats.peak_state_bytes,
    })
}
