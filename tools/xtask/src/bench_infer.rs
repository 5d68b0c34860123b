//! `cargo xtask bench infer [--model PATH] [--smp N] [--runs N] [--json]`: in-kernel inference
//! speed.
//!
//! For each core count (1, 2 and 4, or the one `--smp` names), `--runs` times (default
//! [`crate::limits::BENCH_INFER_RUNS`]; the median of each rate is reported), the kernel boots with the model
//! as initrd and runs the TOOLCHAIN.md ChatML prompt (21 tokens) with `ai --raw --greedy
//! --max-tokens 16`, then `ai-stats`, whose one machine-readable line gives the prompt time, the
//! time to first token, the decode steps and their time, and the peak memory (weights in place +
//! the kernel heap the model service grew to). Guest instructions per generated token come from
//! one more run under `-icount shift=0` on one core, where a guest nanosecond is one guest
//! instruction: `decode_ns / decode_steps`. Wall-clock figures depend on the host's load (TCG);
//! the instruction count does not.

use std::time::Duration;

use crate::args::Args;
use crate::bench::{boot_kernel, median, Report};
use crate::error::{Error, Result};
use crate::json::JsonLine;
use crate::run::MachineOptions;
use crate::{prereq, toolchain};

/// The prompt (as `ai --raw` takes it): 21 SmolLM2 tokens.
const PROMPT: &str = "<|im_start|>user\\nWrite a C function that returns the larger of two integers.<|im_end|>\\n<|im_start|>assistant\\n";

/// Tokens generated per run: enough decode steps for a stable rate, few enough for TCG.
const GENERATED_TOKENS: u32 = 16;

/// Bound on one generation under TCG on a loaded host.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(1200);

/// The figures of one `ai-stats` line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AiStats {
    pub model: String,
    pub prompt_tokens: u64,
    pub tokens: u64,
    pub prompt_ns: u64,
    pub ttft_ns: u64,
    pub decode_steps: u64,
    pub decode_ns: u64,
    pub peak_mem_bytes: u64,
}

/// Parses the `[ai-stats] key=value ...` line out of a reply.
pub fn parse_ai_stats(reply: &str) -> Option<AiStats> {
    let line = reply.lines().find(|l| l.starts_with("[ai-stats] "))?;
    let mut stats = AiStats::default();
    for pair in line.split_whitespace().skip(1) {
        let (key, value) = pair.split_once('=')?;
        let number = || value.parse::<u64>().ok();
        match key {
            "model" => stats.model = value.to_string(),
            "prompt_tokens" => stats.prompt_tokens = number()?,
            "tokens" => stats.tokens = number()?,
            "prompt_ns" => stats.prompt_ns = number()?,
            "ttft_ns" => stats.ttft_ns = number()?,
            "decode_steps" => stats.decode_steps = number()?,
            "decode_ns" => stats.decode_ns = number()?,
            "peak_mem_bytes" => stats.peak_mem_bytes = number()?,
            _ => {}
        }
    }
    Some(stats)
}

fn rate(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 * 1e9 / ns as f64
    }
}

fn measure(config: &integration::QemuConfig) -> Result<AiStats> {
    let (mut qemu, _) = boot_kernel(config)?;
    let qemu_error = |e: integration::HarnessError| Error::Qemu(e.to_string());
    qemu.command_with_timeout(
        &format!("ai --raw --greedy --max-tokens {GENERATED_TOKENS} {PROMPT}"),
        GENERATION_TIMEOUT,
    )
    .map_err(qemu_error)?;
    let reply = qemu.command("ai-stats").map_err(qemu_error)?;
    qemu.command_expecting_exit("poweroff", 0)
        .map_err(qemu_error)?;
    parse_ai_stats(&reply)
        .ok_or_else(|| Error::Qemu(format!("no [ai-stats] line in the reply: {reply}")))
}

