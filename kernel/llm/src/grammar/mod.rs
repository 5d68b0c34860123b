//! Grammar-constrained decoding: a GBNF-like grammar engine, a byte-level recogniser and a
//! vocabulary trie that turns "which continuations are valid" into a token mask.
//!
//! # Use
//!
//! ```text
//! let grammar = Arc::new(Grammar::parse(grammar::EBPF_ASM)?);     // once
//! let trie = tokenizer.vocab_trie();                             // once per vocabulary
//! let mut mask = TokenMask::new_block_all(tokenizer.vocab_size()); // once
//! let mut state = GrammarState::new(grammar)?;                    // once per generation
//! loop {
//!     let logits = model.forward(..);
//!     // Either the explicit way:
//!     state.mask(&trie, &mut mask)?;                              // which tokens keep a valid prefix
//!     let token = sampler.sample(&mut logits, Some(&mask))?;
//!     if trie.is_end_token(token) { break; }                      // allowed only when complete
//!     state.accept_token(&trie, token)?;
//!     // or, cheaper (the full mask only when the unmasked pick is rejected):
//!     // let token = grammar::sample_constrained(&mut sampler, &mut logits, &mut state, &trie, &mut mask)?;
//! }
//! ```
//!
//! # Grammar text
//!
//! ```text
//! # comment
//! root  ::= line+                      # `root` is the start rule
//! line  ::= insn "\n" | label ":" "\n"
//! label ::= [a-z_] [a-z0-9_]*
//! num   ::= "-"? [0-9]+ ("." [0-9]+)?
//! any   ::= [^\n]*                      # negated classes; `.` is any character
//! ```
//!
//! Rules are `name ::= alternatives`; alternatives are separated by `|` (also at the start of a
//! continuation line); sequences of string literals (`"..."`, escapes `\n \r \t \\ \" \xHH
//! \u{...}`), character classes (`[a-z0-9_]`, `[^...]`, Unicode allowed), rule names,
//! `.` and parenthesised groups, each optionally followed by `*`, `+` or `?`. Errors carry the
//! line and column.
//!
//! # Design
//!
//! The grammar is compiled to a flat array of elements, each alternative a run ending in `End`,
//! as in llama.cpp's grammar engine. Everything is **byte level**: string literals become byte
//! elements, and classes become byte sets (ASCII) or generated rules whose alternatives are
//! UTF-8 byte-range sequences ([`utf8`]). So a token that ends in the middle of a character
//! needs no special case: the recogniser is simply in the middle of a sequence.
//!
//! `x*` becomes a right-recursive rule `R ::= x R | ε` (in tail position, so repetition does not
//! grow the stack), `x+` becomes `x R`, `x?` becomes `R ::= x | ε`. Left recursion is rejected
//! when the grammar is parsed (it would make the expansion loop).
//!
//! A recogniser state ([`GrammarState`]) is a set of parse stacks; each stack holds positions
//! in the element array, the top always a byte or byte-set element (an empty stack means the
//! grammar has been completed). Feeding a byte keeps the stacks whose top matches, advances
//! them and expands rule references until byte elements are on top again. The number of stacks
//! and their depth are bounded ([`limits`]).
//!
//! The mask ([`GrammarState::mask`]) walks the [`VocabTrie`] depth first, advancing a copy of
//! the stack set by one byte per trie edge, so a prefix shared by many tokens is checked once and
//! a subtree is skipped as soon as its prefix is invalid (most of the vocabulary is cut at the
//! first byte). End-of-generation tokens are allowed only when some stack is empty.
//!
//! Two things keep that walk cheap on a 49 152-token vocabulary (figures from
//! `examples/grammar_mask_bench.rs` on the host): stack sets are interned and every
//! `(set, byte)` transition is cached (`cache.rs`, a lazily built DFA that persists across
//! tokens), and a trie subtree is allowed whole, without walking it, when every byte class
//! below it (letters, digits, `_`, blanks, punctuation) leads the state back to itself, as in an
//! identifier, a comment or a string. Strict states cost about a microsecond, identifier
//! states tens of microseconds, free-text states (where ~49 000 tokens are allowed and the
//! cost is mostly setting their bits) about 0.15 ms, against roughly 180 ms for one SmolLM2
//! forward pass on the same host.
//! [`sample_constrained`] avoids even that in most steps: it checks the unmasked pick first and
//! computes the mask only when the grammar rejects it.

