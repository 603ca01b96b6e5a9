#!/usr/bin/env bash
# Installs the build dependencies from the distribution (Debian/Ubuntu apt, or Homebrew on macOS).
set -euo pipefail
if [[ "$(uname)" == "Darwin" ]]; then
  brew install cmake ninja googletest google-benchmark highway cli11 nlohmann-json fmt pcre2 \
    libedit pkg-config clang-format cpp-httplib node curl openssl@3
  exit 0
fi
# libc++-dev and libc++abi-dev: the libc++ of the default clang, for the `libcxx` preset (CI)
# and the Objective-C++ syntax checks of tests/metal_objc;
# googletest: the GoogleTest sources that preset builds against libc++;
# libcpp-httplib-dev: the HTTP layer of `torchless serve`; nodejs (with npm): the server tests
# drive it with the official openai npm client, installed into the build directory by ctest.
# libcurl4-openssl-dev and libssl-dev: the hub client (HTTP, SHA-256); libcpp-httplib-dev also
# serves the hub tests' local HTTP server.
pkgs=(cmake ninja-build g++ pkg-config clang clang-14 clang-format clang-tidy
      libclang-rt-14-dev python3
      libgtest-dev libgmock-dev googletest libbenchmark-dev libhwy-dev libcli11-dev
      nlohmann-json3-dev libfmt-dev libpcre2-dev libedit-dev libc++-dev libc++abi-dev
      libcpp-httplib-dev nodejs libcurl4-openssl-dev libssl-dev)
# Debian packages npm apart; NodeSource's nodejs bundles it (and conflicts with Debian's npm).
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