/// Runs the bench (registered as `infer` in bench.rs).
pub fn run_infer(args: &mut Args, report: &mut Report) -> Result<()> {
    let runs = args
        .number("--runs")?
        .map_or(crate::limits::BENCH_INFER_RUNS, |n| n.max(1) as usize);
    let machine = MachineOptions::parse(args)?;
    args.finish()?;
    prereq::ensure_tools()?;
    let kernel = toolchain::build_kernel(machine.toolchain)?;
    let base = machine.config(&kernel.image)?;
    if base.initrd.is_none() {
        return Err(Error::Usage(
            "bench infer needs a model (--model PATH)".into(),
        ));
    }
    let mut icount = base.clone();
    icount.smp = 1;
    icount.icount_shift = Some(0);
    let counted = measure(&icount)?;
    let instructions_per_token = counted.decode_ns / counted.decode_steps.max(1);
    let instructions_per_prompt_token = counted.prompt_ns / counted.prompt_tokens.max(1);
    let core_counts: Vec<u32> = match machine.smp {
        Some(n) => vec![n],
        None => vec![1, 2, 4],
    };
    for smp in core_counts {
        let mut config = base.clone();
        config.smp = smp;
        let mut all = Vec::new();
        for _ in 0..runs {
            all.push(measure(&config)?);
        }
        let Some(stats) = all.first().cloned() else {
            continue;
        };
        let median_of = |value: &dyn Fn(&AiStats) -> f64| {
            let mut values: Vec<f64> = all.iter().map(value).collect();
            median(&mut values)
        };
        let prompt_tok_s = median_of(&|s| rate(s.prompt_tokens, s.prompt_ns));
        let gen_tok_s = median_of(&|s| rate(s.decode_steps, s.decode_ns));
        let ttft_ns = median_of(&|s| s.ttft_ns as f64) as u64;
        let peak_mem_bytes = all.iter().map(|s| s.peak_mem_bytes).max().unwrap_or(0);
        report.emit(
            JsonLine::new()
                .str("bench", "infer")
                .str("model", &stats.model)
                .int("smp", u64::from(smp))
                .num("prompt_tok_s", (prompt_tok_s * 1000.0).round() / 1000.0)
                .num("gen_tok_s", (gen_tok_s * 1000.0).round() / 1000.0)
                .int("ttft_ms", ttft_ns / 1_000_000)
                .int("instructions_per_token", instructions_per_token)
                .int("instructions_per_prompt_token", instructions_per_prompt_token)
                .int("peak_mem_bytes", peak_mem_bytes)
                .int("prompt_tokens", stats.prompt_tokens)
                .int("tokens", stats.tokens)
                .int("runs", runs as u64),
            &format!(
                "infer {} smp={smp} (median of {runs}): prompt {prompt_tok_s:.2} tok/s, generation {gen_tok_s:.2} tok/s, ttft {} ms, {:.1} M instructions/token (icount, 1 core), peak memory {:.1} MiB",
                stats.model,
                ttft_ns / 1_000_000,
                instructions_per_token as f64 / 1e6,
                peak_mem_bytes as f64 / (1024.0 * 1024.0)
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_stats_line() {
        let reply = "[ai-stats] model=Smollm2 smp=1 prompt_tokens=21 tokens=16 prompt_ns=2000 ttft_ns=2100 decode_steps=15 decode_ns=3000 peak_mem_bytes=146550944 stop=max_tokens\n";
        let stats = parse_ai_stats(reply).expect("parsed");
        assert_eq!(stats.model, "Smollm2");
        assert_eq!(stats.prompt_tokens, 21);
        assert_eq!(stats.decode_steps, 15);
        assert_eq!(stats.decode_ns, 3000);
        assert_eq!(stats.peak_mem_bytes, 146_550_944);
        assert_eq!(rate(15, 3000), 5e6);
    }

    #[test]
    fn rejects_replies_without_stats_or_with_bad_numbers() {
        assert_eq!(parse_ai_stats("ai-stats: no ai run yet"), None);
        assert_eq!(parse_ai_stats("[ai-stats] tokens=many"), None);
        assert_eq!(rate(3, 0), 0.0);
    }
}
