//! Tokenizers from GGUF metadata: byte-level BPE (GPT-2 style, SmolLM2) and SentencePiece-style
//! BPE with byte fallback (Llama 2 / TinyLlama), with special tokens and streaming decode.
//!
//! # Use
//!
//! ```text
//! let tokenizer = Tokenizer::from_gguf(&gguf)?;
//! let ids = tokenizer.encode(prompt, true, true)?;   // add BOS if the model wants it; parse "<|im_start|>"
//! let mut stream = StreamDecoder::new();
//! for id in generated { console.write(stream.push(tokenizer.piece(id))); }
//! console.write(stream.finish());
//! ```
//!
//! # Design
//!
//! One [`Tokenizer`] type holds the vocabulary in flat tables (one byte buffer for all token
//! texts, one for all decoded byte strings, offsets into both) and a sorted id index for text
//! lookup by binary search: no hash map is needed in no_std, nothing points into the GGUF file
//! after construction, and a 49 152-token vocabulary costs about 1 MiB.
//!
//! *Byte-level BPE* (`bpe.rs`): text is split by the GPT-2 pre-tokenizer ([`pretokenize`]), each
//! piece's bytes are mapped to the GPT-2 "printable byte" characters, and the merges from
//! `tokenizer.ggml.merges` are applied lowest rank first (a heap of candidate pairs, ties broken
//! leftmost first, as in Hugging Face `tokenizers`).
//!
//! *SentencePiece BPE* (`spm.rs`): spaces become `▁`, a `▁` is prefixed (`add_space_prefix`),
//! symbols are UTF-8 characters, the adjacent pair whose concatenation is the highest-scoring
//! vocabulary entry is merged first (ties leftmost), and characters left outside the vocabulary
//! fall back to their `<0xXX>` byte tokens (as llama.cpp does).
//!
//! *Special tokens*: with `parse_special`, the texts of control and user-defined tokens
//! (`<|im_start|>`, `</s>`, ...) are matched as whole strings (longest first) and become their
//! ids; the text between them is encoded normally. Without it they are plain text.
//!
//! *Decode*: every token has its byte string (byte-level characters mapped back to bytes, `▁`
//! to a space, `<0xXX>` to its byte); [`StreamDecoder`] holds back an incomplete UTF-8
//! character so the console prints whole characters.

mod bpe;
pub mod limits;
pub mod pretokenize;
mod spm;
mod stream;
mod unicode_tables;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::gguf::{Gguf, GgufError, Value};
use crate::grammar::VocabTrie;
use limits::{MAX_ENCODE_TEXT, MAX_TOKEN_TEXT, MAX_VOCAB};

pub use stream::StreamDecoder;

/// Token types as llama.cpp writes them in `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    /// From the GGUF integer (anything unknown is treated as normal, as llama.cpp does).
    pub fn from_gguf(value: i64) -> Self {
        match value {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }

    /// Control and user-defined tokens are matched as whole strings in raw mode.
    pub fn is_special(self) -> bool {
        matches!(self, Self::Control | Self::UserDefined)
    }
}

/// Which algorithm the tokenizer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerModel {
    /// GPT-2 byte-level BPE (`tokenizer.ggml.model = "gpt2"`); `digits_one_by_one` for
    /// pre-tokenizers such as `smollm` that isolate every digit.
    BytePairGpt2 { digits_one_by_one: bool },
    /// SentencePiece BPE with byte fallback (`tokenizer.ggml.model = "llama"`).
    SentencePiece,
}

/// Why a tokenizer could not be built or could not encode.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerError {
    /// A metadata key is missing or has the wrong type.
    Gguf(GgufError),
    /// `tokenizer.ggml.model` names an algorithm this engine does not implement.
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    UnsupportedPreTokenizer(String),
    /// The vocabulary is empty or larger than [`MAX_VOCAB`].
    VocabularySize(usize),
    /// A per-token array (`scores`, `token_type`) does not have one entry per token.
    LengthMismatch {
        key: &'static str,
        expected: usize,
        found: usize,
    },
    /// A token text longer than [`MAX_TOKEN_TEXT`], or empty where text is required.
    BadTokenText { id: u32 },
    /// Merge number `index` is not two vocabulary entries separated by a space whose
    /// concatenation is also in the vocabulary.
    BadMerge { index: usize, text: String },
    /// A special token id key (`bos_token_id`, ...) points outside the vocabulary.
    TokenIdOutOfRange { key: &'static str, id: u32 },
    /// A byte-level vocabulary lacks the token for this byte, so some text cannot be encoded.
    MissingByteToken(u8),
    /// Text to encode is longer than [`MAX_ENCODE_TEXT`].
    TextTooLong(usize),
}

