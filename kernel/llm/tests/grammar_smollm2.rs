//! Grammar-constrained decoding on the real SmolLM2 vocabulary (49 152 tokens): the mask allows
//! exactly the tokens that keep the output a valid prefix (checked token by token against the
//! byte recogniser at many states), real programs tokenized by the model's own tokenizer pass
//! the mask at every step, and the end token is allowed only when the program is complete.
//! The model file must be present (xtask fetches it): a missing file fails, it is never skipped.

use std::sync::Arc;

use llm::grammar::{Grammar, GrammarState, VocabTrie, EBPF_ASM, WAT};
use llm::sample::TokenMask;
use llm::tokenizer::Tokenizer;
use llm::Gguf;

fn model_bytes() -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "the default model is required at {} ({error}); run `cargo xtask` to fetch it \
             (models/ has the fetch command)",
            path.display()
        )
    })
}

const EBPF_PROGRAM: &str = "# larger of two words\nldxw r2, [r1]\nldxw r3, [r1+4]\nmov r0, r2\njge r2, r3, done\nmov r0, r3\ndone:\nexit\n";
const WAT_MODULE: &str = "(module\n  (func $max (export \"max\") (param $a i32) (param $b i32) (result i32)\n    local.get $a\n    local.get $b\n    i32.gt_s\n    if (result i32)\n      local.get $a\n    else\n      local.get $b\n    end))\n";

/// Walk `program` token by token (as the model's tokenizer splits it): at every step the real
/// next token must be allowed; at `check_every`-th steps every token's verdict is compared with
/// the recogniser.
fn walk(tokenizer: &Tokenizer, trie: &VocabTrie, grammar: &str, program: &str, check_every: usize) {
    let grammar = Arc::new(Grammar::parse(grammar).expect("grammar parses"));
    let mut state = GrammarState::new(grammar).unwrap();
    let mut mask = TokenMask::new_block_all(tokenizer.vocab_size());
    let ids = tokenizer.encode(program, false, false).unwrap();
    let eos = tokenizer.eos().unwrap();
    for (step, &id) in ids.iter().enumerate() {
        state.mask(trie, &mut mask).unwrap();
        assert!(
            mask.is_allowed(id),
            "step {step}: token {id} ({:?}) blocked",
            tokenizer.token_text(id)
        );
        assert_eq!(
            mask.is_allowed(eos),
            state.is_complete(),
            "step {step}: EOS iff complete"
        );
        if step % check_every == 0 {
            let mut probe = state.clone();
            let mut allowed = 0;
            for token in 0..tokenizer.vocab_size() as u32 {
                let valid = match trie.token_bytes(token) {
                    Some(bytes) if !bytes.is_empty() && !trie.is_end_token(token) => {
                        tokenizer.token_type(token) != Some(llm::tokenizer::TokenType::Control)
                            && probe.allows_bytes(bytes)
                    }
                    _ => false,
                };
                assert_eq!(
                    mask.is_allowed(token),
                    valid,
                    "step {step}: token {token} ({:?})",
                    tokenizer.token_text(token)
                );
                allowed += valid as usize;
            }
            assert!(allowed > 0, "step {step}: nothing allowed");
        }
        state.accept_token(trie, id).unwrap();
    }
    state.mask(trie, &mut mask).unwrap();
    assert!(
        mask.is_allowed(eos),
        "EOS allowed once the program is complete"
    );
    state.accept_token(trie, eos).unwrap();
}

#[test]
fn masks_are_exact_on_the_smollm2_vocabulary() {
    let file = model_bytes();
    let gguf = Gguf::parse(&file).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let trie = tokenizer.vocab_trie();
    assert_eq!(trie.vocab_size(), 49152);
    assert_eq!(trie.end_tokens(), &[2]);
    walk(&tokenizer, &trie, EBPF_ASM, EBPF_PROGRAM, 4);
    walk(&tokenizer, &trie, WAT, WAT_MODULE, 10);
}
