#!/usr/bin/env bash
# Sets up, builds the CLI and runs the main job on the stories260K model from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target torchless_cli
model=../shared/models/stories260K.gguf
./build/release/torchless inspect "$model"
./build/release/torchless tokenize -m "$model" -p "Once upon a time, there was a little girl."
