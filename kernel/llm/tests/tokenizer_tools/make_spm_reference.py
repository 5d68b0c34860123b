#!/usr/bin/env python3
"""A Llama-2-style SentencePiece BPE vocabulary (byte fallback, identity normalisation, dummy
prefix) and reference ids for it, from the `sentencepiece` package (PyPI), for the
SentencePiece tokenizer tests. Trains a small BPE model on the project's own text (design notes
and sources), so no download is needed:

    /tmp/venv/bin/pip install sentencepiece
    /tmp/venv/bin/python kernel/llm/tests/tokenizer_tools/make_spm_reference.py

Writes kernel/llm/tests/tokenizer_data/spm_vocab.txt (one token per line: hex of the piece,
score, llama.cpp token type) and spm_reference.txt (hex of the text, TAB, ids; encoded with BOS
as Llama does).
"""
import glob
import io
import sentencepiece as spm

corpus = []
for pattern in ["/work/shared/*.md", "kernel/llm/src/**/*.rs", "extensions/ebpf/src/*.rs"]:
    for path in sorted(glob.glob(pattern, recursive=True)):
        with open(path, encoding="utf-8") as f:
            corpus.extend(line.rstrip("\n") for line in f if line.strip())
corpus.append("héllo wörld ñandú 日本語 テキスト русский текст 😀 🎉")

model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(corpus), model_writer=model, vocab_size=1200, model_type="bpe",
    byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=True,
    remove_extra_whitespaces=False, split_digits=True, character_coverage=0.9995,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
processor = spm.SentencePieceProcessor(model_proto=model.getvalue())


def token_type(i):
    # llama.cpp token types, as convert_hf_to_gguf derives them from sentencepiece.
    if processor.is_unknown(i):
        return 2
    if processor.is_control(i):
        return 3
    if processor.is_unused(i):
        return 5
    if processor.is_byte(i):
        return 6
    return 1


with open("kernel/llm/tests/tokenizer_data/spm_vocab.txt", "w") as f:
    for i in range(processor.get_piece_size()):
        piece = processor.id_to_piece(i)
        f.write(f"{piece.encode('utf-8').hex()}\t{processor.get_score(i)!r}\t{token_type(i)}\n")

CASES = [
    "Hello world",
    "The verifier proves that a program terminates.",
    "fn main() {\n    let x = 42;\n}\n",
    "  two leading spaces and a tab\there",
    "digits 0123456789 and 3.14159",
    "héllo wörld ñandú 日本語 テキスト",
    "emoji 😀 🎉 👍🏽 and rare 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "mov r0, 1\nldxw r0, [r1+4]\nexit\n",
    "trailing spaces   ",
    "a",
    "",
]
with open("kernel/llm/tests/tokenizer_data/spm_reference.txt", "w") as f:
    for text in CASES:
        ids = [processor.bos_id()] + processor.encode(text)
        f.write(text.encode("utf-8").hex() + "\t" + " ".join(map(str, ids)) + "\n")
