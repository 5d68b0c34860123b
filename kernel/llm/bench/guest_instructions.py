#!/usr/bin/env python3
"""Guest AArch64 instructions per forward pass, measured with qemu-aarch64 user mode.

QEMU's `-d nochain,exec,in_asm` logs every translated block (its instructions) and every
block execution; summing block sizes over executions counts the guest instructions exactly.
Two runs of the host bench built for aarch64-unknown-linux-gnu, with a prompt of P tokens
(default 1) and 0 or 1 generated tokens, differ by exactly one decode step (a single-token
forward pass at position P, output matrix included); the difference is printed per function.
Traces are large (~3 GB for SmolLM2); they go to /tmp and are deleted.

    cargo build --release -p llm --features std --example bench --target aarch64-unknown-linux-gnu
    python3 kernel/llm/bench/guest_instructions.py [--at P] [--base HEX] MODEL.gguf [BINARY]

Under `setarch -R` the load address is fixed; find it with
`qemu-aarch64 -d page BINARY 2>&1 | grep r-x` and pass it as --base.

(needs qemu-user, binutils-aarch64-linux-gnu, the aarch64 glibc under /usr/aarch64-linux-gnu).
The binary is loaded at 0x5500000000 by qemu-aarch64 7.2 for a PIE; pass --base otherwise.
"""
import bisect, collections, os, re, subprocess, sys

def run_trace(binary, model, prompt, gen, path):
    subprocess.run(['qemu-aarch64', '-cpu', 'cortex-a72', '-L', '/usr/aarch64-linux-gnu',
                    '-d', 'nochain,exec,in_asm', '-D', path, binary, model,
                    '--prompt', str(prompt), '--gen', str(gen), '--context', '64'],
                   check=True, stdout=subprocess.DEVNULL)

def per_block(path):
    size, per = {}, collections.Counter()
    trace = re.compile(r'^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/')
    pc, n, in_block = None, 0, False
    with open(path, errors='replace') as f:
        for line in f:
            if line.startswith('IN:'):
                in_block, pc, n = True, None, 0
                continue
            if in_block:
                if line.startswith('0x'):
                    if pc is None:
                        pc = int(line[2:line.index(':')], 16)
                    n += 1
                    continue
                if pc is not None:
                    size[pc] = n
                in_block = False
            m = trace.match(line)
            if m:
                b = int(m.group(1), 16)
                per[b] += size.get(b, 0)
    return per

def main():
    args = sys.argv[1:]
    base = 0x5500000000
    if '--base' in args:
        i = args.index('--base'); base = int(args[i + 1], 16); del args[i:i + 2]
    at = 1
    if '--at' in args:
        i = args.index('--at'); at = int(args[i + 1]); del args[i:i + 2]
    model = args[0]
    binary = args[1] if len(args) > 1 else 'target/llm/aarch64-unknown-linux-gnu/release/examples/bench'
    counts = []
    for n in (0, 1):
        path = f'/tmp/guest_insns_{os.getpid()}_{n}.log'
        try:
            run_trace(binary, model, at, n, path)
            counts.append(per_block(path))
        finally:
            if os.path.exists(path):
                os.remove(path)
    syms = []
    for line in subprocess.run(['aarch64-linux-gnu-nm', '-n', '-C', binary], capture_output=True,
                               text=True).stdout.splitlines():
        p = line.split(' ', 2)
        if len(p) == 3 and p[0] and p[1] in 'tTwW':
            syms.append((int(p[0], 16) + base, p[2]))
    addrs = [a for a, _ in syms]
    by_fn = collections.Counter()
    for pc in set(counts[0]) | set(counts[1]):
        i = bisect.bisect_right(addrs, pc) - 1
        by_fn[syms[i][1][:100] if i >= 0 else '?'] += counts[1].get(pc, 0) - counts[0].get(pc, 0)
    total = sum(by_fn.values())
    print(f'guest instructions per generated token (position {at}, one core): {total}')
    for name, c in by_fn.most_common(12):
        print(f'{c:>12} {100 * c / total:5.1f}%  {name}')

if __name__ == '__main__':
    main()
