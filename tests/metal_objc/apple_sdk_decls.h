// Declarations of exactly the Foundation and Metal API that
// src/torchless/backends/metal/apple/apple_device.mm uses, with Apple's names, types,
// selectors and availability (from the SDK headers MTLDevice.h, MTLLibrary.h,
// MTLCommandBuffer.h, MTLCommandQueue.h, MTLCommandEncoder.h, MTLComputeCommandEncoder.h,
// MTLBlitCommandEncoder.h, MTLBuffer.h, MTLResource.h, MTLAllocation.h, MTLComputePipeline.h,
// MTLResidencySet.h, MTLTypes.h and Foundation). Linux has no Apple SDK, so CI compiles the
// Objective-C++ layer against this header instead, as Apple's clang would (metal_objc.cmake:
// -target arm64/x86_64-apple-macos<deployment target>, the Apple Objective-C runtime, ARC,
// -Werror=deprecated-declarations -Werror=unguarded-availability-new), once per supported
// deployment target and SDK: a misspelt selector, a wrong argument type, a missing ARC
// qualifier, an unguarded call of newer API or a deprecated call fails the build. Nothing here
// is ever linked or run.
//
// Rules: declare only what the layer uses; copy signatures from Apple's headers (nullability
// annotations may be dropped, names and types may not); enum values are Apple's; every
// declaration carries the availability its SDK header gives it (API_AVAILABLE /
// API_DEPRECATED below, macOS only), and exists only in the SDKs that have it
// (__MAC_OS_X_VERSION_MAX_ALLOWED, the SDK version, which the check sets per SDK). Foundation
// API that Apple's headers declare without availability (it predates the macros) has none.
// Sources for the versions: Apple's documentation ("macOS 15.0+"), and for the macOS 27 SDK
// deprecations the compiler output quoted in llama.cpp PR 29136 (MTLDevice.h:
// `API_DEPRECATED("Not applicable on Apple Silicon", macos(10.15, 27.0))`) and WebKit PR 65204
// (managed storage, didModifyRange:, synchronizeResource:).
#pragma once
#define TORCHLESS_APPLE_SDK_DECLS_H 1

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- Availability (Availability.h)
// The SDK version; the check passes -D__MAC_OS_X_VERSION_MAX_ALLOWED=<SDK> for each SDK.
#ifndef __MAC_OS_X_VERSION_MAX_ALLOWED
#define __MAC_OS_X_VERSION_MAX_ALLOWED 270000
#endif
// The deployment target, as AvailabilityInternal.h derives it from -target ...-macos<version>.
#define __MAC_OS_X_VERSION_MIN_REQUIRED __ENVIRONMENT_MAC_OS_X_VERSION_MIN_REQUIRED__
#if __MAC_OS_X_VERSION_MIN_REQUIRED > __MAC_OS_X_VERSION_MAX_ALLOWED
#error "the deployment target is newer than the SDK"
#endif
#define TARGET_OS_OSX 1
// Apple's spellings, macOS only: API_AVAILABLE(macos(15.0)),
// API_DEPRECATED("message", macos(10.11, 27.0)). The deprecation exists only from the SDK that
// introduced it on; clang reports a deprecated use only when the deployment target is at least
// the deprecating version, as with the real headers.
#define API_AVAILABLE(platform) TORCHLESS_AVAILABLE_##platform
#define TORCHLESS_AVAILABLE_macos(introduced_in) \
  __attribute__((availability(macos, introduced = introduced_in)))
#define API_DEPRECATED(message, platform) TORCHLESS_DEPRECATED_##platform
#define TORCHLESS_DEPRECATED_macos(introduced_in, deprecated_in) \
  __attribute__((availability(macos, introduced = introduced_in, deprecated = deprecated_in)))
// Deprecated in the macOS 27 SDK (the first without Intel Macs): managed storage and its
// synchronisation, and the removal of an external GPU.
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 270000
#define TORCHLESS_INTEL_ONLY(introduced_in) \
  API_DEPRECATED("Not applicable on Apple Silicon", macos(introduced_in, 27.0))
