# Tests of the Apple Metal device layer that run on any host (label `metal`):
# - metal_objc.syntax.<arch>.macos<target>.sdk<sdk> (labels metal, metal-objc): on non-Apple
#   hosts, clang compiles each src/torchless/backends/metal/apple/*.mm as Apple's
#   clang would (-target <arch>-apple-macos<deployment target>, Apple Objective-C runtime, ARC,
#   -fsyntax-only, -Werror=deprecated-declarations -Werror=unguarded-availability-new) against
#   apple_sdk_decls.h, our declarations of exactly the Foundation/Metal API it uses with
#   Apple's availability, as the SDK <sdk> declares them (__MAC_OS_X_VERSION_MAX_ALLOWED). A
#   misspelt selector, a wrong argument type, an ARC violation, newer API without @available,
#   API an older SDK lacks, or API deprecated for a supported deployment target fails CI
#   although nobody here has a Mac. Every deployment target the backend supports (macOS 13,
#   14, 15, 26, 27) and every SDK (Xcode 14 to 27) appears at least once, both architectures
#   (x86_64 only up to macOS 26: macOS 27 dropped Intel Macs);
# - metal_objc.rejects_*: the same command on probe files with planted mistakes, proving that
#   the check would catch them (it must not silently accept everything);
# - metal_selftest.*: the `torchless metal-selftest` command, on the GPU and emulated;
# - metal_objc_tests: GoogleTest cases (the memory plan check, and the real-device tests, which
#   skip with a message where MetalBackend::is_available() is false).
# Included from tests/metal_tests.cmake.
set(_objc_dir ${CMAKE_CURRENT_LIST_DIR})

torchless_add_test_dir(metal_objc LABELS metal)

# `torchless metal-selftest`: on the real GPU (exit 2, reported as skipped, where there is none)
# and through the emulator.
add_test(NAME metal_selftest.device COMMAND torchless_cli metal-selftest)
set_tests_properties(metal_selftest.device PROPERTIES LABELS metal SKIP_RETURN_CODE 2)
if(TORCHLESS_METAL_EMULATOR)
  add_test(NAME metal_selftest.emulated COMMAND torchless_cli metal-selftest --emulated)
  # The exit status alone would pass a self-test that found no kernels to compile: require the
  # probes and a compiled pipeline in the output, and no failed check.
  set_tests_properties(metal_selftest.emulated PROPERTIES LABELS metal
    PASS_REGULAR_EXPRESSION "assumption: simdgroup_load.s origin is \\(column, row\\) +pass.*pipeline matmul_q4_0_kernel +pass.*checks passed"
    FAIL_REGULAR_EXPRESSION "FAIL")
  # --compile-only: the library and every pipeline, nothing run.
  add_test(NAME metal_selftest.compile_only_emulated
           COMMAND torchless_cli metal-selftest --compile-only --emulated)
  set_tests_properties(metal_selftest.compile_only_emulated PROPERTIES LABELS metal
    PASS_REGULAR_EXPRESSION "library: compiled.*pipeline matmul_q4_0_kernel +pass.*pipeline softmax_kernel +pass.*[1-9][0-9]* pipelines compiled, 0 failed"
    FAIL_REGULAR_EXPRESSION "FAIL")
endif()
# On a Mac without a usable GPU (CI's virtual machines) this compiles through Apple's
# compiler; elsewhere it reports exit 2 (skipped).
add_test(NAME metal_selftest.compile_only_device
         COMMAND torchless_cli metal-selftest --compile-only)
set_tests_properties(metal_selftest.compile_only_device PROPERTIES LABELS metal
                     SKIP_RETURN_CODE 2)

