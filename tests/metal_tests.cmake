# Test executables that run Metal shaders (emulated or on a device): ctest label `metal`, and
# each test registered once per emulator thread order.
include(${CMAKE_CURRENT_LIST_DIR}/metal_objc/metal_objc.cmake)
torchless_add_test_dir(metal LABELS metal THREAD_ORDERS)
# The suites whose kernels call math functions, once more in fast-math mode.
if(TARGET metal_tests AND TORCHLESS_METAL_EMULATOR)
  torchless_discover_fast_math(metal_tests "*MetalOpsTest*:*MetalAttentionTest*" metal)
endif()

# The MSL emulator's own tests (tests/emulator), over its test kernels (tests/emulator/kernels),
# built through the emulator's generator like the product's shaders.
if(TORCHLESS_METAL_EMULATOR)
  file(GLOB mslemu_test_sources CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/emulator/kernels/*.metal)
  add_library(mslemu_test_kernels STATIC)
  torchless_add_metal_kernels(TARGET mslemu_test_kernels NAME emulator_test
                              SOURCES ${mslemu_test_sources})
  target_link_libraries(mslemu_test_kernels PUBLIC torchless_backends)
  torchless_set_warnings(mslemu_test_kernels)
  # Label `metal-emulator`: selected by `ctest -L metal`, and on its own by `-L emulator`. The
  # generator's lint (it runs mslemu_gen on files) and the shim's host-side types and math
  # dispatch no kernel, so a thread order cannot change them: forward order only.
  torchless_add_test_dir(emulator LABELS metal-emulator THREAD_ORDERS LIBS mslemu_test_kernels
                         ORDERLESS "Lint.*:*LintTest.*:Half.*:Vectors.*:MathVariants.*")
  # shim_test.cpp includes <metal_stdlib> itself; lint_test.cpp runs the generator.
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/emulator/shim_test.cpp PROPERTIES
    INCLUDE_DIRECTORIES ${PROJECT_SOURCE_DIR}/src/torchless/backends/metal/emulator/shim
    COMPILE_OPTIONS "$<$<BOOL:${TORCHLESS_COMPILER_HAS_MF16C}>:-mf16c>")
  target_compile_definitions(emulator_tests PRIVATE MSLEMU_GEN_PATH="$<TARGET_FILE:mslemu_gen>")
  add_dependencies(emulator_tests mslemu_gen)
endif()
