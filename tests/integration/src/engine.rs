//! The inference engine run on the host, as the oracle for what the kernel's `ai` prints.
//!
//! The kernel and the host build of `llm` compute the same integers in every quantized kernel
//! (NEON and portable agree to the bit, see `llm::kernels`), and the rest of the forward pass
//! is the same code in the same order, so greedy decoding on the host predicts the kernel's
//! text exactly, token for token. The golden tests compare that host engine with candle; the
//! QEMU tests compare the kernel with this, which closes the chain kernel = engine = reference.

use llm::sample::greedy;
use llm::tokenizer::{StreamDecoder, Tokenizer};
use llm::{Model, Sequential};

/// The host engine's prediction of one `ai --raw --greedy` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Tokens of the prompt (the stats line's `prompt_tokens`).
    pub prompt_tokens: usize,
    /// What the kernel prints before the stats line (see [`generated_text`]).
    pub text: String,
}

/// What `ai --raw --greedy --max-tokens N PROMPT` prints, as the host engine computes it:
/// `prompt` as typed at the console (escapes expanded, special tokens parsed), up to
/// `max_tokens` tokens or an end token. Errors are the engine's messages.
pub fn greedy_raw(
    model_file: &[u8],
    prompt: &str,
    max_tokens: usize,
) -> Result<Generation, String> {
    let model = Model::load(model_file, &mut |_| {}).map_err(|e| e.to_string())?;
    let tokenizer = Tokenizer::from_gguf(&model.gguf).map_err(|e| format!("{e:?}"))?;
    let text = llm::chat::expand_console_escapes(prompt);
    let ids = tokenizer
        .encode(&text, true, true)
        .map_err(|e| format!("{e:?}"))?;
    let mut session = model
        .session(ids.len() + max_tokens)
        .map_err(|e| e.to_string())?;
    let mut logits = Vec::new();
    for (position, &id) in ids.iter().enumerate() {
        logits = session
            .forward(id, position, &Sequential)
            .map_err(|e| e.to_string())?
            .to_vec();
    }
    let mut decoder = StreamDecoder::new();
    let mut out = String::new();
    for step in 0..max_tokens {
        let token = greedy(&logits, None).map_err(|e| format!("{e:?}"))?;
        if tokenizer.is_end_token(token) {
            break;
        }
        out.push_str(decoder.push(tokenizer.piece(token)));
        if step + 1 < max_tokens {
            logits = session
                .forward(token, ids.len() + step, &Sequential)
                .map_err(|e| e.to_string())?
                .to_vec();
        }
    }
    out.push_str(decoder.finish());
    // The kernel ends an unfinished line itself; `generated_text` drops that newline.
    let text = out.strip_suffix('\n').unwrap_or(&out).to_string();
    Ok(Generation {
        prompt_tokens: ids.len(),
        text,
    })
}

/// The generated text of an `ai` reply: everything before its `[ai] ` stats line, with the
/// console's CR LF as LF and without the newline the kernel adds to end an unfinished line.
pub fn generated_text(reply: &str) -> &str {
    let text = reply.split("[ai] ").next().unwrap_or("");
    text.strip_suffix('\n').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::generated_text;

    #[test]
    fn generated_text_is_what_precedes_the_stats_line() {
        assert_eq!(
            generated_text("Here's a C\n[ai] prompt_tokens=21 tokens=4 ttft_ms=1 tok_s=2.00\n"),
            "Here's a C"
        );
        assert_eq!(generated_text("two\nlines\n\n[ai] x"), "two\nlines\n");
        assert_eq!(generated_text("no stats"), "no stats");
    }
}