# The syntax checks run clang, not our code: a sanitizer build (scripts/test_asan.sh) would only
# repeat them.
if(NOT APPLE AND NOT TORCHLESS_SANITIZE)
  find_program(TORCHLESS_OBJC_CLANG NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16
                                          clang++-15 clang++-14)
  if(NOT TORCHLESS_OBJC_CLANG)
    message(STATUS "clang++ not found: the Objective-C++ syntax check of the Metal layer is off")
    return()
  endif()
  set(_objc_includes -I${PROJECT_SOURCE_DIR}/src)
  # -idirafter: a dependency installed in /usr/include must not shadow the C library headers.
  foreach(_dep fmt::fmt)
    get_target_property(_dirs ${_dep} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs)
      foreach(_dir IN LISTS _dirs)
        list(APPEND _objc_includes -idirafter ${_dir})
      endforeach()
    endif()
  endforeach()
  # Apple's C++ library is libc++; Linux's libc++ (libc++-dev) and glibc headers stand in for
  # Apple's, with the Darwin predefinitions that select Apple's C library undone (the check is
  # about the Metal and Foundation API). glibc_for_darwin/ fixes the word size for arm64.
  set(_libc_multiarch /usr/include)
  if(CMAKE_LIBRARY_ARCHITECTURE)
    set(_libc_multiarch /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  set(_objc_host_libc -stdlib=libc++ -U__APPLE__ -U__MACH__ -D__linux__ -D__gnu_linux__
      -D__unix__ -D_GNU_SOURCE -U__nonnull -U__nullable -U__null_unspecified
      -idirafter /usr/include -idirafter ${_objc_dir}/glibc_for_darwin -idirafter ${_libc_multiarch})
  set(_objc_flags -fsyntax-only -x objective-c++ -fobjc-arc -fobjc-runtime=macosx -fblocks
                  -std=c++20 -Wall -Wextra -Werror -Werror=deprecated-declarations
                  -Werror=unguarded-availability-new ${_objc_host_libc}
                  -include ${_objc_dir}/apple_sdk_decls.h ${_objc_includes})
  # Every .mm of the Apple layer, each checked alone as the compiler sees it.
  file(GLOB _layer_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/torchless/backends/metal/apple/*.mm)
  list(SORT _layer_files)

  # Without libc++'s headers the check cannot compile the C++ parts: say so in a failing test
  # rather than silently checking nothing.
  execute_process(
    COMMAND ${TORCHLESS_OBJC_CLANG} -target arm64-apple-macos13 ${_objc_host_libc}
            -fsyntax-only -x objective-c++ -std=c++20 -
    INPUT_FILE ${_objc_dir}/libcxx_probe.mm RESULT_VARIABLE _libcxx_missing
    OUTPUT_QUIET ERROR_VARIABLE _libcxx_error)
  if(_libcxx_missing)
    add_test(NAME metal_objc.toolchain
             COMMAND ${CMAKE_COMMAND} -E echo
                     "the Objective-C++ syntax check needs libc++'s headers (apt install libc++-dev): ${_libcxx_error}")
    set_tests_properties(metal_objc.toolchain PROPERTIES LABELS "metal;metal-objc"
                         PASS_REGULAR_EXPRESSION "^$")
    return()
  endif()

  # (architecture, deployment target, SDK): each deployment target and each SDK once with the
  # other, both architectures, and the oldest target with the newest SDK (x86_64: its code is a
  # superset of arm64's). About 3 s each on an idle core.
  foreach(_combo arm64:13:13 x86_64:14:14 arm64:15:15 x86_64:26:26 arm64:27:27 x86_64:13:27)
    string(REPLACE ":" ";" _parts ${_combo})
    list(GET _parts 0 _arch)
    list(GET _parts 1 _target)
    list(GET _parts 2 _sdk)
    foreach(_layer IN LISTS _layer_files)
      get_filename_component(_stem ${_layer} NAME_WE)
      set(_name metal_objc.syntax.${_stem}.${_arch}.macos${_target}.sdk${_sdk})
      add_test(NAME ${_name}
               COMMAND ${TORCHLESS_OBJC_CLANG} -target ${_arch}-apple-macos${_target} ${_objc_flags}
                       -D__MAC_OS_X_VERSION_MAX_ALLOWED=${_sdk}0000 ${_layer})
      set_tests_properties(${_name} PROPERTIES LABELS "metal;metal-objc")
    endforeach()
  endforeach()

  # Planted mistakes: each must fail the check with the expected diagnostic.
  set(_probe ${_objc_dir}/planted_mistakes.mm)
  function(torchless_objc_probe name mistake target sdk expected)
    if(expected)
      set(_pass PASS_REGULAR_EXPRESSION "${expected}")
    else()
      set(_pass "")
    endif()
    add_test(NAME metal_objc.${name}
             COMMAND ${TORCHLESS_OBJC_CLANG} -target ${target} ${_objc_flags}
                     -D__MAC_OS_X_VERSION_MAX_ALLOWED=${sdk} -DPLANTED_MISTAKE=${mistake} ${_probe})
    set_tests_properties(metal_objc.${name} PROPERTIES LABELS "metal;metal-objc" ${_pass})
  endfunction()
  torchless_objc_probe(probe_baseline_compiles 0 arm64-apple-macos13 270000 "")
  torchless_objc_probe(rejects_unknown_selector 1 arm64-apple-macos13 270000
                       "instance method 'newCommandQeue' not found")
  torchless_objc_probe(rejects_arc_violation 2 arm64-apple-macos13 270000
                       "ARC forbids explicit message send of 'release'")
  torchless_objc_probe(rejects_wrong_argument_type 3 arm64-apple-macos13 270000
                       "no viable conversion from 'NSUInteger'.* to 'MTLSize'")
  torchless_objc_probe(rejects_unguarded_newer_api 4 arm64-apple-macos14 150000
                       "'addResidencySet:' is only available on macOS 15.0 or newer.*unguarded-availability-new")
  torchless_objc_probe(rejects_deprecated_api 5 arm64-apple-macos27 270000
                       "'didModifyRange:' is deprecated: first deprecated in macOS 27.0.*deprecated-declarations")
  torchless_objc_probe(rejects_api_missing_from_sdk 6 x86_64-apple-macos13 130000
                       "use of undeclared identifier 'MTLLanguageVersion3_1'")
  torchless_objc_probe(rejects_fast_math_switch_from_macos_15 7 arm64-apple-macos15 150000
                       "'fastMathEnabled' is deprecated: first deprecated in macOS 15.0")
  # The planted mistakes that depend on the target are accepted where they are not mistakes,
  # so the failures above come from availability, not from a typo in the probe.
  torchless_objc_probe(accepts_newer_api_when_targeted 4 arm64-apple-macos15 150000 "")
  torchless_objc_probe(accepts_intel_api_before_macos_27 5 x86_64-apple-macos26 270000 "")
endif()
