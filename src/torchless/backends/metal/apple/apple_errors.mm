// Metal's errors as text (NSError descriptions, the compiler's log) and what the user can do
// about a failed command buffer. Part of the Apple device layer (apple_metal_private.h).
#include <cstdlib>

#include <fmt/format.h>

#include "torchless/backends/metal/apple/apple_metal_private.h"
#include "torchless/core/system_memory.h"

namespace torchless::metal::apple {
namespace {

// What the user can do about a failed command buffer, by Metal's error code.
std::string command_buffer_advice(NSError* error, const MetalDeviceInfo& info) {
  if (error == nil || ![error.domain isEqualToString:MTLCommandBufferErrorDomain]) return {};
  switch (static_cast<MTLCommandBufferError>(error.code)) {
    case MTLCommandBufferErrorTimeout:
      return "the GPU watchdog stopped work that ran too long; use a shorter prompt chunk or "
             "close other GPU-heavy apps";
    case MTLCommandBufferErrorOutOfMemory:
      return fmt::format(
          "the GPU ran out of memory (macOS lets it use {} on this Mac); use a smaller context "
          "or a more quantised model, or raise the limit with sudo sysctl "
          "iogpu.wired_limit_mb=<MiB>",
          gib(info.recommended_max_working_set, 1));
    case MTLCommandBufferErrorPageFault:
    case MTLCommandBufferErrorInvalidResource:
      return "a kernel touched memory outside its buffers: a torchless bug; please report it "
             "with the output of `torchless metal-selftest`";
    case MTLCommandBufferErrorAccessRevoked:
      return "macOS revoked this process's GPU access after earlier GPU errors; restart it";
    case MTLCommandBufferErrorNotPermitted:
      return "this process may not use the GPU (no GUI session?); try --backend cpu";
#if TORCHLESS_METAL_DISCRETE_GPUS
    case MTLCommandBufferErrorDeviceRemoved:
      return "the GPU was removed";
#endif
    default:
      return {};
  }
}

}  // namespace

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

std::string to_std(NSString* text) {
  const char* utf8 = text != nil ? text.UTF8String : nullptr;
  return utf8 != nullptr ? std::string(utf8) : std::string();
}

NSString* to_ns(std::string_view text) {
  return [[NSString alloc] initWithBytes:text.data()
                                  length:text.size()
                                encoding:NSUTF8StringEncoding];
}

std::string describe(NSError* error) {
  if (error == nil) return "no error details from Metal";
  std::string text = to_std(error.localizedDescription);
  const std::string reason = to_std(error.localizedFailureReason);
  if (!reason.empty() && text.find(reason) == std::string::npos) text += " (" + reason + ")";
  return fmt::format("{} [{} {}]", text, to_std(error.domain), static_cast<long>(error.code));
}

void check_completed(id<MTLCommandBuffer> command_buffer, const MetalDeviceInfo& info,
                     std::string_view what) {
  if (command_buffer.status == MTLCommandBufferStatusCompleted && command_buffer.error == nil) {
    return;
  }
  NSError* error = command_buffer.error;
  const std::string advice = command_buffer_advice(error, info);
  fail("metal: {} failed on {} (status {}): {}{}{}", what, info.name,
       static_cast<unsigned long>(command_buffer.status), describe(error),
       advice.empty() ? "" : "; ", advice);
}

}  // namespace torchless::metal::apple
