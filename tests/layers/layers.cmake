# The layer rule of src/torchless/CMakeLists.txt, checked: a source of the formats layer sees
# the headers of formats and core, and an #include of the model layer above it fails to compile.
set(layer_roots -I${CMAKE_BINARY_DIR}/layers/formats -I${CMAKE_BINARY_DIR}/layers/core)
foreach(probe own_include upward_include)
  add_test(NAME layers.${probe}
           COMMAND ${CMAKE_CXX_COMPILER} -std=c++20 -fsyntax-only ${layer_roots}
                   ${CMAKE_CURRENT_LIST_DIR}/${probe}.cpp)
endforeach()
set_tests_properties(layers.upward_include PROPERTIES WILL_FAIL TRUE)
