#!/usr/bin/env bash
# Sets up, builds the CLI and generates text with the stories260K model from ../shared/models.
# Usage: scripts/run.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target torchless_cli
model=../shared/models/stories260K.gguf
if [[ ! -f "$model" ]]; then
  echo "error: $model not found (scripts/download_models.sh fetches it where there is internet)" >&2
  exit 1
fi
./build/release/torchless generate -m "$model" -p "${1:-Once upon a time}" -n 128 --temp 0.8 --seed 42
