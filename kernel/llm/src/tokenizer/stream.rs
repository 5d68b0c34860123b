//! Streaming decode: token bytes in, whole characters out.
//!
//! Byte-level and byte-fallback tokens can end in the middle of a UTF-8 character (an emoji is
//! often two or three tokens). The console must not print half a character, so the decoder
//! keeps at most three pending bytes of an unfinished character and releases them when the
//! character completes. Bytes that can never form a character are replaced by U+FFFD, one per
//! invalid sequence, as `String::from_utf8_lossy` does. The output buffer is owned and reused:
//! no allocation per token once it has grown to the longest token.

use alloc::string::String;
use alloc::vec::Vec;

/// Turns a stream of token byte strings into printable text.
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    output: String,
}

impl StreamDecoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the bytes of one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> &str {
        self.output.clear();
        self.pending.extend_from_slice(bytes);
        let mut consumed = 0;
        loop {
            let rest = &self.pending[consumed..];
            match core::str::from_utf8(rest) {
                Ok(text) => {
                    self.output.push_str(text);
                    consumed = self.pending.len();
                    break;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    // The prefix up to valid_up_to is valid UTF-8 by definition.
                    if let Ok(text) = core::str::from_utf8(&rest[..valid]) {
                        self.output.push_str(text);
                    }
                    match error.error_len() {
                        Some(bad) => {
                            self.output.push(char::REPLACEMENT_CHARACTER);
                            consumed += valid + bad;
                        }
                        None => {
                            // An unfinished character at the end: keep it for the next token.
                            consumed += valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        &self.output
    }

    /// End of stream: an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> &str {
        self.output.clear();
        if !self.pending.is_empty() {
            self.output.push(char::REPLACEMENT_CHARACTER);
            self.pending.clear();
        }
        &self.output
    }

    /// Bytes held back (0-3).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_partial_characters() {
        let mut decoder = StreamDecoder::new();
        let text = "a😀é";
        let bytes = text.as_bytes();
        assert_eq!(decoder.push(&bytes[..2]), "a");
        assert_eq!(decoder.pending_len(), 1);
        assert_eq!(decoder.push(&bytes[2..4]), "");
        assert_eq!(decoder.push(&bytes[4..6]), "😀");
        assert_eq!(decoder.push(&bytes[6..]), "é");
        assert_eq!(decoder.finish(), "");
    }

    #[test]
    fn replaces_invalid_bytes_like_from_utf8_lossy() {
        let mut decoder = StreamDecoder::new();
        let input: &[u8] = b"ok\xff\xc3(\xe2\x82";
        let mut out = String::new();
        for chunk in input.chunks(1) {
            out.push_str(decoder.push(chunk));
        }
        out.push_str(decoder.finish());
        assert_eq!(out, String::from_utf8_lossy(input));
    }

    #[test]
    fn every_split_of_varied_text_streams_back_exactly() {
        let text = "fn main() { println!(\"héllo 世界 🎉\"); }\n\t// done ✓";
        let bytes = text.as_bytes();
        for size in 1..6 {
            let mut decoder = StreamDecoder::new();
            let mut out = String::new();
            for chunk in bytes.chunks(size) {
                out.push_str(decoder.push(chunk));
            }
            out.push_str(decoder.finish());
            assert_eq!(out, text);
        }
    }
}
