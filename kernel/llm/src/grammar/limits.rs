//! Static limits of the grammar engine, each with the reason for its number.
//!
//! Grammar text may come from a console user and the recogniser runs on model output, so every
//! structure that grows with input is bounded here; exceeding a bound is a typed error, never a
//! panic or an unbounded loop.

/// Longest grammar text in bytes. The eBPF and WAT grammars are ~2-4 KiB; 64 KiB leaves room for
/// much richer grammars while bounding parse time and memory.
pub const MAX_GRAMMAR_TEXT: usize = 64 * 1024;

/// Most rules (named plus the ones generated for groups, `*`, `+`, `?` and Unicode classes).
/// The WAT grammar needs ~150; 4096 is generous and keeps rule ids small.
pub const MAX_RULES: usize = 4096;

/// Most grammar elements (bytes, byte sets, rule references, alternative ends) after
/// compilation. Bounds the flattened grammar at 64 Ki entries (a few hundred KiB).
pub const MAX_ELEMENTS: usize = 65_536;

/// Deepest group nesting in grammar text. Parsing is recursive; 64 levels is far beyond any
/// hand-written grammar and bounds the parser's stack use in the kernel.
pub const MAX_GROUP_NESTING: usize = 64;

/// Most parse stacks a recogniser state may hold at once. Each stack is one way the output so
/// far can be continued; unambiguous grammars like ours keep fewer than 20. 512 tolerates
/// moderately ambiguous grammars; past it the grammar is too ambiguous to mask cheaply and the
/// engine reports [`crate::grammar::GrammarStateError::TooManyStacks`].
pub const MAX_STACKS: usize = 512;

/// Deepest parse stack (nesting of unfinished rules). WAT blocks nest; 256 levels of nesting is
/// far beyond what a model writes in one function and bounds memory per stack.
pub const MAX_STACK_DEPTH: usize = 256;

/// Deepest chain of rule expansions without consuming a byte. Grammars are checked for left
/// recursion, so chains are finite; this bounds the recursion of the expander (kernel stack use)
/// even so.
pub const MAX_EXPANSION_DEPTH: usize = 128;

/// Longest vocabulary entry the trie walk descends into, in bytes. Real vocabularies top out
/// around 128 bytes (long whitespace or dash runs); deeper entries are not walked and so never
/// allowed by the mask, which keeps the walk's per-level buffers bounded.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Most distinct parse-stack sets the mask's transition cache keeps (a lazily built DFA over the
/// recogniser). Each costs a 256-entry `u16` transition row (512 bytes) plus its stacks, so the
/// cache stays under ~3 MiB; walks over our grammars meet a few hundred sets. When it fills it is
/// cleared (and a walk that fills it mid-way falls back to the uncached walk).
pub const MAX_CACHED_SETS: usize = 4096;