impl From<GgufError> for TokenizerError {
    fn from(error: GgufError) -> Self {
        Self::Gguf(error)
    }
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gguf(error) => write!(f, "tokenizer metadata: {error}"),
            Self::UnsupportedModel(model) => write!(f, "unsupported tokenizer model '{model}'"),
            Self::UnsupportedPreTokenizer(pre) => write!(f, "unsupported pre-tokenizer '{pre}'"),
            Self::VocabularySize(size) => {
                write!(f, "vocabulary of {size} tokens (1..={MAX_VOCAB} allowed)")
            }
            Self::LengthMismatch {
                key,
                expected,
                found,
            } => {
                write!(f, "{key} has {found} entries, the vocabulary {expected}")
            }
            Self::BadTokenText { id } => write!(f, "token {id} has an invalid text"),
            Self::BadMerge { index, text } => write!(f, "merge {index} ('{text}') is invalid"),
            Self::TokenIdOutOfRange { key, id } => {
                write!(f, "{key} = {id} is outside the vocabulary")
            }
            Self::MissingByteToken(byte) => write!(f, "no token for byte {byte:#04x}"),
            Self::TextTooLong(len) => write!(f, "text of {len} bytes exceeds {MAX_ENCODE_TEXT}"),
        }
    }
}

/// Plain vocabulary data, the input of [`Tokenizer::new`] (and what [`Tokenizer::from_gguf`]
/// reads from the file).
#[derive(Clone, Debug, Default)]
pub struct VocabularyData<'a> {
    /// Token texts as stored in the model (GPT-2 byte characters / SentencePiece `▁` pieces).
    pub tokens: Vec<&'a str>,
    /// One type per token (empty = all normal).
    pub token_types: Vec<TokenType>,
    /// SentencePiece scores, one per token (empty for BPE vocabularies).
    pub scores: Vec<f32>,
    /// BPE merges, `"left right"`, highest priority first (empty for SentencePiece).
    pub merges: Vec<&'a str>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// End-of-turn token when it differs from EOS (`tokenizer.ggml.eot_token_id`).
    pub eot: Option<u32>,
    pub unknown: Option<u32>,
    pub add_bos: bool,
    /// SentencePiece: prefix a space to the text (and after each special token).
    pub add_space_prefix: bool,
}

/// A tokenizer: vocabulary tables plus the algorithm of its family.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    model: TokenizerModel,
    /// All token texts, concatenated; `text_offsets[id]..text_offsets[id + 1]` is token `id`.
    text: Vec<u8>,
    text_offsets: Vec<u32>,
    /// All decoded byte strings, concatenated, with their offsets.
    bytes: Vec<u8>,
    byte_offsets: Vec<u32>,
    /// Token ids sorted by text, for lookup by binary search.
    sorted_ids: Vec<u32>,
    types: Vec<TokenType>,
    scores: Vec<f32>,
    /// BPE merges: (left id << 32 | right id, rank, merged id), sorted by key.
    merges: Vec<(u64, u32, u32)>,
    /// Token of each byte: the GPT-2 byte character, or the SentencePiece `<0xXX>` token.
    byte_tokens: [Option<u32>; 256],
    /// Special tokens, longest text first, for raw-mode matching.
    special_ids: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    unknown: Option<u32>,
    add_bos: bool,
    add_space_prefix: bool,
}