mod cache;
mod generate;
pub mod limits;
mod parse;
mod state;
mod trie;
pub mod utf8;

#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use state::{GrammarState, GrammarStateError};
pub use trie::VocabTrie;

use crate::sample::{SampleError, Sampler, TokenMask};

/// The eBPF assembly subset the model writes (bpf_conformance/ubpf syntax, one instruction or
/// label per line).
pub const EBPF_ASM: &str = include_str!("ebpf.gbnf");

/// The WAT subset the model writes (one module; imports, functions with params, results and
/// locals, flat i32/i64 instructions, structured control flow, exports).
pub const WAT: &str = include_str!("wat.gbnf");

/// Why [`sample_constrained`] could not produce a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstrainedError {
    /// The sampler failed (no allowed token, wrong lengths).
    Sample(SampleError),
    /// The recogniser failed (too ambiguous, too deep).
    Grammar(GrammarStateError),
}

impl fmt::Display for ConstrainedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sample(error) => write!(f, "sampling: {error}"),
            Self::Grammar(error) => write!(f, "grammar: {error}"),
        }
    }
}

/// Sample one token that keeps the output valid, and advance `state` by it.
///
/// Picks without the mask first and keeps that token when the grammar allows it (one cheap
/// byte check); only when it is rejected is the full mask computed and the pick repeated under
/// it. For greedy decoding this is exactly the masked argmax. For random sampling it is exactly
/// the masked distribution when no top-k/top-p truncation is set (a rejected draw is redrawn from
/// the masked distribution: P(t) = p(t) + (1 - Z) p(t) / Z = p(t) / Z); with truncation the
/// candidates are cut before rather than after masking, a small, documented difference. The
/// token is recorded in the sampler's repetition window; end tokens leave the state unchanged.
pub fn sample_constrained(
    sampler: &mut Sampler,
    logits: &mut [f32],
    state: &mut GrammarState,
    trie: &VocabTrie,
    mask: &mut TokenMask,
) -> Result<u32, ConstrainedError> {
    sampler
        .apply_penalty(logits)
        .map_err(ConstrainedError::Sample)?;
    let first = sampler
        .choose(logits, None)
        .map_err(ConstrainedError::Sample)?;
    let token = if state.allows_token(trie, first) {
        first
    } else {
        state.mask(trie, mask).map_err(ConstrainedError::Grammar)?;
        sampler
            .choose(logits, Some(mask))
            .map_err(ConstrainedError::Sample)?
    };
    state
        .accept_token(trie, token)
        .map_err(ConstrainedError::Grammar)?;
    sampler.record(token);
    Ok(token)
}

/// One element of the compiled grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Element {
    /// Exactly this byte.
    Byte(u8),
    /// Any byte in this set (index into [`Grammar::byte_sets`]).
    Set(u32),
    /// Expand this rule.
    Rule(u32),
    /// End of an alternative.
    End,
}

/// A 256-bit set of byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct ByteSet(pub(crate) [u64; 4]);

impl ByteSet {
    pub(crate) fn insert_range(&mut self, low: u8, high: u8) {
        for byte in low..=high {
            self.0[byte as usize / 64] |= 1 << (byte % 64);
        }
    }

    pub(crate) fn contains(&self, byte: u8) -> bool {
        self.0[byte as usize / 64] & (1 << (byte % 64)) != 0
    }

    pub(crate) fn union_with(&mut self, other: &ByteSet) {
        for (word, other_word) in self.0.iter_mut().zip(other.0.iter()) {
            *word |= other_word;
        }
    }
}

/// A compiled grammar: immutable, shareable between generations (wrap it in an `Arc`).
#[derive(Clone, Debug)]
pub struct Grammar {
    /// All alternatives of all rules, each ending with [`Element::End`].
    pub(crate) elements: Vec<Element>,
    /// For rule `r`, `rule_alternatives[r]` is the range of `alternative_starts` it owns.
    pub(crate) rule_alternatives: Vec<(u32, u32)>,
    /// Start position (in `elements`) of each alternative.
    pub(crate) alternative_starts: Vec<u32>,
    pub(crate) byte_sets: Vec<ByteSet>,
    /// Rule names, for messages (generated rules are named after their parent).
    pub(crate) names: Vec<String>,
    pub(crate) root: u32,
}

