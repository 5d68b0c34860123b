//! `ai` and `ai-stats`: generate text with the loaded model at the console.
//!
//! `ai [--greedy] [--max-tokens N] [--seed S] [--raw] <prompt>` (DESIGN interface 5):
//! - the prompt goes through the model's chat template (one user turn, the template's default
//!   system turn, the assistant's opener) unless `--raw`, which sends the text as written;
//!   in both, `\n`, `\t` and `\\` are expanded (a console line cannot hold a newline) and
//!   special-token strings such as `<|im_start|>` become their ids;
//! - tokens stream to the console as they are generated, whole UTF-8 characters only (a
//!   character split over two byte tokens waits for its second half);
//! - Ctrl-C stops generation, checked after every token. Any other input (typed ahead, or
//!   the rest of piped input) waits in the receive ring for the shell: it neither stops `ai`
//!   nor is lost;
//! - the command ends with exactly one line `[ai] prompt_tokens=N tokens=N ttft_ms=N tok_s=X`.
//!
//! Defaults without flags: temperature 0.7, top-k 40, top-p 0.9, repetition penalty 1.1 over
//! the last 64 tokens (`SamplerConfig::default`, llama.cpp's long-standing defaults, which keep
//! a 135M model from looping without making it incoherent), seed from the timer (say `--seed`
//! to repeat a run), at most [`limits::DEFAULT_MAX_TOKENS`] tokens in a context of
//! [`limits::CONSOLE_CONTEXT`] (see limits.rs for why). `--greedy` is what golden tests use.
//!
//! Figures: `tokens` counts generated tokens (the end-of-turn token excluded); `ttft_ms` runs
//! from the command's start (tokenizing included) to the first generated token; `tok_s` is the
//! generation rate: forward steps after the first token divided by the time they took (what
//! llama.cpp calls eval time). `ai-stats` prints the last run's raw figures in nanoseconds on
//! one machine-readable line; under `-icount shift=0` a guest nanosecond is one guest
//! instruction, so `decode_ns / decode_steps` is the instructions per generated token.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use llm::sample::{Sampler, SamplerConfig};
use llm::tokenizer::StreamDecoder;
use llm::Parallel;
use spin::Mutex;

use super::limits;
use super::model::{self, LoadedModel};
use super::parallel::CorePool;
use crate::arch::aarch64::timer;
use crate::{print, println};

const USAGE: &str = "usage: ai [--greedy] [--max-tokens N] [--seed S] [--raw] <prompt>";

/// What `ai` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    greedy: bool,
    raw: bool,
    max_tokens: usize,
    seed: Option<u64>,
    prompt: &'a str,
}

/// Splits `--flag`s off the front of the text after the command word; the rest is the prompt,
/// spacing untouched. `--` ends the flags (for prompts that start with `--`).
fn parse_request(line: &str) -> Result<Request<'_>, String> {
    let mut request = Request {
        greedy: false,
        raw: false,
        max_tokens: limits::DEFAULT_MAX_TOKENS,
        seed: None,
        prompt: "",
    };
    let mut rest = kcore::shell_words::rest_after_command(line);
    let next_word = |text: &str| -> (usize, usize) {
        let end = text
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(text.len());
        (end, text[end..].len() - text[end..].trim_start().len())
    };
    loop {
        if !rest.starts_with("--") {
            break;
        }
        let (end, gap) = next_word(rest);
        let flag = &rest[..end];
        rest = &rest[end + gap..];
        let mut number = |name: &str| -> Result<u64, String> {
            let (end, gap) = next_word(rest);
            let word = &rest[..end];
            rest = &rest[end + gap..];
            word.parse::<u64>()
                .map_err(|_| alloc::format!("ai: {name} needs a number, got '{word}'\n{USAGE}"))
        };
        match flag {
            "--" => break,
            "--greedy" => request.greedy = true,
            "--raw" => request.raw = true,
            "--max-tokens" => {
                let n = number("--max-tokens")?;
                if n == 0 || n > limits::MAX_MAX_TOKENS as u64 {
                    return Err(alloc::format!(
                        "ai: --max-tokens must be 1..={}",
                        limits::MAX_MAX_TOKENS
                    ));
                }
                request.max_tokens = n as usize;
            }
            "--seed" => request.seed = Some(number("--seed")?),
            other => return Err(alloc::format!("ai: unknown option '{other}'\n{USAGE}")),
        }
    }
    request.prompt = rest;
    if request.prompt.trim().is_empty() {
        return Err(String::from(USAGE));
    }
    Ok(request)
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    /// The model produced an end-of-turn / end-of-sequence token.
    EndToken,
    /// `--max-tokens` reached.
    MaxTokens,
    /// The session's context is full.
    ContextFull,
    /// Ctrl-C was pressed.
    Interrupted,
    /// The engine or the sampler reported an error (printed).
    Error,
}

