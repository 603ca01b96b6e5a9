#!/usr/bin/env bash
# Installs the build dependencies from the distribution (Debian/Ubuntu apt, or Homebrew on macOS).
set -euo pipefail
if [[ "$(uname)" == "Darwin" ]]; then
  brew install cmake ninja googletest google-benchmark highway cli11 nlohmann-json fmt pcre2 \
    libedit pkg-config clang-format curl openssl@3 cpp-httplib
  exit 0
fi
# libc++-dev and libc++abi-dev: the libc++ of the default clang, for the `libcxx` preset (CI)
# and the Objective-C++ syntax checks of tests/metal_objc;
# googletest: the GoogleTest sources that preset builds against libc++;
# libcurl4-openssl-dev and libssl-dev: the hub client (HTTP, SHA-256); libcpp-httplib-dev: the
# local HTTP server of the hub tests.
pkgs=(cmake ninja-build g++ pkg-config clang clang-14 clang-format clang-tidy
      libclang-rt-14-dev python3
      libgtest-dev libgmock-dev googletest libbenchmark-dev libhwy-dev libcli11-dev
      nlohmann-json3-dev libfmt-dev libpcre2-dev libedit-dev libc++-dev libc++abi-dev
      libcurl4-openssl-dev libssl-dev libcpp-httplib-dev)
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
