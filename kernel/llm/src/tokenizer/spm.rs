//! SentencePiece-style BPE with byte fallback (Llama 2 / TinyLlama), as llama.cpp runs it.
//!
//! Spaces are written `▁` (U+2581) and a `▁` is prefixed to the text. The text starts as one
//! symbol per UTF-8 character; the adjacent pair whose concatenation is a vocabulary entry with
//! the highest score is merged first (ties: leftmost), until no pair is in the vocabulary. Each
//! remaining symbol is its vocabulary id, or, when the character is not in the vocabulary, one
//! `<0xXX>` byte token per UTF-8 byte (the unknown token if even that is missing).

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{TokenType, Tokenizer};

const SPACE_MARK: &str = "\u{2581}";

/// Record the `<0xXX>` byte tokens.
pub(super) fn build(tokenizer: &mut Tokenizer) {
    for id in 0..tokenizer.vocab_size() as u32 {
        if tokenizer.types[id as usize] == TokenType::Byte {
            if let Some(byte) = parse_byte_token(tokenizer.text_of(id)) {
                tokenizer.byte_tokens[byte as usize].get_or_insert(id);
            }
        }
    }
    // Vocabularies without token types still name their byte tokens `<0xXX>`.
    for byte in 0..=255u8 {
        if tokenizer.byte_tokens[byte as usize].is_none() {
            let name = byte_token_name(byte);
            tokenizer.byte_tokens[byte as usize] = tokenizer.lookup(&name);
        }
    }
}

fn byte_token_name(byte: u8) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'<',
        b'0',
        b'x',
        HEX[(byte >> 4) as usize],
        HEX[(byte & 15) as usize],
        b'>',
    ]
}

/// `<0xXX>` to its byte.
fn parse_byte_token(text: &[u8]) -> Option<u8> {
    if text.len() != 6 || !text.starts_with(b"<0x") || text[5] != b'>' {
        return None;
    }
    let hex = core::str::from_utf8(&text[3..5]).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// Token text to bytes: `<0xXX>` byte tokens to their byte, `▁` to a space.
pub(super) fn decode_token_text(text: &[u8], token_type: TokenType, out: &mut Vec<u8>) {
    if token_type == TokenType::Byte {
        if let Some(byte) = parse_byte_token(text) {
            out.push(byte);
            return;
        }
    }
    let mut rest = text;
    let mark = SPACE_MARK.as_bytes();
    while !rest.is_empty() {
        if rest.starts_with(mark) {
            out.push(b' ');
            rest = &rest[mark.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    previous: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the heap yields the highest score, then the leftmost.
#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

fn try_bigram(
    tokenizer: &Tokenizer,
    text: &[u8],
    symbols: &[Symbol],
    left: usize,
    heap: &mut BinaryHeap<Bigram>,
) {
    let Some(right) = symbols[left].next else {
        return;
    };
    let start = symbols[left].start;
    let len = symbols[left].len + symbols[right].len;
    if let Some(id) = tokenizer.lookup(&text[start..start + len]) {
        heap.push(Bigram {
            score: tokenizer.scores[id as usize],
            left,
            len,
        });
    }
}

/// Encode plain text (no special tokens) into `ids`.
pub(super) fn encode(tokenizer: &Tokenizer, text: &str, space_prefix: bool, ids: &mut Vec<u32>) {
    let mut escaped = Vec::with_capacity(text.len() + 3);
    if space_prefix {
        escaped.extend_from_slice(SPACE_MARK.as_bytes());
    }
    for c in text.chars() {
        if c == ' ' {
            escaped.extend_from_slice(SPACE_MARK.as_bytes());
        } else {
            let mut buffer = [0u8; 4];
            escaped.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        }
    }
    let Ok(escaped_text) = core::str::from_utf8(&escaped) else {
        return;
    };
    let mut symbols: Vec<Symbol> = Vec::new();
    for (start, c) in escaped_text.char_indices() {
        let index = symbols.len();
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            previous: index.checked_sub(1),
            next: None,
        });
        if index > 0 {
            symbols[index - 1].next = Some(index);
        }
    }
    let mut heap = BinaryHeap::new();
    for left in 0..symbols.len() {
        try_bigram(tokenizer, &escaped, &symbols, left, &mut heap);
    }
    while let Some(bigram) = heap.pop() {
        let left = bigram.left;
        let Some(right) = symbols[left].next else {
            continue;
        };
        // Stale: one side was merged away or grew since this bigram was queued.
        if symbols[left].len == 0
            || symbols[right].len == 0
            || symbols[left].len + symbols[right].len != bigram.len
        {
            continue;
        }
        symbols[left].len += symbols[right].len;
        symbols[right].len = 0;
        symbols[left].next = symbols[right].next;
        if let Some(after) = symbols[right].next {
            symbols[after].previous = Some(left);
        }
        if let Some(before) = symbols[left].previous {
            try_bigram(tokenizer, &escaped, &symbols, before, &mut heap);
        }
        try_bigram(tokenizer, &escaped, &symbols, left, &mut heap);
    }
    let mut cursor = (!symbols.is_empty()).then_some(0);
    while let Some(index) = cursor {
        let symbol = symbols[index];
        let piece = &escaped[symbol.start..symbol.start + symbol.len];
        match tokenizer.lookup(piece) {
            Some(id) => ids.push(id),
            None => {
                for &byte in piece {
                    if let Some(id) = tokenizer.byte_tokens[byte as usize].or(tokenizer.unknown) {
                        ids.push(id);
                    }
                }
            }
        }
        cursor = symbol.next;
    }
}
