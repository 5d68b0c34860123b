#!/usr/bin/env python3
"""Reference ids for the synthetic TinyLlama vocabulary of tools/gguf_synth (`vocabulary(32000)`),
from the `sentencepiece` package: the same pieces, scores and types are put into a SentencePiece
BPE model (byte fallback, identity normalisation, dummy prefix, as Llama 2's tokenizer.model) and
the texts below are encoded with BOS.

    /tmp/venv/bin/pip install sentencepiece protobuf
    /tmp/venv/bin/python kernel/llm/tests/tokenizer_tools/make_synth_reference.py \
        > kernel/llm/tests/tokenizer_data/synth_tinyllama_reference.txt

The vocabulary is rebuilt here by the same rules as gguf_synth's `vocabulary` (the Rust test
checks it is the same by comparing sizes, pieces at sample ids and the ids themselves).
"""
import string

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2


def vocabulary(size):
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(6)
    pieces = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]
    letters = string.ascii_lowercase
    pieces += ["\u2581" + a for a in letters]
    for a in letters:
        for b in letters:
            pieces += [a + b, "\u2581" + a + b]
    done = False
    for a in letters:
        for b in letters:
            for c in letters:
                pieces += ["\u2581" + a + b + c, a + b + c]
                if len(tokens) + len(pieces) >= size:
                    done = True
                    break
            if done:
                break
        if done:
            break
    for p in pieces[: max(0, size - len(tokens))]:
        tokens.append(p)
        types.append(1)
    scores = [-float(i) if types[i] == 1 else 0.0 for i in range(len(tokens))]
    return tokens, scores, types


tokens, scores, types = vocabulary(32000)
model = model_pb2.ModelProto()
model.trainer_spec.model_type = model_pb2.TrainerSpec.BPE
model.trainer_spec.vocab_size = len(tokens)
model.trainer_spec.byte_fallback = True
model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
model.trainer_spec.pad_id = -1
model.normalizer_spec.name = "identity"
model.normalizer_spec.add_dummy_prefix = True
model.normalizer_spec.remove_extra_whitespaces = False
model.normalizer_spec.escape_whitespaces = True
for piece, score, kind in zip(tokens, scores, types):
    entry = model.pieces.add()
    entry.piece, entry.score, entry.type = piece, score, kind
processor = spm.SentencePieceProcessor(model_proto=model.SerializeToString())

CASES = [
    "Hello world",
    "<|user|>\nWrite a C function that returns the larger of two integers.",
    "int max(int a, int b) {\n    return a > b ? a : b;\n}\n",
    "the quick brown fox jumps over the lazy dog",
    "  spaces   and\ttabs  ",
    "héllo wörld 日本語 😀",
    "0123456789 + 3.14",
    "mov r0, 1\nexit\n",
    "",
]
print(f"vocab\t{len(tokens)}\t{tokens[300].encode().hex()}\t{tokens[31999].encode().hex()}")
for text in CASES:
    ids = [processor.bos_id()] + processor.encode(text)
    print(text.encode("utf-8").hex() + "\t" + " ".join(map(str, ids)))