#else
#define TORCHLESS_INTEL_ONLY(introduced_in) API_AVAILABLE(macos(introduced_in))
#endif

// ---------------------------------------------------------------- Foundation (objc, NSObjCRuntime)
typedef signed char BOOL;
#define YES ((BOOL)1)
#define NO ((BOOL)0)
#define nil nullptr
typedef long NSInteger;
typedef unsigned long NSUInteger;
typedef NSUInteger NSStringEncoding;
enum : NSStringEncoding { NSUTF8StringEncoding = 4 };

typedef struct _NSRange {
  NSUInteger location;
  NSUInteger length;
} NSRange;
static inline NSRange NSMakeRange(NSUInteger loc, NSUInteger len) {
  NSRange r;
  r.location = loc;
  r.length = len;
  return r;
}

@class NSString;

@protocol NSObject
- (BOOL)isEqual:(id)object;
@property(readonly, copy) NSString* description;
@end

__attribute__((objc_root_class))
@interface NSObject<NSObject>
+ (instancetype)alloc;
+ (instancetype)new;
- (instancetype)init;
@end

@interface NSString : NSObject
- (instancetype)initWithBytes:(const void*)bytes
                       length:(NSUInteger)len
                     encoding:(NSStringEncoding)encoding;
@property(readonly) NSUInteger length;
@property(readonly) const char* UTF8String;
- (BOOL)isEqualToString:(NSString*)aString;
@end
typedef NSString* NSErrorDomain;
typedef NSString* NSErrorUserInfoKey;

@interface NSArray<__covariant ObjectType> : NSObject
@property(readonly) NSUInteger count;
- (ObjectType)objectAtIndexedSubscript:(NSUInteger)idx API_AVAILABLE(macos(10.8));
@end

@interface NSError : NSObject
@property(readonly, copy) NSErrorDomain domain;
@property(readonly) NSInteger code;
@property(readonly, copy) NSString* localizedDescription;
@property(readonly, copy) NSString* localizedFailureReason;
@end

@interface NSURL : NSObject
+ (NSURL*)fileURLWithPath:(NSString*)path API_AVAILABLE(macos(10.0));
@end

// ---------------------------------------------------------------- Metal: types and enums
typedef struct {
  NSUInteger width, height, depth;
} MTLSize;
static inline MTLSize MTLSizeMake(NSUInteger width, NSUInteger height, NSUInteger depth) {
  MTLSize size = {width, height, depth};
  return size;
}

typedef enum MTLGPUFamily : NSInteger {
  MTLGPUFamilyApple6 API_AVAILABLE(macos(10.15)) = 1006,
  MTLGPUFamilyApple7 API_AVAILABLE(macos(11.0)) = 1007,
  MTLGPUFamilyMetal3 API_AVAILABLE(macos(13.0)) = 5001,
} MTLGPUFamily API_AVAILABLE(macos(10.15));

typedef enum MTLStorageMode : NSUInteger {
  MTLStorageModeShared = 0,
  MTLStorageModeManaged TORCHLESS_INTEL_ONLY(10.11) = 1,
  MTLStorageModePrivate = 2,
} MTLStorageMode API_AVAILABLE(macos(10.11));

// NS_OPTIONS types are plain integers in (Objective-)C++, so flags combine with `|`.
typedef NSUInteger MTLResourceOptions;
enum : NSUInteger {
  MTLResourceCPUCacheModeDefaultCache = 0,
  MTLResourceStorageModeShared API_AVAILABLE(macos(10.11)) = 0 << 4,
  MTLResourceStorageModeManaged TORCHLESS_INTEL_ONLY(10.11) = 1 << 4,
  MTLResourceStorageModePrivate API_AVAILABLE(macos(10.11)) = 2 << 4,
  MTLResourceHazardTrackingModeDefault API_AVAILABLE(macos(10.13)) = 0 << 8,
  MTLResourceHazardTrackingModeUntracked API_AVAILABLE(macos(10.13)) = 1 << 8,
  MTLResourceHazardTrackingModeTracked API_AVAILABLE(macos(10.15)) = 2 << 8,
};

