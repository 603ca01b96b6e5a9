// Compiled with the same include roots as upward_include.cpp: the formats layer's own headers
// and those of core below it compile, so upward_include.cpp fails for its include alone.
#include "torchless/core/dtype.h"
#include "torchless/formats/model_config.h"
