//! What the verifier is told about the hook a program is loaded into.
//!
//! Everything that differs between hooks is data here, never code: the context layout
//! (size, which bytes may be read and which written), the helpers the hook allows with their
//! prototypes, the maps the program may reference, and the limits. The CLI builds one from
//! flags and a JSON file; the kernel builds one per hook point.

use alloc::string::String;
use alloc::vec::Vec;

pub use ebpf::helpers::{ArgType, HelperPrototype, RetType};

/// A half-open byte range `[start, end)` inside the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u32,
    pub end: u32,
}

impl ByteRange {
    /// `[start, end)`.
    pub const fn new(start: u32, end: u32) -> Self {
        ByteRange { start, end }
    }
}

/// The layout of a hook's context (what r1 points to at entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextDescriptor {
    /// Size in bytes.
    pub size: u32,
    /// Bytes the program may read.
    pub readable: Vec<ByteRange>,
    /// Bytes the program may write (scalars only: a pointer stored there would leak).
    pub writable: Vec<ByteRange>,
}

impl ContextDescriptor {
    /// A context of `size` bytes, all readable, none writable.
    pub fn read_only(size: u32) -> Self {
        ContextDescriptor {
            size,
            readable: alloc::vec![ByteRange::new(0, size)],
            writable: Vec::new(),
        }
    }

    /// A context of `size` bytes, all readable and writable.
    pub fn read_write(size: u32) -> Self {
        ContextDescriptor {
            size,
            readable: alloc::vec![ByteRange::new(0, size)],
            writable: alloc::vec![ByteRange::new(0, size)],
        }
    }

    /// True when every byte of `[start, end)` lies in the union of `ranges` and the context.
    pub(crate) fn covers(&self, ranges: &[ByteRange], start: i64, end: i64) -> bool {
        if start < 0 || end > self.size as i64 || start >= end {
            return start >= 0 && end <= self.size as i64 && start == end;
        }
        let mut position = start;
        // Ranges may be given in any order and may overlap: repeat until no progress.
        loop {
            let mut advanced = false;
            for r in ranges {
                if (r.start as i64) <= position && position < r.end as i64 {
                    position = r.end as i64;
                    advanced = true;
                    if position >= end {
                        return true;
                    }
                }
            }
            if !advanced {
                return false;
            }
        }
    }
}

/// What the verifier needs of a map: the sizes its key and value pointers must cover.
/// A program refers to map `i` of [`VerifierConfig::maps`] with `lddw dst, map` whose
/// immediate is `i` (both the "by fd" and "by index" pseudo kinds: the loader resolves fds to
/// indices before verification).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// Name for messages.
    pub name: String,
    pub key_size: u32,
    pub value_size: u32,
}

/// A helper the hook allows: an owned copy of a [`HelperPrototype`] (so prototypes can also
/// come from a JSON file at run time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperSpec {
    pub id: u32,
    pub name: String,
    pub args: Vec<ArgType>,
    pub ret: RetType,
}

impl From<&HelperPrototype> for HelperSpec {
    fn from(p: &HelperPrototype) -> Self {
        HelperSpec {
            id: p.id,
            name: p.name.into(),
            args: p.args.to_vec(),
            ret: p.ret,
        }
    }
}

/// Everything [`crate::verify`] is told about the hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Layout of the context r1 points to at entry.
    pub context: ContextDescriptor,
    /// Helpers the program may call (any other id is rejected).
    pub helpers: Vec<HelperSpec>,
    /// Maps the program may reference by index.
    pub maps: Vec<MapDef>,
    /// Most instruction slots.
    pub max_insns: usize,
    /// Most instructions processed by the analysis, over all paths.
    pub complexity_limit: u64,
    /// Deepest call chain (frames including the main one), at most
    /// [`crate::limits::MAX_CALL_DEPTH`].
    pub max_call_depth: usize,
    /// Most branches pending at once in the analysis (bounds its memory).
    pub max_pending_paths: usize,
    /// Most abstract states kept for pruning (bounds its memory; past it, less pruning).
    pub max_stored_states: usize,
}

impl VerifierConfig {
    /// A hook with a read-only context of `context_size` bytes, no helpers, no maps and the
    /// default limits.
    pub fn new(context_size: u32) -> Self {
        VerifierConfig {
            context: ContextDescriptor::read_only(context_size),
            helpers: Vec::new(),
            maps: Vec::new(),
            max_insns: crate::limits::DEFAULT_MAX_INSNS,
            complexity_limit: crate::limits::DEFAULT_COMPLEXITY_LIMIT,
            max_call_depth: crate::limits::MAX_CALL_DEPTH,
            max_pending_paths: crate::limits::MAX_PENDING_PATHS,
            max_stored_states: crate::limits::MAX_STORED_STATES,
        }
    }

    /// Allows every helper the runtime implements ([`ebpf::helpers::HELPER_PROTOTYPES`]).
    pub fn with_all_runtime_helpers(mut self) -> Self {
        self.helpers = ebpf::helpers::HELPER_PROTOTYPES
            .iter()
            .map(HelperSpec::from)
            .collect();
        self
    }

    pub(crate) fn helper(&self, id: u32) -> Option<&HelperSpec> {
        self.helpers.iter().find(|h| h.id == id)
    }
}
