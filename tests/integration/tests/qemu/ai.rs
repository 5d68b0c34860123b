//! The inference service under QEMU:
//! - with the SmolLM2 initrd the kernel generates candle's first tokens (golden text,
//!   TOOLCHAIN.md) and exactly the host engine's greedy text (`integration::engine`: same
//!   code, same integers, so equal token for token);
//! - with the synthetic TinyLlama-1.1B-shaped initrd (668 MB, -m 2G) it loads in place and
//!   generates exactly the host engine's text too;
//! - a truncated model initrd boots with one clear message and a console that still works;
//! - Ctrl-C stops generation and typed-ahead input is kept.
//!
//! Kept short for CI: a 21-token prompt and 12 generated tokens for SmolLM2 (one token costs
//! ~70M guest instructions under TCG), a 2-token prompt and 3 tokens for TinyLlama.

use std::time::Duration;

use integration::engine::{self, Generation};
use integration::{artifacts, Info, QemuConfig};

use crate::{boot, ensure, poweroff, virt, Failure, Outcome};

/// The ChatML prompt of TOOLCHAIN.md, written as `ai --raw` takes it (`\n` expanded, special
/// tokens parsed): 21 tokens.
const GOLDEN_PROMPT: &str = "<|im_start|>user\\nWrite a C function that returns the larger of two integers.<|im_end|>\\n<|im_start|>assistant\\n";

/// candle's (and llama.cpp's) greedy continuation: tokens 4590 506 253 340 = "Here's a C".
const GOLDEN_TEXT: &str = "Here's a C";

/// Tokens generated for the comparison with the host engine.
const COMPARED_TOKENS: usize = 12;

/// Enough tokens that only Ctrl-C can end the interrupted run before the test sends it.
const INTERRUPTED_MAX_TOKENS: u32 = 200;

/// Generation is slow under TCG: allow for a loaded 2-core host.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn smollm2_greedy_matches_candle() -> Outcome {
    let mut config = virt()?;
    config.smp = 2;
    config.initrd = Some(artifacts::model()?);
    let mut qemu = boot(&config)?;
    let model = qemu.command("model")?;
    ensure!(
        qemu,
        model.contains("30 layers") && model.contains("Q4_1") && model.contains("KV cache"),
        "model should describe SmolLM2: {model}"
    );
    let reply = qemu.command_with_timeout(
        &format!("ai --raw --greedy --max-tokens {COMPARED_TOKENS} {GOLDEN_PROMPT}"),
        GENERATION_TIMEOUT,
    )?;
    ensure!(
        qemu,
        reply.starts_with(GOLDEN_TEXT),
        "greedy output should start with {GOLDEN_TEXT:?} (candle), got {reply:?}"
    );
    let host = host_run(&config, GOLDEN_PROMPT, COMPARED_TOKENS)?;
    ensure!(
        qemu,
        engine::generated_text(&reply) == host.text,
        "the kernel's text should equal the host engine's {host:?}: {reply:?}"
    );
    let stats: Vec<&str> = reply.lines().filter(|l| l.starts_with("[ai] ")).collect();
    ensure!(
        qemu,
        stats.len() == 1
            && stats[0].starts_with(&format!(
                "[ai] prompt_tokens=21 tokens={COMPARED_TOKENS} ttft_ms="
            )),
        "exactly one stats line with 21 prompt tokens and {COMPARED_TOKENS} tokens expected: {reply:?}"
    );
    ensure!(
        qemu,
        reply.trim_end().ends_with(stats[0].trim_end()),
        "the stats line must end the reply: {reply:?}"
    );
    let machine = qemu.command("ai-stats")?;
    ensure!(
        qemu,
        machine.contains("smp=2") && machine.contains("peak_mem_bytes="),
        "ai-stats should report the run: {machine}"
    );
    interrupt_keeps_typed_ahead_input(&mut qemu)?;
    poweroff(&mut qemu)
}

