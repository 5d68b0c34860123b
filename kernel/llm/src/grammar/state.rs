//! The recogniser: a bounded set of parse stacks advanced byte by byte, and the token mask
//! computed by walking the vocabulary trie.
//!
//! All buffers (stack sets per trie depth, the work stack, the rollback copy) are owned by the
//! state and reused, so after the first few steps neither `accept` nor `mask` allocates.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::cache::{self, CacheError, TransitionCache};
use super::limits::{MAX_EXPANSION_DEPTH, MAX_STACKS, MAX_STACK_DEPTH, MAX_TOKEN_BYTES};
use super::trie::VocabTrie;
use super::{ByteSet, Element, Grammar};
use crate::sample::TokenMask;

/// Why the recogniser cannot go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrammarStateError {
    /// The byte at `offset` of the fed text does not continue any parse.
    Rejected { offset: usize, byte: u8 },
    /// A token that is not in the trie's vocabulary (or has no bytes).
    UnknownToken(u32),
    /// An end-of-generation token while the grammar is not complete.
    EndNotAllowed(u32),
    /// The grammar is too ambiguous here: more than [`MAX_STACKS`] parses at once.
    TooManyStacks,
    /// Rules nested deeper than [`MAX_STACK_DEPTH`] (or expansion deeper than
    /// [`MAX_EXPANSION_DEPTH`]).
    TooDeep,
}

impl fmt::Display for GrammarStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { offset, byte } => {
                write!(
                    f,
                    "byte {byte:#04x} at offset {offset} does not fit the grammar"
                )
            }
            Self::UnknownToken(id) => write!(f, "token {id} is not in the vocabulary trie"),
            Self::EndNotAllowed(id) => {
                write!(f, "end token {id} before the grammar is complete")
            }
            Self::TooManyStacks => {
                write!(f, "grammar too ambiguous (more than {MAX_STACKS} parses)")
            }
            Self::TooDeep => write!(f, "grammar nesting deeper than {MAX_STACK_DEPTH}"),
        }
    }
}

/// A set of parse stacks stored flat: `spans[i]` is the range of `data` holding stack `i`,
/// bottom first.
#[derive(Clone, Debug, Default)]
pub(crate) struct StackSet {
    data: Vec<u32>,
    spans: Vec<(u32, u32)>,
}

impl StackSet {
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub(crate) fn get(&self, index: usize) -> &[u32] {
        let (start, len) = self.spans[index];
        &self.data[start as usize..(start + len) as usize]
    }

    pub(crate) fn copy_from(&mut self, other: &StackSet) {
        self.data.clear();
        self.data.extend_from_slice(&other.data);
        self.spans.clear();
        self.spans.extend_from_slice(&other.spans);
    }

    /// Add `stack` unless an equal stack is already present.
    pub(crate) fn insert(&mut self, stack: &[u32]) -> Result<(), GrammarStateError> {
        let exists = (0..self.len()).any(|index| {
            let other = self.get(index);
            other.len() == stack.len() && other.last() == stack.last() && other == stack
        });
        if exists {
            return Ok(());
        }
        if self.len() >= MAX_STACKS {
            return Err(GrammarStateError::TooManyStacks);
        }
        self.spans
            .push((self.data.len() as u32, stack.len() as u32));
        self.data.extend_from_slice(stack);
        Ok(())
    }

    /// Same stacks in the same order.
    pub(crate) fn same_as(&self, other: &StackSet) -> bool {
        self.data == other.data
            && self.spans.len() == other.spans.len()
            && self.spans.iter().zip(&other.spans).all(|(a, b)| a.1 == b.1)
    }

    pub(crate) fn has_empty_stack(&self) -> bool {
        self.spans.iter().any(|&(_, len)| len == 0)
    }

    /// The bytes some stack of this set accepts next.
    pub(crate) fn next_bytes(&self, grammar: &Grammar) -> ByteSet {
        let mut bytes = ByteSet::default();
        for index in 0..self.len() {
            if let Some(&top) = self.get(index).last() {
                match grammar.elements[top as usize] {
                    Element::Byte(b) => bytes.insert_range(b, b),
                    Element::Set(set) => bytes.union_with(&grammar.byte_sets[set as usize]),
                    Element::Rule(_) | Element::End => {}
                }
            }
        }
        bytes
    }
}

