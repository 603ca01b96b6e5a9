# torchless_add_layer(<name> SOURCES <files...> [DEPS <layers...>] [LIBS <libraries...>])
#
# One static library per layer of src/torchless (core, formats, tokenizer, backends, model,
# engine): torchless_<name>, built from exactly the listed sources (relative to
# src/torchless/<name>), linked PUBLIC to the layers it may use (DEPS, given without the
# torchless_ prefix) and to third-party libraries (LIBS).
#
# The layer rule is enforced by the include path: a layer does not see src/, only an include
# root of its own (<build>/layers/<name>, holding torchless/<name> as a link to its folder) plus
# the roots of the layers it depends on, which come through the PUBLIC link. An #include of a
# layer above (or beside) it that is not a dependency fails to compile: "file not found".
include_guard(GLOBAL)

# torchless_layer_root(<name> <var>): sets <var> to the include root of layer <name>, creating
# it (a folder holding torchless/<name> as a link to src/torchless/<name>).
function(torchless_layer_root name var)
  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${root}/torchless)
  if(NOT EXISTS ${root}/torchless/${name})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/torchless/${name} ${root}/torchless/${name}
         SYMBOLIC)
  endif()
  set(${var} ${root} PARENT_SCOPE)
endfunction()

function(torchless_add_layer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  torchless_layer_root(${name} root)
  list(TRANSFORM ARG_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/src/torchless/${name}/)
  add_library(torchless_${name} STATIC ${ARG_SOURCES})
  target_include_directories(torchless_${name} PUBLIC ${root})
  list(TRANSFORM ARG_DEPS PREPEND torchless_)
  target_link_libraries(torchless_${name} PUBLIC ${ARG_DEPS} ${ARG_LIBS})
  torchless_set_warnings(torchless_${name})
endfunction()