impl StopReason {
    fn name(self) -> &'static str {
        match self {
            StopReason::EndToken => "end",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Interrupted => "interrupted",
            StopReason::Error => "error",
        }
    }
}

/// The figures of one `ai` run (raw, for `ai-stats` and the bench).
#[derive(Clone, Copy, Debug)]
struct RunStats {
    smp: usize,
    prompt_tokens: usize,
    tokens: usize,
    prompt_ns: u64,
    ttft_ns: u64,
    decode_steps: usize,
    decode_ns: u64,
    peak_mem_bytes: u64,
    weights_bytes: u64,
    kv_cache_bytes: u64,
    heap_peak_bytes: u64,
    stop: StopReason,
}

static LAST_RUN: Mutex<Option<RunStats>> = Mutex::new(None);

fn nanoseconds(ticks: u64) -> u64 {
    ((u128::from(ticks) * 1_000_000_000) / u128::from(timer::frequency().max(1))) as u64
}

/// Tracks the largest heap use seen during a run.
struct PeakHeap(u64);

impl PeakHeap {
    fn sample(&mut self) {
        self.0 = self.0.max(model::heap_used());
    }
}

/// `ai ...`: see the module documentation.
pub fn command_ai(_arguments: &[&str], line: &str) {
    let request = match parse_request(line) {
        Ok(request) => request,
        Err(message) => {
            println!("{message}");
            return;
        }
    };
    let Some(loaded) = model::loaded() else {
        println!("ai: no model is loaded: {}", model::absence_reason());
        return;
    };
    let result = model::with_session(|loaded, session| generate(loaded, session, &request));
    match result {
        Some(Some(stats)) => *LAST_RUN.lock() = Some(stats),
        Some(None) => {}
        None => println!(
            "ai: no model is loaded: the session for {} could not be created",
            loaded.name
        ),
    }
}