/// Expand the top of `work` until a byte element is on top (or the stack is empty), adding each
/// resulting stack to `out`. `work` is restored before returning.
fn expand(
    grammar: &Grammar,
    work: &mut Vec<u32>,
    out: &mut StackSet,
    depth: usize,
) -> Result<(), GrammarStateError> {
    if depth > MAX_EXPANSION_DEPTH || work.len() > MAX_STACK_DEPTH {
        return Err(GrammarStateError::TooDeep);
    }
    let Some(&top) = work.last() else {
        return out.insert(work);
    };
    match grammar.elements[top as usize] {
        Element::Byte(_) | Element::Set(_) => out.insert(work),
        // A stack never holds an End position (continuations are pushed only when not at End).
        Element::End => Ok(()),
        Element::Rule(rule) => {
            work.pop();
            let continuation = top + 1;
            let pushed = grammar.elements[continuation as usize] != Element::End;
            if pushed {
                work.push(continuation);
            }
            let mut result = Ok(());
            for &start in grammar.alternatives(rule) {
                result = if grammar.elements[start as usize] == Element::End {
                    expand(grammar, work, out, depth + 1)
                } else {
                    work.push(start);
                    let inner = expand(grammar, work, out, depth + 1);
                    work.pop();
                    inner
                };
                if result.is_err() {
                    break;
                }
            }
            if pushed {
                work.pop();
            }
            work.push(top);
            result
        }
    }
}

/// Advance every stack of `input` by `byte` into `out` (cleared first).
pub(crate) fn advance(
    grammar: &Grammar,
    input: &StackSet,
    byte: u8,
    out: &mut StackSet,
    work: &mut Vec<u32>,
) -> Result<(), GrammarStateError> {
    out.clear();
    for index in 0..input.len() {
        let stack = input.get(index);
        let Some((&top, rest)) = stack.split_last() else {
            continue;
        };
        if !grammar.matches(top, byte) {
            continue;
        }
        work.clear();
        work.extend_from_slice(rest);
        let next = top + 1;
        if grammar.elements[next as usize] != Element::End {
            work.push(next);
        }
        expand(grammar, work, out, 0)?;
    }
    Ok(())
}

/// Where the output stands in the grammar: the set of parse stacks, plus reusable buffers.
#[derive(Clone, Debug)]
pub struct GrammarState {
    grammar: Arc<Grammar>,
    stacks: StackSet,
    scratch: StackSet,
    backup: StackSet,
    work: Vec<u32>,
    /// Per trie depth: the stack set after the prefix of that length.
    levels: Vec<StackSet>,
    /// Per trie depth: the bytes that level's stacks accept.
    level_bytes: Vec<ByteSet>,
    /// Depth-first walk frames: (trie node, next child index).
    frames: Vec<(u32, u32)>,
    /// Cached walk stack: (trie node, interned stack set, depth).
    cached_frames: Vec<(u32, u32, u32)>,
    /// Lazily built DFA over stack sets, shared by all masks of this state.
    cache: TransitionCache,
}

impl GrammarState {
    /// The state at the start of the output (before any byte).
    pub fn new(grammar: Arc<Grammar>) -> Result<Self, GrammarStateError> {
        let mut state = Self {
            grammar,
            stacks: StackSet::default(),
            scratch: StackSet::default(),
            backup: StackSet::default(),
            work: Vec::new(),
            levels: Vec::new(),
            level_bytes: Vec::new(),
            frames: Vec::new(),
            cached_frames: Vec::new(),
            cache: TransitionCache::default(),
        };
        state.reset()?;
        Ok(state)
    }

    /// Go back to the start of the output.
    pub fn reset(&mut self) -> Result<(), GrammarStateError> {
        let grammar = &*self.grammar;
        self.stacks.clear();
        for &start in grammar.alternatives(grammar.root) {
            self.work.clear();
            if grammar.elements[start as usize] != Element::End {
                self.work.push(start);
            }
            expand(grammar, &mut self.work, &mut self.stacks, 0)?;
        }
        Ok(())
    }