impl Grammar {
    /// Parse and compile grammar text; the start rule is `root`.
    pub fn parse(text: &str) -> Result<Self, GrammarError> {
        parse::parse(text)
    }

    /// Number of rules, including generated ones.
    pub fn rule_count(&self) -> usize {
        self.rule_alternatives.len()
    }

    /// The name of rule `rule` (for messages).
    pub fn rule_name(&self, rule: u32) -> Option<&str> {
        self.names.get(rule as usize).map(|s| s.as_str())
    }

    pub(crate) fn alternatives(&self, rule: u32) -> &[u32] {
        let (start, len) = self.rule_alternatives[rule as usize];
        &self.alternative_starts[start as usize..(start + len) as usize]
    }

    /// Does the byte or byte-set element at `position` match `byte`?
    pub(crate) fn matches(&self, position: u32, byte: u8) -> bool {
        match self.elements[position as usize] {
            Element::Byte(expected) => expected == byte,
            Element::Set(set) => self.byte_sets[set as usize].contains(byte),
            Element::Rule(_) | Element::End => false,
        }
    }
}

/// What is wrong with grammar text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrammarErrorKind {
    /// A rule definition must start with a name.
    ExpectedRuleName,
    /// A rule name must be followed by `::=`.
    ExpectedDefinition,
    /// A character that cannot start or continue an expression here.
    UnexpectedCharacter(char),
    /// A `"` literal without its closing quote.
    UnterminatedString,
    /// A `[` class without its closing `]`.
    UnterminatedClass,
    /// A class that matches no character.
    EmptyClass,
    /// A class range whose start is above its end.
    InvertedRange { low: u32, high: u32 },
    /// An unknown or malformed escape sequence.
    BadEscape,
    /// A `(` without its `)`.
    UnclosedGroup,
    /// Groups nested deeper than [`limits::MAX_GROUP_NESTING`].
    NestingTooDeep,
    /// The same rule defined twice.
    DuplicateRule(String),
    /// A rule used but never defined.
    UndefinedRule(String),
    /// No `root` rule.
    MissingRoot,
    /// A rule that can reach itself without consuming input.
    LeftRecursion(String),
    /// The text or the compiled grammar exceeds a limit in [`limits`].
    TooLarge,
}

/// A grammar error at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrammarError {
    pub line: usize,
    pub column: usize,
    pub kind: GrammarErrorKind,
}

impl fmt::Display for GrammarErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedRuleName => write!(f, "expected a rule name"),
            Self::ExpectedDefinition => write!(f, "expected `::=` after the rule name"),
            Self::UnexpectedCharacter(c) => write!(f, "unexpected character {c:?}"),
            Self::UnterminatedString => write!(f, "string literal is not closed"),
            Self::UnterminatedClass => write!(f, "character class is not closed"),
            Self::EmptyClass => write!(f, "character class matches nothing"),
            Self::InvertedRange { low, high } => {
                write!(f, "class range U+{low:04X}-U+{high:04X} is inverted")
            }
            Self::BadEscape => write!(f, "bad escape sequence"),
            Self::UnclosedGroup => write!(f, "`(` is not closed"),
            Self::NestingTooDeep => write!(f, "groups nested too deeply"),
            Self::DuplicateRule(name) => write!(f, "rule `{name}` is defined twice"),
            Self::UndefinedRule(name) => write!(f, "rule `{name}` is used but not defined"),
            Self::MissingRoot => write!(f, "the grammar has no `root` rule"),
            Self::LeftRecursion(name) => {
                write!(
                    f,
                    "rule `{name}` is left-recursive (reaches itself without input)"
                )
            }
            Self::TooLarge => write!(f, "grammar exceeds the engine's size limits"),
        }
    }
}

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "grammar line {} column {}: {}",
            self.line, self.column, self.kind
        )
    }
}
