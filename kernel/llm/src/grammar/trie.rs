//! The vocabulary as a byte trie, for the grammar mask.
//!
//! Built once per vocabulary. Nodes are stored breadth first so that the children of a node are
//! contiguous (`children` is a range); each node records the byte on the edge into it and the
//! tokens whose bytes end exactly there (several tokens can share bytes, e.g. a SentencePiece
//! `<0x41>` byte token and the piece `A`). Tokens without bytes (control tokens) are not in the
//! trie and so are never allowed by a mask, except the end-of-generation tokens, which the
//! grammar state allows when the grammar is complete. The trie also keeps every token's bytes
//! so that [`super::GrammarState::accept_token`] needs nothing else.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

#[derive(Clone, Copy, Debug)]
struct Node {
    byte: u8,
    children_start: u32,
    children_len: u32,
    tokens_start: u32,
    tokens_len: u32,
}

/// The vocabulary's byte strings as a trie, plus each token's bytes and the end tokens.
#[derive(Clone, Debug)]
pub struct VocabTrie {
    nodes: Vec<Node>,
    node_tokens: Vec<u32>,
    token_offsets: Vec<u32>,
    token_bytes: Vec<u8>,
    end_tokens: Vec<u32>,
    /// Per token id: is it in the trie?
    generatable: Vec<bool>,
    max_depth: usize,
    /// Per node: the byte classes ([`byte_class_bit`]) of every edge below it.
    classes_below: Vec<u8>,
    /// All tokens in depth-first order, so that each subtree's tokens are contiguous...
    subtree_tokens: Vec<u32>,
    /// ...at `subtree_ranges[node]` (start, end).
    subtree_ranges: Vec<(u32, u32)>,
}

/// Number of byte classes the mask's subtree shortcut distinguishes.
pub(crate) const BYTE_CLASSES: usize = 8;

/// The class of a byte, as a one-bit mask: lowercase, uppercase, digits, `_`, blanks (space,
/// tab), other printable ASCII except `"` and `\\`, `"` and `\\`, everything else (controls,
/// newline, non-ASCII). Free-text and identifier states of a grammar loop on whole classes
/// (`[a-z0-9_]*`, `[^"\n]*`), which is what the shortcut in `GrammarState::mask` exploits.
pub(crate) const fn byte_class_bit(byte: u8) -> u8 {
    1 << byte_class(byte)
}

/// The class index of a byte (see [`byte_class_bit`]).
pub(crate) const fn byte_class(byte: u8) -> usize {
    match byte {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        b'_' => 3,
        b' ' | b'\t' => 4,
        b'"' | b'\\' => 6,
        b'!'..=b'~' => 5,
        _ => 7,
    }
}

impl VocabTrie {
    /// The root node (the empty prefix).
    pub const ROOT: u32 = 0;

