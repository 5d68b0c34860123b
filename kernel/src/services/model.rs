//! The model service: loads the GGUF model from the initrd at boot and keeps it, its tokenizer,
//! chat template and one inference session for the console.
//!
//! What is checked at boot, and what is not:
//! - **At boot** (`llm::Model::load` over the initrd, in place, no copy): the GGUF header,
//!   every metadata key and value (types, string and array lengths, against `llm::limits`), the
//!   tensor table (names, dimension counts, shapes, types, offsets, alignment, that every
//!   tensor's bytes lie inside the file and no two overlap), then the Llama config from the
//!   metadata and every tensor the forward pass uses (present, shape matching the config, a
//!   type usable in its role). The tokenizer is built from the metadata (vocabulary, merges or
//!   scores, special tokens) and the session's buffers and KV cache are allocated. None of
//!   this reads the weight bytes themselves, so it costs the same for a 98 MB or a 1 GB file:
//!   a few hundred thousand metadata entries, well under a few seconds under TCG.
//! - **Lazily**: the weight bytes are read only by the forward pass, where they are used.
//!   A quantized block has no invalid encodings (any f16 scale and any nibbles are a value),
//!   so there is nothing a boot-time pass over 98 MB could reject; it would only cost ~100M
//!   guest instructions.
//!
//! A file that fails a check prints one line with the typed error (`[model] error: ...`,
//! naming the tensor or key) and the kernel runs on without a model; `ai` then says why.
//!
//! The loaded model lives in a `spin::Once` for the kernel's lifetime, so the session can borrow
//! it as `'static`; the session itself sits behind a mutex (one `ai` at a time).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use llm::chat::ChatTemplate;
use llm::tokenizer::Tokenizer;
use llm::{GgmlType, Model, Progress, Session};
use spin::{Mutex, Once};

use super::limits;
use crate::arch::aarch64::timer;
use crate::{print, println};

/// A model ready to run, kept for the kernel's lifetime.
pub struct LoadedModel {
    /// Config and weights, borrowed in place from the initrd.
    pub model: Model<'static>,
    /// Tokenizer built from the file's metadata.
    pub tokenizer: Tokenizer,
    /// Chat template chosen from the file's metadata (with its default system turn).
    pub template: ChatTemplate,
    /// `general.name` from the metadata, or `unnamed`.
    pub name: &'static str,
    /// Size of the GGUF file (the initrd) in bytes.
    pub file_bytes: usize,
    /// Heap bytes the tokenizer took (measured around its construction).
    pub tokenizer_heap_bytes: u64,
    /// Heap bytes in use before the model service allocated anything.
    pub heap_used_before: u64,
}

/// Why there is no model (for `ai` and `model`).
enum Absence {
    /// The boot had no initrd, or the initrd is outside RAM.
    NoInitrd,
    /// The initrd failed a check: the typed error, rendered.
    Rejected(String),
}

static LOADED: Once<LoadedModel> = Once::new();
static ABSENCE: Once<Absence> = Once::new();
static SESSION: Mutex<Option<Session<'static, 'static>>> = Mutex::new(None);

/// The loaded model, if the boot found a valid one.
pub fn loaded() -> Option<&'static LoadedModel> {
    LOADED.get()
}

/// One line saying why no model is loaded.
pub fn absence_reason() -> String {
    match ABSENCE.get() {
        Some(Absence::NoInitrd) => "the boot had no model initrd (--model none?)".to_string(),
        Some(Absence::Rejected(message)) => alloc::format!("the initrd was rejected: {message}"),
        None => "the model service has not started".to_string(),
    }
}

