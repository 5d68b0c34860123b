#!/usr/bin/env python3
"""Writes kernel/llm/src/tokenizer/unicode_tables.rs: the \\p{L} and \\p{N} code-point ranges the
GPT-2 pre-tokenizer needs, from this Python's unicodedata. Run from the repository root."""
import sys
import unicodedata


def ranges(predicate):
    out, start = [], None
    for code in range(0x110000):
        ok = predicate(code)
        if ok and start is None:
            start = code
        if not ok and start is not None:
            out.append((start, code - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def emit(name, table, doc):
    text = f"/// {doc}\npub(crate) static {name}: &[(u32, u32)] = &[\n"
    line = "   "
    for low, high in table:
        item = f" (0x{low:X}, 0x{high:X}),"
        if len(line) + len(item) > 99:
            text += line + "\n"
            line = "   "
        line += item
    return text + line + "\n];\n"


letters = ranges(lambda c: unicodedata.category(chr(c)).startswith("L"))
numbers = ranges(lambda c: unicodedata.category(chr(c)).startswith("N"))
header = f"""//! Unicode general-category tables the pre-tokenizer needs: `\\p{{L}}` (letters) and `\\p{{N}}`
//! (numbers), as sorted inclusive code-point ranges searched by binary search.
//!
//! Generated from Python {sys.version.split()[0]}'s `unicodedata` (Unicode {unicodedata.unidata_version}) by
//! kernel/llm/tests/tokenizer_tools/gen_unicode_tables.py (categories Lu Ll Lt Lm Lo and Nd Nl No). A compact
//! table (~{(len(letters) + len(numbers)) * 8 // 1024} KiB) rather than `char::is_alphabetic`, which is the wider
//! Alphabetic property (it includes combining marks and Nl) and would split words differently
//! from the reference tokenizer.

"""
with open("kernel/llm/src/tokenizer/unicode_tables.rs", "w") as f:
    f.write(header + emit("LETTER_RANGES", letters, "Code points of general category L (letters).")
            + "\n" + emit("NUMBER_RANGES", numbers, "Code points of general category N (numbers)."))
