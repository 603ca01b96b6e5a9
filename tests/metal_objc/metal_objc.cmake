# Tests of the Apple Metal device layer that run on any host (label `metal`):
# - metal_objc.apple_layer_syntax: on non-Apple hosts, clang compiles
#   src/torchless/backends/metal/apple/metal_device_apple.mm as Objective-C++ with ARC
#   (-fsyntax-only, GNUstep runtime ABI, no GNUstep headers) against apple_sdk_decls.h, our
#   declarations of exactly the Foundation/Metal API it uses, so a misspelt selector, a wrong
#   argument type or an ARC violation fails CI although nobody here has a Mac;
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
endif()

if(NOT APPLE)
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
  set(_objc_flags -fsyntax-only -x objective-c++ -fobjc-arc -fobjc-runtime=gnustep-2.0 -fblocks
                  -std=c++20 -Wall -Wextra -Werror -include ${_objc_dir}/apple_sdk_decls.h
                  ${_objc_includes})

  add_test(NAME metal_objc.apple_layer_syntax
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags}
                   ${PROJECT_SOURCE_DIR}/src/torchless/backends/metal/apple/metal_device_apple.mm)
  set_tests_properties(metal_objc.apple_layer_syntax PROPERTIES LABELS metal)
  add_test(NAME metal_objc.apple_layer_syntax_sdk14
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags} -D__MAC_OS_X_VERSION_MAX_ALLOWED=140000
                   ${PROJECT_SOURCE_DIR}/src/torchless/backends/metal/apple/metal_device_apple.mm)
  set_tests_properties(metal_objc.apple_layer_syntax_sdk14 PROPERTIES LABELS metal)

  set(_probe ${_objc_dir}/planted_mistakes.mm)
  add_test(NAME metal_objc.probe_baseline_compiles
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags} -DPLANTED_MISTAKE=0 ${_probe})
  set_tests_properties(metal_objc.probe_baseline_compiles PROPERTIES LABELS metal)
  add_test(NAME metal_objc.rejects_unknown_selector
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags} -DPLANTED_MISTAKE=1 ${_probe})
  set_tests_properties(metal_objc.rejects_unknown_selector PROPERTIES LABELS metal
    PASS_REGULAR_EXPRESSION "instance method 'newCommandQeue' not found")
  add_test(NAME metal_objc.rejects_arc_violation
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags} -DPLANTED_MISTAKE=2 ${_probe})
  set_tests_properties(metal_objc.rejects_arc_violation PROPERTIES LABELS metal
    PASS_REGULAR_EXPRESSION "ARC forbids explicit message send of 'release'")
  add_test(NAME metal_objc.rejects_wrong_argument_type
           COMMAND ${TORCHLESS_OBJC_CLANG} ${_objc_flags} -DPLANTED_MISTAKE=3 ${_probe})
  set_tests_properties(metal_objc.rejects_wrong_argument_type PROPERTIES LABELS metal
    PASS_REGULAR_EXPRESSION "no viable conversion from 'NSUInteger'.* to 'MTLSize'")
endif()