typedef enum MTLDispatchType : NSUInteger {
  MTLDispatchTypeSerial,
  MTLDispatchTypeConcurrent,
} MTLDispatchType API_AVAILABLE(macos(10.14));

typedef NSUInteger MTLBarrierScope API_AVAILABLE(macos(10.14));
enum : NSUInteger {
  MTLBarrierScopeBuffers API_AVAILABLE(macos(10.14)) = 1 << 0,
};

typedef enum MTLCommandBufferStatus : NSUInteger {
  MTLCommandBufferStatusNotEnqueued = 0,
  MTLCommandBufferStatusEnqueued = 1,
  MTLCommandBufferStatusCommitted = 2,
  MTLCommandBufferStatusScheduled = 3,
  MTLCommandBufferStatusCompleted = 4,
  MTLCommandBufferStatusError = 5,
} MTLCommandBufferStatus API_AVAILABLE(macos(10.11));

typedef enum MTLCommandBufferError : NSUInteger {
  MTLCommandBufferErrorNone = 0,
  MTLCommandBufferErrorInternal = 1,
  MTLCommandBufferErrorTimeout = 2,
  MTLCommandBufferErrorPageFault = 3,
  MTLCommandBufferErrorAccessRevoked = 4,
  MTLCommandBufferErrorNotPermitted = 7,
  MTLCommandBufferErrorOutOfMemory = 8,
  MTLCommandBufferErrorInvalidResource = 9,
  MTLCommandBufferErrorDeviceRemoved TORCHLESS_INTEL_ONLY(10.13) = 11,
} MTLCommandBufferError API_AVAILABLE(macos(10.11));
extern "C" NSErrorDomain const MTLCommandBufferErrorDomain API_AVAILABLE(macos(10.11));

typedef enum MTLLanguageVersion : NSUInteger {
  MTLLanguageVersion2_4 API_AVAILABLE(macos(12.0)) = (2 << 16) + 4,
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 130000
  MTLLanguageVersion3_0 API_AVAILABLE(macos(13.0)) = (3 << 16) + 0,
#endif
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 140000
  MTLLanguageVersion3_1 API_AVAILABLE(macos(14.0)) = (3 << 16) + 1,
#endif
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
  MTLLanguageVersion3_2 API_AVAILABLE(macos(15.0)) = (3 << 16) + 2,
#endif
} MTLLanguageVersion API_AVAILABLE(macos(10.11));

#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
typedef enum MTLMathMode : NSInteger {
  MTLMathModeSafe = 0,
  MTLMathModeRelaxed = 1,
  MTLMathModeFast = 2,
} MTLMathMode API_AVAILABLE(macos(15.0));

typedef enum MTLMathFloatingPointFunctions : NSInteger {
  MTLMathFloatingPointFunctionsFast = 0,
  MTLMathFloatingPointFunctionsPrecise = 1,
} MTLMathFloatingPointFunctions API_AVAILABLE(macos(15.0));
#endif

// ---------------------------------------------------------------- Metal: protocols and classes
@protocol MTLDevice;
@protocol MTLCommandQueue;
@protocol MTLCommandBuffer;
@protocol MTLBuffer;
@protocol MTLFunction;
@protocol MTLLibrary;
@protocol MTLComputePipelineState;

#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
// Since the macOS 15 SDK every resource is an MTLAllocation, which residency sets hold.
API_AVAILABLE(macos(15.0))
@protocol MTLAllocation <NSObject>
@property(readonly) NSUInteger allocatedSize;
@end