/// Runs `f` with the console's session (created at boot with the model), or returns `None`
/// when there is no model.
pub fn with_session<R>(
    f: impl FnOnce(&'static LoadedModel, &mut Session<'static, 'static>) -> R,
) -> Option<R> {
    let loaded = loaded()?;
    let mut guard = SESSION.lock();
    let session = guard.as_mut()?;
    Some(f(loaded, session))
}

/// Bytes of heap in use now.
pub fn heap_used() -> u64 {
    let (free, total) = crate::memory::heap_usage();
    total.saturating_sub(free)
}

/// The boot progress bar: redrawn in place (`\r`) every [`limits::PROGRESS_REDRAW_PERCENT`].
struct ProgressBar {
    last_percent: Option<usize>,
}

impl ProgressBar {
    fn draw(&mut self, done: usize, total: usize) {
        let total = total.max(1);
        let percent = (done.min(total) * 100) / total;
        let bucket = percent - percent % limits::PROGRESS_REDRAW_PERCENT;
        if self.last_percent == Some(bucket) && done < total {
            return;
        }
        if self.last_percent == Some(100) {
            return;
        }
        self.last_percent = Some(if done >= total { 100 } else { bucket });
        let filled = (done.min(total) * limits::PROGRESS_BAR_WIDTH) / total;
        let mut bar = String::with_capacity(limits::PROGRESS_BAR_WIDTH);
        for index in 0..limits::PROGRESS_BAR_WIDTH {
            bar.push(if index < filled { '#' } else { '.' });
        }
        print!("\r[model] checking [{bar}] {percent:>3}% {done}/{total} tensors");
    }
}

fn milliseconds_since(start: u64) -> u64 {
    let ticks = timer::counter().saturating_sub(start);
    ((u128::from(ticks) * 1000) / u128::from(timer::frequency().max(1))) as u64
}

/// Loads the model from the initrd, if there is one. Called once at boot, after the heap and
/// before the shell; never fails the boot (a bad file leaves the kernel without a model).
pub fn init(initrd: Option<&'static [u8]>) {
    let Some(file) = initrd else {
        ABSENCE.call_once(|| Absence::NoInitrd);
        return;
    };
    let started = timer::counter();
    let heap_used_before = heap_used();
    println!(
        "[model] checking the initrd as a GGUF model ({} bytes, in place)",
        file.len()
    );
    let mut bar = ProgressBar { last_percent: None };
    let loaded = Model::load(file, &mut |Progress { done, total }| bar.draw(done, total));
    if bar.last_percent.is_some() {
        println!();
    }
    let model = match loaded {
        Ok(model) => model,
        Err(error) => {
            println!("[model] error: {error}; running without a model");
            ABSENCE.call_once(|| Absence::Rejected(error.to_string()));
            return;
        }
    };
    let before_tokenizer = heap_used();
    let tokenizer = match Tokenizer::from_gguf(&model.gguf) {
        Ok(tokenizer) => tokenizer,
        Err(error) => {
            println!("[model] error: tokenizer: {error}; running without a model");
            ABSENCE.call_once(|| Absence::Rejected(alloc::format!("tokenizer: {error}")));
            return;
        }
    };
    let tokenizer_heap_bytes = heap_used().saturating_sub(before_tokenizer);
    if tokenizer.vocab_size() != model.config().vocab_size {
        let message = alloc::format!(
            "the tokenizer has {} tokens but token_embd.weight has {} rows",
            tokenizer.vocab_size(),
            model.config().vocab_size
        );
        println!("[model] error: {message}; running without a model");
        ABSENCE.call_once(|| Absence::Rejected(message));
        return;
    }
    let template = ChatTemplate::from_gguf(&model.gguf).with_default_system();
    let name = match model.gguf.get("general.name") {
        Some(llm::Value::String(text)) => text,
        _ => "unnamed",
    };
    let loaded = LOADED.call_once(|| LoadedModel {
        model,
        tokenizer,
        template,
        name,
        file_bytes: file.len(),
        tokenizer_heap_bytes,
        heap_used_before,
    });
    let context = limits::CONSOLE_CONTEXT.min(loaded.model.config().trained_context.max(1));
    match loaded.model.session(context) {
        Ok(session) => *SESSION.lock() = Some(session),
        Err(error) => {
            println!("[model] error: session: {error}; running without a model");
            return;
        }
    }
    let load_milliseconds = milliseconds_since(started);
    let c = loaded.model.config();
    println!(
        "[model] {}: llama, {} layers, dim {}, {} params, vocab {}, context {context}; checked in {load_milliseconds} ms",
        name,
        c.n_layers,
        c.dim,
        human_count(loaded.model.parameter_count() as u64),
        c.vocab_size,
    );
}

/// `1.23M`-style counts.
fn human_count(n: u64) -> String {
    let mut out = String::new();
    let _ = match n {
        n if n >= 1_000_000_000 => {
            write!(out, "{}.{:02}B", n / 1_000_000_000, (n / 10_000_000) % 100)
        }
        n if n >= 1_000_000 => write!(out, "{}.{:02}M", n / 1_000_000, (n / 10_000) % 100),
        n if n >= 1_000 => write!(out, "{}.{:02}K", n / 1_000, (n / 10) % 100),
        n => write!(out, "{n}"),
    };
    out
}

const MIB: f64 = 1024.0 * 1024.0;

/// `model`: arch, parameters, tensor-type mix, context, memory used.
pub fn command_model(_arguments: &[&str], _line: &str) {
    let Some(loaded) = loaded() else {
        println!("model: no model is loaded: {}", absence_reason());
        return;
    };
    let model = &loaded.model;
    let c = model.config();
    println!("name: {}", loaded.name);
    println!(
        "arch: llama, {} layers, dim {}, heads {} (kv {}, head dim {}), ffn {}, vocab {}",
        c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim, c.vocab_size
    );
    println!(
        "rope theta {}, rms eps {:e}, tied embeddings: {}",
        c.rope_theta,
        c.rms_eps,
        if c.tied_embeddings { "yes" } else { "no" }
    );
    println!(
        "parameters: {} ({})",
        model.parameter_count(),
        human_count(model.parameter_count() as u64)
    );
    // Tensor-type mix: count, elements and bytes per type.
    let mut mix: Vec<(GgmlType, usize, usize, usize)> = Vec::new();
    for tensor in model.gguf.tensors() {
        match mix.iter_mut().find(|entry| entry.0 == tensor.ggml_type) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += tensor.elements();
                entry.3 += tensor.data.len();
            }
            None => mix.push((tensor.ggml_type, 1, tensor.elements(), tensor.data.len())),
        }
    }
    let mut line = String::from("tensor types:");
    for (ggml_type, count, _elements, bytes) in &mix {
        let _ = write!(
            line,
            " {ggml_type} x{count} ({:.1} MiB)",
            *bytes as f64 / MIB
        );
    }
    println!("{line}");
    println!(
        "tokenizer: {:?}, {} tokens, bos {:?}, eos {:?}, chat template {}",
        loaded.tokenizer.model(),
        loaded.tokenizer.vocab_size(),
        loaded.tokenizer.bos(),
        loaded.tokenizer.eos(),
        match loaded.template {
            ChatTemplate::ChatMl { .. } => "ChatML",
            ChatTemplate::Zephyr { .. } => "Zephyr",
        }
    );
    let session = SESSION.lock();
    let (context, kv, buffers) = match session.as_ref() {
        Some(s) => (
            s.context(),
            s.kv_cache_bytes(),
            s.memory_bytes() - s.kv_cache_bytes(),
        ),
        None => (0, 0, 0),
    };
    drop(session);
    println!(
        "context: {context} positions (trained {})",
        c.trained_context
    );
    println!(
        "memory: weights {:.1} MiB in place in the initrd (file {:.1} MiB, not copied), KV cache {:.1} MiB, buffers {:.2} MiB, tokenizer {:.2} MiB",
        model.weight_bytes() as f64 / MIB,
        loaded.file_bytes as f64 / MIB,
        kv as f64 / MIB,
        buffers as f64 / MIB,
        loaded.tokenizer_heap_bytes as f64 / MIB
    );
    println!(
        "heap used by the model service: {:.1} MiB; workers: {} core(s)",
        heap_used().saturating_sub(loaded.heap_used_before) as f64 / MIB,
        llm::Parallel::workers(&super::parallel::CorePool)
    );
}
