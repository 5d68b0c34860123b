#!/usr/bin/env bash
# Boots Anneal in QEMU (DESIGN interface 1): a thin wrapper around `cargo xtask run`.
#   ./qemu.sh [--board virt|rpi4] [--smp N] [--mem MB] [--model PATH|none] [--gdb]
#             [--gic 2|3] [--cpu NAME] [--loglevel LEVEL]
#   printf 'info\npoweroff\n' | ./qemu.sh      # piped console; exits with the kernel's status
# xtask builds what is needed (installing missing tools on a fresh Debian machine),
# prints the QEMU command line on stderr, and passes the kernel's exit status through.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# --model takes a path relative to where the user is; xtask runs from the workspace root.
args=()
expect_model=0
for arg in "$@"; do
    if [ "$expect_model" = 1 ] && [ -e "$arg" ]; then
        arg="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"
    elif [[ "$arg" == --model=* ]] && [ -e "${arg#--model=}" ]; then
        path="${arg#--model=}"
        arg="--model=$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
    fi
    expect_model=0
    [ "$arg" = "--model" ] && expect_model=1
    args+=("$arg")
done

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
    else
        cat >&2 <<'MSG'
qemu.sh: cargo is missing. Install Rust with rustup, then run ./qemu.sh again:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain none
    . "$HOME/.cargo/env"
(The pinned toolchain of rust-toolchain.toml and the kernel target are installed on first use.)
MSG
        exit 127
    fi
fi

cd "$root"
# `cargo xtask` is `cargo run --quiet --release --package xtask --` (.cargo/config.toml):
# xtask itself builds quietly; the kernel build and QEMU report on stderr.
exec cargo xtask run "${args[@]+"${args[@]}"}"
