#!/usr/bin/env bash
# For users with internet access: fetches the small models the README uses into ../shared/models
# (the project's tests read them from there). Needs curl.
set -euo pipefail
dest="$(cd "$(dirname "$0")/.." && pwd)/../shared/models"
mkdir -p "$dest"
base=https://huggingface.co
fetch() {
  [[ -f "$dest/$2" ]] && { echo "have $2"; return; }
  echo "fetching $2"
  curl -fL --retry 3 -o "$dest/$2.part" "$base/$1" && mv "$dest/$2.part" "$dest/$2"
}
fetch ggml-org/models/resolve/main/tinyllamas/stories260K.gguf stories260K.gguf
fetch karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin stories260K.bin
fetch karpathy/tinyllamas/resolve/main/stories260K/tok512.bin tok512.bin
