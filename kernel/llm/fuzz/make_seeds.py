#!/usr/bin/env python3
"""Writes small valid GGUF seeds for the gguf_parse fuzz target into seeds/ (a 1-layer F32
Llama that loads and runs, and a metadata-only file with every value type). Run from this
directory: python3 make_seeds.py"""
import os
import struct

def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b

def kv(key, vtype, payload):
    return s(key) + struct.pack('<I', vtype) + payload

def gguf(kvs, tensors, align=32):
    out = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs)
    offset, datas = 0, []
    for name, dims, data in tensors:
        out += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        out += struct.pack('<IQ', 0, offset)  # F32
        datas.append((offset, data))
        offset = (offset + len(data) + align - 1) // align * align
    out += b'\0' * (-len(out) % align)
    start = len(out)
    for off, data in datas:
        out += b'\0' * (start + off - len(out)) + data
    return out

def f32s(n, v):
    return struct.pack('<%df' % n, *([v] * n))

dim, ffn, vocab, kvd = 32, 32, 4, 16
u32 = lambda k, v: kv(k, 4, struct.pack('<I', v))
meta = [
    kv('general.architecture', 8, s('llama')),
    u32('llama.embedding_length', dim), u32('llama.block_count', 1),
    u32('llama.attention.head_count', 2), u32('llama.attention.head_count_kv', 1),
    u32('llama.feed_forward_length', ffn),
    kv('llama.rope.freq_base', 6, struct.pack('<f', 10000.0)),
    kv('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, 4) + b''.join(s(t) for t in ['a', 'b', 'c', 'd'])),
    kv('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 4) + f32s(4, 0.5)),
]
t = lambda name, rows, cols: (name, [cols, rows] if rows > 1 else [cols], f32s(rows * cols, 0.01))
tensors = [t('token_embd.weight', vocab, dim), t('blk.0.attn_norm.weight', 1, dim),
           t('blk.0.attn_q.weight', dim, dim), t('blk.0.attn_k.weight', kvd, dim),
           t('blk.0.attn_v.weight', kvd, dim), t('blk.0.attn_output.weight', dim, dim),
           t('blk.0.ffn_norm.weight', 1, dim), t('blk.0.ffn_gate.weight', ffn, dim),
           t('blk.0.ffn_up.weight', ffn, dim), t('blk.0.ffn_down.weight', dim, ffn),
           t('output_norm.weight', 1, dim)]
os.makedirs('seeds', exist_ok=True)
open('seeds/tiny_llama_f32.bin', 'wb').write(gguf(meta, tensors))
every = [kv('u8', 0, b'\x01'), kv('i8', 1, b'\xff'), kv('u16', 2, b'\x01\x00'), kv('i16', 3, b'\xff\xff'),
         u32('u32', 7), kv('i32', 5, b'\xff\xff\xff\xff'), kv('f32', 6, struct.pack('<f', 1.5)),
         kv('bool', 7, b'\x01'), kv('str', 8, s('hello')), kv('u64', 10, struct.pack('<Q', 9)),
         kv('i64', 11, struct.pack('<q', -9)), kv('f64', 12, struct.pack('<d', 2.5)),
         kv('general.alignment', 4, struct.pack('<I', 64)),
         kv('arr_i32', 9, struct.pack('<IQ', 5, 2) + struct.pack('<ii', 1, -1))]
open('seeds/every_value_type.bin', 'wb').write(gguf(every, [('x', [4], f32s(4, 1.0))], align=64))
