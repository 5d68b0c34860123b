//! Byte-level BPE (GPT-2 style): the byte/character mapping, merge table and merge loop.
//!
//! GPT-2 vocabularies store tokens as strings over 256 "printable" characters, one per byte:
//! bytes that are printable Latin-1 (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves and the
//! other 68 are shifted to U+0100.. in order (so a space is `Ġ`, a newline `Ċ`). Encoding maps
//! each pre-token's bytes to those characters' token ids, then merges adjacent pairs by rank
//! (a min-heap of candidate pairs keyed by rank then position, entries checked for staleness
//! when popped), which is what Hugging Face `tokenizers` does.

use alloc::collections::BinaryHeap;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::{pretokenize, Tokenizer, TokenizerError};

/// Is `byte` one that GPT-2 keeps as its own Latin-1 character?
const fn is_direct(byte: u8) -> bool {
    matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The 68 bytes that are not direct, in order: the n-th maps to U+0100 + n.
const SHIFTED_BYTES: [u8; 68] = {
    let mut table = [0u8; 68];
    let mut count = 0;
    let mut byte = 0usize;
    while byte < 256 {
        if !is_direct(byte as u8) {
            table[count] = byte as u8;
            count += 1;
        }
        byte += 1;
    }
    table
};

/// For each byte, its rank among the shifted bytes (unused for direct bytes).
const SHIFT_RANK: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut index = 0;
    while index < 68 {
        table[SHIFTED_BYTES[index] as usize] = index as u8;
        index += 1;
    }
    table
};

/// The character standing for `byte`.
pub(super) fn byte_to_char(byte: u8) -> char {
    if is_direct(byte) {
        return byte as char;
    }
    char::from_u32(0x100 + SHIFT_RANK[byte as usize] as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte a vocabulary character stands for, if it is one of the 256.
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 0x100 {
        let byte = code as u8;
        return is_direct(byte).then_some(byte);
    }
    SHIFTED_BYTES.get((code - 0x100) as usize).copied()
}

/// Token text (byte characters) to bytes; characters outside the mapping keep their UTF-8.
pub(super) fn decode_token_text(text: &[u8], out: &mut Vec<u8>) {
    let Ok(text) = core::str::from_utf8(text) else {
        out.extend_from_slice(text);
        return;
    };
    for c in text.chars() {
        match char_to_byte(c) {
            Some(byte) => out.push(byte),
            None => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

fn pair_key(left: u32, right: u32) -> u64 {
    ((left as u64) << 32) | right as u64
}

/// Build the byte-token table and the merge table.
pub(super) fn build(tokenizer: &mut Tokenizer, merges: &[&str]) -> Result<(), TokenizerError> {
    for byte in 0..=255u8 {
        let mut buffer = [0u8; 4];
        let text = byte_to_char(byte).encode_utf8(&mut buffer);
        tokenizer.byte_tokens[byte as usize] = tokenizer.lookup(text.as_bytes());
    }
    let mut table = Vec::with_capacity(merges.len());
    let mut joined = Vec::new();
    for (rank, merge) in merges.iter().enumerate() {
        let bad = || TokenizerError::BadMerge {
            index: rank,
            text: merge.to_string(),
        };
        // The left part never contains a space (spaces are `Ġ`), so split at the first one.
        let (left, right) = merge.split_once(' ').ok_or_else(bad)?;
        let left_id = tokenizer.lookup(left.as_bytes()).ok_or_else(bad)?;
        let right_id = tokenizer.lookup(right.as_bytes()).ok_or_else(bad)?;
        joined.clear();
        joined.extend_from_slice(left.as_bytes());
        joined.extend_from_slice(right.as_bytes());
        let merged_id = tokenizer.lookup(&joined).ok_or_else(bad)?;
        table.push((pair_key(left_id, right_id), rank as u32, merged_id));
    }
    // Keep the best rank when a pair is listed twice.
    table.sort_unstable_by_key(|&(key, rank, _)| (key, rank));
    table.dedup_by_key(|entry| entry.0);
    tokenizer.merges = table;
    Ok(())
}

fn find_merge(tokenizer: &Tokenizer, left: u32, right: u32) -> Option<(u32, u32)> {
    let key = pair_key(left, right);
    tokenizer
        .merges
        .binary_search_by_key(&key, |&(k, _, _)| k)
        .ok()
        .map(|index| {
            let (_, rank, merged) = tokenizer.merges[index];
            (rank, merged)
        })
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    previous: Option<usize>,
    next: Option<usize>,
    alive: bool,
}

/// Encode plain text (no special tokens) into `ids`.
pub(super) fn encode(
    tokenizer: &Tokenizer,
    text: &str,
    digits_one_by_one: bool,
    ids: &mut Vec<u32>,
) -> Result<(), TokenizerError> {
    let mut ranges = Vec::new();
    pretokenize::split(text, digits_one_by_one, &mut ranges);
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u32, usize, u32, u32)>> = BinaryHeap::new();
    for (start, end) in ranges {
        let word = &text.as_bytes()[start..end];
        symbols.clear();
        heap.clear();
        for (index, &byte) in word.iter().enumerate() {
            let id = tokenizer.byte_tokens[byte as usize]
                .ok_or(TokenizerError::MissingByteToken(byte))?;
            symbols.push(Symbol {
                id,
                previous: index.checked_sub(1),
                next: (index + 1 < word.len()).then_some(index + 1),
                alive: true,
            });
        }
        for index in 0..symbols.len().saturating_sub(1) {
            if let Some((rank, _)) = find_merge(tokenizer, symbols[index].id, symbols[index + 1].id)
            {
                heap.push(Reverse((
                    rank,
                    index,
                    symbols[index].id,
                    symbols[index + 1].id,
                )));
            }
        }
        while let Some(Reverse((_, left, left_id, right_id))) = heap.pop() {
            let left_symbol = symbols[left];
            let Some(right) = left_symbol.next else {
                continue;
            };
            if !left_symbol.alive
                || left_symbol.id != left_id
                || symbols[right].id != right_id
                || !symbols[right].alive
            {
                continue; // stale entry
            }
            let Some((_, merged)) = find_merge(tokenizer, left_id, right_id) else {
                continue;
            };
            symbols[left].id = merged;
            symbols[left].next = symbols[right].next;
            symbols[right].alive = false;
            if let Some(after) = symbols[right].next {
                symbols[after].previous = Some(left);
            }
            if let Some(before) = symbols[left].previous {
                if let Some((rank, _)) = find_merge(tokenizer, symbols[before].id, merged) {
                    heap.push(Reverse((rank, before, symbols[before].id, merged)));
                }
            }
            if let Some(after) = symbols[left].next {
                if let Some((rank, _)) = find_merge(tokenizer, merged, symbols[after].id) {
                    heap.push(Reverse((rank, left, merged, symbols[after].id)));
                }
            }
        }
        let mut cursor = (!symbols.is_empty()).then_some(0);
        while let Some(index) = cursor {
            ids.push(symbols[index].id);
            cursor = symbols[index].next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_is_a_bijection_with_gpt2_values() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'A'), 'A');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        let mut seen = alloc::collections::BTreeSet::new();
        for byte in 0..=255u8 {
            let c = byte_to_char(byte);
            assert!(seen.insert(c));
            assert_eq!(char_to_byte(c), Some(byte));
        }
        assert_eq!(char_to_byte('日'), None);
    }
}
