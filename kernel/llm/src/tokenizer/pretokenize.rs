//! The GPT-2 pre-tokenizer, written by hand (no regex engine in the kernel).
//!
//! It reproduces the split of the regular expression GPT-2 and its descendants use,
//!
//! ```text
//! 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//! ```
//!
//! with the alternatives tried in that order at each position, and, for `pre = "smollm"` (and
//! other "digits one by one" variants), a first pass that isolates every `\p{N}` character, as
//! Hugging Face's `Digits(individual_digits = true)` and llama.cpp's `\p{N}` pre-split do. The
//! only backtracking in the expression is `\s+(?!\S)`, which gives back the last whitespace
//! character of a run that is followed by a non-space, so that it can lead the next word
//! (`"a  b"` is `a`, ` `, ` b`). `\s` is Unicode White_Space (`char::is_whitespace`);
//! `\p{L}`/`\p{N}` come from `unicode_tables.rs`.

use alloc::vec::Vec;

use super::unicode_tables::{LETTER_RANGES, NUMBER_RANGES};

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(low, high)| {
            if high < c {
                core::cmp::Ordering::Less
            } else if low > c {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `\p{L}`.
pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_ranges(LETTER_RANGES, c)
}

/// `\p{N}`.
pub fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_ranges(NUMBER_RANGES, c)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if is_letter(c) {
        Class::Letter
    } else if is_number(c) {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// Split `text` into pre-tokens, appending their byte ranges (start, end) to `out`; with
/// `digits_one_by_one`, every number character is its own pre-token first.
pub fn split(text: &str, digits_one_by_one: bool, out: &mut Vec<(usize, usize)>) {
    if !digits_one_by_one {
        split_gpt2(text, 0, out);
        return;
    }
    let mut segment_start = 0;
    for (index, c) in text.char_indices() {
        if is_number(c) {
            if segment_start < index {
                split_gpt2(&text[segment_start..index], segment_start, out);
            }
            out.push((index, index + c.len_utf8()));
            segment_start = index + c.len_utf8();
        }
    }
    if segment_start < text.len() {
        split_gpt2(&text[segment_start..], segment_start, out);
    }
}

/// The GPT-2 expression over one segment; ranges are offset by `base`.
fn split_gpt2(text: &str, base: usize, out: &mut Vec<(usize, usize)>) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let count = chars.len();
    let offset_of = |index: usize| -> usize {
        if index < count {
            chars[index].0
        } else {
            text.len()
        }
    };
    let mut i = 0;
    while i < count {
        let c = chars[i].1;
        // Contractions: 's 't 're 've 'm 'll 'd (case-sensitive, as in GPT-2).
        if c == '\'' && i + 1 < count {
            let next = chars[i + 1].1;
            let after = chars.get(i + 2).map(|&(_, c)| c);
            let len = match (next, after) {
                ('s' | 't' | 'm' | 'd', _) => 2,
                ('r', Some('e')) | ('v', Some('e')) | ('l', Some('l')) => 3,
                _ => 0,
            };
            if len > 0 {
                out.push((base + offset_of(i), base + offset_of(i + len)));
                i += len;
                continue;
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`.
        let word_start = if c == ' ' && i + 1 < count && class(chars[i + 1].1) != Class::Space {
            i + 1
        } else {
            i
        };
        let word_class = class(chars[word_start].1);
        if word_class != Class::Space {
            let mut end = word_start + 1;
            while end < count && class(chars[end].1) == word_class {
                end += 1;
            }
            out.push((base + offset_of(i), base + offset_of(end)));
            i = end;
            continue;
        }
        // `\s+(?!\S)` then `\s+`.
        let mut end = i + 1;
        while end < count && class(chars[end].1) == Class::Space {
            end += 1;
        }
        if end < count && end - i >= 2 {
            end -= 1;
        }
        out.push((base + offset_of(i), base + offset_of(end)));
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pieces(text: &str, digits: bool) -> Vec<&str> {
        let mut ranges = Vec::new();
        split(text, digits, &mut ranges);
        ranges.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn splits_like_the_gpt2_expression() {
        assert_eq!(pieces("Hello world", false), vec!["Hello", " world"]);
        assert_eq!(pieces("a  b", false), vec!["a", " ", " b"]);
        assert_eq!(
            pieces("don't you'll I'M", false),
            vec!["don", "'t", " you", "'ll", " I", "'", "M"]
        );
        assert_eq!(
            pieces("x = 42;\n\n\tend  ", false),
            vec!["x", " =", " 42", ";", "\n\n", "\t", "end", "  "]
        );
        assert_eq!(pieces("\n\nfoo", false), vec!["\n", "\n", "foo"]);
        assert_eq!(pieces("  foo", false), vec![" ", " foo"]);
        assert_eq!(
            pieces("héllo wörld 日本語", false),
            vec!["héllo", " wörld", " 日本語"]
        );
        assert_eq!(pieces("a?!'s", false), vec!["a", "?!'", "s"]);
        assert_eq!(pieces(" ", false), vec![" "]);
        assert_eq!(pieces("", false), Vec::<&str>::new());
    }

    #[test]
    fn digits_one_by_one() {
        assert_eq!(
            pieces("abc 123x", true),
            vec!["abc", " ", "1", "2", "3", "x"]
        );
        assert_eq!(pieces("v2.0", true), vec!["v", "2", ".", "0"]);
        assert_eq!(pieces("abc 123x", false), vec!["abc", " 123", "x"]);
    }

    #[test]
    fn unicode_classes() {
        assert!(is_letter('é') && is_letter('日') && is_letter('ß') && !is_letter('1'));
        assert!(is_number('٣') && is_number('½') && is_number('Ⅻ') && !is_number('a'));
        assert!(!is_letter('😀') && !is_number('😀') && !is_letter('\u{301}'));
    }
}