/// A command typed while `ai` generates neither stops it nor is lost; Ctrl-C stops it.
fn interrupt_keeps_typed_ahead_input(qemu: &mut integration::Qemu) -> Outcome {
    qemu.send_line(&format!(
        "ai --raw --greedy --max-tokens {INTERRUPTED_MAX_TOKENS} {GOLDEN_PROMPT}"
    ))?;
    // Typed ahead: arrives during the prompt, long before the generation could end.
    qemu.send_line("info")?;
    // Several tokens after the typed-ahead line arrived: it did not stop generation.
    qemu.wait_for(GOLDEN_TEXT, GENERATION_TIMEOUT)?;
    qemu.send_bytes(&[0x03])?;
    let stopped = qemu.wait_for("(stopped by Ctrl-C)", GENERATION_TIMEOUT)?;
    let stats = qemu.wait_for("tok_s=", GENERATION_TIMEOUT)?;
    ensure!(
        qemu,
        stats.contains("\n[ai] prompt_tokens=21 tokens="),
        "the stats line should follow the stop message: {stopped:?} then {stats:?}"
    );
    // The typed-ahead `info` runs next, then the shell prompts again.
    let info = qemu.wait_for("uptime:", GENERATION_TIMEOUT)?;
    ensure!(
        qemu,
        info.contains("anneal> info") && info.contains("board: qemu-virt"),
        "the typed-ahead line should run after the interrupted ai: {info:?}"
    );
    qemu.wait_for("anneal> ", GENERATION_TIMEOUT)?;
    let machine = qemu.command("ai-stats")?;
    ensure!(
        qemu,
        machine.contains("stop=interrupted"),
        "ai-stats should record the interruption: {machine}"
    );
    Ok(())
}

/// The host engine's greedy run for the model `config` boots with.
fn host_run(config: &QemuConfig, prompt: &str, tokens: usize) -> Result<Generation, Failure> {
    let path = config
        .initrd
        .as_ref()
        .ok_or_else(|| Failure::from("the configuration has no model"))?;
    let file = std::fs::read(path)?;
    Ok(engine::greedy_raw(&file, prompt, tokens)?)
}

/// A short prompt for the synthetic TinyLlama, so that CI stays short (one forward pass of
/// the 1.1B model is ~1.5 s on two emulated cores): BOS and four pieces of its vocabulary.
const TINYLLAMA_PROMPT: &str = "Hello";

/// Tokens generated with the synthetic TinyLlama.
const TINYLLAMA_TOKENS: usize = 3;

#[test]
fn synthetic_tinyllama_loads_in_place_and_generates_the_host_engines_text() -> Outcome {
    let mut config = virt()?;
    config.smp = 2;
    config.mem_mib = 2048;
    config.initrd = Some(artifacts::tinyllama()?);
    let mut qemu = boot(&config)?;
    let model = qemu.command("model")?;
    ensure!(
        qemu,
        model.contains("22 layers")
            && model.contains("dim 2048")
            && model.contains("Q4_K")
            && model.contains("Q6_K")
            && model.contains("not copied"),
        "model should describe the TinyLlama shapes, used in place: {model}"
    );
    let reply = qemu.command_with_timeout(
        &format!("ai --raw --greedy --max-tokens {TINYLLAMA_TOKENS} {TINYLLAMA_PROMPT}"),
        GENERATION_TIMEOUT,
    )?;
    let host = host_run(&config, TINYLLAMA_PROMPT, TINYLLAMA_TOKENS)?;
    ensure!(
        qemu,
        engine::generated_text(&reply) == host.text,
        "the kernel's text should equal the host engine's {host:?}: {reply:?}"
    );
    let stats = format!(
        "[ai] prompt_tokens={} tokens={TINYLLAMA_TOKENS} ",
        host.prompt_tokens
    );
    ensure!(
        qemu,
        reply.contains(&stats),
        "a stats line starting {stats:?} expected: {reply:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn truncated_model_boots_without_a_model() -> Outcome {
    let model = std::fs::read(artifacts::model()?)?;
    let truncated = std::env::temp_dir().join(format!(
        "anneal-truncated-model-{}.gguf",
        std::process::id()
    ));
    std::fs::write(&truncated, &model[..model.len() / 2])?;
    let mut config = virt()?;
    config.initrd = Some(truncated.clone());
    let booted = boot(&config);
    let _ = std::fs::remove_file(&truncated);
    let mut qemu = booted?;
    let log = qemu.transcript();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[model] error:"))
        .collect();
    ensure!(
        qemu,
        errors.len() == 1 && errors[0].contains("running without a model"),
        "one clear [model] error line expected"
    );
    let reply = qemu.command("ai hello")?;
    ensure!(
        qemu,
        reply.contains("no model is loaded"),
        "ai should say no model is loaded: {reply:?}"
    );
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == "qemu-virt",
        "the console should still work"
    );
    poweroff(&mut qemu)
}
