// Compiled with only the include roots of the formats layer and the layers below it
// (tests/layers/layers.cmake): including a header of the model layer above must not compile.
#include "torchless/model/kv_cache.h"
