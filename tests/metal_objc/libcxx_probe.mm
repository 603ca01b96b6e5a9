// The configure-time probe of metal_objc.cmake: can clang compile C++ for a macOS target here?
#include <string>