    /// The grammar this state follows.
    pub fn grammar(&self) -> &Arc<Grammar> {
        &self.grammar
    }

    /// True when the output so far is a complete sentence of the grammar (the end token may
    /// follow).
    pub fn is_complete(&self) -> bool {
        self.stacks.has_empty_stack()
    }

    /// True when the output can still be continued (some stack expects more bytes).
    pub fn can_continue(&self) -> bool {
        (0..self.stacks.len()).any(|i| !self.stacks.get(i).is_empty())
    }

    /// Number of stack sets in the mask's transition cache (for diagnostics and benchmarks).
    pub fn cached_sets(&self) -> usize {
        self.cache.len()
    }

    /// Number of live parse stacks (a measure of ambiguity, for diagnostics).
    pub fn stack_count(&self) -> usize {
        self.stacks.len()
    }

    /// Feed bytes. On error the state is unchanged.
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> Result<(), GrammarStateError> {
        self.backup.copy_from(&self.stacks);
        for (offset, &byte) in bytes.iter().enumerate() {
            let step = advance(
                &self.grammar,
                &self.stacks,
                byte,
                &mut self.scratch,
                &mut self.work,
            );
            let failure = match step {
                Err(error) => Some(error),
                Ok(()) if self.scratch.is_empty() => {
                    Some(GrammarStateError::Rejected { offset, byte })
                }
                Ok(()) => None,
            };
            if let Some(error) = failure {
                core::mem::swap(&mut self.stacks, &mut self.backup);
                return Err(error);
            }
            core::mem::swap(&mut self.stacks, &mut self.scratch);
        }
        Ok(())
    }

    /// Whether `bytes` would keep the output a valid prefix (the state is not changed).
    pub fn allows_bytes(&mut self, bytes: &[u8]) -> bool {
        if self.accept_bytes(bytes).is_err() {
            return false;
        }
        core::mem::swap(&mut self.stacks, &mut self.backup);
        true
    }

    /// Feed one sampled token. End tokens are accepted only when the grammar is complete (and
    /// leave the state unchanged).
    pub fn accept_token(&mut self, trie: &VocabTrie, token: u32) -> Result<(), GrammarStateError> {
        if trie.is_end_token(token) {
            return if self.is_complete() {
                Ok(())
            } else {
                Err(GrammarStateError::EndNotAllowed(token))
            };
        }
        match trie.token_bytes(token) {
            Some(bytes) if !bytes.is_empty() => self.accept_bytes(bytes),
            _ => Err(GrammarStateError::UnknownToken(token)),
        }
    }

    /// Fill `mask` (sized to the vocabulary) with the tokens that keep the output a valid
    /// prefix; end tokens are allowed only when the grammar is complete.
    ///
    /// Walks the trie with cached stack-set transitions (see `cache.rs`); falls back to
    /// [`GrammarState::mask_uncached`] if the cache fills during the walk. Same result either
    /// way.
    pub fn mask(
        &mut self,
        trie: &VocabTrie,
        mask: &mut TokenMask,
    ) -> Result<(), GrammarStateError> {
        if self.cache.len() > cache::CAPACITY / 2 {
            self.cache.clear();
        }
        match self.mask_cached(trie, mask) {
            Ok(()) => Ok(()),
            Err(CacheError::State(error)) => Err(error),
            Err(CacheError::Full) => {
                self.cache.clear();
                self.mask_uncached(trie, mask)
            }
        }
    }

    /// Whether token `id` may come next (cheap: feeds only its bytes). With
    /// [`crate::sample::Sampler`], sampling first and checking the token this way, computing the
    /// full mask only when it is rejected, gives exactly the masked distribution at a fraction
    /// of the cost.
    pub fn allows_token(&mut self, trie: &VocabTrie, id: u32) -> bool {
        if trie.is_end_token(id) {
            return self.is_complete();
        }
        match trie.token_bytes(id) {
            Some(bytes) if !bytes.is_empty() && trie.is_generatable(id) => self.allows_bytes(bytes),
            _ => false,
        }
    }

