//! The inference service under QEMU: the kernel with the SmolLM2 initrd generates the same
//! first tokens as candle (golden text from the reference, TOOLCHAIN.md), and a truncated model
//! initrd boots with one clear message and a console that still works.
//!
//! Kept short for CI: a 21-token prompt and 4 generated tokens (one SmolLM2 token costs on the
//! order of 100M guest instructions under TCG).

use std::time::Duration;

use integration::{artifacts, Info};

use crate::{boot, ensure, poweroff, virt, Outcome};

/// The ChatML prompt of TOOLCHAIN.md, written as `ai --raw` takes it (`\n` expanded, special
/// tokens parsed): 21 tokens.
const GOLDEN_PROMPT: &str = "<|im_start|>user\\nWrite a C function that returns the larger of two integers.<|im_end|>\\n<|im_start|>assistant\\n";

/// candle's (and llama.cpp's) greedy continuation: tokens 4590 506 253 340 = "Here's a C".
const GOLDEN_TEXT: &str = "Here's a C";

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
        &format!("ai --raw --greedy --max-tokens 4 {GOLDEN_PROMPT}"),
        GENERATION_TIMEOUT,
    )?;
    ensure!(
        qemu,
        reply.starts_with(GOLDEN_TEXT),
        "greedy output should start with {GOLDEN_TEXT:?} (candle), got {reply:?}"
    );
    let stats: Vec<&str> = reply.lines().filter(|l| l.starts_with("[ai] ")).collect();
    ensure!(
        qemu,
        stats.len() == 1 && stats[0].starts_with("[ai] prompt_tokens=21 tokens=4 ttft_ms="),
        "exactly one stats line with 21 prompt tokens and 4 tokens expected: {reply:?}"
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
