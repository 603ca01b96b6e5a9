#!/bin/sh
# Installs the pinned openai client (package-lock.json) into DIR/node_modules, the build
# directory's, never the repository's; nothing to do when that lock is installed already.
# Usage: install.sh DIR
set -eu
src=$(cd "$(dirname "$0")" && pwd)
dir=$1
mkdir -p "$dir"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -d "$dir/node_modules/openai" ]; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
cd "$dir"
npm ci --no-audit --no-fund