API_AVAILABLE(macos(10.11))
@protocol MTLResource <MTLAllocation>
@property(copy) NSString* label;
@property(readonly) MTLStorageMode storageMode API_AVAILABLE(macos(10.11));
@end
#else
API_AVAILABLE(macos(10.11))
@protocol MTLResource <NSObject>
@property(copy) NSString* label;
@property(readonly) MTLStorageMode storageMode API_AVAILABLE(macos(10.11));
@property(readonly) NSUInteger allocatedSize API_AVAILABLE(macos(10.13));
@end
#endif

API_AVAILABLE(macos(10.11))
@protocol MTLBuffer <MTLResource>
@property(readonly) NSUInteger length;
- (void*)contents;
- (void)didModifyRange:(NSRange)range TORCHLESS_INTEL_ONLY(10.11);
@end

API_AVAILABLE(macos(10.11))
@protocol MTLFunction <NSObject>
@property(readonly) NSString* name;
@end

API_AVAILABLE(macos(10.11))
@protocol MTLLibrary <NSObject>
- (id<MTLFunction>)newFunctionWithName:(NSString*)functionName;
@property(readonly) NSArray<NSString*>* functionNames;
@end

API_AVAILABLE(macos(10.11))
@protocol MTLComputePipelineState <NSObject>
@property(readonly) NSUInteger maxTotalThreadsPerThreadgroup;
@property(readonly) NSUInteger threadExecutionWidth;
@property(readonly) NSUInteger staticThreadgroupMemoryLength API_AVAILABLE(macos(10.13));
@end

API_AVAILABLE(macos(10.11))
@protocol MTLCommandEncoder <NSObject>
@property(copy, atomic) NSString* label;
- (void)endEncoding;
@end

API_AVAILABLE(macos(10.11))
@protocol MTLComputeCommandEncoder <MTLCommandEncoder>
- (void)setComputePipelineState:(id<MTLComputePipelineState>)state;
- (void)setBytes:(const void*)bytes
          length:(NSUInteger)length
         atIndex:(NSUInteger)index API_AVAILABLE(macos(10.11));
- (void)setBuffer:(id<MTLBuffer>)buffer offset:(NSUInteger)offset atIndex:(NSUInteger)index;
- (void)setThreadgroupMemoryLength:(NSUInteger)length atIndex:(NSUInteger)index;
- (void)dispatchThreadgroups:(MTLSize)threadgroupsPerGrid
       threadsPerThreadgroup:(MTLSize)threadsPerThreadgroup;
- (void)memoryBarrierWithScope:(MTLBarrierScope)scope API_AVAILABLE(macos(10.14));
@end

API_AVAILABLE(macos(10.11))
@protocol MTLBlitCommandEncoder <MTLCommandEncoder>
- (void)synchronizeResource:(id<MTLResource>)resource TORCHLESS_INTEL_ONLY(10.11);
- (void)copyFromBuffer:(id<MTLBuffer>)sourceBuffer
          sourceOffset:(NSUInteger)sourceOffset
              toBuffer:(id<MTLBuffer>)destinationBuffer
     destinationOffset:(NSUInteger)destinationOffset
                  size:(NSUInteger)size;
@end

API_AVAILABLE(macos(10.11))
@protocol MTLCommandBuffer <NSObject>
@property(copy, atomic) NSString* label;
@property(readonly) MTLCommandBufferStatus status;
@property(readonly) NSError* error;
- (id<MTLComputeCommandEncoder>)computeCommandEncoderWithDispatchType:(MTLDispatchType)dispatchType
    API_AVAILABLE(macos(10.14));
- (id<MTLBlitCommandEncoder>)blitCommandEncoder;
- (void)commit;
- (void)waitUntilCompleted;
@end

#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
API_AVAILABLE(macos(15.0))
@interface MTLResidencySetDescriptor : NSObject
@property(copy, nonatomic) NSString* label;
@property(nonatomic) NSUInteger initialCapacity;
@end

