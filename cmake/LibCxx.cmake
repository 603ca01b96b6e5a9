# TORCHLESS_LIBCXX: build against LLVM's libc++ (the standard library of macOS) instead of
# libstdc++, so that Linux CI catches code that only libstdc++ accepts (a missing #include that
# libstdc++ pulls in transitively, an extension, a library feature libc++ lacks). The `libcxx`
# preset sets it; on macOS libc++ is already the default and this option is not needed.
#
# Every C++ library linked into the build must use the same standard library, and Debian builds
# its packages against libstdc++. So, with TORCHLESS_LIBCXX:
# - {fmt} is used header-only (fmt::fmt-header-only), not libfmt.so;
# - GoogleTest is built from the sources Debian ships in /usr/src/googletest (libgtest-dev);
# - CLI11, nlohmann_json (header-only) and PCRE2 (C) need nothing;
# - Highway's libhwy.so stays: its exported functions (hwy::SupportedTargets, GetChosenTarget,
#   Abort, AllocateAlignedBytes, ...) take and return only builtin and hwy types, so no libc++
#   object ever crosses into libstdc++ code; libhwy.so brings libstdc++.so.6 into the process,
#   whose symbols live in another namespace (std:: versus libc++'s std::__1::);
# - Google Benchmark (libbenchmark.so, whose API passes std::string) is refused.
# Sets TORCHLESS_FMT_TARGET: the {fmt} target to link.
include_guard(GLOBAL)

option(TORCHLESS_LIBCXX "Build with libc++ (clang) instead of libstdc++" OFF)
set(TORCHLESS_GTEST_SOURCE_DIR "/usr/src/googletest" CACHE PATH
    "GoogleTest sources, built in-tree when TORCHLESS_LIBCXX is ON")

set(TORCHLESS_FMT_TARGET fmt::fmt)
if(NOT TORCHLESS_LIBCXX)
  return()
endif()

if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TORCHLESS_LIBCXX needs clang (configure with the 'libcxx' preset)")
endif()
if(TORCHLESS_BUILD_BENCH)
  message(FATAL_ERROR "TORCHLESS_LIBCXX: Google Benchmark is built against libstdc++ here; "
                      "configure with -DTORCHLESS_BUILD_BENCH=OFF")
endif()
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-stdlib=libc++>)
add_link_options($<$<LINK_LANGUAGE:CXX>:-stdlib=libc++>)
set(TORCHLESS_FMT_TARGET fmt::fmt-header-only)

if(TORCHLESS_BUILD_TESTS)
  if(NOT EXISTS "${TORCHLESS_GTEST_SOURCE_DIR}/CMakeLists.txt")
    message(FATAL_ERROR "TORCHLESS_LIBCXX: no GoogleTest sources in "
                        "${TORCHLESS_GTEST_SOURCE_DIR} (Debian: libgtest-dev); set "
                        "TORCHLESS_GTEST_SOURCE_DIR")
  endif()
  set(BUILD_GMOCK ON CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  # Defines GTest::gtest, GTest::gtest_main and GTest::gmock, which tests/ links.
  add_subdirectory("${TORCHLESS_GTEST_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/googletest" EXCLUDE_FROM_ALL)
endif()
