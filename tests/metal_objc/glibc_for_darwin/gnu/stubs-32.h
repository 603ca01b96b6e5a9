// See ../bits/wordsize.h: glibc's x86_64 gnu/stubs.h picks the 32-bit list for any target
// without __x86_64__; both macOS targets are 64-bit.
#include <gnu/stubs-64.h>
