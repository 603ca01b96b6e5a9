#!/usr/bin/env bash
# Runs clang-tidy 14 (the checks in .clang-tidy) over the C++ translation units under src/ that
# a build compiles, with that build's compile_commands.json, and fails on any finding.
# Usage: scripts/check_tidy.sh [--changed [BASE]] [BUILD_DIR]
#   default:   every translation unit of src/ (what scripts/test.sh runs, after its `ci` build):
#              about 4.5 s of CPU a file, 131 files, so 4 to 5 minutes on two cores.
#   --changed: only the files changed since the merge base with BASE (default main), plus the
#              files that include a changed header directly: a quick check before a commit.
#   BUILD_DIR: the build whose compile commands to use (default build/ci, else build/dev, else
#              build/release); generated sources must exist, so build it first.
# Jobs: $TIDY_JOBS, else $CMAKE_BUILD_PARALLEL_LEVEL, else every core.
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [[ -z $tidy ]]; then
  echo "check_tidy.sh: clang-tidy-14 not found (apt install clang-tidy, or scripts/setup.sh)" >&2
  exit 2
fi

changed_base=""
if [[ ${1:-} == --changed ]]; then
  shift
  changed_base=main
  if [[ -n ${1:-} && ! -d ${1:-} ]]; then
    changed_base=$1
    shift
  fi
fi
db=${1:-}
if [[ -z $db ]]; then
  for d in build/ci build/dev build/release; do
    if [[ -f $d/compile_commands.json ]]; then db=$d; break; fi
  done
fi
if [[ -z $db || ! -f $db/compile_commands.json ]]; then
  echo "check_tidy.sh: no compile_commands.json in ${db:-build/ci, build/dev or build/release}:" \
       "configure and build first (cmake --preset ci && cmake --build --preset ci)" >&2
  exit 2
fi

# The translation units of src/ that the build compiles (not generated files, not Objective-C++,
# not CUDA), in a fixed order.
mapfile -t files < <(python3 - "$PWD" "$db/compile_commands.json" <<'PY'
import json, sys
root, db = sys.argv[1], sys.argv[2]
print("\n".join(sorted({e["file"] for e in json.load(open(db))
                        if e["file"].startswith(root + "/src/") and e["file"].endswith(".cpp")})))
PY
)

if [[ -n $changed_base ]]; then
  base=$(git merge-base HEAD "$changed_base")
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
if [[ ${#files[@]} -eq 0 || -z ${files[0]} ]]; then
  echo "check_tidy.sh: no files to check"
  exit 0
fi

jobs=${TIDY_JOBS:-${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}}
echo "check_tidy.sh: ${#files[@]} files, $jobs jobs, compile commands of $db"
# -Wno-unknown-warning-option: the database may hold g++'s flags. One file per call, so that the
# jobs stay balanced (files take 1 to 11 s). Only findings are shown, not clang-tidy's count of
# the warnings it suppressed in other code.
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 1 "$tidy" -p "$db" --quiet --extra-arg=-Wno-unknown-warning-option 2>&1 |
  { grep -v '^[0-9]* warnings\? generated\.$' || true; }
echo "check_tidy.sh: no findings"
