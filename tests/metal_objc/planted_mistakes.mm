// Probes for the Objective-C++ syntax check (metal_objc.cmake): each PLANTED_MISTAKE is an
// error the check must report, so a declarations header that accepted anything, or lost
// Apple's availability, would fail CI. 4 to 7 depend on the deployment target and SDK.
void planted_mistake(id<MTLDevice> device, id<MTLComputeCommandEncoder> encoder,
                     id<MTLCommandQueue> queue, id<MTLBuffer> buffer, MTLCompileOptions* options) {
#if PLANTED_MISTAKE == 1
  [device newCommandQeue];  // misspelt selector
#elif PLANTED_MISTAKE == 2
  [device release];  // manual reference counting under ARC
#elif PLANTED_MISTAKE == 3
  // A count where Metal takes an MTLSize.
  [encoder dispatchThreadgroups:NSUInteger{4} threadsPerThreadgroup:MTLSizeMake(32, 1, 1)];
#elif PLANTED_MISTAKE == 4
  // macOS 15 API without @available: a mistake for deployment targets before macOS 15.
  MTLResidencySetDescriptor* descriptor = [MTLResidencySetDescriptor new];
  [queue addResidencySet:[device newResidencySetWithDescriptor:descriptor error:nil]];
#elif PLANTED_MISTAKE == 5
  // Managed storage, deprecated in the macOS 27 SDK: a mistake for a macOS 27 target.
  [buffer didModifyRange:NSMakeRange(0, 16)];
#elif PLANTED_MISTAKE == 6
  // Absent from SDKs before macOS 14 (Xcode 14).
  options.languageVersion = MTLLanguageVersion3_1;
#elif PLANTED_MISTAKE == 7
  // Deprecated from macOS 15 (mathMode replaces it).
  options.fastMathEnabled = NO;
#endif
  (void)device;
  (void)encoder;
  (void)queue;
  (void)buffer;
  (void)options;
}
