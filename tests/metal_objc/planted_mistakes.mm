// Probes for the Objective-C++ syntax check (metal_objc.cmake): each PLANTED_MISTAKE is an
// error the check must report, so a declarations header that accepted anything would fail CI.
id<MTLCommandQueue> planted_mistake(id<MTLDevice> device, id<MTLComputeCommandEncoder> encoder) {
#if PLANTED_MISTAKE == 1
  (void)encoder;
  return [device newCommandQeue];  // misspelt selector
#elif PLANTED_MISTAKE == 2
  (void)encoder;
  [device release];  // manual reference counting under ARC
  return nil;
#elif PLANTED_MISTAKE == 3
  [encoder dispatchThreadgroups:NSUInteger{4} threadsPerThreadgroup:MTLSizeMake(32, 1, 1)];
  return [device newCommandQueue];  // above: a count where Metal takes an MTLSize
#else
  (void)encoder;
  return [device newCommandQueue];
#endif
}
