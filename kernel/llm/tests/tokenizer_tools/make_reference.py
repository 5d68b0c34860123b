#!/usr/bin/env python3
"""Reference token ids for the SmolLM2 tokenizer, from Hugging Face `tokenizers` (PyPI) built
from the GGUF file's own vocabulary and merges (no hub download):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tokenizers gguf
    /tmp/venv/bin/python kernel/llm/tests/tokenizer_tools/make_reference.py \
        models/cache/SmolLM2-135M-Instruct.Q4_1.gguf > kernel/llm/tests/tokenizer_data/smollm2_reference.txt

The pre-tokenizer is SmolLM2's (tokenizer.json): Digits(individual_digits) then ByteLevel
without prefix space; control tokens are added as special tokens, so they are parsed as whole
strings (the engine's parse_special = true). Output: one line per case,
`<hex of the UTF-8 text> <TAB> <ids separated by spaces>`.
"""
import sys

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

reader = gguf.GGUFReader(sys.argv[1])
tokens = reader.fields["tokenizer.ggml.tokens"].contents()
merges = reader.fields["tokenizer.ggml.merges"].contents()
types = reader.fields["tokenizer.ggml.token_type"].contents()

vocab = {token: index for index, token in enumerate(tokens)}
merge_pairs = [tuple(m.split(" ", 1)) for m in merges]
tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merge_pairs))
tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
])
tokenizer.decoder = decoders.ByteLevel()
tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                              for t, kind in zip(tokens, types) if kind == 3])

CASES = [
    "<|im_start|>user\nWrite a C function that returns the larger of two integers.<|im_end|>\n<|im_start|>assistant\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "int max(int a, int b) {\n    return a > b ? a : b;\n}\n",
    "#include <stdint.h>\n\nuint64_t x = 0xDEADBEEF; // 3735928559\n",
    "mov r0, 1\nldxw r0, [r1+4]\njeq r1, 0, +2\ncall 1\nexit\n",
    "(module (func $f (param $a i32) (result i32) local.get $a i32.const 42 i32.add))",
    "Numbers: 0 7 42 1234567890 3.14159 -12e5 1,000,000 ٣٤٥ ½ Ⅻ",
    "Unicode: héllo wörld ñandú 日本語のテキスト 한국어 Ελληνικά русский עברית العربية",
    "Emoji: 😀 🎉👍🏽 👨‍👩‍👧 ❤️ 🇫🇷",
    "Whitespace:  two   three    four\t\ttabs\n\n\nnewlines \n mixed \t\n end   ",
    "   leading spaces and trailing   ",
    "don't won't I'm you're we've they'll he'd IT'S DON'T",
    "Punctuation!!! ??? ... --- *** ((())) [[]] {{}} <<>> @#$%^&",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "a<|im_end|>b<|endoftext|>c<repo_name>d",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "https://example.com/path?query=1&x=y#frag user@example.org",
    "\u00a0non-breaking\u2003em-space\u3000ideographic",
    "x" * 300,
    "\r\n\r\nwindows\r\nlines",
    "",
]

for text in CASES:
    ids = tokenizer.encode(text).ids
    print(text.encode("utf-8").hex() + "\t" + " ".join(str(i) for i in ids))