/// Runs one request; prints everything; returns the figures (None when nothing ran).
fn generate(
    loaded: &'static LoadedModel,
    session: &mut llm::Session<'static, 'static>,
    request: &Request<'_>,
) -> Option<RunStats> {
    let started = timer::counter();
    let mut peak = PeakHeap(model::heap_used());
    let tokenizer = &loaded.tokenizer;
    let text = llm::chat::expand_console_escapes(request.prompt);
    let prompt_text = if request.raw {
        text
    } else {
        loaded
            .template
            .apply(&[llm::chat::Message::user(&text)], true)
    };
    let prompt = match tokenizer.encode(&prompt_text, true, true) {
        Ok(ids) => ids,
        Err(error) => {
            println!("ai: the prompt cannot be tokenized: {error}");
            return None;
        }
    };
    let context = session.context();
    if prompt.is_empty() {
        println!("ai: the prompt is empty after tokenizing");
        return None;
    }
    if prompt.len() >= context {
        println!(
            "ai: the prompt is {} tokens; the context holds {context} (prompt and answer)",
            prompt.len()
        );
        return None;
    }
    let max_tokens = request.max_tokens.min(context - prompt.len());
    let mut sampler = if request.greedy {
        None
    } else {
        let seed = request.seed.unwrap_or_else(timer::counter);
        let mut sampler = Sampler::new(
            tokenizer.vocab_size(),
            SamplerConfig {
                seed,
                ..SamplerConfig::default()
            },
        );
        for &token in &prompt {
            sampler.record(token);
        }
        Some(sampler)
    };
    // The sampler modifies logits (penalty, temperature): it works on this copy, allocated
    // once here, so the token loop does not allocate.
    let mut logits_copy: Vec<f32> = if sampler.is_some() {
        vec![0.0; tokenizer.vocab_size()]
    } else {
        Vec::new()
    };
    let mut decoder = StreamDecoder::new();
    let pool = CorePool;
    peak.sample();

    // Prompt: one forward step per token (the engine has no batched prompt path).
    session.reset();
    for (position, &token) in prompt.iter().enumerate() {
        if let Err(error) = session.forward(token, position, &pool) {
            println!("ai: forward pass failed at prompt position {position}: {error}");
            return None;
        }
    }
    let prompt_done = timer::counter();
    peak.sample();

    let mut tokens = 0usize;
    let mut decode_steps = 0usize;
    let mut first_token_at = None;
    let mut last_sample_at;
    let mut position = prompt.len();
    let mut ends_with_newline = true;
    let stop = loop {
        let choice = match sampler.as_mut() {
            None => llm::sample::greedy(session.logits(), None),
            Some(sampler) => {
                logits_copy.copy_from_slice(session.logits());
                sampler.sample(&mut logits_copy, None)
            }
        };
        last_sample_at = timer::counter();
        if first_token_at.is_none() {
            first_token_at = Some(last_sample_at);
        }
        let token = match choice {
            Ok(token) => token,
            Err(error) => {
                println!("\nai: sampling failed: {error}");
                break StopReason::Error;
            }
        };
        if tokenizer.is_end_token(token) {
            break StopReason::EndToken;
        }
        tokens += 1;
        let text = decoder.push(tokenizer.piece(token));
        if !text.is_empty() {
            ends_with_newline = text.ends_with('\n');
            print!("{text}");
        }
        if tokens >= max_tokens {
            break StopReason::MaxTokens;
        }
        if crate::console::take_interrupt_key() {
            break StopReason::Interrupted;
        }
        if position >= context {
            break StopReason::ContextFull;
        }
        if let Err(error) = session.forward(token, position, &pool) {
            println!("\nai: forward pass failed at position {position}: {error}");
            break StopReason::Error;
        }
        position += 1;
        decode_steps += 1;
        peak.sample();
    };
    let tail = decoder.finish();
    if !tail.is_empty() {
        ends_with_newline = tail.ends_with('\n');
        print!("{tail}");
    }
    if !ends_with_newline {
        println!();
    }
    match stop {
        StopReason::Interrupted => println!("(stopped by Ctrl-C)"),
        StopReason::ContextFull => println!("(stopped: the context of {context} is full)"),
        _ => {}
    }
    let first_token_at = first_token_at.unwrap_or(prompt_done);
    let ttft_ns = nanoseconds(first_token_at.saturating_sub(started));
    let decode_ns = nanoseconds(last_sample_at.saturating_sub(first_token_at));
    let weights_bytes = loaded.model.weight_bytes() as u64;
    let heap_peak_bytes = peak.0.saturating_sub(loaded.heap_used_before);
    let stats = RunStats {
        smp: pool.workers(),
        prompt_tokens: prompt.len(),
        tokens,
        prompt_ns: nanoseconds(prompt_done.saturating_sub(started)),
        ttft_ns,
        decode_steps,
        decode_ns,
        peak_mem_bytes: weights_bytes + heap_peak_bytes,
        weights_bytes,
        kv_cache_bytes: session.kv_cache_bytes() as u64,
        heap_peak_bytes,
        stop,
    };
    let tok_s = if decode_ns > 0 {
        decode_steps as f64 * 1e9 / decode_ns as f64
    } else {
        0.0
    };
    println!(
        "[ai] prompt_tokens={} tokens={} ttft_ms={} tok_s={:.2}",
        stats.prompt_tokens,
        stats.tokens,
        ttft_ns / 1_000_000,
        tok_s
    );
    Some(stats)
}

/// `ai-stats`: the last `ai` run's figures on one machine-readable line.
pub fn command_ai_stats(_arguments: &[&str], _line: &str) {
    let Some(stats) = *LAST_RUN.lock() else {
        println!("ai-stats: no ai run yet");
        return;
    };
    let name = model::loaded().map_or("none", |loaded| loaded.name);
    println!(
        "[ai-stats] model={} smp={} prompt_tokens={} tokens={} prompt_ns={} ttft_ns={} decode_steps={} decode_ns={} peak_mem_bytes={} weights_bytes={} kv_cache_bytes={} heap_peak_bytes={} stop={}",
        name.replace(' ', "_"),
        stats.smp,
        stats.prompt_tokens,
        stats.tokens,
        stats.prompt_ns,
        stats.ttft_ns,
        stats.decode_steps,
        stats.decode_ns,
        stats.peak_mem_bytes,
        stats.weights_bytes,
        stats.kv_cache_bytes,
        stats.heap_peak_bytes,
        stats.stop.name()
    );
}
