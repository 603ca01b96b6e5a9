#!/usr/bin/env bash
# Fails when a C++ source differs from what clang-format (the checked-in .clang-format) makes
# of it. Fix with: git ls-files '*.cpp' '*.h' '*.mm' '*.cu' '*.cuh' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.mm' '*.cu' '*.cuh')
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check_format.sh: run: git ls-files '*.cpp' '*.h' '*.mm' '*.cu' '*.cuh' | xargs clang-format -i" >&2
  exit 1
fi
echo "check_format.sh: ${#files[@]} files formatted"
