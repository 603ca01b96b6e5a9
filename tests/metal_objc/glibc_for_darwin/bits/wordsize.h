// The Objective-C++ syntax check (metal_objc.cmake) compiles for arm64/x86_64-apple-macos with
// Linux's libc++ and glibc headers standing in for Apple's (the check is about the Metal and
// Foundation API, not the C library). glibc's x86_64 headers derive the word size from
// __x86_64__, which an arm64-apple target lacks: both macOS targets are LP64.
#define __WORDSIZE 64
#define __WORDSIZE_TIME64_COMPAT32 1
#define __SYSCALL_WORDSIZE 64