    /// Build from the bytes of each token, indexed by token id (`None` for tokens the model
    /// must not produce as text, such as control tokens), and the end-of-generation token ids.
    pub fn build<'a, I>(tokens: I, end_tokens: &[u32]) -> Self
    where
        I: IntoIterator<Item = Option<&'a [u8]>>,
    {
        let mut token_offsets = Vec::new();
        let mut token_bytes = Vec::new();
        let mut present = Vec::new();
        let mut generatable = Vec::new();
        for (id, bytes) in tokens.into_iter().enumerate() {
            token_offsets.push(token_bytes.len() as u32);
            let mut in_trie = false;
            if let Some(bytes) = bytes {
                token_bytes.extend_from_slice(bytes);
                if !bytes.is_empty() && !end_tokens.contains(&(id as u32)) {
                    present.push(id as u32);
                    in_trie = true;
                }
            }
            generatable.push(in_trie);
        }
        token_offsets.push(token_bytes.len() as u32);
        let bytes_of = |id: u32| -> &[u8] {
            let start = token_offsets[id as usize] as usize;
            let end = token_offsets[id as usize + 1] as usize;
            &token_bytes[start..end]
        };
        present.sort_unstable_by(|&a, &b| bytes_of(a).cmp(bytes_of(b)).then(a.cmp(&b)));

        // Breadth-first construction over sorted ranges: node i covers present[low..high], all
        // sharing a prefix of length depth; tokens of exactly that length come first.
        let mut nodes = Vec::new();
        let mut node_tokens = Vec::new();
        nodes.push(Node {
            byte: 0,
            children_start: 0,
            children_len: 0,
            tokens_start: 0,
            tokens_len: 0,
        });
        let mut queue: Vec<(usize, usize, usize, usize)> = Vec::new(); // node, low, high, depth
        queue.push((0, 0, present.len(), 0));
        let mut head = 0;
        let mut max_depth = 0;
        while head < queue.len() {
            let (node, mut low, high, depth) = queue[head];
            head += 1;
            max_depth = max_depth.max(depth);
            let tokens_start = node_tokens.len();
            while low < high && bytes_of(present[low]).len() == depth {
                node_tokens.push(present[low]);
                low += 1;
            }
            nodes[node].tokens_start = tokens_start as u32;
            nodes[node].tokens_len = (node_tokens.len() - tokens_start) as u32;
            nodes[node].children_start = nodes.len() as u32;
            let mut children = 0;
            while low < high {
                let byte = bytes_of(present[low])[depth];
                let mut end = low + 1;
                while end < high && bytes_of(present[end])[depth] == byte {
                    end += 1;
                }
                nodes.push(Node {
                    byte,
                    children_start: 0,
                    children_len: 0,
                    tokens_start: 0,
                    tokens_len: 0,
                });
                queue.push((nodes.len() - 1, low, end, depth + 1));
                children += 1;
                low = end;
            }
            nodes[node].children_len = children;
        }
        // Byte classes below each node and depth-first token ranges, for the mask's shortcut:
        // children have larger indices than their parent (breadth-first layout), so a reverse
        // pass sees every child before its parent.
        let mut classes_below = vec![0u8; nodes.len()];
        for node in (0..nodes.len()).rev() {
            let start = nodes[node].children_start as usize;
            let end = start + nodes[node].children_len as usize;
            classes_below[node] = (start..end).fold(0, |classes, child| {
                classes | byte_class_bit(nodes[child].byte) | classes_below[child]
            });
        }
        let mut subtree_tokens = Vec::with_capacity(node_tokens.len());
        let mut subtree_ranges = vec![(0u32, 0u32); nodes.len()];
        // Iterative pre-order walk; a node's range closes when the walk comes back to it.
        let mut stack: Vec<(usize, bool)> = vec![(0, false)];
        while let Some((node, closing)) = stack.pop() {
            if closing {
                subtree_ranges[node].1 = subtree_tokens.len() as u32;
                continue;
            }
            subtree_ranges[node].0 = subtree_tokens.len() as u32;
            let own_start = nodes[node].tokens_start as usize;
            subtree_tokens.extend_from_slice(
                &node_tokens[own_start..own_start + nodes[node].tokens_len as usize],
            );
            stack.push((node, true));
            let start = nodes[node].children_start as usize;
            for child in (start..start + nodes[node].children_len as usize).rev() {
                stack.push((child, false));
            }
        }
        Self {
            nodes,
            node_tokens,
            token_offsets,
            token_bytes,
            end_tokens: end_tokens.to_vec(),
            generatable,
            max_depth,
            classes_below,
            subtree_tokens,
            subtree_ranges,
        }
    }

    /// Number of token ids the trie was built for (the vocabulary size).
    pub fn vocab_size(&self) -> usize {
        self.token_offsets.len().saturating_sub(1)
    }

    /// Heap bytes held by the trie (for the console's memory report).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node>()
            + (self.node_tokens.capacity()
                + self.token_offsets.capacity()
                + self.end_tokens.capacity())
                * 4
            + self.token_bytes.capacity()
            + self.generatable.capacity()
            + self.classes_below.capacity()
            + self.subtree_tokens.capacity() * 4
            + self.subtree_ranges.capacity() * 8
    }

    /// Number of trie nodes (for diagnostics and benchmarks).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Length of the longest token, in bytes.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The bytes of token `id`, if it has an entry.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let start = *self.token_offsets.get(id as usize)? as usize;
        let end = *self.token_offsets.get(id as usize + 1)? as usize;
        Some(&self.token_bytes[start..end])
    }

    /// Whether token `id` is in the trie (a token the model may produce as text).
    pub fn is_generatable(&self, id: u32) -> bool {
        self.generatable.get(id as usize).copied().unwrap_or(false)
    }

    /// The end-of-generation tokens.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// Whether `id` ends generation.
    pub fn is_end_token(&self, id: u32) -> bool {
        self.end_tokens.contains(&id)
    }

    pub(crate) fn children(&self, node: u32) -> Range<u32> {
        let node = &self.nodes[node as usize];
        node.children_start..node.children_start + node.children_len
    }

    /// The byte classes of every edge below `node` (one bit per class).
    #[inline]
    pub(crate) fn classes_below(&self, node: u32) -> u8 {
        self.classes_below[node as usize]
    }

    /// All tokens at `node` and below it.
    #[inline]
    pub(crate) fn subtree_tokens(&self, node: u32) -> &[u32] {
        let (start, end) = self.subtree_ranges[node as usize];
        &self.subtree_tokens[start as usize..end as usize]
    }

    #[inline]
    pub(crate) fn has_children(&self, node: u32) -> bool {
        self.nodes[node as usize].children_len != 0
    }

    #[inline]
    pub(crate) fn edge_byte(&self, node: u32) -> u8 {
        self.nodes[node as usize].byte
    }

    pub(crate) fn tokens_at(&self, node: u32) -> &[u32] {
        let node = &self.nodes[node as usize];
        &self.node_tokens
            [node.tokens_start as usize..(node.tokens_start + node.tokens_len) as usize]
    }
}