API_AVAILABLE(macos(15.0))
@protocol MTLResidencySet <NSObject>
@property(readonly) uint64_t allocatedSize;
- (void)requestResidency;
- (void)endResidency;
- (void)addAllocation:(id<MTLAllocation>)allocation;
- (void)removeAllocation:(id<MTLAllocation>)allocation;
- (void)commit;
@end
#endif

API_AVAILABLE(macos(10.11))
@protocol MTLCommandQueue <NSObject>
@property(copy, atomic) NSString* label;
- (id<MTLCommandBuffer>)commandBuffer;
- (id<MTLCommandBuffer>)commandBufferWithUnretainedReferences;
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
- (void)addResidencySet:(id<MTLResidencySet>)residencySet API_AVAILABLE(macos(15.0));
- (void)removeResidencySet:(id<MTLResidencySet>)residencySet API_AVAILABLE(macos(15.0));
#endif
@end

API_AVAILABLE(macos(10.11))
@interface MTLCompileOptions : NSObject
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
@property(readwrite, nonatomic)
    BOOL fastMathEnabled API_DEPRECATED("Use mathMode instead", macos(10.11, 15.0));
@property(readwrite, nonatomic) MTLMathMode mathMode API_AVAILABLE(macos(15.0));
@property(readwrite, nonatomic)
    MTLMathFloatingPointFunctions mathFloatingPointFunctions API_AVAILABLE(macos(15.0));
#else
@property(readwrite, nonatomic) BOOL fastMathEnabled;
#endif
@property(readwrite, nonatomic) MTLLanguageVersion languageVersion API_AVAILABLE(macos(10.11));
@end

API_AVAILABLE(macos(10.11))
@protocol MTLDevice <NSObject>
@property(readonly) NSString* name;
@property(readonly) MTLSize maxThreadsPerThreadgroup API_AVAILABLE(macos(10.11));
@property(readonly) BOOL hasUnifiedMemory API_AVAILABLE(macos(10.15));
@property(readonly) uint64_t recommendedMaxWorkingSetSize API_AVAILABLE(macos(10.12));
@property(readonly) NSUInteger currentAllocatedSize API_AVAILABLE(macos(10.13));
@property(readonly) NSUInteger maxThreadgroupMemoryLength API_AVAILABLE(macos(10.13));
@property(readonly) NSUInteger maxBufferLength API_AVAILABLE(macos(10.14));
- (BOOL)supportsFamily:(MTLGPUFamily)gpuFamily API_AVAILABLE(macos(10.15));
- (id<MTLCommandQueue>)newCommandQueue;
- (id<MTLBuffer>)newBufferWithLength:(NSUInteger)length options:(MTLResourceOptions)options;
- (id<MTLBuffer>)newBufferWithBytesNoCopy:(void*)pointer
                                   length:(NSUInteger)length
                                  options:(MTLResourceOptions)options
                              deallocator:(void (^)(void* pointer, NSUInteger length))deallocator;
- (id<MTLLibrary>)newLibraryWithURL:(NSURL*)url
                              error:(__autoreleasing NSError**)error API_AVAILABLE(macos(10.13));
- (id<MTLLibrary>)newLibraryWithSource:(NSString*)source
                               options:(MTLCompileOptions*)options
                                 error:(__autoreleasing NSError**)error;
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)computeFunction
                                                             error:(__autoreleasing NSError**)error;
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
- (id<MTLResidencySet>)newResidencySetWithDescriptor:(MTLResidencySetDescriptor*)desc
                                               error:(NSError**)error API_AVAILABLE(macos(15.0));
#endif
@end

// Both return a +1 reference (NS_RETURNS_RETAINED), which ARC balances.
extern "C" id<MTLDevice> MTLCreateSystemDefaultDevice(void) __attribute__((ns_returns_retained))
API_AVAILABLE(macos(10.11));
extern "C" NSArray<id<MTLDevice>>* MTLCopyAllDevices(void) __attribute__((ns_returns_retained))
API_AVAILABLE(macos(10.11));
