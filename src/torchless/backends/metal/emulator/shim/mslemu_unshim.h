// Ends the MSL part of a generated translation unit: the keyword macros of metal_stdlib must
// not leak into the binder or anything included after it.
#undef kernel
#undef device
#undef thread
#undef threadgroup
#undef constant