    fn mask_cached(&mut self, trie: &VocabTrie, mask: &mut TokenMask) -> Result<(), CacheError> {
        mask.block_all();
        if self.is_complete() {
            for &token in trie.end_tokens() {
                mask.allow(token);
            }
        }
        let grammar = &*self.grammar;
        let root = self.cache.intern(grammar, &self.stacks)?;
        // The subtree shortcut would also allow tokens deeper than the walk's depth limit.
        let shortcut = trie.max_depth() <= MAX_TOKEN_BYTES;
        // Depth-first with an explicit stack of (node, set, depth); each popped node has all of
        // its children examined at once (the order of the walk does not matter for a mask).
        self.cached_frames.clear();
        self.cached_frames.push((VocabTrie::ROOT, root, 0));
        while let Some((node, set, depth)) = self.cached_frames.pop() {
            if depth as usize >= MAX_TOKEN_BYTES {
                continue;
            }
            let next_bytes = *self.cache.next_bytes(set);
            for child in trie.children(node) {
                let byte = trie.edge_byte(child);
                if !next_bytes.contains(byte) {
                    continue;
                }
                let next_set = match self.cache.cached_step(set, byte) {
                    Some(known) => known,
                    None => {
                        self.cache
                            .step(grammar, set, byte, &mut self.scratch, &mut self.work)?
                    }
                };
                let Some(next_set) = next_set else { continue };
                // Shortcut: when every byte class below the child loops on the child's state
                // (an identifier, a comment, a string), every token below it is valid: allow
                // the whole subtree without walking it.
                if shortcut && trie.has_children(child) {
                    let below = trie.classes_below(child);
                    let loops = self.cache.loop_classes(
                        grammar,
                        next_set,
                        &mut self.scratch,
                        &mut self.work,
                    );
                    if below & !loops == 0 {
                        for &token in trie.subtree_tokens(child) {
                            mask.allow(token);
                        }
                        continue;
                    }
                }
                for &token in trie.tokens_at(child) {
                    mask.allow(token);
                }
                if trie.has_children(child) {
                    self.cached_frames.push((child, next_set, depth + 1));
                }
            }
        }
        Ok(())
    }

    /// [`GrammarState::mask`] without the transition cache: advances the stack sets at every
    /// trie node. The reference the cached walk is tested against, and its fallback.
    pub fn mask_uncached(
        &mut self,
        trie: &VocabTrie,
        mask: &mut TokenMask,
    ) -> Result<(), GrammarStateError> {
        mask.block_all();
        if self.is_complete() {
            for &token in trie.end_tokens() {
                mask.allow(token);
            }
        }
        let grammar = &*self.grammar;
        let depth_needed = trie.max_depth().min(MAX_TOKEN_BYTES) + 1;
        if self.levels.len() < depth_needed {
            self.levels.resize_with(depth_needed, StackSet::default);
            self.level_bytes.resize(depth_needed, ByteSet::default());
        }
        self.levels[0].copy_from(&self.stacks);
        self.level_bytes[0] = self.levels[0].next_bytes(grammar);
        self.frames.clear();
        self.frames.push((VocabTrie::ROOT, 0));
        while let Some(&(node, next_child)) = self.frames.last() {
            let depth = self.frames.len() - 1;
            let children = trie.children(node);
            if next_child as usize >= children.len() {
                self.frames.pop();
                continue;
            }
            self.frames[depth].1 += 1;
            let child = children.start + next_child;
            let byte = trie.edge_byte(child);
            if !self.level_bytes[depth].contains(byte) || depth + 1 >= depth_needed {
                continue;
            }
            let (before, after) = self.levels.split_at_mut(depth + 1);
            advance(grammar, &before[depth], byte, &mut after[0], &mut self.work)?;
            if after[0].is_empty() {
                continue;
            }
            for &token in trie.tokens_at(child) {
                mask.allow(token);
            }
            if !trie.children(child).is_empty() {
                self.level_bytes[depth + 1] = after[0].next_bytes(grammar);
                self.frames.push((child, 0));
            }
        }
        Ok(())
    }
}
