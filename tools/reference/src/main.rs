//! `reference --model FILE.gguf --prompt "1 4093 198" [--generate N] [--logits K]`
//!
//! Runs the prompt through candle (token by token) and generates N tokens greedily. Prints one
//! JSON object: `{"model": ..., "prompt": [...], "tokens": [...], "top_logits": [[[id, logit],
//! ...], ...]}` with the K largest logits of each step (K = 0 omits them; default 5), so golden
//! files stay small. Exit status 2 on usage errors, 1 on model errors.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

fn usage() -> ExitCode {
    eprintln!(
        "usage: reference --model FILE.gguf --prompt \"ID ID ...\" [--generate N] [--logits K]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut model: Option<PathBuf> = None;
    let mut prompt: Vec<u32> = Vec::new();
    let mut generate = 16usize;
    let mut top = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(v) = args.next() else { return usage() };
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(v)),
            "--prompt" => {
                match v
                    .split_whitespace()
                    .map(str::parse::<u32>)
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(p) => prompt = p,
                    Err(e) => {
                        eprintln!("bad --prompt: {e}");
                        return usage();
                    }
                }
            }
            "--generate" => match v.parse() {
                Ok(n) => generate = n,
                Err(_) => return usage(),
            },
            "--logits" => match v.parse() {
                Ok(n) => top = n,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let (Some(model), false) = (model, prompt.is_empty()) else {
        return usage();
    };
    let run = reference::Reference::load(&model).and_then(|mut r| r.greedy(&prompt, generate));
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let top_logits: Vec<Vec<(usize, f32)>> = run
        .logits
        .iter()
        .map(|l| {
            let mut idx: Vec<usize> = (0..l.len()).collect();
            idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
            idx.into_iter().take(top).map(|i| (i, l[i])).collect()
        })
        .collect();
    let out = json!({
        "model": model.display().to_string(),
        "prompt": prompt,
        "tokens": run.tokens,
        "top_logits": if top > 0 { json!(top_logits) } else { json!(null) },
    });
    println!("{out}");
    ExitCode::SUCCESS
}