impl Tokenizer {
    /// Build from plain vocabulary data.
    pub fn new(model: TokenizerModel, data: &VocabularyData<'_>) -> Result<Self, TokenizerError> {
        let count = data.tokens.len();
        if count == 0 || count > MAX_VOCAB {
            return Err(TokenizerError::VocabularySize(count));
        }
        let types = if data.token_types.is_empty() {
            alloc::vec![TokenType::Normal; count]
        } else if data.token_types.len() == count {
            data.token_types.clone()
        } else {
            return Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.token_type",
                expected: count,
                found: data.token_types.len(),
            });
        };
        if model == TokenizerModel::SentencePiece && data.scores.len() != count {
            return Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.scores",
                expected: count,
                found: data.scores.len(),
            });
        }
        let mut text = Vec::new();
        let mut text_offsets = Vec::with_capacity(count + 1);
        for (id, token) in data.tokens.iter().enumerate() {
            if token.len() > MAX_TOKEN_TEXT {
                return Err(TokenizerError::BadTokenText { id: id as u32 });
            }
            text_offsets.push(text.len() as u32);
            text.extend_from_slice(token.as_bytes());
        }
        if text.len() > u32::MAX as usize {
            return Err(TokenizerError::VocabularySize(count));
        }
        text_offsets.push(text.len() as u32);
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", data.bos),
            ("tokenizer.ggml.eos_token_id", data.eos),
            ("tokenizer.ggml.eot_token_id", data.eot),
            ("tokenizer.ggml.unknown_token_id", data.unknown),
        ] {
            if let Some(id) = id {
                if id as usize >= count {
                    return Err(TokenizerError::TokenIdOutOfRange { key, id });
                }
            }
        }
        let mut tokenizer = Self {
            model,
            text,
            text_offsets,
            bytes: Vec::new(),
            byte_offsets: Vec::new(),
            sorted_ids: (0..count as u32).collect(),
            types,
            scores: data.scores.clone(),
            merges: Vec::new(),
            byte_tokens: [None; 256],
            special_ids: Vec::new(),
            bos: data.bos,
            eos: data.eos,
            eot: data.eot,
            unknown: data.unknown,
            add_bos: data.add_bos,
            add_space_prefix: data.add_space_prefix,
        };
        let mut sorted_ids = core::mem::take(&mut tokenizer.sorted_ids);
        sorted_ids.sort_by(|&a, &b| {
            tokenizer
                .text_of(a)
                .cmp(tokenizer.text_of(b))
                .then(a.cmp(&b))
        });
        tokenizer.sorted_ids = sorted_ids;
        tokenizer.build_bytes();
        let mut special: Vec<u32> = (0..count as u32)
            .filter(|&id| {
                tokenizer.types[id as usize].is_special() && !tokenizer.text_of(id).is_empty()
            })
            .collect();
        special.sort_by(|&a, &b| {
            tokenizer
                .text_of(b)
                .len()
                .cmp(&tokenizer.text_of(a).len())
                .then(a.cmp(&b))
        });
        tokenizer.special_ids = special;
        match model {
            TokenizerModel::BytePairGpt2 { .. } => bpe::build(&mut tokenizer, &data.merges)?,
            TokenizerModel::SentencePiece => spm::build(&mut tokenizer),
        }
        Ok(tokenizer)
    }

    /// Build from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Self, TokenizerError> {
        let model_name = gguf.get_str("tokenizer.ggml.model")?;
        let model = match model_name {
            "gpt2" => {
                let pre = match gguf.get("tokenizer.ggml.pre") {
                    Some(Value::String(pre)) => pre,
                    _ => "default",
                };
                let digits_one_by_one = match pre {
                    "smollm" | "deepseek-llm" | "qwen2" | "starcoder" => true,
                    "default" | "gpt-2" | "gpt2" | "olmo" | "phi-2" => false,
                    other => {
                        return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string()))
                    }
                };
                TokenizerModel::BytePairGpt2 { digits_one_by_one }
            }
            "llama" => TokenizerModel::SentencePiece,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let tokens_array = gguf.get_array("tokenizer.ggml.tokens")?;
        if tokens_array.is_empty() || tokens_array.len() > MAX_VOCAB {
            return Err(TokenizerError::VocabularySize(tokens_array.len()));
        }
        let tokens: Vec<&str> = gguf.get_array_str("tokenizer.ggml.tokens")?.collect();
        if tokens.len() != tokens_array.len() {
            return Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.tokens",
                expected: tokens_array.len(),
                found: tokens.len(),
            });
        }
        let token_types = match gguf.get("tokenizer.ggml.token_type") {
            Some(Value::Array(array)) => (0..array.len())
                .map(|i| TokenType::from_gguf(array.get_int(i).unwrap_or(1)))
                .collect(),
            _ => Vec::new(),
        };
        let scores = match gguf.get("tokenizer.ggml.scores") {
            Some(_) => {
                let array = gguf.get_array_f32("tokenizer.ggml.scores")?;
                (0..array.len())
                    .map(|i| array.get_f32(i).unwrap_or(0.0))
                    .collect()
            }
            None => Vec::new(),
        };
        let merges = match (model, gguf.get("tokenizer.ggml.merges")) {
            (TokenizerModel::BytePairGpt2 { .. }, _) => {
                gguf.get_array_str("tokenizer.ggml.merges")?.collect()
            }
            _ => Vec::new(),
        };
        let optional_id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match gguf.get(key) {
                None => Ok(None),
                Some(_) => Ok(Some(gguf.get_u32(key)?)),
            }
        };
        let optional_bool = |key: &str, default: bool| -> Result<bool, TokenizerError> {
            match gguf.get(key) {
                None => Ok(default),
                Some(_) => Ok(gguf.get_bool(key)?),
            }
        };
        let is_spm = model == TokenizerModel::SentencePiece;
        let data = VocabularyData {
            tokens,
            token_types,
            scores,
            merges,
            bos: optional_id("tokenizer.ggml.bos_token_id")?,
            eos: optional_id("tokenizer.ggml.eos_token_id")?,
            eot: optional_id("tokenizer.ggml.eot_token_id")?,
            unknown: optional_id("tokenizer.ggml.unknown_token_id")?,
            add_bos: optional_bool("tokenizer.ggml.add_bos_token", is_spm)?,
            add_space_prefix: optional_bool("tokenizer.ggml.add_space_prefix", is_spm)?,
        };
        Self::new(model, &data)
    }

    /// Heap bytes held by the tables (for the console's memory report).
    pub fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        self.text.capacity()
            + self.bytes.capacity()
            + (self.text_offsets.capacity()
                + self.byte_offsets.capacity()
                + self.sorted_ids.capacity())
                * 4
            + self.types.capacity() * size_of::<TokenType>()
            + self.scores.capacity() * 4
            + self.merges.capacity() * size_of::<(u64, u32, u32)>()
            + self.special_ids.capacity() * 4
    }

    /// The algorithm family.
    pub fn model(&self) -> TokenizerModel {
        self.model
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.types.len()
    }

    /// Beginning-of-sequence token, if the vocabulary has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence token, if the vocabulary has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Tokens that end generation: EOS and, when different, end-of-turn.
    pub fn end_tokens(&self) -> Vec<u32> {
        let mut ends: Vec<u32> = self.eos.into_iter().chain(self.eot).collect();
        ends.dedup();
        ends
    }

    /// Whether `id` ends generation.
    pub fn is_end_token(&self, id: u32) -> bool {
        Some(id) == self.eos || Some(id) == self.eot
    }

    /// The type of token `id`.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The text of token `id` as stored in the model (e.g. `Ġworld`, `▁world`, `<0x0A>`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        let bytes = self.text_of(id);
        if (id as usize) < self.types.len() {
            core::str::from_utf8(bytes).ok()
        } else {
            None
        }
    }

    /// The id of the token whose stored text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.lookup(text.as_bytes())
    }

    /// The bytes token `id` stands for (control tokens: their text).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        let id = id as usize;
        match (self.byte_offsets.get(id), self.byte_offsets.get(id + 1)) {
            (Some(&start), Some(&end)) => &self.bytes[start as usize..end as usize],
            _ => &[],
        }
    }

    /// The bytes to print for token `id` while streaming: control and unknown tokens print
    /// nothing.
    pub fn piece(&self, id: u32) -> &[u8] {
        match self.token_type(id) {
            Some(TokenType::Control | TokenType::Unknown) | None => &[],
            Some(_) => self.token_bytes(id),
        }
    }

    /// Encode `text`. `add_special` prepends BOS when the model asks for it
    /// (`add_bos_token`); `parse_special` turns special-token texts into their ids.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        self.encode_into(text, add_special, parse_special, &mut ids)?;
        Ok(ids)
    }

    /// [`Tokenizer::encode`] appending to `ids`.
    pub fn encode_into(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        ids: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        if text.len() > MAX_ENCODE_TEXT {
            return Err(TokenizerError::TextTooLong(text.len()));
        }
        if add_special && self.add_bos {
            if let Some(bos) = self.bos {
                ids.push(bos);
            }
        }
        // SentencePiece prefixes a space at the start and after each special token.
        let mut after_special = true;
        let mut rest = text;
        while !rest.is_empty() {
            let (plain_len, special) = if parse_special {
                self.find_special(rest)
            } else {
                (rest.len(), None)
            };
            if plain_len > 0 {
                let plain = &rest[..plain_len];
                match self.model {
                    TokenizerModel::BytePairGpt2 { digits_one_by_one } => {
                        bpe::encode(self, plain, digits_one_by_one, ids)?
                    }
                    TokenizerModel::SentencePiece => {
                        spm::encode(self, plain, self.add_space_prefix && after_special, ids)
                    }
                }
                after_special = false;
            }
            rest = &rest[plain_len..];
            if let Some(id) = special {
                ids.push(id);
                rest = &rest[self.text_of(id).len()..];
                after_special = true;
            }
        }
        Ok(())
    }

    /// Decode ids to bytes. Control and unknown tokens are skipped unless `include_special`.
    /// For SentencePiece the space added in front of the text by `encode` is removed.
    pub fn decode(&self, ids: &[u32], include_special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at_start = true;
        for &id in ids {
            let bytes = if include_special {
                self.token_bytes(id)
            } else {
                self.piece(id)
            };
            let special = self.token_type(id).is_some_and(|t| t.is_special());
            if at_start
                && !special
                && self.model == TokenizerModel::SentencePiece
                && self.add_space_prefix
                && bytes.first() == Some(&b' ')
            {
                out.extend_from_slice(&bytes[1..]);
            } else {
                out.extend_from_slice(bytes);
            }
            if !bytes.is_empty() || special {
                at_start = special && self.model == TokenizerModel::SentencePiece;
            }
        }
        out
    }

    /// Decode to a string, replacing invalid UTF-8 with U+FFFD.
    pub fn decode_to_string(&self, ids: &[u32], include_special: bool) -> String {
        String::from_utf8_lossy(&self.decode(ids, include_special)).into_owned()
    }

    /// The vocabulary trie the grammar mask walks: every token the model may produce as text
    /// (normal, byte and user-defined tokens), plus the end tokens.
    pub fn vocab_trie(&self) -> VocabTrie {
        let entries = (0..self.vocab_size() as u32).map(|id| match self.types[id as usize] {
            TokenType::Normal | TokenType::Byte | TokenType::UserDefined => {
                Some(self.token_bytes(id))
            }
            TokenType::Control | TokenType::Unknown | TokenType::Unused => None,
        });
        VocabTrie::build(entries, &self.end_tokens())
    }

    // ----- shared helpers for bpe/spm -----

    fn text_of(&self, id: u32) -> &[u8] {
        let id = id as usize;
        match (self.text_offsets.get(id), self.text_offsets.get(id + 1)) {
            (Some(&start), Some(&end)) => &self.text[start as usize..end as usize],
            _ => &[],
        }
    }

    fn lookup(&self, text: &[u8]) -> Option<u32> {
        self.sorted_ids
            .binary_search_by(|&id| self.text_of(id).cmp(text))
            .ok()
            .map(|index| self.sorted_ids[index])
    }

    /// The first special token in `text`: (length of the plain text before it, its id).
    fn find_special(&self, text: &str) -> (usize, Option<u32>) {
        let bytes = text.as_bytes();
        for start in 0..bytes.len() {
            if !text.is_char_boundary(start) {
                continue;
            }
            for &id in &self.special_ids {
                if bytes[start..].starts_with(self.text_of(id)) {
                    return (start, Some(id));
                }
            }
        }
        (bytes.len(), None)
    }

    /// Fill the decoded byte table for every token.
    fn build_bytes(&mut self) {
        let count = self.types.len();
        let mut bytes = Vec::with_capacity(self.text.len());
        let mut offsets = Vec::with_capacity(count + 1);
        for id in 0..count as u32 {
            offsets.push(bytes.len() as u32);
            let text = self.text_of(id);
            let token_type = self.types[id as usize];
            if token_type.is_special() || token_type == TokenType::Unknown {
                bytes.extend_from_slice(text);
                continue;
            }
            match self.model {
                TokenizerModel::BytePairGpt2 { .. } => bpe::decode_token_text(text, &mut bytes),
                TokenizerModel::SentencePiece => {
                    spm::decode_token_text(text, token_type, &mut bytes)
                }
            }
        }
        offsets.push(bytes.len() as u32);
        self.bytes = bytes;
        self.byte_offsets = offsets;
    }
}

#[cfg(test)]
mod tests;
