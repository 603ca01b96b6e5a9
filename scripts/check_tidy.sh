#!/usr/bin/env bash
# Runs clang-tidy 14 (the checks in .clang-tidy) over the C++ sources under src/, with the
# compile commands of build/release (configure it first: cmake --preset release). Fails on any
# finding. Usage: scripts/check_tidy.sh [--all | BASE]
#   default: only the .cpp files under src/ changed since the merge base with BASE (default
#            main), plus those that include a changed header directly; about
#            30 s a file on a busy 2-core machine, so all 87 files take far longer than CI allows.
#   --all:   every file.
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [[ -z $tidy ]]; then
  echo "check_tidy.sh: clang-tidy-14 not found (apt install clang-tidy, or scripts/setup.sh)" >&2
  exit 2
fi
db=build/release
if [[ ! -f $db/compile_commands.json ]]; then
  echo "check_tidy.sh: no $db/compile_commands.json: run cmake --preset release first" >&2
  exit 2
fi

# The translation units of src/ that the build compiles (not generated files, not Objective-C++).
mapfile -t files < <(python3 - "$PWD" "$db/compile_commands.json" <<'PY'
import json, sys
root, db = sys.argv[1], sys.argv[2]
seen = set()
for entry in json.load(open(db)):
    path = entry["file"]
    if path.startswith(root + "/src/") and path.endswith(".cpp") and path not in seen:
        seen.add(path)
        print(path)
PY
)

if [[ ${1:-} != --all ]]; then
  base=$(git merge-base HEAD "${1:-main}")
  mapfile -t changed < <(git diff --name-only "$base" -- src; git ls-files --others --exclude-standard src)
  mapfile -t files < <(for f in "${files[@]}"; do
    rel=${f#"$PWD"/}
    for c in "${changed[@]}"; do
      # the file itself, or a file that includes a changed header
      if [[ $c == "$rel" ]] || { [[ $c == *.h ]] && grep -qF "\"${c#src/}\"" "$f"; }; then
        echo "$f"
        break
      fi
    done
  done)
fi
if [[ ${#files[@]} -eq 0 ]]; then
  echo "check_tidy.sh: no files to check"
  exit 0
fi

echo "check_tidy.sh: ${#files[@]} files"
# -Wno-unknown-warning-option: the database holds g++'s flags.
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 4 "$tidy" -p "$db" --quiet --extra-arg=-Wno-unknown-warning-option
echo "check_tidy.sh: no findings"
