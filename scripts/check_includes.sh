#!/usr/bin/env bash
# Fails when a C++ source uses an {fmt} feature without including the header that declares it in
# the {fmt} versions users build with. Debian's fmt 9 still declares these where the code worked,
# so the Linux build cannot see the mistake; Homebrew's fmt 11/12 (macOS) fails to compile it.
#   fmt::join                    <fmt/ranges.h>  (fmt 11 moved it out of <fmt/format.h>)
#   std::error_code formatted    <fmt/std.h>     (fmt 9 had its formatter in <fmt/os.h>; 10 moved it)
# Other std types (std::filesystem::path, std::optional, std::thread::id, ranges) already need
# <fmt/std.h> or <fmt/ranges.h> with fmt 9, so the Linux build catches those.
# Every file includes what it uses itself: a header that happens to include <fmt/ranges.h> does
# not count, since that is what broke here.
# Usage: scripts/check_includes.sh [FILE...]      (default: every tracked C++/ObjC++ source)
set -euo pipefail
cd "$(dirname "$0")/.."
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files '*.cpp' '*.cc' '*.h' '*.hpp' '*.mm')
fi

# uses FILE REGEX: FILE matches REGEX outside // comments (code, not prose about the code).
uses() { sed 's|//.*||' "$1" | grep -Eq "$2"; }
# includes FILE HEADER: FILE has #include <HEADER> or "HEADER".
includes() { grep -Eq "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]$2[>\"]" "$1"; }

failures=0
# need FILE REGEX HEADER WHY: reports FILE when it matches REGEX but does not include HEADER.
need() {
  if uses "$1" "$2" && ! includes "$1" "$3"; then
    echo "$1: $4 without #include <$3>" >&2
    failures=$((failures + 1))
  fi
}

# Only files that mention fmt at all are read again; one grep over the tree finds them.
mapfile -t candidates < <(grep -l -E 'fmt::|<fmt/' "${files[@]}" 2>/dev/null || true)
for f in "${candidates[@]}"; do
  need "$f" '\bfmt::join[[:space:]]*\(' fmt/ranges.h \
    'uses fmt::join (declared in <fmt/ranges.h> since fmt 11)'
  if includes "$f" fmt/os.h; then
    need "$f" '\berror_code\b' fmt/std.h \
      'names std::error_code next to <fmt/os.h> (fmt 10 moved its formatter to <fmt/std.h>)'
  fi
done

if ((failures)); then
  echo "check_includes.sh: ${failures} file(s) rely on where Debian's fmt 9 declares things;" \
       "add the #include named above (macOS/Homebrew builds with fmt 11+)" >&2
  exit 1
fi
echo "check_includes.sh: ${#files[@]} files include the fmt headers they use"
